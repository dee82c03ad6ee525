"""Writing a frame cache: reruns decode only what is missing, crash safety, processes, JPEG, undecodable videos,
bad arguments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import datasets
import glccl_hf.modeling.processing_glccl
import numpy as np
import pytest
import torch
from frame_cache_fixtures import IMAGE, MAX_FRAMES, MAX_WORDS, TESTS, count_sampling
from video_fixtures import write_garbage

from glccl_hf.data import (
    FrameCache,
    GLCCLDataCollator,
    cache_frames,
    load_retrieval_dataset,
    make_synthetic_corpus,
    sampling_settings,
)
from glccl_hf.video import VideoDecodeError

# ----------------------------------------------------------------------------------------------------- reruns


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


def test_this_process_sees_a_rerun_however_its_folder_is_spelled(processor, train, tmp_path, monkeypatch) -> None:
    first_two = train.filter(lambda row: row["video_index"] < 2)
    GLCCLDataCollator(processor)(list(cache_frames(first_two, processor, tmp_path / "cache")))  # opens the cache
    (tmp_path / "elsewhere").mkdir()
    cached = cache_frames(train, processor, tmp_path / "elsewhere" / ".." / "cache")
    monkeypatch.setattr(glccl_hf.modeling.processing_glccl, "read_frames", None)  # the cache must serve every video
    assert GLCCLDataCollator(processor)(list(cached))["pixel_values"].shape[0] == len(train)


# ----------------------------------------------------------------------------------------------- crash safety


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


# ----------------------------------------------------------------------------------------- formats and errors


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
