"""The common schema's building blocks (glccl_hf.data.schema), on their own: indices, repeats and missing videos."""

from __future__ import annotations

import logging

import pyarrow as pa
import pytest

from glccl_hf.data.schema import (
    RETRIEVAL_FEATURES_BYTES,
    RETRIEVAL_FEATURES_PATH,
    LoadReport,
    bytes_dataset,
    drop_missing_videos,
    find_duplicate_rows,
    path_dataset,
    video_and_caption_indices,
    with_source_name,
)
from glccl_hf.video import VideoDecodeError


def test_videos_numbered_by_first_appearance_and_captions_counted_per_video() -> None:
    assert video_and_caption_indices(["b", "a", "b", "c", "a", "b"]) == ([0, 1, 0, 2, 1, 0], [0, 0, 1, 0, 1, 2])


def test_duplicate_rows_list_only_the_repeats() -> None:
    assert find_duplicate_rows(["v", "v", "w", "v", "w"], ["x", "y", "x", "x", "x"]) == [3, 4]
    with pytest.raises(ValueError):
        find_duplicate_rows(["v"], ["x", "y"])  # one caption per row


def test_path_and_bytes_datasets_have_the_schema() -> None:
    paths = path_dataset([("/d/a.mp4", "a", "one"), ("/d/b.mp4", "b", "two"), ("/d/a.mp4", "a", "three")])
    assert paths.features == RETRIEVAL_FEATURES_PATH
    assert (paths["video_index"], paths["caption_index"]) == ([0, 1, 0], [0, 0, 1])
    embedded = bytes_dataset(pa.array([b"A", b"A"], pa.large_binary()), ["a", "a"], ["one", "two"])
    assert embedded.features == RETRIEVAL_FEATURES_BYTES
    assert (embedded["video"], embedded["caption_index"]) == ([b"A", b"A"], [0, 1])


def test_drop_records_the_ids_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    report = LoadReport()
    with caplog.at_level(logging.WARNING, logger="glccl_hf.data.schema"):
        drop_missing_videos(["v1"], 2, what="corpus", where="/videos", policy="drop", pattern="files", report=report)
    assert report.missing_videos == ["v1"]
    assert "corpus: dropped 1 of 2 videos whose files are missing from /videos: 'v1'" in caplog.text


@pytest.mark.parametrize(
    "missing, policy, message",
    [
        (["v1"], "error", r"corpus: 1 of 2 videos not found in /videos as files: 'v1' \(to drop them"),
        (["v1", "v2"], "drop", r"2 of 2 videos not found in /videos as files: 'v1', 'v2'$"),
    ],
)
def test_missing_videos_raise_under_error_or_when_none_is_left(missing: list[str], policy: str, message: str) -> None:
    report = LoadReport()
    with pytest.raises(FileNotFoundError, match=message):
        drop_missing_videos(missing, 2, what="corpus", where="/videos", policy=policy, pattern="files", report=report)
    assert report.missing_videos == []


@pytest.mark.parametrize("error", [FileNotFoundError("no such file"), VideoDecodeError("moov atom not found")])
def test_with_source_name_keeps_the_kind_of_error(error: Exception) -> None:
    named = with_source_name(error, "clips/a.mp4")
    assert type(named) is type(error)
    assert str(named) == f"clips/a.mp4: {error}"
    assert with_source_name(named, "clips/a.mp4") is named  # already named: not named twice
