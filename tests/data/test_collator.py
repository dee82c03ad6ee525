"""GLCCLDataCollator with the real processor on synthetic mp4s, corrupt files and missing files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader
from video_fixtures import synthetic_processor, write_garbage, write_truncated

from glccl_hf.data import GLCCLDataCollator, load_retrieval_dataset, make_synthetic_corpus
from glccl_hf.processing import GLCCLProcessor
from glccl_hf.video import VideoDecodeError

MAX_WORDS, MAX_FRAMES, IMAGE = 12, 4, 32


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_synthetic_corpus(tmp_path_factory.mktemp("synthetic"), 4, 2, seed=5)
    # A file that is not a video, and one cut in half: both must be reported, never turned into blank frames.
    (root / "bad").mkdir()
    write_garbage(root / "bad" / "garbage.mp4")
    write_truncated(root / "train" / "video00000.mp4", root / "bad" / "truncated.mp4")
    return root


@pytest.fixture(scope="module")
def processor(corpus: Path) -> GLCCLProcessor:
    return synthetic_processor(corpus, max_words=MAX_WORDS, max_frames=MAX_FRAMES, image_size=IMAGE)


@pytest.fixture(scope="module")
def train_rows(corpus: Path) -> list[dict]:
    return list(load_retrieval_dataset(corpus, "train"))


def bad_row(corpus: Path, name: str) -> dict:
    return {
        "video": str(corpus / "bad" / name),
        "video_id": name,
        "caption": "a red circle moves left on a blue background",
        "video_index": 99,
        "caption_index": 0,
    }


def test_batch_layout(processor: GLCCLProcessor, train_rows: list[dict]) -> None:
    rows = train_rows[:3]
    batch = GLCCLDataCollator(processor)(rows)
    assert set(batch) == {"input_ids", "attention_mask", "pixel_values", "video_mask", "return_loss"}
    assert batch["return_loss"] is True
    assert batch["input_ids"].shape == (3, MAX_WORDS) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].shape == (3, MAX_WORDS)
    assert batch["pixel_values"].shape == (3, MAX_FRAMES, 3, IMAGE, IMAGE)
    assert batch["pixel_values"].dtype == torch.float32
    assert batch["video_mask"].shape == (3, MAX_FRAMES)
    # Synthetic videos last 6 s: 6 candidates at 1 fps, 4 kept.
    assert batch["video_mask"].tolist() == [[1] * MAX_FRAMES] * 3
    expected = processor.tokenize([r["caption"] for r in rows])
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    pixel, mask = processor.load_video(rows[1]["video"])
    assert torch.equal(batch["pixel_values"][1], pixel) and torch.equal(batch["video_mask"][1], mask)


def test_video_bytes_and_video_feature_dicts(processor: GLCCLProcessor, train_rows: list[dict]) -> None:
    row = train_rows[0]
    data = Path(row["video"]).read_bytes()
    as_bytes = {**row, "video": data}
    as_dict = {**row, "video": {"path": None, "bytes": data}}
    batch = GLCCLDataCollator(processor)([row, as_bytes, as_dict])
    assert torch.equal(batch["pixel_values"][0], batch["pixel_values"][1])
    assert torch.equal(batch["pixel_values"][0], batch["pixel_values"][2])


@pytest.mark.parametrize(
    ("name", "error"),
    [("garbage.mp4", VideoDecodeError), ("truncated.mp4", VideoDecodeError), ("absent.mp4", FileNotFoundError)],
)
def test_raise_names_the_file(
    corpus: Path, processor: GLCCLProcessor, train_rows: list[dict], name: str, error: type[Exception]
) -> None:
    collator = GLCCLDataCollator(processor)  # on_error="raise" is the default
    with pytest.raises(error, match=str(corpus / "bad" / name).replace(".", r"\.")):
        collator([train_rows[0], bad_row(corpus, name)])


def test_raise_names_the_video_id_for_bytes(processor: GLCCLProcessor, train_rows: list[dict]) -> None:
    row = {**train_rows[0], "video": b"not a video at all", "video_id": "clip42"}
    with pytest.raises(VideoDecodeError, match=r"video 'clip42' \(embedded bytes\)"):
        GLCCLDataCollator(processor)([row])


def test_skip_drops_bad_rows_and_counts_them(
    corpus: Path, processor: GLCCLProcessor, train_rows: list[dict], caplog: pytest.LogCaptureFixture
) -> None:
    collator = GLCCLDataCollator(processor, on_error="skip")
    good = train_rows[:3]
    rows = [good[0], bad_row(corpus, "garbage.mp4"), good[1], bad_row(corpus, "absent.mp4"), good[2]]
    with caplog.at_level(logging.WARNING, logger="glccl_hf.data.collator"):
        batch = collator(rows)
    assert collator.skipped == 2
    assert batch["pixel_values"].shape[0] == batch["input_ids"].shape[0] == 3
    # The surviving captions stay paired with their own videos.
    assert torch.equal(batch["input_ids"], processor.tokenize([r["caption"] for r in good])["input_ids"])
    assert torch.equal(batch["pixel_values"][2], processor.load_video(good[2]["video"])[0])
    assert str(corpus / "bad" / "garbage.mp4") in caplog.text and "VideoDecodeError" in caplog.text
    assert str(corpus / "bad" / "absent.mp4") in caplog.text and "FileNotFoundError" in caplog.text
    collator([bad_row(corpus, "truncated.mp4"), good[0]])
    assert collator.skipped == 3
    collator.reset_skipped()
    assert collator.skipped == 0


def test_skip_with_every_row_bad_raises(corpus: Path, processor: GLCCLProcessor) -> None:
    collator = GLCCLDataCollator(processor, on_error="skip")
    with pytest.raises(VideoDecodeError, match=r"all 2 videos of the batch failed to load: .*garbage\.mp4.*absent"):
        collator([bad_row(corpus, "garbage.mp4"), bad_row(corpus, "absent.mp4")])
    assert collator.skipped == 2


def test_skip_count_adds_up_across_dataloader_workers(
    corpus: Path, processor: GLCCLProcessor, train_rows: list[dict]
) -> None:
    rows = train_rows[:4] + [bad_row(corpus, "garbage.mp4"), bad_row(corpus, "absent.mp4")]
    order = [0, 4, 1, 5, 2, 3]  # batches of 2, each of the first two holds one bad row
    collator = GLCCLDataCollator(processor, on_error="skip")
    loader = DataLoader([rows[i] for i in order], batch_size=2, num_workers=2, collate_fn=collator)
    sizes = [batch["input_ids"].shape[0] for batch in loader]
    assert sizes == [1, 1, 2]
    assert collator.skipped == 2


def test_bad_arguments_and_rows(processor: GLCCLProcessor, train_rows: list[dict]) -> None:
    with pytest.raises(ValueError, match="on_error='ignore'"):
        GLCCLDataCollator(processor, on_error="ignore")
    with pytest.raises(TypeError, match="has no load_video"):
        GLCCLDataCollator(object())
    collator = GLCCLDataCollator(processor)
    with pytest.raises(ValueError, match="empty batch"):
        collator([])
    with pytest.raises(KeyError, match="batch row 0 has no 'video' key"):
        collator([{"caption": "x"}])
    with pytest.raises(ValueError, match="'caption' must be a string"):
        collator([{**train_rows[0], "caption": None}])
    with pytest.raises(TypeError, match="must be a path, bytes"):
        collator([{**train_rows[0], "video": 3}])


def test_cache_videos_decodes_each_path_once(processor: GLCCLProcessor, train_rows: list[dict]) -> None:
    calls: list[str] = []

    class CountingProcessor:
        def load_video(self, source):
            calls.append(str(source))
            return processor.load_video(source)

        def tokenize(self, texts):
            return processor.tokenize(texts)

    rows = train_rows[:3]  # the first video's three captions: one file
    assert len({r["video"] for r in rows}) == 1
    cached = GLCCLDataCollator(CountingProcessor(), cache_videos=True)
    first, second = cached(rows), cached(rows)
    assert len(calls) == 1
    plain = GLCCLDataCollator(processor)(rows)
    for batch in (first, second):
        assert torch.equal(batch["pixel_values"], plain["pixel_values"])
    GLCCLDataCollator(CountingProcessor())(rows)
    assert len(calls) == 4  # without the cache every row decodes

