"""Any `datasets` corpus (a Hub dataset id or a local folder) brought into the common retrieval schema.

A source row holds a video (a path string, the file's bytes, or a ``datasets.Video`` feature) and one caption or a
list of captions; the columns are named by the caller or found among common names. Normalising reads the video
column once, resolves paths inside the dataset's folders (URLs and escapes refused), names each video (the id
column, else the file path, else a hash of the bytes), expands caption lists into rows and applies the
``missing_videos`` policy; the result is a split in the schema of :mod:`glccl_hf.data.schema`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from ..formatting import preview
from .files import is_inside, read_csv
from .schema import LoadReport, bytes_dataset, drop_missing_videos, path_dataset

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


def load_datasets_corpus(
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
    """One split of a `datasets` corpus in the common schema (see ``load_retrieval_dataset`` for the options)."""
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
    return normalise_corpus(
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
                if "://" in value or os.path.isabs(value) or not is_inside(Path(dirpath) / value, dirpath):
                    raise ValueError(f"{meta}: {column} {value!r} points outside the dataset folder {dirpath}")


def _metadata_file_names(meta: Path) -> Iterable[tuple[str, str]]:
    """(column, value) for every file name a videofolder metadata file lists."""
    if meta.suffix == ".csv":
        # Read as text (a file name like "001" must stay "001"), the way videofolder reads it.
        rows = read_csv(meta)
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


# --------------------------------------------------------------------------------------------------------------
# Normalisation: a loaded `datasets.Dataset` in the common schema.


def normalise_corpus(
    ds: datasets.Dataset,
    source: str,
    *,
    root: str | None,
    base: str | None,
    missing_videos: str,
    report: LoadReport,
    video_column: str | None = None,
    caption_column: str | None = None,
    video_id_column: str | None = None,
) -> datasets.Dataset:
    """A source split in the common schema: one row per caption, videos as absolute paths or embedded bytes.

    Args:
        ds: the source split; source: how messages name it ("<name> split '<split>'").
        root: the local dataset folder (None for a Hub dataset); base: the folder relative video paths are
            relative to (``videos_dir``, default `root`).
        missing_videos, report: the policy for absent video files, and where drops are recorded.
        video_column, caption_column, video_id_column: the source columns (None: found among common names).
    """
    vcol, ccol, icol = _pick_columns(ds, source, video_column, caption_column, video_id_column)
    videos = _read_video_column(ds, vcol, source)
    if len(ds) == 0:
        raise ValueError(f"{source}: the split has no rows")
    if _embeds_bytes(videos, vcol, source):
        video_ids = _ids_from_column(ds, icol, source) if icol else _ids_of_embedded(videos)
        rows, captions = _expand_captions(_column(ds, ccol), ccol, source)
        return bytes_dataset(pc.take(videos.data, pa.array(rows, pa.int64())), [video_ids[i] for i in rows], captions)
    anchor = base or root
    paths = [
        _resolve_video_path(p, row, vcol, source, root=root, base=base, from_video_feature=videos.from_video_feature)
        for row, p in enumerate(videos.paths)
    ]
    video_ids = _ids_from_column(ds, icol, source) if icol else _ids_from_paths(paths, anchor)
    rows, captions = _expand_captions(_column(ds, ccol), ccol, source)
    gone = _rows_of_missing_files(paths, video_ids, missing_videos, report, source, anchor or "the dataset", vcol)
    return path_dataset([(paths[i], video_ids[i], c) for i, c in zip(rows, captions, strict=True) if i not in gone])


def _pick_columns(
    ds: datasets.Dataset,
    source: str,
    video_column: str | None,
    caption_column: str | None,
    video_id_column: str | None,
) -> tuple[str, str, str | None]:
    """The video, caption and (optional) video id columns, all different."""
    vcol = _pick_column(ds, video_column, _VIDEO_COLUMN_CANDIDATES, "video", "video_column", source)
    ccol = _pick_column(ds, caption_column, _CAPTION_COLUMN_CANDIDATES, "caption", "caption_column", source)
    icol = _pick_column(
        ds, video_id_column, _VIDEO_ID_COLUMN_CANDIDATES, "video id", "video_id_column", source, required=False
    )
    named = [c for c in (vcol, ccol, icol) if c is not None]
    if len(set(named)) < len(named):
        raise ValueError(f"{source}: video, caption and video id columns must differ ({vcol}, {ccol}, {icol})")
    return vcol, ccol, icol


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


def _column(ds: datasets.Dataset, name: str) -> list[Any]:
    return ds.select_columns([name]).with_format("arrow")[:].column(name).to_pylist()


@dataclass
class _VideoColumn:
    """The video column read once: [rows] the path of each row's file (None where it has none) and, when the
    source can embed files, [rows] their bytes (null where a row embeds none)."""

    paths: list[str | None]
    data: pa.ChunkedArray | None
    from_video_feature: bool


def _read_video_column(ds: datasets.Dataset, vcol: str, source: str) -> _VideoColumn:
    feature = ds.features[vcol]
    if isinstance(feature, datasets.Video):
        # datasets.Video decodes only through torchcodec; the collator decodes with PyAV from the path or bytes.
        ds = ds.cast_column(vcol, datasets.Video(decode=False))
    column = ds.select_columns([vcol]).with_format("arrow")[:].column(vcol)
    kind = column.type
    if pa.types.is_struct(kind):
        names = {kind.field(i).name for i in range(kind.num_fields)}
        if not {"path", "bytes"} & names:
            raise ValueError(f"{source}: video column {vcol!r} is a struct without 'path' or 'bytes'")
        paths = pc.struct_field(column, "path").to_pylist() if "path" in names else [None] * len(column)
        data = pc.struct_field(column, "bytes") if "bytes" in names else None
        return _VideoColumn(paths, data, from_video_feature=isinstance(feature, datasets.Video))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _VideoColumn(column.to_pylist(), None, from_video_feature=False)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _VideoColumn([None] * len(column), column, from_video_feature=False)
    raise ValueError(
        f"{source}: video column {vcol!r} has type {kind}; expected a path string, bytes or a Video feature"
    )


def _embeds_bytes(videos: _VideoColumn, vcol: str, source: str) -> bool:
    """Whether every row embeds its video's bytes; a split that embeds some and points to files for others is
    refused (one video type per dataset)."""
    embedded = pc.is_valid(videos.data).to_pylist() if videos.data is not None else []
    if not any(embedded):
        return False
    if not all(embedded):
        bad = [i for i, has in enumerate(embedded) if not has]
        raise ValueError(
            f"{source}: video column {vcol!r} embeds bytes in some rows but not in rows {preview(bad)}; "
            f"one kind per dataset is supported"
        )
    return True


def _resolve_video_path(
    p: str | None, row: int, vcol: str, source: str, *, root: str | None, base: str | None, from_video_feature: bool
) -> str:
    """Absolute path of a row's video; refuses an empty cell, URLs and paths outside the dataset's folders."""
    if not p:
        raise ValueError(f"{source}: row {row} has no video (column {vcol!r} is empty)")
    if "://" in p:
        raise ValueError(f"{source}: row {row} video {p!r} is a URL; download the videos and pass a local path")
    if os.path.isabs(p):
        allowed = [d for d in (root, base) if d is not None]
        if not allowed and from_video_feature:
            return p  # a Hub dataset's Video feature: datasets downloaded the file into its cache
        if not any(is_inside(p, d) for d in allowed):
            where = " or ".join(allowed) if allowed else "any folder given (pass videos_dir=)"
            raise ValueError(f"{source}: row {row} video path {p!r} points outside the dataset root {where}")
        return os.path.abspath(p)
    anchor = base or root
    if anchor is None:
        raise ValueError(
            f"{source}: video column holds relative paths ({p!r}) but no folder to resolve them in; pass videos_dir="
        )
    path = os.path.abspath(os.path.join(anchor, p))
    if not is_inside(path, anchor):
        raise ValueError(f"{source}: row {row} video path {p!r} points outside the dataset root {anchor}")
    return path


def _ids_from_column(ds: datasets.Dataset, icol: str, source: str) -> list[str]:
    ids = []
    for row, value in enumerate(_column(ds, icol)):
        if value is None or str(value).strip() == "":
            raise ValueError(f"{source}: row {row} has an empty video id (column {icol!r})")
        ids.append(str(value))
    return ids


def _ids_from_paths(paths: list[str], anchor: str | None) -> list[str]:
    """A video's path relative to the dataset folder, without extension, names it."""
    relative = [os.path.relpath(p, anchor) for p in paths] if anchor else paths
    return [os.path.splitext(p)[0].replace(os.sep, "/") for p in relative]


