"""The frame cache: exact equality with decoding (collator and evaluation), reruns, staleness, crash safety, JPEG."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import glccl_hf.modeling.processing_glccl
import numpy as np
import pytest
import torch
from modeling_fixtures import tiny_config
from torch.utils.data import DataLoader
from video_fixtures import synthetic_processor, write_garbage

from glccl_hf import GLCCLModel
from glccl_hf.data import (
    FRAME_CACHE_COLUMN,
    FrameCache,
    GLCCLDataCollator,
    cache_frames,
    load_retrieval_dataset,
    make_synthetic_corpus,
    sampling_settings,
)
from glccl_hf.evaluation import encode_videos, score_dataset
from glccl_hf.processing import GLCCLProcessor
from glccl_hf.video import VideoDecodeError

MAX_WORDS, MAX_FRAMES, IMAGE = 12, 4, 16  # IMAGE: the tiny model's
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_corpus(tmp_path_factory.mktemp("synthetic"), 4, 3, seed=3)


@pytest.fixture(scope="module")
def processor(corpus: Path) -> GLCCLProcessor:
    return synthetic_processor(corpus, max_words=MAX_WORDS, max_frames=MAX_FRAMES, image_size=IMAGE)


@pytest.fixture()
def train(corpus: Path) -> datasets.Dataset:
    return load_retrieval_dataset(corpus, "train")


def tiny_model(processor: GLCCLProcessor) -> GLCCLModel:
    """The tiny model of the modeling tests with the synthetic tokenizer's vocabulary and special tokens."""
    config = tiny_config(max_words=MAX_WORDS)
    config.text_config.vocab_size = len(processor.tokenizer)
    config.text_config.bos_token_id = processor.tokenizer.bos_token_id
    config.text_config.eos_token_id = processor.tokenizer.eos_token_id
    torch.manual_seed(0)
    return GLCCLModel(config).eval()


