"""The one schema every retrieval loader returns, the two rules every loader applies on the way in,
`video_source`, how a video cell is read, and `with_source_name`, how a video that cannot be read is named.

A loaded split is a `datasets.Dataset` with one row per (video, caption) pair and these columns:

- ``video``: absolute path of the video file (string), or the encoded file's bytes (binary) when the source
  embeds them. One type per dataset.
- ``video_id``: the dataset's id of the video (string).
- ``caption``: one caption (string). Training splits hold every caption of a video as its own row.
- ``video_index``: int64, the position of the row's video among the split's distinct videos, numbered in order of
  first appearance (0 .. n_videos - 1). Rows of the same video share it, so a score matrix
  [n_captions, n_videos] has the true video of caption row ``i`` at column ``video_index[i]``.
- ``caption_index``: int64, the position of the caption among its video's captions (0 for the first). The rows with
  ``caption_index == 0`` list each video once, in ``video_index`` order: encode videos from those.

The rules: videos whose file is absent raise or are dropped (``missing_videos``), and rows that repeat an earlier
row exactly are found (:func:`find_duplicate_rows`) and reported, never dropped here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa

from ..formatting import preview
from ..modeling.video_glccl import VideoDecodeError


def with_source_name(err: Exception, name: str) -> Exception:
    """`err` with the video's name in front of its message, of the same kind (FileNotFoundError, else
    VideoDecodeError), so every reader names a failed video the same way; `err` itself when it already names it."""
    if name in str(err):
        return err
    if isinstance(err, FileNotFoundError):
        return FileNotFoundError(f"{name}: {err}")
    return VideoDecodeError(f"{name}: {err}")


def video_source(video: Any) -> Any:
    """A `video` cell as a path or bytes: a ``{"path", "bytes"}`` dict (``datasets.Video(decode=False)``) gives its
    embedded bytes (what the dataset ships), else its path; anything else is returned as is."""
    if isinstance(video, Mapping):
        return video.get("bytes") or video.get("path")
    return video


logger = logging.getLogger(__name__)

MISSING_VIDEO_POLICIES: tuple[str, ...] = ("error", "drop")

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


def drop_missing_videos(
    missing: list[str], total: int, *, what: str, where: Path | str, policy: str, pattern: str, report: LoadReport
) -> None:
    """Apply the ``missing_videos`` policy to the ids whose file is absent: raise, or log and record the drop.

    Every video missing is an error under either policy: an empty split is never what the caller wanted.
    The caller removes the rows of the recorded ids.
    """
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
    report.missing_videos = missing


def video_and_caption_indices(video_ids: Sequence[str]) -> tuple[list[int], list[int]]:
    """[rows] ``video_index`` (videos numbered by first appearance) and ``caption_index`` (a video's rows counted)."""
    video_index: dict[str, int] = {}
    counts: dict[str, int] = {}
    vi, ci = [], []
    for vid in video_ids:
        vi.append(video_index.setdefault(vid, len(video_index)))
        ci.append(counts.get(vid, 0))
        counts[vid] = ci[-1] + 1
    return vi, ci


def path_dataset(rows: Sequence[tuple[str, str, str]]) -> datasets.Dataset:
    """The schema's dataset from ``(video path, video_id, caption)`` rows."""
    video_ids = [r[1] for r in rows]
    vi, ci = video_and_caption_indices(video_ids)
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


def bytes_dataset(videos: pa.Array | pa.ChunkedArray, video_ids: list[str], captions: list[str]) -> datasets.Dataset:
    """The schema's dataset from [rows] embedded video files, their ids and captions."""
    vi, ci = video_and_caption_indices(video_ids)
    return datasets.Dataset.from_dict(
        {
            "video": videos if pa.types.is_binary(videos.type) else videos.cast(pa.binary()),
            "video_id": video_ids,
            "caption": captions,
            "video_index": vi,
            "caption_index": ci,
        },
        features=RETRIEVAL_FEATURES_BYTES,
    )