def _ids_of_embedded(videos: _VideoColumn) -> list[str]:
    # The embedded file's original path names the video; without one, identical bytes are the same video (captions
    # must be grouped by video for evaluation).
    return [
        os.path.splitext(path)[0] if path else "sha1-" + hashlib.sha1(videos.data[row].as_py()).hexdigest()[:16]
        for row, path in enumerate(videos.paths)
    ]


def _expand_captions(cells: list[Any], ccol: str, source: str) -> tuple[list[int], list[str]]:
    """One output row per caption: ([out rows] the source row, [out rows] the caption); a list-valued cell is
    several captions of its row's video."""
    rows: list[int] = []
    captions: list[str] = []
    for row, cell in enumerate(cells):
        caps = cell if isinstance(cell, list) else [cell]
        if not caps:
            raise ValueError(f"{source}: row {row} has an empty caption list (column {ccol!r})")
        for caption in caps:
            if not isinstance(caption, str) or not caption.strip():
                raise ValueError(f"{source}: row {row} has a caption that is not a non-empty string: {caption!r}")
            rows.append(row)
            captions.append(caption)
    return rows, captions


def _rows_of_missing_files(
    paths: list[str], video_ids: list[str], policy: str, report: LoadReport, source: str, where: str, vcol: str
) -> set[int]:
    """The source rows whose video file is absent, after the ``missing_videos`` policy allowed dropping them."""
    absent = {p for p in set(paths) if not os.path.isfile(p)}
    gone = {row for row, p in enumerate(paths) if p in absent}
    if gone:
        missing = list(dict.fromkeys(video_ids[row] for row in sorted(gone)))
        drop_missing_videos(
            missing,
            len(set(video_ids)),
            what=source,
            where=where,
            policy=policy,
            pattern=f"files (column {vcol!r})",
            report=report,
        )
    return gone
