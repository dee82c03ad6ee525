"""load_retrieval_dataset itself: its options, layout detection, and what a load reports (duplicates, drops)."""

from __future__ import annotations

import logging
from pathlib import Path

import datasets
import pytest
from dataset_files import write_csv, write_json

from glccl_hf.data import load_retrieval_dataset

# ------------------------------------------------------------------------------------------------------------ options


def test_layout_option_checks(vatex: Path, msrvtt: Path) -> None:
    with pytest.raises(ValueError, match=r"option\(s\) \['train_csv'\] do not apply to layout 'vatex'"):
        load_retrieval_dataset(vatex, "test", train_csv="x.csv")
    with pytest.raises(ValueError, match=r"option\(s\) \['video_column'\] do not apply to layout 'msrvtt'"):
        load_retrieval_dataset(msrvtt, "test", video_column="video")
    with pytest.raises(ValueError, match="layout='youcook'"):
        load_retrieval_dataset(msrvtt, "test", layout="youcook")


def test_several_layouts_need_layout_option(msrvtt: Path) -> None:
    write_json(msrvtt / "vatex_data.json", {})
    with pytest.raises(ValueError, match=r"several layouts \['msrvtt', 'vatex'\]; pass layout="):
        load_retrieval_dataset(msrvtt, "test")
    assert len(load_retrieval_dataset(msrvtt, "test", layout="msrvtt")) == 2


def test_bad_missing_videos_value(msrvtt: Path) -> None:
    with pytest.raises(ValueError, match="missing_videos='ignore'"):
        load_retrieval_dataset(msrvtt, "test", missing_videos="ignore")


# ------------------------------------------------------------------------------------------------ what a load reports


def test_duplicate_rows_are_warned_about_and_reported(msrvtt: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        ["ret0", "msr7020", "video7020", "a man plays guitar"],
        ["ret1", "msr7021", "video7021", "a dog runs on the beach"],
        ["ret2", "msr7020", "video7020", "a man plays guitar"],  # the first row again
        ["ret3", "msr7020", "video7020", "a man plays a guitar"],  # another caption: not a duplicate
    ]
    write_csv(msrvtt / "MSRVTT_JSFUSION_test.csv", ["key", "vid_key", "video_id", "sentence"], rows)
    with caplog.at_level(logging.WARNING, logger="glccl_hf.data.loaders"):
        ds, report = load_retrieval_dataset(msrvtt, "test", return_report=True)
    assert len(ds) == 4  # kept: the loader serves training too; evaluation drops them
    assert "1 duplicate row" in caplog.text and "('video7020', 'a man plays guitar')" in caplog.text
    assert report.duplicate_rows == [2]
    assert report.duplicates == [("video7020", "a man plays guitar")]
    assert report.missing_videos == []


def test_duplicate_captions_of_embedded_videos(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ann = tmp_path / "embedded"
    ann.mkdir()
    source = datasets.Dataset.from_dict(
        {"video": [{"bytes": b"\x00\x00\x00\x18ftypmp42-zero", "path": "v0.mp4"}], "caption": [["c0", "c0", "c1"]]}
    ).cast_column("video", datasets.Video(decode=False))
    source.to_parquet(ann / "test.parquet")
    with caplog.at_level(logging.WARNING, logger="glccl_hf.data.loaders"):
        _, report = load_retrieval_dataset(ann, "test", return_report=True)
    assert report.duplicates == [("v0", "c0")] and "1 duplicate row" in caplog.text


def test_dropped_missing_videos_are_reported(msrvtt: Path) -> None:
    (msrvtt / "videos" / "video1.webm").unlink()
    ds, report = load_retrieval_dataset(msrvtt, "train", missing_videos="drop", return_report=True)
    assert ds["video_id"] == ["video0", "video0"]
    assert report.missing_videos == ["video1"] and report.duplicates == []
