"""The synthetic corpus: real decodable videos whose frames match their captions, determinism, both loading paths,
and the tokenizer."""

from __future__ import annotations

import csv
import filecmp
import json
from pathlib import Path

import datasets
import numpy as np
import pytest

from glccl_hf.data import grammar_words, load_retrieval_dataset, load_synthetic_tokenizer, make_synthetic_corpus
from glccl_hf.data.synthetic import COLORS, SCENE_SEPARATOR, SHAPES, clip_vocab
from glccl_hf.video import read_frames

N_TRAIN, N_TEST, SCENES = 6, 4, 3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_corpus(tmp_path_factory.mktemp("synthetic"), N_TRAIN, N_TEST, seed=3)


def metadata(corpus: Path, split: str) -> list[dict[str, str]]:
    with open(corpus / split / "metadata.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def parse(caption: str) -> dict[str, str]:
    words = caption.split()
    assert words[0] == "a" and words[3] == "moves" and words[5:7] == ["on", "a"] and words[8] == "background", caption
    return {"color": words[1], "shape": words[2], "direction": words[4], "background": words[7]}


def test_rows_and_captions_per_video(corpus: Path) -> None:
    train = load_retrieval_dataset(corpus, "train")
    test = load_retrieval_dataset(corpus, "test")
    assert len(train) == N_TRAIN * SCENES
    assert len(test) == N_TEST
    assert sorted(train["caption_index"]) == sorted(list(range(SCENES)) * N_TRAIN)
    assert max(train["video_index"]) == N_TRAIN - 1
    assert test["caption_index"] == [0] * N_TEST
    assert len(set(train["video_id"]) | set(test["video_id"])) == N_TRAIN + N_TEST
    for row in metadata(corpus, "train"):
        scenes = row["video_scenes"].split(SCENE_SEPARATOR)
        assert len(scenes) == SCENES
        assert scenes[int(row["scene"])] == row["caption"]  # each caption describes one scene of its video


def test_test_captions_are_unambiguous(corpus: Path) -> None:
    rows = metadata(corpus, "test")
    for row in rows:
        others = [r for r in rows if r is not row]
        # The caption describes no scene of any other test video.
        assert all(row["caption"] not in r["video_scenes"].split(SCENE_SEPARATOR) for r in others)


def test_frames_show_the_captioned_scenes(corpus: Path) -> None:
    for row in metadata(corpus, "train")[::SCENES][:3]:
        scenes = [parse(c) for c in row["video_scenes"].split(SCENE_SEPARATOR)]
        video = read_frames(corpus / "train" / row["file_name"], max_frames=12, sample_fps=1.0)
        assert len(video) == 2 * SCENES  # 2 s per scene, sampled at 1 fps
        frames = video.frames.permute(0, 2, 3, 1).numpy().astype(int)
        for k, frame in enumerate(frames):
            scene = scenes[k // 2]
            corner = frame[1, 1]
            assert np.abs(corner - COLORS[scene["background"]]).max() < 40, (row["file_name"], k, corner)
            shape_pixels = (np.abs(frame - COLORS[scene["color"]]).max(axis=-1) < 40).mean()
            assert 0.05 < shape_pixels < 0.35, (row["file_name"], k, shape_pixels)


def test_shape_moves_in_the_captioned_direction(corpus: Path) -> None:
    row = metadata(corpus, "train")[0]
    scenes = [parse(c) for c in row["video_scenes"].split(SCENE_SEPARATOR)]
    frames = read_frames(corpus / "train" / row["file_name"], max_frames=12).frames.permute(0, 2, 3, 1).numpy()
    for s, scene in enumerate(scenes):
        centres = []
        for frame in frames[2 * s : 2 * s + 2]:
            ys, xs = np.nonzero(np.abs(frame.astype(int) - COLORS[scene["color"]]).max(axis=-1) < 40)
            centres.append((xs.mean(), ys.mean()))
        (x0, y0), (x1, y1) = centres
        expected = {"left": x1 < x0 - 3, "right": x1 > x0 + 3, "up": y1 < y0 - 3, "down": y1 > y0 + 3}
        assert expected[scene["direction"]], (scene, centres)


def test_same_seed_same_files_other_seed_other_captions(tmp_path: Path) -> None:
    a = make_synthetic_corpus(tmp_path / "a", 3, 2, seed=11)
    b = make_synthetic_corpus(tmp_path / "b", 3, 2, seed=11)
    c = make_synthetic_corpus(tmp_path / "c", 3, 2, seed=12)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert any(str(f).endswith(".mp4") for f in files)
    match, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files], shallow=False)
    assert (mismatch, errors) == ([], [])
    assert metadata(a, "train") != metadata(c, "train")


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    make_synthetic_corpus(tmp_path, 1, 1)
    with pytest.raises(FileExistsError, match=r"metadata\.csv exists"):
        make_synthetic_corpus(tmp_path, 1, 1)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_test=0"):
        make_synthetic_corpus(tmp_path, 2, 0)
    with pytest.raises(ValueError, match="size=15"):
        make_synthetic_corpus(tmp_path, 2, 1, size=15)
    with pytest.raises(ValueError, match="too many test scenes"):
        make_synthetic_corpus(tmp_path, 2, 100)


