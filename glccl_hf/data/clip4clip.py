"""The CLIP4Clip annotation layouts: MSR-VTT, DiDeMo and VATEX folders of csv / json / id-list files.

Each layout's reader turns its annotation files into (video_id, caption) pairs in the reference's order; the video
files are then found by id under ``videos_dir`` (recursively, trying :data:`VIDEO_EXTENSIONS` in order), and the
pairs become a split in the schema of :mod:`glccl_hf.data.schema`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets

from ..formatting import preview
from .files import file_inside, read_csv, read_json
from .schema import LoadReport, drop_missing_videos, path_dataset

logger = logging.getLogger(__name__)

# Looked up in this order when a video is found by id, so `video1.mp4` wins over `video1.webm`.
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4",
    ".webm",
    ".avi",
    ".mkv",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
    ".ts",
)
CLIP4CLIP_LAYOUTS: tuple[str, ...] = ("msrvtt", "didemo", "vatex")

_MSRVTT_TEST_CSV = "MSRVTT_JSFUSION_test.csv"
_MSRVTT_TRAIN_CSVS = ("MSRVTT_train.9k.csv", "MSRVTT_train.7k.csv")
_MSRVTT_DATA_JSON = "MSRVTT_data.json"
_VATEX_CAPTION_FILES = ("vatex_data.json", "vatex_data/vatex_data.json", "ref_captions.json")


def layouts_found(root: Path) -> list[str]:
    """The CLIP4Clip layouts whose annotation files are in `root` (an empty list for any other folder)."""
    found = []
    if any((root / f).is_file() for f in (_MSRVTT_TEST_CSV, _MSRVTT_DATA_JSON, *_MSRVTT_TRAIN_CSVS)):
        found.append("msrvtt")
    if any((root / f"{s}_data.json").is_file() for s in ("train", "val", "test")):
        found.append("didemo")
    if any((root / f).is_file() for f in _VATEX_CAPTION_FILES):
        found.append("vatex")
    return found


def load_clip4clip(
    root: Path,
    layout: str,
    split: str,
    *,
    videos_dir: Path | None,
    missing_videos: str,
    report: LoadReport,
    train_csv: str | None,
    caption_file: str | None,
) -> datasets.Dataset:
    """One split of a CLIP4Clip-layout folder in the common schema (``load_retrieval_dataset`` documents the options;
    `videos_dir` None: ``<root>/videos``)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: annotation folder for layout {layout!r} does not exist")
    if layout == "msrvtt":
        pairs = _msrvtt_pairs(root, split, train_csv)
    elif layout == "didemo":
        pairs = _didemo_pairs(root, split)
    elif layout == "vatex":
        pairs = _vatex_pairs(root, split, caption_file)
    else:
        raise ValueError(f"layout={layout!r}: expected one of {CLIP4CLIP_LAYOUTS}")
    videos_dir = videos_dir if videos_dir is not None else root / "videos"
    return _pairs_to_dataset(pairs, videos_dir, split, missing_videos, source=str(root), report=report)


# --------------------------------------------------------------------------------------------------------------
# Annotations: each builder returns (video_id, caption) pairs in the reference's order.


def _msrvtt_pairs(root: Path, split: str, train_csv: str | None) -> list[tuple[str, str]]:
    if split == "test":
        path = root / _MSRVTT_TEST_CSV
        rows = read_csv(path)
        caption_col = _first_present(path, rows.fieldnames, ("sentence", "sentences"), "caption")
        _first_present(path, rows.fieldnames, ("video_id",), "video id")
        return [(_cell(path, i, r, "video_id"), _cell(path, i, r, caption_col)) for i, r in enumerate(rows.rows)]
    if split != "train":
        raise ValueError(f"{root}: MSR-VTT (CLIP4Clip layout) has splits 'train' and 'test', not {split!r}")
    csv_path = file_inside(root, train_csv or _MSRVTT_TRAIN_CSVS[0], "train_csv")
    if not csv_path.is_file():
        hint = ""
        if train_csv is None and (root / _MSRVTT_TRAIN_CSVS[1]).is_file():
            hint = f"; {_MSRVTT_TRAIN_CSVS[1]} is present: pass train_csv={_MSRVTT_TRAIN_CSVS[1]!r} to use it"
        raise FileNotFoundError(f"{csv_path}: MSR-VTT training-id csv not found{hint}")
    rows = read_csv(csv_path)
    _first_present(csv_path, rows.fieldnames, ("video_id",), "video id")
    train_ids = _unique(csv_path, [_cell(csv_path, i, r, "video_id") for i, r in enumerate(rows.rows)])
    json_path = root / _MSRVTT_DATA_JSON
    data = read_json(json_path)
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise ValueError(f"{json_path}: expected an object with a 'sentences' list")
    wanted = set(train_ids)
    pairs = []
    for i, item in enumerate(data["sentences"]):
        if not isinstance(item, dict) or not isinstance(item.get("video_id"), str):
            raise ValueError(f"{json_path}: sentences[{i}] has no string 'video_id'")
        if item["video_id"] in wanted:
            pairs.append((item["video_id"], _text(json_path, f"sentences[{i}].caption", item.get("caption"))))
    _require_captions(csv_path, train_ids, {v for v, _ in pairs}, json_path)
    return pairs


