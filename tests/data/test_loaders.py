"""load_retrieval_dataset on every supported layout, written into tmp_path (videos are empty files: only paths are
checked here; decoding is tested with the collator)."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from pathlib import Path

import datasets
import pandas as pd
import pytest

from glccl_hf.data import detect_layout, load_retrieval_dataset
from glccl_hf.data.loaders import RETRIEVAL_FEATURES_BYTES, RETRIEVAL_FEATURES_PATH

COLUMNS = ["video", "video_id", "caption", "video_index", "caption_index"]


def touch(folder: Path, *names: str) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def columns(ds: datasets.Dataset) -> dict[str, list]:
    return {c: ds[c] for c in COLUMNS}


# ---------------------------------------------------------------------------------------------------- MSR-VTT


@pytest.fixture
def msrvtt(tmp_path: Path) -> Path:
    root = tmp_path / "msrvtt"
    root.mkdir()
    write_csv(
        root / "MSRVTT_JSFUSION_test.csv",
        ["key", "vid_key", "video_id", "sentence"],
        [
            ["ret0", "msr7020", "video7020", "a man plays guitar"],
            ["ret1", "msr7021", "video7021", "a dog runs on the beach"],
        ],
    )
    write_csv(root / "MSRVTT_train.9k.csv", ["video_id"], [["video0"], ["video1"]])
    write_csv(root / "MSRVTT_train.7k.csv", ["video_id"], [["video1"]])
    sentences = [
        {"video_id": "video1", "caption": "cats sleep", "sen_id": 0},
        {"video_id": "video0", "caption": "a car drives", "sen_id": 1},
        {"video_id": "video7020", "caption": "a test caption that is not in train", "sen_id": 2},
        {"video_id": "video1", "caption": "a cat is sleeping", "sen_id": 3},
        {"video_id": "video0", "caption": "a red car", "sen_id": 4},
    ]
    videos = [
        {"video_id": f"video{i}", "url": f"https://www.youtube.com/watch?v=x{i}", "split": "train"}
        for i in (0, 1, 7020, 7021)
    ]
    write_json(root / "MSRVTT_data.json", {"info": {}, "videos": videos, "sentences": sentences})
    touch(root / "videos", "video0.mp4", "video1.webm", "video7020.mp4", "video7021.mkv")
    return root


def test_msrvtt_test_split(msrvtt: Path) -> None:
    assert detect_layout(msrvtt) == "msrvtt"
    ds = load_retrieval_dataset(msrvtt, "test")
    assert ds.features == RETRIEVAL_FEATURES_PATH
    assert columns(ds) == {
        "video": [str(msrvtt / "videos" / "video7020.mp4"), str(msrvtt / "videos" / "video7021.mkv")],
        "video_id": ["video7020", "video7021"],
        "caption": ["a man plays guitar", "a dog runs on the beach"],
        "video_index": [0, 1],
        "caption_index": [0, 0],
    }


def test_msrvtt_caption_column_named_sentences(msrvtt: Path) -> None:
    write_csv(
        msrvtt / "MSRVTT_JSFUSION_test.csv",
        ["key", "vid_key", "video_id", "sentences"],
        [["ret0", "msr7021", "video7021", "plural column name"]],
    )
    ds = load_retrieval_dataset(msrvtt, "test")
    assert ds["caption"] == ["plural column name"]
    assert ds["video_id"] == ["video7021"]


def test_msrvtt_test_csv_without_caption_column(msrvtt: Path) -> None:
    csv_path = msrvtt / "MSRVTT_JSFUSION_test.csv"
    write_csv(csv_path, ["key", "vid_key", "video_id", "text"], [["ret0", "msr7021", "video7021", "x"]])
    with pytest.raises(ValueError, match=r"MSRVTT_JSFUSION_test\.csv: no caption column.*'sentence', 'sentences'"):
        load_retrieval_dataset(msrvtt, "test")


def test_msrvtt_train_split_one_row_per_caption(msrvtt: Path) -> None:
    ds = load_retrieval_dataset(msrvtt, "train", videos_dir=msrvtt / "videos")
    # Reference order: the json's sentence order, restricted to the training ids.
    assert ds["video_id"] == ["video1", "video0", "video1", "video0"]
    assert ds["caption"] == ["cats sleep", "a car drives", "a cat is sleeping", "a red car"]
    assert ds["video_index"] == [0, 1, 0, 1]
    assert ds["caption_index"] == [0, 0, 1, 1]
    assert ds["video"][0].endswith(os.path.join("videos", "video1.webm"))


def test_msrvtt_train_7k_by_option(msrvtt: Path) -> None:
    ds = load_retrieval_dataset(msrvtt, "train", train_csv="MSRVTT_train.7k.csv")
    assert ds["caption"] == ["cats sleep", "a cat is sleeping"]


def test_msrvtt_missing_9k_csv_suggests_7k(msrvtt: Path) -> None:
    (msrvtt / "MSRVTT_train.9k.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"MSRVTT_train\.9k\.csv.*train_csv='MSRVTT_train\.7k\.csv'"):
        load_retrieval_dataset(msrvtt, "train")


def test_msrvtt_train_id_without_caption_is_an_error(msrvtt: Path) -> None:
    write_csv(msrvtt / "MSRVTT_train.9k.csv", ["video_id"], [["video0"], ["video9999"]])
    with pytest.raises(ValueError, match=r"1 video id\(s\) have no caption in .*MSRVTT_data\.json: 'video9999'"):
        load_retrieval_dataset(msrvtt, "train")


def test_msrvtt_unknown_split(msrvtt: Path) -> None:
    with pytest.raises(ValueError, match="splits 'train' and 'test', not 'val'"):
        load_retrieval_dataset(msrvtt, "val")


def test_msrvtt_train_csv_outside_folder_refused(msrvtt: Path) -> None:
    with pytest.raises(ValueError, match=r"train_csv='\.\./elsewhere\.csv' points outside the dataset folder"):
        load_retrieval_dataset(msrvtt, "train", train_csv="../elsewhere.csv")


def test_msrvtt_real_1k_a_test_split(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "msrvtt"
    root.mkdir()
    shutil.copy(shared_data / "msrvtt" / "MSRVTT_JSFUSION_test.csv", root)
    with open(root / "MSRVTT_JSFUSION_test.csv", encoding="utf-8") as f:
        ids = [row["video_id"] for row in csv.DictReader(f)]
    touch(root / "videos", *(f"{vid}.mp4" for vid in ids))
    ds = load_retrieval_dataset(root, "test", videos_dir=root / "videos")
    assert len(ds) == 1000
    assert len(set(ds["video_id"])) == 1000
    assert ds["video_index"] == list(range(1000))
    assert (ds[0]["video_id"], ds[0]["caption"]) == ("video9770", "a person is connecting something to system")
    assert (ds[999]["video_id"], ds[999]["caption"]) == (
        "video9871",
        "bearded guy in grey tshirt talking to the camera",
    )
    assert ds[0]["video"] == str(root / "videos" / "video9770.mp4")


def test_msrvtt_real_9k_train_ids(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "msrvtt"
    root.mkdir()
    shutil.copy(shared_data / "msrvtt" / "MSRVTT_train.9k.csv", root)
    with open(root / "MSRVTT_train.9k.csv", encoding="utf-8") as f:
        ids = [row["video_id"] for row in csv.DictReader(f)]
    assert len(ids) == 9000
    # The real MSRVTT_data.json is not shipped: two captions per training video stand in for its 20.
    sentences = [{"video_id": vid, "caption": f"caption {k} of {vid}"} for k in range(2) for vid in ids]
    write_json(root / "MSRVTT_data.json", {"videos": [], "sentences": sentences})
    touch(root / "videos", *(f"{vid}.mp4" for vid in ids))
    ds = load_retrieval_dataset(root, "train")
    assert len(ds) == 18000
    assert max(ds["video_index"]) == 8999
    assert ds[9000] == {
        "video": str(root / "videos" / f"{ids[0]}.mp4"),
        "video_id": ids[0],
        "caption": f"caption 1 of {ids[0]}",
        "video_index": 0,
        "caption_index": 1,
    }


# ---------------------------------------------------------------------------------------------------- missing videos


def test_missing_videos_error_lists_ids(msrvtt: Path) -> None:
    (msrvtt / "videos" / "video7021.mkv").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 of 2 videos not found in .*videos.*'video7021'.*missing_videos='drop'"
    ):
        load_retrieval_dataset(msrvtt, "test")


def test_missing_videos_drop_logs_count(msrvtt: Path, caplog: pytest.LogCaptureFixture) -> None:
    (msrvtt / "videos" / "video1.webm").unlink()
    with caplog.at_level(logging.WARNING, logger="glccl_hf.data.loaders"):
        ds = load_retrieval_dataset(msrvtt, "train", missing_videos="drop")
    assert ds["video_id"] == ["video0", "video0"]
    assert ds["video_index"] == [0, 0]  # renumbered after the drop
    assert ds["caption_index"] == [0, 1]
    assert "dropped 1 of 2 videos" in caplog.text and "'video1'" in caplog.text


def test_missing_every_video_is_an_error_even_with_drop(msrvtt: Path) -> None:
    shutil.rmtree(msrvtt / "videos")
    (msrvtt / "videos").mkdir()
    with pytest.raises(FileNotFoundError, match="2 of 2 videos not found"):
        load_retrieval_dataset(msrvtt, "test", missing_videos="drop")


def test_missing_videos_dir(msrvtt: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"videos_dir .*nowhere does not exist"):
        load_retrieval_dataset(msrvtt, "test", videos_dir=msrvtt / "nowhere")


def test_bad_missing_videos_value(msrvtt: Path) -> None:
    with pytest.raises(ValueError, match="missing_videos='ignore'"):
        load_retrieval_dataset(msrvtt, "test", missing_videos="ignore")


def test_ambiguous_video_file_is_an_error(msrvtt: Path) -> None:
    touch(msrvtt / "videos", "a/video7020.mp4")
    with pytest.raises(ValueError, match=r"video 'video7020' is ambiguous, 2 files named 'video7020\.mp4'"):
        load_retrieval_dataset(msrvtt, "test")


def test_extension_priority_mp4_first(msrvtt: Path) -> None:
    touch(msrvtt / "videos", "video7021.mp4")
    ds = load_retrieval_dataset(msrvtt, "test")
    assert ds["video"][1] == str(msrvtt / "videos" / "video7021.mp4")


# ---------------------------------------------------------------------------------------------------- DiDeMo


@pytest.fixture
def didemo(tmp_path: Path) -> Path:
    root = tmp_path / "didemo"
    for split, videos in (("train", ["a@N00_1_aa.mov", "b@N01_2_bb.avi"]), ("test", ["c@N02_3_cc.mp4"])):
        (root).mkdir(exist_ok=True)
        (root / f"{split}_list.txt").write_text("\n".join(videos) + "\n", encoding="utf-8")
    items = [
        {"video": "a@N00_1_aa.mov", "description": "a girl waves. ", "times": [[0, 0], [0, 1]], "annotation_id": 1},
        {"video": "b@N01_2_bb.avi", "description": "the camera pans", "times": [[2, 3]], "annotation_id": 2},
        {"video": "a@N00_1_aa.mov", "description": "she smiles", "times": [[4, 4]], "annotation_id": 3},
        {"video": "zzz.mov", "description": "not in the list", "times": [[0, 0]], "annotation_id": 4},
    ]
    write_json(root / "train_data.json", items)
    write_json(root / "test_data.json", [{"video": "c@N02_3_cc.mp4", "description": "a bird", "times": [[0, 0]]}])
    # As stored: original name, re-encoded under the stem, and in a subfolder.
    touch(root / "videos", "a@N00_1_aa.mov", "b@N01_2_bb.mp4", "sub/c@N02_3_cc.mp4")
    return root


def test_didemo_paragraph_per_video(didemo: Path) -> None:
    assert detect_layout(didemo) == "didemo"
    ds = load_retrieval_dataset(didemo, "train")
    assert columns(ds) == {
        "video": [str(didemo / "videos" / "a@N00_1_aa.mov"), str(didemo / "videos" / "b@N01_2_bb.mp4")],
        "video_id": ["a@N00_1_aa.mov", "b@N01_2_bb.avi"],
        "caption": ["a girl waves. she smiles", "the camera pans"],
        "video_index": [0, 1],
        "caption_index": [0, 0],
    }
    test = load_retrieval_dataset(didemo, "test")
    assert test["video"] == [str(didemo / "videos" / "sub" / "c@N02_3_cc.mp4")]


def test_didemo_listed_video_without_description(didemo: Path) -> None:
    (didemo / "test_list.txt").write_text("c@N02_3_cc.mp4\nd_nodesc.mp4\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"test_list\.txt: 1 video id\(s\) have no caption .*'d_nodesc\.mp4'"):
        load_retrieval_dataset(didemo, "test")


def test_didemo_missing_split_files(didemo: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"DiDeMo split 'val' needs val_list\.txt.*\['test', 'train'\]"):
        load_retrieval_dataset(didemo, "val")


def test_didemo_bad_json(didemo: Path) -> None:
    (didemo / "train_data.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train_data\.json: not valid JSON"):
        load_retrieval_dataset(didemo, "train")


# ---------------------------------------------------------------------------------------------------- VATEX


def vatex_captions(vid: str) -> list[str]:
    return [f"{vid} english caption {k}" for k in range(10)]


@pytest.fixture
def vatex(tmp_path: Path) -> Path:
    root = tmp_path / "vatex"
    root.mkdir()
    train, test = ["trA_000001_000011", "trB_000002_000012"], ["teA_000003_000013", "teB_000004_000014"]
    (root / "train_list.txt").write_text("\n".join(train), encoding="utf-8")
    (root / "test_list.txt").write_text("\n".join(test), encoding="utf-8")
    write_json(
        root / "vatex_data.json", {vid: {"enCap": vatex_captions(vid), "chCap": ["中文"] * 10} for vid in train + test}
    )
    touch(root / "videos", *(f"{vid}.mp4" for vid in train + test))
    return root


def test_vatex_multi_caption_test_split(vatex: Path) -> None:
    assert detect_layout(vatex) == "vatex"
    ds = load_retrieval_dataset(vatex, "test")
    assert len(ds) == 20
    assert ds["video_id"] == ["teA_000003_000013"] * 10 + ["teB_000004_000014"] * 10
    assert ds["caption"] == vatex_captions("teA_000003_000013") + vatex_captions("teB_000004_000014")
    assert ds["video_index"] == [0] * 10 + [1] * 10
    assert ds["caption_index"] == list(range(10)) * 2
    first_rows = ds.filter(lambda r: r["caption_index"] == 0)
    assert first_rows["video_index"] == [0, 1]


def test_vatex_ref_captions_layout_in_subfolder(vatex: Path) -> None:
    (vatex / "vatex_data.json").unlink()
    sub = vatex / "vatex_data"
    sub.mkdir()
    (vatex / "test_list.txt").rename(sub / "test_list.txt")
    write_json(vatex / "ref_captions.json", {"teA_000003_000013": ["one", "two"], "teB_000004_000014": ["three"]})
    ds = load_retrieval_dataset(vatex, "test")
    assert ds["caption"] == ["one", "two", "three"]
    assert ds["video_index"] == [0, 0, 1]


def test_vatex_official_release_json_by_option(vatex: Path) -> None:
    write_json(
        vatex / "vatex_validation_v1.0.json",
        [
            {"videoID": "teA_000003_000013", "enCap": ["x", "y"], "chCap": []},
            {"videoID": "teB_000004_000014", "enCap": ["z"], "chCap": []},
        ],
    )
    ds = load_retrieval_dataset(vatex, "test", caption_file="vatex_validation_v1.0.json")
    assert ds["caption"] == ["x", "y", "z"]


def test_vatex_malformed_captions(vatex: Path) -> None:
    write_json(vatex / "vatex_data.json", {"teA_000003_000013": {"enCap": []}})
    with pytest.raises(ValueError, match=r"vatex_data\.json: captions of 'teA_000003_000013' are not a non-empty"):
        load_retrieval_dataset(vatex, "test")


# ---------------------------------------------------------------------------------------------------- options


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


# ---------------------------------------------------------------------------------------------------- datasets corpora


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
    assert columns(ds) == {
        "video": [str(root / "train" / "v0.mp4")] * 2 + [str(root / "train" / "v1.mp4")],
        "video_id": ["v0", "v0", "v1"],
        "caption": ["first", "second", "third"],
        "video_index": [0, 0, 1],
        "caption_index": [0, 1, 0],
    }
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
    assert columns(ds) == {
        "video": [str(videos / "x" / "a.mp4"), str(videos / "x" / "b.mp4"), str(videos / "x" / "a.mp4")],
        "video_id": ["A", "B", "A"],
        "caption": ["ta", "tb", "ta2"],
        "video_index": [0, 1, 0],
        "caption_index": [0, 0, 1],
    }


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
    with caplog.at_level(logging.WARNING, logger="glccl_hf.data.loaders"):
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


def test_csv_row_with_surplus_fields(msrvtt: Path) -> None:
    (msrvtt / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\nr0,m,video7020,a,b\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"MSRVTT_JSFUSION_test\.csv: data row 1 has more fields than the header"):
        load_retrieval_dataset(msrvtt, "test")


# ------------------------------------------------------------------------------------- what a load reports


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
