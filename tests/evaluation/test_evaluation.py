"""Retrieval evaluation: the corpus of a split, encoding once, scoring a dataset, the example script (the ranks and
metrics themselves: test_metrics.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from modeling_fixtures import IMAGE, MAX_FRAMES, MAX_WORDS, tiny_config
from video_fixtures import synthetic_processor, write_garbage

from glccl_hf import GLCCLModel
from glccl_hf.data import load_retrieval_dataset, make_synthetic_corpus
from glccl_hf.evaluation import (
    encode_texts,
    encode_videos,
    evaluate_features,
    evaluate_retrieval,
    retrieval_corpus,
    score_dataset,
    score_features,
)
from glccl_hf.metrics import retrieval_metrics
from glccl_hf.processing import GLCCLProcessor
from glccl_hf.video import VideoDecodeError

REPO = Path(__file__).resolve().parents[2]
KEYS = [f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MdR", "MnR")]
DSL_KEYS = [f"dsl_{key}" for key in KEYS]


# ------------------------------------------------------------------------------------------- datasets schema


def schema_dataset(video_index: list[int], caption_index: list[int]) -> datasets.Dataset:
    n = len(video_index)
    return datasets.Dataset.from_dict(
        {
            "video": [f"/videos/v{v}.mp4" for v in video_index],
            "video_id": [f"v{v}" for v in video_index],
            "caption": [f"caption {i}" for i in range(n)],
            "video_index": video_index,
            "caption_index": caption_index,
        }
    )


def test_retrieval_corpus_orders_videos_by_index() -> None:
    # VATEX-like: several captions per video, first-caption rows out of video order.
    corpus = retrieval_corpus(schema_dataset([1, 0, 1, 2, 0, 2], [0, 0, 1, 0, 1, 1]))
    assert corpus.captions == [f"caption {i}" for i in range(6)]
    assert corpus.text_to_video.tolist() == [1, 0, 1, 2, 0, 2]
    assert corpus.video_ids == ["v0", "v1", "v2"]
    assert list(corpus.videos) == ["/videos/v0.mp4", "/videos/v1.mp4", "/videos/v2.mp4"]


@pytest.mark.parametrize(
    ("video_index", "caption_index", "message"),
    [
        ([0, 0, 1], [0, 0, 0], "list each video once"),  # video 0 listed twice
        ([0, 2, 1], [0, 0, 1], "list each video once"),  # video 1 has no caption_index 0 row
        ([0, 1, 2], [0, 0, 1], "row 2 has video_index 2"),
    ],
)
def test_retrieval_corpus_rejects_inconsistent_indices(video_index, caption_index, message) -> None:
    with pytest.raises(ValueError, match=message):
        retrieval_corpus(schema_dataset(video_index, caption_index))


def test_retrieval_corpus_names_missing_columns() -> None:
    with pytest.raises(ValueError, match="caption_index"):
        retrieval_corpus(schema_dataset([0], [0]).remove_columns("caption_index"))


# ------------------------------------------------------------------------------------ end to end, synthetic


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_synthetic_corpus(tmp_path_factory.mktemp("synthetic"), n_train=2, n_test=4, seed=0)
    write_garbage(root / "garbage.mp4")
    return root


@pytest.fixture(scope="module")
def processor(corpus: Path) -> GLCCLProcessor:
    return synthetic_processor(corpus, max_words=MAX_WORDS, max_frames=MAX_FRAMES, image_size=IMAGE)


@pytest.fixture(scope="module")
def model(processor: GLCCLProcessor) -> GLCCLModel:
    """The tiny model with the synthetic tokenizer's vocabulary and special tokens."""
    config = tiny_config()
    tokenizer = processor.tokenizer
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(0)
    model = GLCCLModel(config).eval()
    with torch.no_grad():  # non-identity heads, so their orientation matters
        for matrix in model.score_matrices.parameters():
            matrix.add_(0.3 * torch.randn_like(matrix))
    return model


def forward_logits(model: GLCCLModel, processor: GLCCLProcessor, captions: list[str], videos: list[str]):
    with torch.no_grad():
        return model(**processor(text=captions, videos=videos, return_tensors="pt")).logits_per_text


