"""What `VideoIndex.add` reads: the video files behind its sources, and each file cut into segments sampled like a
training clip.

A segment `[start, end)` is sampled as the processor samples a whole clip: candidate times `start + k / sample_fps`
inside the segment, the frame shown at each (the last one with a presentation time `<= t`), at most `max_frames` of
them kept by linspace (the processor's `load_video` does that step). The file is decoded once, front to back, and
only the current segment's candidate frames are held, so memory does not grow with the video's length.
"""

from __future__ import annotations

import errno
import hashlib
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from ..data import VIDEO_EXTENSIONS

# A header duration longer than the decoded stream by more than this (or 2 frames) marks the file as truncated.
_TRUNCATION_TOLERANCE_S = 0.1


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


def _open(source: str | bytes) -> Any:
    return av.open(io.BytesIO(source) if isinstance(source, bytes) else source, metadata_errors="ignore")


def _frame_array(frame: Any) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frame.to_ndarray(format="rgb24").transpose(2, 0, 1)))


def iter_segments(video: VideoFile, segment_seconds: float, sample_fps: float) -> Iterator[Segment]:
    """Decode `video` once and yield its segments with every candidate frame (`segment_seconds * sample_fps` per
    full segment; the processor keeps `max_frames` of them by linspace). Raises ValueError naming the file when it
    has no video stream, no decodable frame, or is truncated."""
    if isinstance(video.source, str) and os.path.isdir(video.source):
        raise ValueError(f"{video.name}: is a directory, not a video file")
    if video.size == 0:
        raise ValueError(f"{video.name}: empty file (0 bytes), not a video")
    step = Fraction(1) / Fraction(sample_fps).limit_denominator(1_000_000)
    per_segment = Fraction(segment_seconds).limit_denominator(1_000_000) / step
    if per_segment.denominator != 1:
        raise ValueError(f"segment_seconds={segment_seconds} must hold a whole number of 1/sample_fps steps")
    try:
        container = _open(video.source)
    except av.FFmpegError as err:
        raise ValueError(f"{video.name}: not a readable video ({err})") from err
    with container:
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams}) or ["no"]
            raise ValueError(f"{video.name}: no video stream (found {', '.join(kinds)} streams only)")
        stream = container.streams.video[0]
        yield from _sample_stream(video.name, container, stream, float(step), int(per_segment), segment_seconds)


def _sample_stream(
    name: str, container: Any, stream: Any, step: float, per_segment: int, segment_seconds: float
) -> Iterator[Segment]:
    """Walk the decoded frames once; `picked[k]` is the frame shown at candidate time `k * step`."""
    time_base = float(stream.time_base)
    start_pts = stream.start_time
    picked: dict[int, torch.Tensor] = {}
    next_k = 0  # the next candidate time without a frame
    emitted = 0  # segments already yielded
    previous, previous_time, last_time, frame_gap = None, None, None, None
    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            if start_pts is None:
                start_pts = frame.pts
            time = (frame.pts - start_pts) * time_base
            if last_time is not None and time > last_time:
                frame_gap = time - last_time
            last_time = time if last_time is None else max(last_time, time)
            # Every candidate time before this frame is shown by the previous frame (the first one for t < its time).
            while next_k * step < time or (previous is None and next_k * step <= time):
                picked[next_k] = previous if previous is not None else _frame_array(frame)
                next_k += 1
            if previous is None or time >= previous_time:
                previous, previous_time = _frame_array(frame), time
            # A segment is complete once the video is known to go on for more than half a segment past its end.
            while time >= (emitted + 1.5) * segment_seconds:
                yield _segment(picked, emitted, per_segment, step, (emitted + 1) * segment_seconds)
                emitted += 1
    except av.FFmpegError as err:
        raise ValueError(f"{name}: damaged video, decoding failed ({err})") from err
    if previous is None:
        raise ValueError(f"{name}: no decodable video frames")
    frame_gap = frame_gap or (1 / float(stream.average_rate) if stream.average_rate else step)
    duration = last_time + frame_gap
    _check_complete(name, stream, duration, frame_gap)
    while next_k * step < duration:
        picked[next_k] = previous
        next_k += 1
    bounds = segment_bounds(duration, segment_seconds)
    for index in range(emitted, len(bounds)):
        yield _segment(picked, index, per_segment, step, bounds[index][1])


def _segment(picked: dict[int, torch.Tensor], index: int, per_segment: int, step: float, end: float) -> Segment:
    """Pop segment `index`'s candidate frames (candidate times in `[start, end)`) out of `picked`."""
    first = index * per_segment
    keys = sorted(k for k in picked if k >= first and k * step < end - 1e-9)
    frames = torch.stack([picked.pop(k) for k in keys])
    return Segment(start=first * step, end=end, frames=frames, times=[k * step for k in keys])


def _check_complete(name: str, stream: Any, duration: float, frame_gap: float) -> None:
    if stream.duration is None:
        return
    header = float(stream.duration * stream.time_base)
    if header - duration > max(_TRUNCATION_TOLERANCE_S, 2 * frame_gap):
        raise ValueError(
            f"{name}: truncated or damaged: the header says {header:.3f} s but frames end at {duration:.3f} s"
        )
