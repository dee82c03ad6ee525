"""The CLIP4Clip-layout folders (MSR-VTT, DiDeMo, VATEX) that the loader tests read, written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_files import touch, vatex_captions, write_csv, write_json


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