@pytest.mark.parametrize("split", ["test", "train"])  # one caption per video (1k-A / DiDeMo shape); 3 per video
def test_evaluate_retrieval_matches_the_forward_pass(corpus, processor, model, split) -> None:
    dataset = load_retrieval_dataset(corpus, split)
    first = dataset.filter(lambda row: row["caption_index"] == 0)
    logits = forward_logits(model, processor, list(dataset["caption"]), list(first["video"]))
    assert logits.shape == (len(dataset), len(first))

    model.train()  # evaluation switches to eval mode and back
    scores = score_dataset(model, processor, dataset, batch_size=3, progress=False)
    assert model.training
    model.eval()
    torch.testing.assert_close(scores.similarity, logits, rtol=1e-4, atol=1e-4)
    assert scores.text_to_video.tolist() == list(dataset["video_index"])
    assert scores.video_ids == list(first["video_id"])

    expected = retrieval_metrics(logits, list(dataset["video_index"]), dsl=True)
    assert scores.metrics(dsl=True) == pytest.approx(expected)
    with pytest.warns(FutureWarning, match=r"score_dataset\(model, processor, dataset, \.\.\.\)\.metrics"):
        metrics = evaluate_retrieval(model, processor, dataset, batch_size=3, dsl=True, progress=False)
    assert metrics == pytest.approx(expected)
    assert list(metrics) == KEYS + DSL_KEYS


def test_encode_once_then_evaluate_features(corpus, processor, model) -> None:
    dataset = load_retrieval_dataset(corpus, "train")
    corpus_split = retrieval_corpus(dataset)
    text = encode_texts(model, processor, corpus_split.captions, batch_size=4, progress=False)
    assert text.sentence_embeds.shape == (6, 32) and text.word_embeds.shape == (6, MAX_WORDS, 32)
    video = encode_videos(model, processor, corpus_split.videos, batch_size=1, num_workers=0, progress=False)
    assert video.frame_embeds.shape == (2, MAX_FRAMES, 32) and video.video_mask.shape == (2, MAX_FRAMES)
    # Decoding in a worker process gives the same features.
    parallel = encode_videos(model, processor, corpus_split.videos, batch_size=2, num_workers=1, progress=False)
    torch.testing.assert_close(parallel.frame_embeds, video.frame_embeds, rtol=1e-5, atol=1e-5)
    metrics = retrieval_metrics(score_features(model, text, video), corpus_split.text_to_video)
    assert metrics == pytest.approx(score_dataset(model, processor, dataset, progress=False).metrics())
    with pytest.warns(FutureWarning, match=r"use retrieval_metrics\(score_features"):
        deprecated = evaluate_features(model, text, video, corpus_split.text_to_video)
    assert deprecated == pytest.approx(metrics)
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="6 encoded texts"):
        evaluate_features(model, text, video, [0, 1])


@pytest.mark.parametrize("num_workers", [0, 1])
def test_bad_videos_raise_naming_the_file(corpus, processor, model, num_workers) -> None:
    good = str(corpus / "test" / "video00002.mp4")
    garbage = str(corpus / "garbage.mp4")
    with pytest.raises(VideoDecodeError, match="garbage.mp4"):
        encode_videos(model, processor, [good, garbage], num_workers=num_workers, progress=False)
    missing = str(corpus / "absent.mp4")
    with pytest.raises(FileNotFoundError, match="absent.mp4"):
        encode_videos(model, processor, [missing], num_workers=num_workers, progress=False)


def test_in_memory_video_errors_use_the_given_name(processor, model) -> None:
    with pytest.raises(VideoDecodeError, match="clip-42"):
        encode_videos(model, processor, [b"garbage bytes" * 20], names=["clip-42"], progress=False)


