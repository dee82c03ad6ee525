"""Text-video retrieval datasets in one schema, from the CLIP4Clip annotation layouts or any `datasets` corpus.

:func:`load_retrieval_dataset` is the one entry point: it detects the layout of a folder (or takes a Hub id), reads
it with :mod:`glccl_hf.data.clip4clip` (MSR-VTT, DiDeMo, VATEX) or :mod:`glccl_hf.data.datasets_corpus` (anything
`datasets` loads), and returns one row per (video, caption) pair with the columns ``video``, ``video_id``,
``caption``, ``video_index`` and ``caption_index`` described in :mod:`glccl_hf.data.schema`.

Rows that repeat an earlier row exactly (same video, same caption) are kept, with a warning giving their count and
the first of them: a training set may repeat a pair on purpose; evaluation (``glccl_hf.evaluation``) drops them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import datasets

from ..formatting import preview
from .clip4clip import CLIP4CLIP_LAYOUTS, VIDEO_EXTENSIONS, layouts_found, load_clip4clip
from .datasets_corpus import check_metadata_paths, load_datasets_corpus
from .schema import (
    MISSING_VIDEO_POLICIES,
    RETRIEVAL_FEATURES_BYTES,
    RETRIEVAL_FEATURES_PATH,
    LoadReport,
    find_duplicate_rows,
)

__all__ = [
    "LAYOUTS",
    "MISSING_VIDEO_POLICIES",
    "RETRIEVAL_FEATURES_BYTES",
    "RETRIEVAL_FEATURES_PATH",
    "VIDEO_EXTENSIONS",
    "LoadReport",
    "check_metadata_paths",
    "detect_layout",
    "find_duplicate_rows",
    "load_retrieval_dataset",
]

logger = logging.getLogger(__name__)

LAYOUTS: tuple[str, ...] = (*CLIP4CLIP_LAYOUTS, "datasets")

# The options each layout reads; any other option given is refused.
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
    """Load one split of a text-video retrieval corpus in the schema of :mod:`glccl_hf.data.schema`.

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
        dataset = load_datasets_corpus(
            str(name_or_path),
            split,
            videos_dir=videos_dir,
            missing_videos=missing_videos,
            report=report,
            **{k: options[k] for k in _LAYOUT_OPTIONS["datasets"]},
        )
    else:
        dataset = load_clip4clip(
            root,
            layout,
            split,
            videos_dir=Path(videos_dir) if videos_dir is not None else None,
            missing_videos=missing_videos,
            report=report,
            train_csv=train_csv,
            caption_file=caption_file,
        )
    _report_duplicates(dataset, f"{name_or_path} split {split!r}", report)
    return (dataset, report) if return_report else dataset


def detect_layout(root: str | os.PathLike) -> str:
    """Return "msrvtt", "didemo" or "vatex" for a folder of CLIP4Clip-layout annotations, else "datasets"."""
    root = Path(root)
    if not root.is_dir():
        return "datasets"  # a Hub id, or a path `datasets` will report on
    found = layouts_found(root)
    if len(found) > 1:
        raise ValueError(f"{root}: annotation files of several layouts {found}; pass layout= to choose one")
    return found[0] if found else "datasets"


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