def _didemo_pairs(root: Path, split: str) -> list[tuple[str, str]]:
    list_path, json_path = root / f"{split}_list.txt", root / f"{split}_data.json"
    if not list_path.is_file() or not json_path.is_file():
        have = sorted(s for s in ("train", "val", "test") if (root / f"{s}_list.txt").is_file())
        raise FileNotFoundError(
            f"{root}: DiDeMo split {split!r} needs {list_path.name} and {json_path.name}; "
            f"splits with a list file here: {have}"
        )
    video_ids = _read_id_list(list_path)
    data = read_json(json_path)
    if not isinstance(data, list):
        raise ValueError(f"{json_path}: expected a list of {{'video', 'description', ...}} objects")
    wanted = set(video_ids)
    descriptions: dict[str, list[str]] = {}
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("video"), str):
            raise ValueError(f"{json_path}: item {i} has no string 'video'")
        if item["video"] in wanted:
            text = _text(json_path, f"item {i} description", item.get("description"))
            descriptions.setdefault(item["video"], []).append(text.strip())
    _require_captions(list_path, video_ids, set(descriptions), json_path)
    # The reference (CLIP4Clip) retrieves with one paragraph per video: all its descriptions joined, in file order.
    return [(vid, " ".join(descriptions[vid])) for vid in video_ids]


def _vatex_pairs(root: Path, split: str, caption_file: str | None) -> list[tuple[str, str]]:
    list_path = next(
        (p for p in (root / f"{split}_list.txt", root / "vatex_data" / f"{split}_list.txt") if p.is_file()), None
    )
    if list_path is None:
        have = sorted(
            s
            for s in ("train", "val", "test")
            if (root / f"{s}_list.txt").is_file() or (root / "vatex_data" / f"{s}_list.txt").is_file()
        )
        raise FileNotFoundError(
            f"{root}: VATEX split {split!r} needs {split}_list.txt (here or in vatex_data/); "
            f"splits with a list file here: {have}"
        )
    if caption_file is not None:
        json_path = file_inside(root, caption_file, "caption_file")
    else:
        json_path = next(root / f for f in _VATEX_CAPTION_FILES if (root / f).is_file())
    captions = _vatex_captions(json_path)
    video_ids = _read_id_list(list_path)
    _require_captions(list_path, video_ids, set(captions), json_path)
    return [(vid, cap) for vid in video_ids for cap in captions[vid]]


def _vatex_captions(path: Path) -> dict[str, list[str]]:
    """English captions per video from the three public VATEX caption files.

    ``{id: {"enCap": [...], "chCap": [...]}}`` (vatex_data.json), ``{id: [...]}`` (ref_captions.json) and the
    official release's ``[{"videoID": id, "enCap": [...]}, ...]``.
    """
    data = read_json(path)
    if isinstance(data, list):
        items = []
        for i, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("videoID"), str) or "enCap" not in item:
                raise ValueError(f"{path}: item {i} is not a {{'videoID', 'enCap'}} object")
            items.append((item["videoID"], item["enCap"]))
    elif isinstance(data, dict):
        items = [(vid, val["enCap"] if isinstance(val, dict) and "enCap" in val else val) for vid, val in data.items()]
    else:
        raise ValueError(f"{path}: expected a JSON object or list of VATEX captions")
    out: dict[str, list[str]] = {}
    for vid, caps in items:
        if isinstance(caps, str):
            caps = [caps]
        if not isinstance(caps, list) or not caps:
            raise ValueError(f"{path}: captions of {vid!r} are not a non-empty list of strings (or {{'enCap': ...}})")
        out[vid] = [_text(path, f"caption of {vid!r}", c) for c in caps]
    return out