def test_encode_argument_errors(processor, model) -> None:
    with pytest.raises(TypeError, match="single string"):
        encode_texts(model, processor, "a caption")
    with pytest.raises(TypeError, match=r"captions\[1\]"):
        encode_texts(model, processor, ["a caption", 3])
    with pytest.raises(ValueError, match="batch_size"):
        encode_texts(model, processor, ["a caption"], batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        encode_videos(model, processor, [b"x"], num_workers=-1)
    with pytest.raises(ValueError, match="names has 2 entries"):
        encode_videos(model, processor, [b"x"], names=["a", "b"])
    wrong = GLCCLProcessor(processor.tokenizer, max_words=MAX_WORDS + 2, max_frames=MAX_FRAMES, image_size=IMAGE)
    with pytest.raises(ValueError, match="max_words"):
        encode_texts(model, wrong, ["a caption"], progress=False)


# ---------------------------------------------------------------------------------------------- the script


def test_example_script_writes_metrics(corpus, processor, model, tmp_path) -> None:
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    output = tmp_path / "out" / "metrics.json"
    command = [
        sys.executable,
        str(REPO / "examples" / "evaluate_glccl.py"),
        str(checkpoint),
        str(corpus),
        "--split", "test",
        "--batch_size", "2",
        "--device", "cpu",
        "--dsl",
        "--no_progress",
        "--output", str(output),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ), cwd=REPO)
    assert result.returncode == 0, result.stderr
    written = json.loads(output.read_text())
    assert list(written["metrics"]) == KEYS + DSL_KEYS
    expected = score_dataset(model, processor, load_retrieval_dataset(corpus, "test"), progress=False).metrics(dsl=True)
    assert written["metrics"] == pytest.approx(expected)
    assert written["evaluated"] == {"texts": 4, "videos": 4}
    assert {key: value["count"] for key, value in written["dropped"].items()} == {
        "missing_videos": 0,
        "undecodable_videos": 0,
        "duplicate_rows": 0,
    }
    header, *rows = result.stdout.strip().splitlines()
    assert header.split() == ["R@1", "R@5", "R@10", "MdR", "MnR"]
    assert [row.split()[0] for row in rows[:4]] == ["t2v", "v2t", "dsl_t2v", "dsl_v2t"]
    assert rows[4:] == [
        "evaluated: 4 captions x 4 videos",
        "missing videos dropped: 0",
        "undecodable videos skipped: 0",
        "duplicate rows dropped: 0",
    ]


# ------------------------------------------------------------------------------- dropped rows are reported