def count_sampling(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every video the processor samples (decodes for the cache)."""
    calls: list[str] = []
    original = GLCCLProcessor.sample_frames

    def counted(self, source, name="video"):
        calls.append(name)
        return original(self, source, name=name)

    monkeypatch.setattr(GLCCLProcessor, "sample_frames", counted)
    return calls


def assert_same_batch(left: dict, right: dict) -> None:
    for key in ("input_ids", "attention_mask", "pixel_values", "video_mask"):
        assert torch.equal(left[key], right[key]), key


# ------------------------------------------------------------------------------------------- exact equality


def test_raw_cache_batches_equal_decoded_batches(processor, train, tmp_path, monkeypatch) -> None:
    decoded = GLCCLDataCollator(processor)(list(train))
    cached = cache_frames(train, processor, tmp_path / "cache")
    assert cached[FRAME_CACHE_COLUMN] == [str((tmp_path / "cache").absolute())] * len(train)
    assert cached.column_names == [*train.column_names, FRAME_CACHE_COLUMN]
    # decoding now fails: the cache must serve
    monkeypatch.setattr(glccl_hf.modeling.processing_glccl, "read_frames", None)
    assert_same_batch(GLCCLDataCollator(processor)(list(cached)), decoded)
    # The same through DataLoader workers (each opens the cache itself), and with the collator's in-memory cache.
    loader = DataLoader(cached, batch_size=len(cached), num_workers=1, collate_fn=GLCCLDataCollator(processor))
    assert_same_batch(next(iter(loader)), decoded)
    assert_same_batch(GLCCLDataCollator(processor, cache_videos=True)(list(cached)), decoded)


def test_cached_frames_are_the_processors_own(processor, train, tmp_path) -> None:
    cached = cache_frames(train, processor, tmp_path / "cache")
    cache = FrameCache(tmp_path / "cache")
    videos = sorted(set(train["video"]))
    assert len(cache) == len(videos)
    for video in videos:
        frames = cache.frames(video, sampling_settings(processor))
        assert frames.dtype == torch.uint8 and frames.shape == (MAX_FRAMES, 3, IMAGE, IMAGE)
        assert torch.equal(frames, processor.sample_frames(video))
    # Every shard is an Arrow file `datasets` loads as it is.
    shards = [datasets.Dataset.from_file(str(path)) for path in cache.shard_paths]
    assert sum(len(shard) for shard in shards) == len(videos)
    assert {"key", "video", "size", "mtime_ns", "sampling", "num_frames", "image_size", "frames"} <= set(
        shards[0].column_names
    )
    assert len(cached) == len(train)


def test_evaluation_reads_the_cache_with_identical_results(corpus, processor, tmp_path, monkeypatch) -> None:
    model = tiny_model(processor)
    test = load_retrieval_dataset(corpus, "test")
    decoded_features = encode_videos(model, processor, list(test["video"]), batch_size=2, progress=False)
    decoded_metrics = score_dataset(model, processor, test, batch_size=2, progress=False).metrics()
    cached = cache_frames(test, processor, tmp_path / "cache")
    monkeypatch.setattr(glccl_hf.modeling.processing_glccl, "read_frames", None)
    features = encode_videos(
        model, processor, list(test["video"]), batch_size=2, progress=False, frame_cache=tmp_path / "cache"
    )
    for key, value in decoded_features.items():
        assert torch.equal(features[key], value), key
    assert score_dataset(model, processor, cached, batch_size=2, progress=False).metrics() == decoded_metrics


# ------------------------------------------------------------------------------------- reruns and staleness


def test_rerun_decodes_only_missing_videos(processor, train, tmp_path, monkeypatch) -> None:
    calls = count_sampling(monkeypatch)
    first_two = train.filter(lambda row: row["video_index"] < 2)
    cache_frames(first_two, processor, tmp_path / "cache", shard_videos=1)
    assert len(calls) == 2
    cache_frames(train, processor, tmp_path / "cache", shard_videos=1)
    assert len(calls) == 4 and len(set(calls)) == 4  # the two missing ones only, each once
    cache_frames(train, processor, tmp_path / "cache")
    assert len(calls) == 4
    assert len(FrameCache(tmp_path / "cache")) == 4


def test_changed_file_is_never_read_from_the_cache(corpus, processor, tmp_path) -> None:
    videos = tmp_path / "videos"
    shutil.copytree(corpus / "train", videos)
    rows = [{"video": str(videos / "video00000.mp4"), "caption": "a red circle"}]
    dataset = datasets.Dataset.from_list(rows)
    cached = cache_frames(dataset, processor, tmp_path / "cache")
    old = GLCCLDataCollator(processor)(list(cached))

    shutil.copyfile(videos / "video00001.mp4", videos / "video00000.mp4")  # other content under the same name
    fresh = GLCCLDataCollator(processor)(list(dataset))
    assert not torch.equal(fresh["pixel_values"], old["pixel_values"])
    assert_same_batch(GLCCLDataCollator(processor)(list(cached)), fresh)

    # Same bytes, new modification time: the entry no longer matches either.
    cache = FrameCache(tmp_path / "cache")
    cache_frames(dataset, processor, tmp_path / "cache")
    cache.refresh()
    assert cache.frames(rows[0]["video"], sampling_settings(processor)) is not None
    stat = os.stat(rows[0]["video"])
    os.utime(rows[0]["video"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.frames(rows[0]["video"], sampling_settings(processor)) is None


def test_other_sampling_settings_are_never_read_from_the_cache(processor, train, tmp_path) -> None:
    cached = cache_frames(train, processor, tmp_path / "cache")
    for settings in ({"max_frames": 3}, {"sample_fps": 2.0}, {"max_seconds": 2.0}, {"image_size": 8}):
        other = GLCCLProcessor(
            processor.tokenizer, max_words=MAX_WORDS, **{"max_frames": MAX_FRAMES, "image_size": IMAGE, **settings}
        )
        video = train[0]["video"]
        assert FrameCache(tmp_path / "cache").frames(video, sampling_settings(other)) is None, settings
        assert_same_batch(GLCCLDataCollator(other)(list(cached)), GLCCLDataCollator(other)(list(train)))


def test_embedded_bytes_are_cached_by_content(processor, train, tmp_path, monkeypatch) -> None:
    rows = [{"video": Path(path).read_bytes(), "caption": "a shape"} for path in sorted(set(train["video"]))]
    dataset = datasets.Dataset.from_list(rows)
    decoded = GLCCLDataCollator(processor)(list(dataset))
    cached = cache_frames(dataset, processor, tmp_path / "cache")
    monkeypatch.setattr(glccl_hf.modeling.processing_glccl, "read_frames", None)
    assert_same_batch(GLCCLDataCollator(processor)(list(cached)), decoded)


# ------------------------------------------------------------------------------------------ crash safety


CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from glccl_hf.data import cache_frames, load_retrieval_dataset
from glccl_hf.processing import GLCCLProcessor
from video_fixtures import synthetic_processor

original = GLCCLProcessor.sample_frames
def slow(self, source, name="video"):
    time.sleep(0.25)
    return original(self, source, name=name)
GLCCLProcessor.sample_frames = slow
processor = synthetic_processor({corpus!r}, max_words={words}, max_frames={frames}, image_size={image})
cache_frames(load_retrieval_dataset({corpus!r}, "train"), processor, {cache!r}, shard_videos=2)
"""


def test_sigkill_loses_at_most_the_shard_in_flight(tmp_path, processor, monkeypatch) -> None:
    corpus = make_synthetic_corpus(tmp_path / "corpus", 8, 1, seed=1)
    cache_dir = tmp_path / "cache"
    code = CHILD.format(
        tests=str(TESTS), corpus=str(corpus), words=MAX_WORDS, frames=MAX_FRAMES, image=IMAGE, cache=str(cache_dir)
    )
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 120
        while len(list(cache_dir.glob("shard-*.arrow"))) < 2:  # two complete shards, the third one in flight
            assert child.poll() is None, "the caching process ended before it was killed"
            assert time.monotonic() < deadline, "no shard written in time"
            time.sleep(0.05)
        time.sleep(0.1)  # into the third shard
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    survived = FrameCache(cache_dir)
    assert 4 <= len(survived) < 8  # every complete shard is readable; the one in flight is absent
    assert len(survived) % 2 == 0

    train = load_retrieval_dataset(corpus, "train")
    calls = count_sampling(monkeypatch)
    cached = cache_frames(train, processor, cache_dir, shard_videos=2)
    assert len(calls) == 8 - len(survived)  # the rerun decodes only what was lost or never done
    assert not list(cache_dir.glob("*.tmp"))
    monkeypatch.setattr(glccl_hf.modeling.processing_glccl, "read_frames", None)
    first = cached.filter(lambda row: row["caption_index"] == 0)
    assert len(FrameCache(cache_dir)) == 8
    for video in first["video"]:
        assert torch.equal(FrameCache(cache_dir).frames(video, sampling_settings(processor)), reference(video))


def reference(video: str) -> torch.Tensor:
    """The video's frames decoded by a fresh processor in a process that may decode (undo the test's patch)."""
    from glccl_hf.video import read_frames, resize_crop_frames

    return resize_crop_frames(read_frames(video, MAX_FRAMES).frames, IMAGE)


# ------------------------------------------------------------------------------------ formats and errors


def test_jpeg_cache_is_close_and_smaller(processor, train, tmp_path) -> None:
    cached = cache_frames(train, processor, tmp_path / "jpeg", format="jpeg", jpeg_quality=90)
    cache = FrameCache(tmp_path / "jpeg")
    assert cache.format == "jpeg"
    for video in set(train["video"]):
        frames = cache.frames(video, sampling_settings(processor)).to(torch.float64)
        exact = processor.sample_frames(video).to(torch.float64)
        mse = torch.mean((frames - exact) ** 2).item()
        assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 25  # PSNR in dB
    batch = GLCCLDataCollator(processor)(list(cached))
    assert batch["pixel_values"].shape == (len(train), MAX_FRAMES, 3, IMAGE, IMAGE)
    with pytest.raises(ValueError, match="holds a 'jpeg' frame cache"):
        cache_frames(train, processor, tmp_path / "jpeg", format="raw")


def test_processes_write_the_same_entries(processor, train, tmp_path) -> None:
    cache_frames(train, processor, tmp_path / "one")
    cache_frames(train, processor, tmp_path / "two", num_proc=2, shard_videos=1)
    one, two = FrameCache(tmp_path / "one"), FrameCache(tmp_path / "two")
    assert len(two.shard_paths) == 4
    for video in set(train["video"]):
        settings = sampling_settings(processor)
        assert torch.equal(one.frames(video, settings), two.frames(video, settings))


def test_undecodable_videos(processor, train, tmp_path, caplog) -> None:
    bad = str(write_garbage(tmp_path / "garbage.mp4"))
    rows = [{"video": row["video"], "caption": row["caption"]} for row in train][:2]
    rows.append({"video": bad, "caption": "a garbage file"})
    dataset = datasets.Dataset.from_list(rows)
    with pytest.raises(VideoDecodeError, match="garbage.mp4"):
        cache_frames(dataset, processor, tmp_path / "raise")
    cached = cache_frames(dataset, processor, tmp_path / "skip", on_error="skip")
    assert "garbage.mp4" in caplog.text
    assert len(FrameCache(tmp_path / "skip")) == len(set(dataset["video"])) - 1
    # Not cached: the collator decodes it and applies its own policy.
    with pytest.raises(VideoDecodeError, match="garbage.mp4"):
        GLCCLDataCollator(processor)(list(cached))
    collator = GLCCLDataCollator(processor, on_error="skip")
    assert collator(list(cached))["pixel_values"].shape[0] == 2 and collator.skipped == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"format": "png"}, "format='png'"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"num_proc": 0}, "num_proc"),
        ({"shard_videos": 0}, "shard_videos must be a positive integer"),
        ({"on_error": "ignore"}, "on_error"),
        ({"video_column": "clip"}, "no 'clip' column"),
    ],
)
def test_bad_arguments_are_named(processor, train, tmp_path, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        cache_frames(train, processor, tmp_path / "cache", **kwargs)


def test_missing_cache_folder_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no frame cache here"):
        FrameCache(tmp_path)


def test_evaluation_script_reads_a_frame_cache(corpus, processor, tmp_path) -> None:
    checkpoint = tmp_path / "checkpoint"
    tiny_model(processor).save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    script = TESTS.parent / "examples" / "evaluate_glccl.py"
    base = [sys.executable, str(script), str(checkpoint), str(corpus), "--device", "cpu", "--no_progress"]
    outputs = {}
    for name, extra in (("decoded", []), ("cached", ["--frame_cache", str(tmp_path / "cache")])):
        outputs[name] = tmp_path / f"{name}.json"
        command = [*base, "--output", str(outputs[name]), *extra]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
    assert outputs["cached"].read_text() == outputs["decoded"].read_text()
    assert len(FrameCache(tmp_path / "cache")) == 3  # the test split's videos