def _read_id_list(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        ids = [line.strip() for line in f]
    return _unique(path, [i for i in ids if i])


def _unique(path: Path, ids: list[str]) -> list[str]:
    # A repeated id would make two rows of one video look like two videos: drop the repeats, loudly.
    seen: dict[str, None] = dict.fromkeys(ids)
    if len(seen) != len(ids):
        logger.warning("%s: %d repeated video id(s) ignored", path, len(ids) - len(seen))
    return list(seen)


def _first_present(path: Path, columns: Sequence[str], candidates: Sequence[str], what: str) -> str:
    for c in candidates:
        if c in columns:
            return c
    raise ValueError(f"{path}: no {what} column (looked for {list(candidates)}; columns are {list(columns)})")


def _cell(path: Path, i: int, row: Mapping[str, str | None], column: str) -> str:
    value = row.get(column)
    if value is None or not value.strip():
        raise ValueError(f"{path}: data row {i + 1} has an empty {column!r}")
    return value.strip()


def _text(path: Path, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: {where} is not a non-empty string: {value!r}")
    return value


def _require_captions(list_path: Path, video_ids: Iterable[str], captioned: set[str], caption_path: Path) -> None:
    missing = [v for v in video_ids if v not in captioned]
    if missing:
        raise ValueError(
            f"{list_path}: {len(missing)} video id(s) have no caption in {caption_path}: {preview(missing)}"
        )


# --------------------------------------------------------------------------------------------------------------
# Video files by id.


class _VideoIndex:
    """The video files under a folder (recursively), looked up by file name or by id plus a known extension."""

    def __init__(self, videos_dir: Path):
        self.videos_dir = videos_dir
        self.by_name: dict[str, list[str]] = {}
        for dirpath, dirnames, filenames in os.walk(videos_dir, followlinks=True):
            dirnames.sort()
            for name in filenames:
                self.by_name.setdefault(name, []).append(os.path.join(os.path.abspath(dirpath), name))

    def find(self, video_id: str) -> str | None:
        names = [video_id] + [video_id + ext for ext in VIDEO_EXTENSIONS]
        stem, ext = os.path.splitext(video_id)
        if ext.lower() in VIDEO_EXTENSIONS:
            # DiDeMo ids carry the original extension (x.mov); re-encoded copies keep the stem (x.mp4).
            names += [stem + e for e in VIDEO_EXTENSIONS]
        for name in names:
            hits = self.by_name.get(name)
            if hits is None:
                continue
            if len(hits) > 1:
                raise ValueError(
                    f"{self.videos_dir}: video {video_id!r} is ambiguous, {len(hits)} files named "
                    f"{name!r}: {preview(hits)}"
                )
            return hits[0]
        return None


def _pairs_to_dataset(
    pairs: list[tuple[str, str]], videos_dir: Path, split: str, missing_videos: str, source: str, report: LoadReport
) -> datasets.Dataset:
    if not pairs:
        raise ValueError(f"{source}: split {split!r} has no captions")
    if not videos_dir.is_dir():
        raise FileNotFoundError(
            f"videos_dir {videos_dir} does not exist (the {source} annotations' videos are "
            f"looked up there by id; pass videos_dir=)"
        )
    index = _VideoIndex(videos_dir)
    paths: dict[str, str | None] = {}
    for vid, _ in pairs:
        if vid not in paths:
            paths[vid] = index.find(vid)
    missing = [v for v, p in paths.items() if p is None]
    if missing:
        drop_missing_videos(
            missing,
            len(paths),
            what=f"{source} split {split!r}",
            where=videos_dir,
            policy=missing_videos,
            pattern=f"<video_id> or <video_id>{{{','.join(VIDEO_EXTENSIONS)}}}",
            report=report,
        )
        lost = set(missing)
        pairs = [p for p in pairs if p[0] not in lost]
    return path_dataset([(paths[v], v, c) for v, c in pairs])