def load_script():
    """examples/evaluate_glccl.py as a module, so its main(argv) runs in this process (no second start-up)."""
    spec = importlib.util.spec_from_file_location("evaluate_glccl", REPO / "examples" / "evaluate_glccl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def damaged_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic corpus whose test split lost one video file and has one file that is no video."""
    root = make_synthetic_corpus(tmp_path_factory.mktemp("damaged"), n_train=2, n_test=5, seed=1)
    test_videos = sorted((root / "test").glob("*.mp4"))
    test_videos[1].unlink()
    write_garbage(test_videos[3])
    return root


@pytest.fixture(scope="module")
def checkpoint(model, processor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_script_names_its_own_flags_for_a_missing_or_broken_video(damaged_corpus, checkpoint) -> None:
    script = load_script()
    base = [str(checkpoint), str(damaged_corpus), "--device", "cpu", "--no_progress"]
    with pytest.raises(SystemExit) as raised:
        script.main(base)
    message = str(raised.value)
    assert "1 of 5 videos not found" in message and "'video00003'" in message, message
    assert "--missing_videos drop" in message, message
    with pytest.raises(SystemExit) as raised:
        script.main(base + ["--missing_videos", "drop"])
    message = str(raised.value)
    assert "video00005.mp4" in message and "--on_error skip" in message, message


def test_script_drops_and_reports_missing_and_broken_videos(damaged_corpus, checkpoint, model, processor, tmp_path,
                                                            capsys) -> None:  # fmt: skip
    script = load_script()
    output = tmp_path / "metrics.json"
    argv = [str(checkpoint), str(damaged_corpus), "--device", "cpu", "--no_progress", "--output", str(output)]
    metrics = script.main(argv + ["--missing_videos", "drop", "--on_error", "skip"])
    printed = capsys.readouterr().out
    assert "missing videos dropped: 1 (video00003)" in printed, printed
    assert "undecodable videos skipped: 1 (video00005)" in printed, printed
    assert "duplicate rows dropped: 0" in printed, printed
    assert "3 captions x 3 videos" in printed, printed

    written = json.loads(output.read_text())
    assert written["metrics"] == pytest.approx(metrics)
    assert written["evaluated"] == {"texts": 3, "videos": 3}
    dropped = written["dropped"]
    assert dropped["missing_videos"] == {"count": 1, "video_ids": ["video00003"]}
    assert dropped["undecodable_videos"]["count"] == 1
    [skipped] = dropped["undecodable_videos"]["videos"]
    assert skipped["video_id"] == "video00005" and skipped["path"].endswith("video00005.mp4") and skipped["reason"]
    assert dropped["undecodable_videos"]["captions"] == 1
    assert dropped["duplicate_rows"] == {"count": 0, "rows": []}

    # The metrics are those of the three good videos evaluated on their own.
    full = load_retrieval_dataset(damaged_corpus, "test", missing_videos="drop")
    good = full.filter(lambda row: row["video_id"] != "video00005")
    good = datasets.Dataset.from_dict({**good.to_dict(), "video_index": [0, 1, 2], "caption_index": [0, 0, 0]})
    assert metrics == pytest.approx(score_dataset(model, processor, good, progress=False).metrics())


def test_score_dataset_skips_broken_videos_and_their_captions(corpus, processor, model) -> None:
    dataset = load_retrieval_dataset(corpus, "train")  # 2 videos, 3 captions each
    rows = dataset.to_dict()
    rows["video"][0:3] = [str(corpus / "garbage.mp4")] * 3
    broken = datasets.Dataset.from_dict(rows, features=dataset.features)
    with pytest.raises(VideoDecodeError, match="garbage.mp4"):
        score_dataset(model, processor, broken, progress=False)
    for num_workers in (0, 1):
        scores = score_dataset(model, processor, broken, on_error="skip", num_workers=num_workers, progress=False)
        assert scores.video_ids == [rows["video_id"][3]]
        assert scores.captions == rows["caption"][3:] and scores.text_to_video.tolist() == [0, 0, 0]
        [skipped] = scores.skipped_videos
        assert skipped.video_id == rows["video_id"][0] and skipped.path.endswith("garbage.mp4")
        assert "garbage.mp4" in skipped.reason and scores.skipped_captions == 3
    only_broken = broken.select(range(3))
    with pytest.raises(VideoDecodeError, match="every video"):
        score_dataset(model, processor, only_broken, on_error="skip", progress=False)
    with pytest.raises(ValueError, match="on_error"):
        score_dataset(model, processor, broken, on_error="ignore", progress=False)


# ------------------------------------------------------------------------------------------ duplicate rows


def test_duplicate_rows_are_dropped_from_evaluation_by_default(corpus, processor, model, caplog) -> None:
    dataset = load_retrieval_dataset(corpus, "train")  # 2 videos x 3 captions
    rows = dataset.to_dict()
    doubled = {key: values + [values[4]] for key, values in rows.items()}  # video 1's second caption again
    doubled["caption_index"][-1] = 3
    with_duplicate = datasets.Dataset.from_dict(doubled, features=dataset.features)

    corpus_split = retrieval_corpus(with_duplicate)
    assert corpus_split.captions == rows["caption"] and corpus_split.duplicate_rows == [6]
    assert len(retrieval_corpus(with_duplicate, duplicates="keep").captions) == 7
    with pytest.raises(ValueError, match="duplicates"):
        retrieval_corpus(with_duplicate, duplicates="ignore")

    with caplog.at_level("WARNING", logger="glccl_hf.evaluation"):
        scores = score_dataset(model, processor, with_duplicate, progress=False)
    assert "1 duplicate row" in caplog.text and rows["caption"][4] in caplog.text
    assert scores.duplicates == [(rows["video_id"][4], rows["caption"][4])]
    expected = score_dataset(model, processor, dataset, progress=False).metrics()
    assert score_dataset(model, processor, with_duplicate, progress=False).metrics() == pytest.approx(expected)
    kept = score_dataset(model, processor, with_duplicate, duplicates="keep", progress=False)
    assert kept.similarity.shape == (7, 2) and kept.duplicates == []
    metrics = score_dataset(model, processor, with_duplicate, duplicates="keep", progress=False).metrics()
    assert metrics == pytest.approx(retrieval_metrics(kept.similarity, kept.text_to_video))
