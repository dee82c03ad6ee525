"""Any `datasets` corpus (glccl_hf.data.datasets_corpus) through load_retrieval_dataset: videofolders, csv/json/
parquet files with path columns, embedded bytes and webdataset shards."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets
import pandas as pd
import pytest
from dataset_files import rows, touch

from glccl_hf.data import detect_layout, load_retrieval_dataset
from glccl_hf.data.loaders import RETRIEVAL_FEATURES_BYTES, RETRIEVAL_FEATURES_PATH


def videofolder(root: Path, split: str, rows: list[dict], fmt: str = "csv") -> Path:
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    else:
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def test_videofolder_metadata_csv(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    videofolder(
        root,
        "train",
        [
            {"file_name": "v0.mp4", "video_id": "v0", "caption": "first"},
            {"file_name": "v0.mp4", "video_id": "v0", "caption": "second"},
            {"file_name": "v1.mp4", "video_id": "v1", "caption": "third"},
        ],
    )
    videofolder(root, "test", [{"file_name": "v2.mp4", "video_id": "v2", "caption": "fourth"}])
    touch(root / "train", "v0.mp4", "v1.mp4")
    touch(root / "test", "v2.mp4")
    assert detect_layout(root) == "datasets"
    ds = load_retrieval_dataset(root, "train")
    assert ds.features == RETRIEVAL_FEATURES_PATH
    v0, v1 = str(root / "train" / "v0.mp4"), str(root / "train" / "v1.mp4")
    assert rows(ds) == [(v0, "v0", "first", 0, 0), (v0, "v0", "second", 0, 1), (v1, "v1", "third", 1, 0)]
    assert load_retrieval_dataset(root, "test")["video_id"] == ["v2"]


def test_videofolder_metadata_jsonl_caption_lists_and_ids_from_paths(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    videofolder(
        root,
        "test",
        [
            {"file_name": "clips/a.mp4", "sentences": ["a1", "a2", "a3"]},
            {"file_name": "clips/b.webm", "sentences": ["b1"]},
        ],
        fmt="jsonl",
    )
    touch(root / "test", "clips/a.mp4", "clips/b.webm")
    ds = load_retrieval_dataset(root, "test")
    assert ds["caption"] == ["a1", "a2", "a3", "b1"]
    assert ds["video_id"] == ["test/clips/a"] * 3 + ["test/clips/b"]  # relative path without extension
    assert ds["video_index"] == [0, 0, 0, 1]
    assert ds["caption_index"] == [0, 1, 2, 0]


def test_videofolder_column_mapping(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    videofolder(root, "test", [{"file_name": "a.mp4", "clip_name": "A", "title": "t", "desc": "the caption"}])
    touch(root / "test", "a.mp4")
    ds = load_retrieval_dataset(root, "test", caption_column="desc", video_id_column="clip_name")
    assert (ds[0]["video_id"], ds[0]["caption"]) == ("A", "the caption")
    with pytest.raises(ValueError, match=r"caption_column='nope' is not a column \(columns: \["):
        load_retrieval_dataset(root, "test", caption_column="nope")


def test_corpus_without_caption_column(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    videofolder(root, "test", [{"file_name": "a.mp4", "title": "t"}])
    touch(root / "test", "a.mp4")
    with pytest.raises(ValueError, match=r"no caption column found .*pass caption_column="):
        load_retrieval_dataset(root, "test")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "file:///etc/passwd"])
def test_videofolder_metadata_escape_refused(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "corpus"
    videofolder(root, "test", [{"file_name": "a.mp4", "caption": "ok"}, {"file_name": bad, "caption": "bad"}])
    touch(root / "test", "a.mp4")
    meta = root / "test" / "metadata.csv"
    with pytest.raises(ValueError, match=rf"{meta}: file_name '{bad}' points outside the dataset folder"):
        load_retrieval_dataset(root, "test")


def test_parquet_path_column_relative_to_videos_dir(tmp_path: Path) -> None:
    ann, videos = tmp_path / "annotations", tmp_path / "media"
    ann.mkdir()
    touch(videos, "x/a.mp4", "x/b.mp4")
    pd.DataFrame(
        {"clip": ["x/a.mp4", "x/b.mp4", "x/a.mp4"], "text": ["ta", "tb", "ta2"], "vid": ["A", "B", "A"]}
    ).to_parquet(ann / "test.parquet")
    pd.DataFrame({"clip": ["x/b.mp4"], "text": ["tb"], "vid": ["B"]}).to_parquet(ann / "train.parquet")
    ds = load_retrieval_dataset(
        ann, "test", videos_dir=videos, video_column="clip", caption_column="text", video_id_column="vid"
    )
    a, b = str(videos / "x" / "a.mp4"), str(videos / "x" / "b.mp4")
    assert rows(ds) == [(a, "A", "ta", 0, 0), (b, "B", "tb", 1, 0), (a, "A", "ta2", 0, 1)]


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd"])
def test_path_column_escape_refused(tmp_path: Path, bad: str) -> None:
    ann = tmp_path / "annotations"
    ann.mkdir()
    touch(ann, "videos/a.mp4")
    pd.DataFrame({"video": ["videos/a.mp4", bad], "caption": ["a", "b"]}).to_json(
        ann / "test.jsonl", orient="records", lines=True
    )
    with pytest.raises(ValueError, match=rf"row 1 video path '{bad}' points outside the dataset root {ann}"):
        load_retrieval_dataset(ann, "test")


def test_json_path_column_missing_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ann = tmp_path / "annotations"
    ann.mkdir()
    touch(ann, "videos/a.mp4")
    pd.DataFrame({"video": ["videos/a.mp4", "videos/gone.mp4"], "caption": ["a", "b"]}).to_json(
        ann / "test.jsonl", orient="records", lines=True
    )
    with pytest.raises(FileNotFoundError, match=r"1 of 2 videos not found .*'videos/gone'"):
        load_retrieval_dataset(ann, "test")
    with caplog.at_level(logging.WARNING, logger="glccl_hf.data.schema"):
        ds = load_retrieval_dataset(ann, "test", missing_videos="drop")
    assert ds["video_id"] == ["videos/a"]
    assert "dropped 1 of 2 videos" in caplog.text


def test_embedded_video_bytes(tmp_path: Path) -> None:
    ann = tmp_path / "embedded"
    ann.mkdir()
    clips = {"v0.mp4": b"\x00\x00\x00\x18ftypmp42-zero", "v1.mp4": b"\x00\x00\x00\x18ftypmp42-one"}
    source = datasets.Dataset.from_dict(
        {
            "video": [{"bytes": data, "path": name} for name, data in clips.items()],
            "caption": [["c0", "c0 again"], ["c1"]],
        }
    ).cast_column("video", datasets.Video(decode=False))
    source.to_parquet(ann / "test.parquet")
    ds = load_retrieval_dataset(ann, "test")
    assert ds.features == RETRIEVAL_FEATURES_BYTES
    assert ds["video"] == [clips["v0.mp4"], clips["v0.mp4"], clips["v1.mp4"]]
    assert ds["video_id"] == ["v0", "v0", "v1"]
    assert ds["video_index"] == [0, 0, 1]


def test_webdataset_shards(tmp_path: Path) -> None:
    import io
    import tarfile

    root = tmp_path / "wds"
    root.mkdir()
    with tarfile.open(root / "test-000000.tar", "w") as tar:
        for key, data, text in (("clips/video7", b"fake-mp4-7", "seven"), ("clips/video8", b"fake-mp4-8", "eight")):
            for ext, payload in (("mp4", data), ("txt", text.encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    ds = load_retrieval_dataset(root, "test")
    assert ds["video"] == [b"fake-mp4-7", b"fake-mp4-8"]
    assert ds["video_id"] == ["clips/video7", "clips/video8"]
    assert ds["caption"] == ["seven", "eight"]


def test_video_feature_with_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ann, videos = tmp_path / "ann", tmp_path / "videos"
    ann.mkdir()
    touch(videos, "a.mp4")
    monkeypatch.chdir(videos)  # to_parquet stats the file behind a relative path; loading must not use the cwd
    datasets.Dataset.from_dict({"video": [{"path": "a.mp4", "bytes": None}], "caption": ["c"]}).cast_column(
        "video", datasets.Video(decode=False)
    ).to_parquet(ann / "test.parquet")
    monkeypatch.chdir(tmp_path)
    ds = load_retrieval_dataset(ann, "test", videos_dir=videos)
    assert ds["video"] == [str(videos / "a.mp4")]
    assert ds["video_id"] == ["a"]
