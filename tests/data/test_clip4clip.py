"""The CLIP4Clip layouts (glccl_hf.data.clip4clip) through load_retrieval_dataset: MSR-VTT, DiDeMo and VATEX folders,
and finding their videos by id (the folders are written by tests/data/conftest.py)."""

from __future__ import annotations

import csv
import logging
import os
import shutil
from pathlib import Path

import pytest
from dataset_files import rows, touch, vatex_captions, write_csv, write_json

from glccl_hf.data import detect_layout, load_retrieval_dataset
from glccl_hf.data.loaders import RETRIEVAL_FEATURES_PATH

# ------------------------------------------------------------------------------------------------------------ MSR-VTT


def test_msrvtt_test_split(msrvtt: Path) -> None:
    assert detect_layout(msrvtt) == "msrvtt"
    ds = load_retrieval_dataset(msrvtt, "test")
    assert ds.features == RETRIEVAL_FEATURES_PATH
    videos = msrvtt / "videos"
    assert rows(ds) == [
        (str(videos / "video7020.mp4"), "video7020", "a man plays guitar", 0, 0),
        (str(videos / "video7021.mkv"), "video7021", "a dog runs on the beach", 1, 0),
    ]


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


def real_msrvtt_csv(shared_data: Path, tmp_path: Path, name: str) -> tuple[Path, list[str]]:
    """A folder holding a copy of one of the real MSR-VTT csv files, and the video ids it lists in order."""
    root = tmp_path / "msrvtt"
    root.mkdir()
    shutil.copy(shared_data / "msrvtt" / name, root)
    with open(root / name, encoding="utf-8") as f:
        return root, [row["video_id"] for row in csv.DictReader(f)]


def test_msrvtt_real_1k_a_test_split(shared_data: Path, tmp_path: Path) -> None:
    root, ids = real_msrvtt_csv(shared_data, tmp_path, "MSRVTT_JSFUSION_test.csv")
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
    root, ids = real_msrvtt_csv(shared_data, tmp_path, "MSRVTT_train.9k.csv")
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


def test_csv_row_with_surplus_fields(msrvtt: Path) -> None:
    (msrvtt / "MSRVTT_JSFUSION_test.csv").write_text(
        "key,vid_key,video_id,sentence\nr0,m,video7020,a,b\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"MSRVTT_JSFUSION_test\.csv: data row 1 has more fields than the header"):
        load_retrieval_dataset(msrvtt, "test")


# ------------------------------------------------------------------------------------------------- videos found by id


def test_missing_videos_error_lists_ids(msrvtt: Path) -> None:
    (msrvtt / "videos" / "video7021.mkv").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 of 2 videos not found in .*videos.*'video7021'.*missing_videos='drop'"
    ):
        load_retrieval_dataset(msrvtt, "test")


def test_missing_videos_drop_logs_count(msrvtt: Path, caplog: pytest.LogCaptureFixture) -> None:
    (msrvtt / "videos" / "video1.webm").unlink()
    with caplog.at_level(logging.WARNING, logger="glccl_hf.data.schema"):
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


def test_ambiguous_video_file_is_an_error(msrvtt: Path) -> None:
    touch(msrvtt / "videos", "a/video7020.mp4")
    with pytest.raises(ValueError, match=r"video 'video7020' is ambiguous, 2 files named 'video7020\.mp4'"):
        load_retrieval_dataset(msrvtt, "test")


def test_extension_priority_mp4_first(msrvtt: Path) -> None:
    touch(msrvtt / "videos", "video7021.mp4")
    ds = load_retrieval_dataset(msrvtt, "test")
    assert ds["video"][1] == str(msrvtt / "videos" / "video7021.mp4")


# ------------------------------------------------------------------------------------------------------------- DiDeMo


def test_didemo_paragraph_per_video(didemo: Path) -> None:
    assert detect_layout(didemo) == "didemo"
    ds = load_retrieval_dataset(didemo, "train")
    assert rows(ds) == [
        (str(didemo / "videos" / "a@N00_1_aa.mov"), "a@N00_1_aa.mov", "a girl waves. she smiles", 0, 0),
        (str(didemo / "videos" / "b@N01_2_bb.mp4"), "b@N01_2_bb.avi", "the camera pans", 1, 0),
    ]
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


# -------------------------------------------------------------------------------------------------------------- VATEX


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
