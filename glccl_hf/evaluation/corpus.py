"""A retrieval split read as a score matrix [texts, videos]: its captions, its videos in column order and which
video each caption describes, from a dataset in the ``glccl_hf.data`` schema."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from ..data.frame_cache import FRAME_CACHE_COLUMN
from ..data.loaders import find_duplicate_rows
from ..formatting import preview

__all__ = ["DATASET_COLUMNS", "DUPLICATE_POLICIES", "RetrievalCorpus", "retrieval_corpus"]

logger = logging.getLogger(__name__)

DUPLICATE_POLICIES: tuple[str, ...] = ("drop", "keep")
DATASET_COLUMNS: tuple[str, ...] = ("video", "caption", "video_index", "caption_index")


@dataclass
class RetrievalCorpus:
    """A retrieval split laid out as a score matrix [texts, videos].

    Attributes:
        captions: every row's caption (the texts, in dataset row order).
        text_to_video: int64 [texts], the video column of each text (the dataset's ``video_index``).
        videos: the videos in column order (one per video: the rows with ``caption_index == 0`` ordered by
            ``video_index``): a ``torch.utils.data.Subset`` of the dataset's video column, read on access.
        video_ids: the id of each video column (``video_id``, or the video index as a string when absent).
        frame_cache: the frame cache folder of the dataset's ``frame_cache`` column (``glccl_hf.data.cache_frames``),
            or None.
        duplicate_rows: the dataset rows left out because they repeat an earlier row's video and caption exactly.
        duplicates: ``(video_id, caption)`` of each of those rows.
    """

    captions: list[str]
    text_to_video: torch.Tensor
    videos: Subset
    video_ids: list[str]
    frame_cache: str | None = None
    duplicate_rows: list[int] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)


def retrieval_corpus(dataset: Any, duplicates: str = "drop") -> RetrievalCorpus:
    """Read the texts, the videos and their pairing from a dataset in the ``glccl_hf.data`` schema.

    Args:
        dataset: a ``datasets.Dataset`` (or anything with ``column_names``, ``len``, row and column access) with
            columns ``video``, ``caption``, ``video_index``, ``caption_index`` (``video_id`` optional), as
            ``load_retrieval_dataset`` returns. MSR-VTT 1k-A and DiDeMo (one caption or paragraph per video) give a
            square matrix; VATEX or MSR-VTT full (several captions per video) more texts than videos.
        duplicates: "drop" (default): a row repeating an earlier row's video and caption exactly is left out (it
            would be a second, identical t2v query), with a warning; "keep": every row is a query.

    Raises:
        ValueError: a missing column, an empty dataset, indices that do not describe each video once, or an unknown
            `duplicates` policy.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates={duplicates!r}: expected one of {DUPLICATE_POLICIES}")
    columns = set(getattr(dataset, "column_names", ()))
    missing = [c for c in DATASET_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"dataset lacks column(s) {missing} (has {sorted(columns)}); see glccl_hf.data's schema")
    if len(dataset) == 0:
        raise ValueError("dataset is empty: nothing to evaluate")
    video_index = np.asarray(list(dataset["video_index"]), dtype=np.int64)
    caption_index = np.asarray(list(dataset["caption_index"]), dtype=np.int64)
    first_rows = np.flatnonzero(caption_index == 0)
    video_rows = first_rows[np.argsort(video_index[first_rows], kind="stable")]
    num_videos = len(video_rows)
    listed = video_index[video_rows]
    if not np.array_equal(listed, np.arange(num_videos)):
        raise ValueError(
            f"the {num_videos} rows with caption_index == 0 must list each video once with video_index "
            f"0 .. {num_videos - 1}, got video_index values {preview(listed.tolist())}"
        )
    out_of_range = np.flatnonzero((video_index < 0) | (video_index >= num_videos))
    if len(out_of_range):
        row = int(out_of_range[0])
        raise ValueError(
            f"row {row} has video_index {int(video_index[row])}, but only {num_videos} videos have a row with "
            f"caption_index == 0 ({len(out_of_range)} rows point to no video)"
        )
    if "video_id" in columns:
        ids = list(dataset["video_id"])
        video_ids = [str(ids[row]) for row in video_rows]
    else:
        video_ids = [str(i) for i in range(num_videos)]
    captions = list(dataset["caption"])
    # The first row of each video is never a repeat, so dropping repeats leaves every video its caption_index 0 row.
    repeats = find_duplicate_rows(video_index.tolist(), captions) if duplicates == "drop" else []
    dropped = [(video_ids[video_index[row]], captions[row]) for row in repeats]
    if repeats:
        logger.warning(
            "left out %d duplicate row(s) of %d that repeat an earlier row's video and caption exactly (pass "
            "duplicates='keep' to keep them): %s",
            len(repeats),
            len(captions),
            preview(dropped, 5),
        )
        kept = np.setdiff1d(np.arange(len(captions)), repeats)
        captions = [captions[row] for row in kept]
        video_index = video_index[kept]
    return RetrievalCorpus(
        captions=captions,
        text_to_video=torch.from_numpy(video_index),
        videos=Subset(dataset["video"], video_rows.tolist()),  # no video bytes are read up front
        video_ids=video_ids,
        frame_cache=_frame_cache_folder(dataset) if FRAME_CACHE_COLUMN in columns else None,
        duplicate_rows=repeats,
        duplicates=dropped,
    )


def _frame_cache_folder(dataset: Any) -> str | None:
    """The one frame cache folder a dataset's ``frame_cache`` column names (None if it names none)."""
    folders = {folder for folder in dataset[FRAME_CACHE_COLUMN] if folder is not None}
    if len(folders) > 1:
        raise ValueError(f"column {FRAME_CACHE_COLUMN!r} names {len(folders)} frame caches: {sorted(folders)}; use one")
    return folders.pop() if folders else None
