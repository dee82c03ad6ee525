"""Reading a frame cache: exact equality with decoding (collator, evaluation, its script), stale entries never
read, the shards' format."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import glccl_hf.modeling.processing_glccl
import pytest
import torch
from frame_cache_fixtures import IMAGE, MAX_FRAMES, MAX_WORDS, TESTS, assert_same_batch, tiny_model
from torch.utils.data import DataLoader

from glccl_hf.data import (
    FRAME_CACHE_COLUMN,
    FrameCache,
    GLCCLDataCollator,
    cache_frames,
    load_retrieval_dataset,
    sampling_settings,
)
from glccl_hf.evaluation import encode_videos, score_dataset
from glccl_hf.processing import GLCCLProcessor

# --------------------------------------------------------------------------------------------- exact equality


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


# ---------------------------------------------------------------------------------------------- stale entries


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


def test_missing_cache_folder_is_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no frame cache here"):
        FrameCache(tmp_path)
