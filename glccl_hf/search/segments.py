"""What `VideoIndex.add` reads: the video files behind its sources, and each file cut into segments sampled like a
training clip.

A segment `[start, end)` is sampled as the processor samples a whole clip: candidate times `start + k / sample_fps`
inside the segment, the frame shown at each (the last one with a presentation time `<= t`), at most `max_frames` of
them kept by linspace: `read_frames` with `start_seconds` and `max_seconds`, the project's one decoder, so segments
get its display orientation, colour conversion and checks. Only one segment's frames are held at a time.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from ..data import VIDEO_EXTENSIONS
from ..modeling.video_glccl import BYTES_NAME
from ..video import VideoDecodeError, check_sampling_args, read_frames, video_duration


@dataclass(frozen=True)
class VideoFile:
    """One video to index: its name in the index, how to open it, and the identity used for incremental adds."""

    name: str
    source: str | bytes  # a path, or the encoded bytes of a datasets row
    size: int
    mtime_ns: int


@dataclass
class Segment:
    """A segment's sampled frames: uint8 `[n, 3, H, W]` at `times` (seconds from the video's start)."""

    start: float
    end: float
    frames: torch.Tensor
    times: list[float]


def _stat_identity(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


def _failure_reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno == errno.ELOOP:
        return "symbolic link loop"
    if isinstance(err, PermissionError):
        return "permission denied (unreadable)"
    if isinstance(err, FileNotFoundError):
        return "file not found (or a broken symbolic link)"
    return str(err) or type(err).__name__


def _walk_folder(folder: Path, failed: list[tuple[str, str]]) -> Iterator[Path]:
    """Video files under `folder` by extension, sorted; directory symlink loops are reported, not followed twice."""
    seen: set[tuple[int, int]] = set()

    def onerror(err: OSError) -> None:
        failed.append((str(err.filename), _failure_reason(err)))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror, followlinks=True):
        info = os.stat(dirpath)
        if (info.st_dev, info.st_ino) in seen:
            failed.append((dirpath, "symbolic link loop (directory already visited)"))
            dirnames[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        dirnames.sort()
        for filename in sorted(filenames):
            if os.path.splitext(filename)[1].lower() in VIDEO_EXTENSIONS:
                yield Path(dirpath) / filename


def _dataset_files(dataset: Any, failed: list[tuple[str, str]]) -> Iterator[VideoFile]:
    """Rows of a retrieval-schema `datasets.Dataset` (a `video` column of paths, bytes or `{"path", "bytes"}`),
    one file per distinct video."""
    if "video" not in dataset.column_names:
        raise ValueError(
            f"the dataset has no 'video' column (columns: {dataset.column_names}); load it with "
            "glccl_hf.data.load_retrieval_dataset or rename its video column to 'video'"
        )
    ids = dataset["video_id"] if "video_id" in dataset.column_names else None
    seen: set[str] = set()
    for row, value in enumerate(dataset.with_format(None)["video"]):
        if isinstance(value, dict):
            path, data = value.get("path"), value.get("bytes")
        elif isinstance(value, (bytes, bytearray)):
            path, data = None, bytes(value)
        else:
            path, data = value, None
        if data is None and path is not None:
            name = os.path.abspath(path)
            if name not in seen:
                seen.add(name)
                yield from _path_file(name, failed)
            continue
        name = path or (ids[row] if ids is not None else None) or f"dataset row {row}"
        if data is None:
            failed.append((name, "dataset row has neither a path nor bytes"))
        elif name not in seen:
            seen.add(name)
            # In-memory videos have no modification time: a digest of the bytes stands in for it.
            yield VideoFile(name, bytes(data), len(data), int.from_bytes(hashlib.sha1(data).digest()[:7], "big"))


def _path_file(path: str, failed: list[tuple[str, str]]) -> Iterator[VideoFile]:
    try:
        size, mtime = _stat_identity(path)
    except OSError as err:
        failed.append((path, _failure_reason(err)))
        return
    yield VideoFile(path, path, size, mtime)


def discover(sources: Any) -> tuple[list[VideoFile], list[tuple[str, str]]]:
    """The video files named by `sources` (files, folders searched recursively for video extensions, or a
    `datasets.Dataset`), each once, with the sources that cannot be read as `(path, reason)`."""
    failed: list[tuple[str, str]] = []
    if isinstance(sources, (str, os.PathLike)) or _is_dataset(sources):
        sources = [sources]
    files: dict[str, VideoFile] = {}
    for source in sources:
        if _is_dataset(source):
            found = list(_dataset_files(source, failed))
        elif isinstance(source, (str, os.PathLike)):
            found = list(_path_files(Path(source), failed))
        else:
            raise TypeError(f"sources must be paths, folders or a datasets.Dataset, got {type(source).__name__}")
        for video in found:
            files.setdefault(video.name, video)
    return list(files.values()), failed


def _is_dataset(value: Any) -> bool:
    return type(value).__name__ == "Dataset" and hasattr(value, "column_names")


def _path_files(path: Path, failed: list[tuple[str, str]]) -> Iterator[VideoFile]:
    name = os.path.abspath(path)
    try:
        is_dir = path.is_dir()
    except OSError as err:
        failed.append((name, _failure_reason(err)))
        return
    if is_dir:
        for found in _walk_folder(path, failed):
            yield from _path_file(os.path.abspath(found), failed)
    elif os.path.islink(name) and not os.path.exists(name):
        try:
            os.stat(name)
        except OSError as err:
            failed.append((name, _failure_reason(err)))
    else:
        yield from _path_file(name, failed)


# ------------------------------------------------------------------------------------------------ segmenting


def segment_bounds(duration: float, segment_seconds: float) -> list[tuple[float, float]]:
    """Consecutive `[start, end)` segments covering `duration`; a tail shorter than half a segment joins the
    previous segment, so every segment lasts between half and one and a half `segment_seconds`."""
    count = max(1, math.floor(duration / segment_seconds))
    if duration - count * segment_seconds >= segment_seconds / 2:
        count += 1
    bounds = [(k * segment_seconds, (k + 1) * segment_seconds) for k in range(count)]
    bounds[-1] = (bounds[-1][0], duration)
    return bounds


def iter_segments(
    video: VideoFile, segment_seconds: float, sample_fps: float, max_frames: int | None = None
) -> Iterator[Segment]:
    """Yield `video`'s segments, each sampled by `read_frames` as the processor samples a clip of the segment's
    length: candidate times `start + k / sample_fps` inside it, `max_frames` of them kept by linspace (every
    candidate when None). Raises ValueError naming the file when it is not a complete, decodable video."""
    step = Fraction(1) / check_sampling_args(max_frames or 1, sample_fps)
    per_segment = Fraction(segment_seconds).limit_denominator(1_000_000) / step
    if per_segment.denominator != 1:
        raise ValueError(f"segment_seconds={segment_seconds} must hold a whole number of 1/sample_fps steps")
    bounds = segment_bounds(_named(video, video_duration, video.source), segment_seconds)
    for index, (start, end) in enumerate(bounds):
        last = index == len(bounds) - 1
        # The last segment runs to the video's end (max_seconds None): its length is the duration read_frames finds.
        sampled = _named(
            video,
            read_frames,
            video.source,
            max_frames=max_frames or math.ceil((end - start) / step) + 1,
            sample_fps=sample_fps,
            max_seconds=None if last else end - start,
            start_seconds=start,
        )
        yield Segment(start=start, end=end, frames=sampled.frames, times=sampled.timestamps)


def _named(video: VideoFile, read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`read(*args, **kwargs)`, with in-memory videos' errors naming the video instead of `<bytes>`."""
    try:
        return read(*args, **kwargs)
    except VideoDecodeError as err:
        if not isinstance(video.source, bytes) or not str(err).startswith(f"{BYTES_NAME}: "):
            raise
        raise VideoDecodeError(f"{video.name}: {str(err)[len(BYTES_NAME) + 2 :]}") from err
