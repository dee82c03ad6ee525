"""Text-video retrieval datasets in one schema, from the CLIP4Clip annotation layouts or any `datasets` corpus.

Every loader returns a `datasets.Dataset` with one row per (video, caption) pair and these columns:

- ``video``: absolute path of the video file (string), or the encoded file's bytes (binary) when the source
  embeds them. One type per dataset.
- ``video_id``: the dataset's id of the video (string).
- ``caption``: one caption (string). Training splits hold every caption of a video as its own row.
- ``video_index``: int64, the position of the row's video among the split's distinct videos, numbered in order of
  first appearance (0 .. n_videos - 1). Rows of the same video share it, so a score matrix
  [n_captions, n_videos] has the true video of caption row ``i`` at column ``video_index[i]``.
- ``caption_index``: int64, the position of the caption among its video's captions (0 for the first). The rows with
  ``caption_index == 0`` list each video once, in ``video_index`` order: encode videos from those.

Rows that repeat an earlier row exactly (same video, same caption) are kept, with a warning giving their count and
the first of them: a training set may repeat a pair on purpose; evaluation (``glccl_hf.evaluation``) drops them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from ..formatting import preview

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
LAYOUTS: tuple[str, ...] = ("msrvtt", "didemo", "vatex", "datasets")
MISSING_VIDEO_POLICIES: tuple[str, ...] = ("error", "drop")

# Column names tried, in order, when the caller names none (public Hub video-text corpora use all of these).
_VIDEO_COLUMN_CANDIDATES = ("video", "video_path", "path", "file_name", "filename", "video_file", "mp4", "webm")
_CAPTION_COLUMN_CANDIDATES = (
    "caption",
    "captions",
    "sentence",
    "sentences",
    "text",
    "texts",
    "txt",
    "description",
    "enCap",
)
# "id" is left out on purpose: several corpora use it for the caption, not the video.
_VIDEO_ID_COLUMN_CANDIDATES = ("video_id", "videoID", "vid", "__key__")
_METADATA_FILENAMES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")

_MSRVTT_TEST_CSV = "MSRVTT_JSFUSION_test.csv"
_MSRVTT_TRAIN_CSVS = ("MSRVTT_train.9k.csv", "MSRVTT_train.7k.csv")
_MSRVTT_DATA_JSON = "MSRVTT_data.json"
_VATEX_CAPTION_FILES = ("vatex_data.json", "vatex_data/vatex_data.json", "ref_captions.json")

_LAYOUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "msrvtt": ("train_csv",),
    "didemo": (),
    "vatex": ("caption_file",),
    "datasets": (
        "video_column",
        "caption_column",
        "video_id_column",
        "config_name",
        "data_files",
        "revision",
        "cache_dir",
    ),
}

RETRIEVAL_FEATURES_PATH = datasets.Features(
    {
        "video": datasets.Value("string"),
        "video_id": datasets.Value("string"),
        "caption": datasets.Value("string"),
        "video_index": datasets.Value("int64"),
        "caption_index": datasets.Value("int64"),
    }
)
RETRIEVAL_FEATURES_BYTES = datasets.Features({**RETRIEVAL_FEATURES_PATH, "video": datasets.Value("binary")})


@dataclass
class LoadReport:
    """What a load left out or found repeated, for a caller to report beside its results.

    Attributes:
        missing_videos: ids of the videos whose files were absent and whose rows were dropped
            (``missing_videos="drop"``), in order of first appearance.
        duplicate_rows: positions (in the returned dataset) of the rows that repeat an earlier row's video and
            caption exactly; the rows are kept.
        duplicates: ``(video_id, caption)`` of each of those rows.
    """

    missing_videos: list[str] = field(default_factory=list)
    duplicate_rows: list[int] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)


def load_retrieval_dataset(
    name_or_path: str | os.PathLike,
    split: str,
    *,
    layout: str | None = None,
    videos_dir: str | os.PathLike | None = None,
    missing_videos: str = "error",
    train_csv: str | None = None,
    caption_file: str | None = None,
    video_column: str | None = None,
    caption_column: str | None = None,
    video_id_column: str | None = None,
    config_name: str | None = None,
    data_files: Any = None,
    revision: str | None = None,
    cache_dir: str | None = None,
    return_report: bool = False,
) -> datasets.Dataset | tuple[datasets.Dataset, LoadReport]:
    """Load one split of a text-video retrieval corpus in the schema described in this module's docstring.

    Args:
        name_or_path: a folder of CLIP4Clip-layout annotations (MSR-VTT, DiDeMo, VATEX; detected from the file
            names), a local `datasets` folder (videofolder with metadata.csv/jsonl/parquet, or csv/json/parquet data
            files), or a Hugging Face Hub dataset id.
        split: the split name ("train", "test", "val" where the source has it).
        layout: force one of "msrvtt", "didemo", "vatex", "datasets" instead of detecting it.
        videos_dir: CLIP4Clip layouts: the folder searched (recursively) for ``<video_id><ext>``, default
            ``<name_or_path>/videos``. `datasets` corpora: the folder that relative path columns are relative to
            (default: the local folder itself; required for a Hub dataset with a relative path column).
        missing_videos: "error" (default) raises FileNotFoundError listing the ids whose video file is absent;
            "drop" removes their rows and logs how many were dropped.
        train_csv: MSR-VTT only: the training-id csv, default ``MSRVTT_train.9k.csv``.
        caption_file: VATEX only: the caption json, default the first present of ``vatex_data.json``,
            ``vatex_data/vatex_data.json``, ``ref_captions.json``.
        video_column, caption_column, video_id_column: `datasets` corpora: the source columns to use (default:
            detected from common names; the video id falls back to the file path, then to a hash of the bytes).
        config_name, data_files, revision, cache_dir: passed to `datasets.load_dataset` for `datasets` corpora.
        return_report: also return a :class:`LoadReport` (videos dropped as missing, rows repeated exactly).

    Returns:
        The dataset, or ``(dataset, report)`` with ``return_report=True``. Rows that repeat an earlier row's video
        and caption exactly are kept and logged as a warning (count and the first of them).

    Raises:
        ValueError: unknown layout or split, malformed annotations, or a path that points outside the dataset root.
        FileNotFoundError: a missing annotation file, or missing videos with ``missing_videos="error"``.
    """
    if missing_videos not in MISSING_VIDEO_POLICIES:
        raise ValueError(f"missing_videos={missing_videos!r}: expected one of {MISSING_VIDEO_POLICIES}")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: expected one of {LAYOUTS} or None (detect)")
    root = Path(name_or_path)
    if layout is None:
        layout = detect_layout(root)
    options = {
        "train_csv": train_csv,
        "caption_file": caption_file,
        "video_column": video_column,
        "caption_column": caption_column,
        "video_id_column": video_id_column,
        "config_name": config_name,
        "data_files": data_files,
        "revision": revision,
        "cache_dir": cache_dir,
    }
    # An option a layout does not use is refused, so a misplaced or misspelt option never silently has no effect.
    unused = sorted(k for k, v in options.items() if v is not None and k not in _LAYOUT_OPTIONS[layout])
    if unused:
        raise ValueError(f"option(s) {unused} do not apply to layout {layout!r} ({name_or_path})")
    report = LoadReport()
    if layout == "datasets":
        dataset = _load_datasets_corpus(
            str(name_or_path),
            split,
            videos_dir=videos_dir,
            missing_videos=missing_videos,
            report=report,
            **{k: options[k] for k in _LAYOUT_OPTIONS["datasets"]},
        )
    else:
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: annotation folder for layout {layout!r} does not exist")
        if layout == "msrvtt":
            pairs = _msrvtt_pairs(root, split, train_csv)
        elif layout == "didemo":
            pairs = _didemo_pairs(root, split)
        else:
            pairs = _vatex_pairs(root, split, caption_file)
        vdir = Path(videos_dir) if videos_dir is not None else root / "videos"
        dataset = _pairs_to_dataset(pairs, vdir, split, missing_videos, source=str(root), report=report)
    _report_duplicates(dataset, f"{name_or_path} split {split!r}", report)
    return (dataset, report) if return_report else dataset


def find_duplicate_rows(video_keys: Sequence[Any], captions: Sequence[str]) -> list[int]:
    """Rows that repeat an earlier row exactly: the same video and the same caption (compared as written).

    Args:
        video_keys: [rows] the video of each row (its id or index); captions: [rows] each row's caption.

    Returns:
        The positions of the repeats, ascending; the first occurrence of each pair is not listed.
    """
    seen: set[tuple[Any, str]] = set()
    repeats = []
    for row, pair in enumerate(zip(video_keys, captions, strict=True)):
        if pair in seen:
            repeats.append(row)
        seen.add(pair)
    return repeats


def _report_duplicates(dataset: datasets.Dataset, source: str, report: LoadReport) -> None:
    """Record and warn about exact repeats; every source passes here once it is in the common schema."""
    video_ids, captions = dataset["video_id"], dataset["caption"]
    report.duplicate_rows = find_duplicate_rows(video_ids, captions)
    report.duplicates = [(video_ids[row], captions[row]) for row in report.duplicate_rows]
    if report.duplicates:
        logger.warning(
            "%s: %d duplicate row(s) repeat an earlier row's video and caption exactly (kept here; evaluation "
            "drops them unless duplicates='keep'): %s",
            source,
            len(report.duplicates),
            preview(report.duplicates, 5),
        )


def detect_layout(root: str | os.PathLike) -> str:
    """Return "msrvtt", "didemo" or "vatex" for a folder of CLIP4Clip-layout annotations, else "datasets"."""
    root = Path(root)
    if not root.is_dir():
        return "datasets"  # a Hub id, or a path `datasets` will report on
    found = []
    if any((root / f).is_file() for f in (_MSRVTT_TEST_CSV, _MSRVTT_DATA_JSON, *_MSRVTT_TRAIN_CSVS)):
        found.append("msrvtt")
    if any((root / f"{s}_data.json").is_file() for s in ("train", "val", "test")):
        found.append("didemo")
    if any((root / f).is_file() for f in _VATEX_CAPTION_FILES):
        found.append("vatex")
    if len(found) > 1:
        raise ValueError(f"{root}: annotation files of several layouts {found}; pass layout= to choose one")
    return found[0] if found else "datasets"


# --------------------------------------------------------------------------------------------------------------
# CLIP4Clip layouts: each builder returns (video_id, caption) pairs in order; video files are found by id later.


def _msrvtt_pairs(root: Path, split: str, train_csv: str | None) -> list[tuple[str, str]]:
    if split == "test":
        path = root / _MSRVTT_TEST_CSV
        rows = _read_csv(path)
        caption_col = _first_present(path, rows.fieldnames, ("sentence", "sentences"), "caption")
        _first_present(path, rows.fieldnames, ("video_id",), "video id")
        return [(_cell(path, i, r, "video_id"), _cell(path, i, r, caption_col)) for i, r in enumerate(rows.rows)]
    if split != "train":
        raise ValueError(f"{root}: MSR-VTT (CLIP4Clip layout) has splits 'train' and 'test', not {split!r}")
    csv_path = _inside_file(root, train_csv or _MSRVTT_TRAIN_CSVS[0], "train_csv")
    if not csv_path.is_file():
        hint = ""
        if train_csv is None and (root / _MSRVTT_TRAIN_CSVS[1]).is_file():
            hint = f"; {_MSRVTT_TRAIN_CSVS[1]} is present: pass train_csv={_MSRVTT_TRAIN_CSVS[1]!r} to use it"
        raise FileNotFoundError(f"{csv_path}: MSR-VTT training-id csv not found{hint}")
    rows = _read_csv(csv_path)
    _first_present(csv_path, rows.fieldnames, ("video_id",), "video id")
    train_ids = _unique(csv_path, [_cell(csv_path, i, r, "video_id") for i, r in enumerate(rows.rows)])
    json_path = root / _MSRVTT_DATA_JSON
    data = _read_json(json_path)
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
    data = _read_json(json_path)
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
        json_path = _inside_file(root, caption_file, "caption_file")
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
    data = _read_json(path)
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


@dataclass
class _Csv:
    fieldnames: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)


def _read_csv(path: Path) -> _Csv:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation csv not found")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = [c.strip() for c in reader.fieldnames or []]
    for i, row in enumerate(rows):
        if None in row:  # DictReader files surplus fields under the key None
            raise ValueError(f"{path}: data row {i + 1} has more fields than the header {header}")
    return _Csv(header, [{k.strip(): v for k, v in r.items()} for r in rows])


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation json not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


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


def _inside_file(root: Path, name: str, option: str) -> Path:
    path = Path(name) if os.path.isabs(name) else root / name
    if not _is_inside(path, root):
        raise ValueError(f"{option}={name!r} points outside the dataset folder {root}")
    return path


# --------------------------------------------------------------------------------------------------------------
# Video files by id (CLIP4Clip layouts).


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
        _handle_missing(
            missing,
            len(paths),
            f"{source} split {split!r}",
            videos_dir,
            missing_videos,
            f"<video_id> or <video_id>{{{','.join(VIDEO_EXTENSIONS)}}}",
        )
        report.missing_videos = missing
        lost = set(missing)
        pairs = [p for p in pairs if p[0] not in lost]
    return _build_path_dataset([(paths[v], v, c) for v, c in pairs])


def _handle_missing(missing: list[str], total: int, what: str, where: Path | str, policy: str, pattern: str) -> None:
    if policy == "error" or len(missing) == total:
        hint = " (to drop them, pass missing_videos='drop'; on the command line --missing_videos drop)"
        hint = hint if len(missing) < total else ""
        raise FileNotFoundError(
            f"{what}: {len(missing)} of {total} videos not found in {where} as {pattern}: {preview(missing)}{hint}"
        )
    logger.warning(
        "%s: dropped %d of %d videos whose files are missing from %s: %s",
        what,
        len(missing),
        total,
        where,
        preview(missing),
    )



def _indices(video_ids: Sequence[str]) -> tuple[list[int], list[int]]:
    video_index: dict[str, int] = {}
    counts: dict[str, int] = {}
    vi, ci = [], []
    for vid in video_ids:
        vi.append(video_index.setdefault(vid, len(video_index)))
        ci.append(counts.get(vid, 0))
        counts[vid] = ci[-1] + 1
    return vi, ci


def _build_path_dataset(rows: list[tuple[str, str, str]]) -> datasets.Dataset:
    video_ids = [r[1] for r in rows]
    vi, ci = _indices(video_ids)
    return datasets.Dataset.from_dict(
        {
            "video": [r[0] for r in rows],
            "video_id": video_ids,
            "caption": [r[2] for r in rows],
            "video_index": vi,
            "caption_index": ci,
        },
        features=RETRIEVAL_FEATURES_PATH,
    )


# --------------------------------------------------------------------------------------------------------------
# `datasets` corpora: a Hub id or a local folder.


def _is_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    # Lexical check (no symlink resolution): a dataset may keep its videos behind a symlink inside its folder.
    path, root = os.path.abspath(path), os.path.abspath(root)
    return os.path.commonpath([path, root]) == root


def check_metadata_paths(root: str | os.PathLike) -> None:
    """Refuse a videofolder whose metadata files name a file outside the metadata file's folder.

    Raises ValueError naming the metadata file and the offending path (absolute, ``..`` escape, or URL).
    """
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(set(filenames) & set(_METADATA_FILENAMES)):
            meta = Path(dirpath) / name
            for column, value in _metadata_file_names(meta):
                if "://" in value or os.path.isabs(value) or not _is_inside(Path(dirpath) / value, dirpath):
                    raise ValueError(f"{meta}: {column} {value!r} points outside the dataset folder {dirpath}")


def _metadata_file_names(meta: Path) -> Iterable[tuple[str, str]]:
    """(column, value) for every file name a videofolder metadata file lists."""
    if meta.suffix == ".csv":
        # Read as text (a file name like "001" must stay "001"), the way videofolder reads it.
        rows = _read_csv(meta)
        columns, records = rows.fieldnames, rows.rows
    else:
        table = pajson.read_json(meta) if meta.suffix == ".jsonl" else pq.read_table(meta)
        columns, records = table.column_names, table.to_pylist()
    wanted = [c for c in columns if c == "file_name" or c.endswith("_file_name") or c == "file_names"]
    for record in records:
        for column in wanted:
            value = record.get(column)
            for v in value if isinstance(value, list) else [value]:
                if v is not None:
                    yield column, str(v)


def _load_datasets_corpus(
    name_or_path: str,
    split: str,
    *,
    videos_dir: str | os.PathLike | None,
    missing_videos: str,
    report: LoadReport,
    video_column: str | None,
    caption_column: str | None,
    video_id_column: str | None,
    config_name: str | None,
    data_files: Any,
    revision: str | None,
    cache_dir: str | None,
) -> datasets.Dataset:
    local = os.path.isdir(name_or_path)
    root = os.path.abspath(name_or_path) if local else None
    if local:
        check_metadata_paths(root)
        has_metadata = any(set(files) & set(_METADATA_FILENAMES) for _, _, files in os.walk(root))
        if has_metadata and data_files is None:
            ds = datasets.load_dataset("videofolder", data_dir=root, split=split, cache_dir=cache_dir)
        else:
            ds = datasets.load_dataset(root, name=config_name, data_files=data_files, split=split, cache_dir=cache_dir)
    else:
        ds = datasets.load_dataset(
            name_or_path, name=config_name, data_files=data_files, split=split, revision=revision, cache_dir=cache_dir
        )
    source = f"{name_or_path} split {split!r}"
    if not isinstance(ds, datasets.Dataset):
        raise ValueError(f"{source}: expected a datasets.Dataset, got {type(ds).__name__}")
    base = os.path.abspath(videos_dir) if videos_dir is not None else root
    return _normalise_corpus(
        ds,
        source,
        root=root,
        base=base,
        missing_videos=missing_videos,
        report=report,
        video_column=video_column,
        caption_column=caption_column,
        video_id_column=video_id_column,
    )


def _pick_column(
    ds: datasets.Dataset,
    given: str | None,
    candidates: Sequence[str],
    what: str,
    option: str,
    source: str,
    required: bool = True,
) -> str | None:
    columns = ds.column_names
    if given is not None:
        if given not in columns:
            raise ValueError(f"{source}: {option}={given!r} is not a column (columns: {columns})")
        return given
    if what == "video":
        for name, feature in ds.features.items():
            if isinstance(feature, datasets.Video):
                return name
    for name in candidates:
        if name in columns:
            return name
    if required:
        raise ValueError(
            f"{source}: no {what} column found (looked for {list(candidates)}; columns: {columns}); pass {option}="
        )
    return None


def _normalise_corpus(
    ds: datasets.Dataset,
    source: str,
    *,
    root: str | None,
    base: str | None,
    missing_videos: str,
    report: LoadReport,
    video_column: str | None,
    caption_column: str | None,
    video_id_column: str | None,
) -> datasets.Dataset:
    vcol = _pick_column(ds, video_column, _VIDEO_COLUMN_CANDIDATES, "video", "video_column", source)
    ccol = _pick_column(ds, caption_column, _CAPTION_COLUMN_CANDIDATES, "caption", "caption_column", source)
    icol = _pick_column(
        ds, video_id_column, _VIDEO_ID_COLUMN_CANDIDATES, "video id", "video_id_column", source, required=False
    )
    if len({vcol, ccol, icol} - {None}) < len([c for c in (vcol, ccol, icol) if c is not None]):
        raise ValueError(f"{source}: video, caption and video id columns must differ ({vcol}, {ccol}, {icol})")

    feature = ds.features[vcol]
    if isinstance(feature, datasets.Video):
        # datasets.Video decodes only through torchcodec; the collator decodes with PyAV from the path or bytes.
        ds = ds.cast_column(vcol, datasets.Video(decode=False))
    table = ds.select_columns([vcol]).with_format("arrow")[:]
    column = table.column(vcol)
    if pa.types.is_struct(column.type):
        names = {column.type.field(i).name for i in range(column.type.num_fields)}
        if not {"path", "bytes"} & names:
            raise ValueError(f"{source}: video column {vcol!r} is a struct without 'path' or 'bytes'")
        paths = pc.struct_field(column, "path").to_pylist() if "path" in names else [None] * len(column)
        has_bytes = (
            pc.is_valid(pc.struct_field(column, "bytes")).to_pylist() if "bytes" in names else [False] * len(column)
        )
        from_video_feature = isinstance(feature, datasets.Video)
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        paths, has_bytes, from_video_feature = column.to_pylist(), [False] * len(column), False
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        paths, has_bytes, from_video_feature = [None] * len(column), pc.is_valid(column).to_pylist(), False
    else:
        raise ValueError(
            f"{source}: video column {vcol!r} has type {column.type}; expected a path string, bytes or a Video feature"
        )

    n = len(ds)
    if n == 0:
        raise ValueError(f"{source}: the split has no rows")
    use_bytes = any(has_bytes)
    if use_bytes and not all(has_bytes):
        bad = [i for i in range(n) if not has_bytes[i]]
        raise ValueError(
            f"{source}: video column {vcol!r} embeds bytes in some rows but not in rows {preview(bad)}; "
            f"one kind per dataset is supported"
        )

    resolved: list[str | None] = [None] * n
    if not use_bytes:
        for i, p in enumerate(paths):
            if p is None or p == "":
                raise ValueError(f"{source}: row {i} has no video (column {vcol!r} is empty)")
            resolved[i] = _resolve_video_path(p, source, i, root=root, base=base, from_video_feature=from_video_feature)

    captions_col = ds.select_columns([ccol]).with_format("arrow")[:].column(ccol).to_pylist()
    ids_col = ds.select_columns([icol]).with_format("arrow")[:].column(icol).to_pylist() if icol else None

    video_ids: list[str] = []
    for i in range(n):
        if ids_col is not None:
            if ids_col[i] is None or str(ids_col[i]).strip() == "":
                raise ValueError(f"{source}: row {i} has an empty video id (column {icol!r})")
            video_ids.append(str(ids_col[i]))
        elif not use_bytes:
            rel = os.path.relpath(resolved[i], base or root) if (base or root) else resolved[i]
            video_ids.append(os.path.splitext(rel)[0].replace(os.sep, "/"))
        else:
            video_ids.append("")  # filled from the bytes below
    if ids_col is None and use_bytes:
        # No id column: the embedded file's original path names the video; without one, identical bytes are the
        # same video (captions must be grouped by video for evaluation).
        bcol = table.column(vcol)
        bcol = pc.struct_field(bcol, "bytes") if pa.types.is_struct(bcol.type) else bcol
        for i in range(n):
            if paths[i]:
                video_ids[i] = os.path.splitext(paths[i])[0]
            else:
                video_ids[i] = "sha1-" + hashlib.sha1(bcol[i].as_py()).hexdigest()[:16]

    # Expand: one output row per caption; a list-valued caption cell is several captions of that video.
    src_rows: list[int] = []
    out_captions: list[str] = []
    for i, cell in enumerate(captions_col):
        caps = cell if isinstance(cell, list) else [cell]
        if not caps:
            raise ValueError(f"{source}: row {i} has an empty caption list (column {ccol!r})")
        for c in caps:
            if not isinstance(c, str) or not c.strip():
                raise ValueError(f"{source}: row {i} has a caption that is not a non-empty string: {c!r}")
            src_rows.append(i)
            out_captions.append(c)

    if not use_bytes:
        absent = {p for p in set(resolved) if not os.path.isfile(p)}
        missing_rows = {i for i in range(n) if resolved[i] in absent}
        if missing_rows:
            missing_ids = list(dict.fromkeys(video_ids[i] for i in sorted(missing_rows)))
            total = len(set(video_ids))
            _handle_missing(
                missing_ids, total, source, base or root or "the dataset", missing_videos, f"files (column {vcol!r})"
            )
            report.missing_videos = missing_ids
            keep = [k for k, i in enumerate(src_rows) if i not in missing_rows]
            src_rows = [src_rows[k] for k in keep]
            out_captions = [out_captions[k] for k in keep]
        rows = [(resolved[i], video_ids[i], c) for i, c in zip(src_rows, out_captions, strict=True)]
        return _build_path_dataset(rows)

    vi, ci = _indices([video_ids[i] for i in src_rows])
    bcol = table.column(vcol)
    bcol = pc.struct_field(bcol, "bytes") if pa.types.is_struct(bcol.type) else bcol
    videos = pc.take(bcol, pa.array(src_rows, pa.int64()))
    return datasets.Dataset.from_dict(
        {
            "video": videos.cast(pa.binary()) if not pa.types.is_binary(videos.type) else videos,
            "video_id": [video_ids[i] for i in src_rows],
            "caption": out_captions,
            "video_index": vi,
            "caption_index": ci,
        },
        features=RETRIEVAL_FEATURES_BYTES,
    )


def _resolve_video_path(
    p: str, source: str, row: int, *, root: str | None, base: str | None, from_video_feature: bool
) -> str:
    """Absolute path of a row's video; refuses URLs and paths outside the dataset's folders."""
    if "://" in p:
        raise ValueError(f"{source}: row {row} video {p!r} is a URL; download the videos and pass a local path")
    if os.path.isabs(p):
        allowed = [d for d in (root, base) if d is not None]
        if not allowed and from_video_feature:
            return p  # a Hub dataset's Video feature: datasets downloaded the file into its cache
        if not any(_is_inside(p, d) for d in allowed):
            where = " or ".join(allowed) if allowed else "any folder given (pass videos_dir=)"
            raise ValueError(f"{source}: row {row} video path {p!r} points outside the dataset root {where}")
        return os.path.abspath(p)
    anchor = base or root
    if anchor is None:
        raise ValueError(
            f"{source}: video column holds relative paths ({p!r}) but no folder to resolve them in; pass videos_dir="
        )
    path = os.path.abspath(os.path.join(anchor, p))
    if not _is_inside(path, anchor):
        raise ValueError(f"{source}: row {row} video path {p!r} points outside the dataset root {anchor}")
    return path