def test_loadable_as_plain_videofolder(corpus: Path) -> None:
    ds = datasets.load_dataset("videofolder", data_dir=str(corpus))
    assert set(ds) == {"train", "test"}
    assert len(ds["train"]) == N_TRAIN * SCENES and len(ds["test"]) == N_TEST
    assert isinstance(ds["train"].features["video"], datasets.Video)
    row = ds["test"].cast_column("video", datasets.Video(decode=False))[0]
    assert row["video"]["path"] == str(corpus / "test" / f"{row['video_id']}.mp4")
    assert row["caption"] == metadata(corpus, "test")[0]["caption"]


def test_tokenizer_gives_one_known_token_per_word(corpus: Path) -> None:
    tokenizer = load_synthetic_tokenizer(corpus)
    vocab = json.loads((corpus / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))
    assert len(tokenizer) == len(vocab)
    assert vocab["!"] == 0  # CLIP's order: byte characters first; the reference pads with id 0
    sot, eot = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (sot, eot)
    assert tokenizer.model_max_length == 77
    captions = [r["caption"] for r in metadata(corpus, "train") + metadata(corpus, "test")]
    for caption in captions:
        expected = [sot] + [vocab[w + "</w>"] for w in caption.split()] + [eot]
        assert tokenizer(caption)["input_ids"] == expected, caption
    words = grammar_words()
    assert set(SHAPES) <= set(words) and set(COLORS) <= set(words)
    ids = tokenizer(" ".join(words))["input_ids"]
    assert ids == [sot] + [vocab[w + "</w>"] for w in words] + [eot]
    assert eot not in ids[1:-1]  # no word fell back to the unknown token (<|endoftext|>)


def test_tokenizer_files_alone_are_enough(corpus: Path, tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((corpus / "tokenizer" / name).read_bytes())
    assert (corpus / "tokenizer" / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2\n")
    slow = CLIPTokenizer.from_pretrained(str(tmp_path))
    saved = load_synthetic_tokenizer(corpus)
    text = "a white triangle moves down on a black background"
    assert slow(text)["input_ids"] == saved(text)["input_ids"]


def test_missing_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no synthetic tokenizer"):
        load_synthetic_tokenizer(tmp_path)


def test_clip_vocab_lists_the_byte_characters_in_clips_order() -> None:
    vocab = clip_vocab([("a", "b")])
    # Printable bytes keep their character (ids 0..187); the other 68 follow, shifted past U+00FF, in byte order.
    assert (vocab["!"], vocab["~"], vocab["¡"], vocab["ÿ"]) == (0, 93, 94, 187)
    assert (vocab[chr(256)], vocab["Ġ"], vocab[chr(323)]) == (188, 220, 255)  # byte 0, the space, byte 173
    assert (vocab["!</w>"], vocab["ab"], vocab["<|endoftext|>"]) == (256, 512, 514)
