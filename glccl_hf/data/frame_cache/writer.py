"""``cache_frames``: decode each distinct video of a dataset once, in worker processes, into a frame cache folder.

Frames are the processor's own (:meth:`GLCCLProcessor.sample_frames`: the frames ``load_video`` picks, resized and
centre-cropped, before normalisation), stored in the layout :mod:`.reader` describes. A shard is written to a
temporary file and renamed into place once complete, so a process killed while caching loses at most the shard it
was writing; rerunning ``cache_frames`` adds only the missing videos.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ...modeling.checks import positive_int
from ...modeling.video_glccl import VideoDecodeError
from ..schema import video_source, with_source_name
from .reader import (
    CACHE_FORMATS,
    CACHE_INFO,
    FRAME_CACHE_COLUMN,
    LAYOUT_VERSION,
    SHARD_SUFFIX,
    FrameCache,
    VideoIdentity,
    forget_frame_cache,
    read_cache_info,
    sampling_settings,
    shard_schema,
)

logger = logging.getLogger(__name__)

_TMP_SUFFIX = ".tmp"
# A shard is closed after this many videos or this many frame bytes, whichever comes first.
DEFAULT_SHARD_VIDEOS = 64
_SHARD_MAX_BYTES = 512 * 2**20


# ------------------------------------------------------------------------------------------------- the shards


def encode_jpeg(frames: np.ndarray, quality: int) -> list[bytes]:
    """JPEG files (4:4:4, no chroma subsampling) of uint8 frames [frames, 3, S, S]; the reader's ``decode_jpeg``
    reads them back."""
    from PIL import Image

    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame.transpose(1, 2, 0))).save(
            buffer, format="JPEG", quality=quality, subsampling=0
        )
        encoded.append(buffer.getvalue())
    return encoded


class _ShardWriter:
    """Collects entries and writes them as complete shards: a temporary file, renamed when closed."""

    def __init__(self, directory: Path, format: str, shard_videos: int):
        self.directory = directory
        self.schema = shard_schema(format)
        self.shard_videos = shard_videos
        self.rows: list[dict[str, Any]] = []
        self.bytes = 0
        self.written = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        frames = row["frames"]
        self.bytes += len(frames) if isinstance(frames, bytes) else sum(len(f) for f in frames)
        if len(self.rows) >= self.shard_videos or self.bytes >= _SHARD_MAX_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        table = pa.Table.from_pylist(self.rows, schema=self.schema)
        final = self.directory / f"shard-{uuid.uuid4().hex}{SHARD_SUFFIX}"
        tmp = final.with_name(final.name + _TMP_SUFFIX)
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, self.schema) as writer:
            writer.write_table(table)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # the data is on disk before the name says the shard is complete
        os.replace(tmp, final)
        _fsync_directory(self.directory)
        self.written += len(self.rows)
        self.rows, self.bytes = [], 0


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # platforms without directory handles
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class _Job:
    key: str
    identity: VideoIdentity
    source: Any
    name: str


# The processor and format of a worker process, set once by its initializer.
_WORKER_STATE: dict[str, Any] = {}


def _init_worker(processor: Any, format: str, jpeg_quality: int) -> None:
    torch.set_num_threads(1)  # one decode per core: the pool is the parallelism
    _WORKER_STATE.update(processor=processor, format=format, jpeg_quality=jpeg_quality)


def _sample(job: _Job) -> tuple[_Job, dict[str, Any] | None, Exception | None]:
    """(job, the shard row, None), or (job, None, the error) for a video that cannot be decoded."""
    processor = _WORKER_STATE["processor"]
    try:
        frames = processor.sample_frames(job.source, name=job.name).numpy()
    except (FileNotFoundError, VideoDecodeError) as err:
        return job, None, err
    if _WORKER_STATE["format"] == "jpeg":
        payload: Any = encode_jpeg(frames, _WORKER_STATE["jpeg_quality"])
    else:
        payload = np.ascontiguousarray(frames).tobytes()
    row = {
        "key": job.key,
        "video": job.identity.video,
        "size": job.identity.size,
        "mtime_ns": job.identity.mtime_ns,
        "sampling": json.dumps(sampling_settings(processor), sort_keys=True),
        "num_frames": int(frames.shape[0]),
        "image_size": int(frames.shape[-1]),
        "frames": payload,
    }
    return job, row, None


def _missing_jobs(
    dataset: Any, video_column: str, sampling: Mapping[str, Any], cache: FrameCache, on_error: str
) -> list[_Job]:
    """One job per distinct video of the dataset that the cache lacks, in first-appearance order."""
    jobs: dict[str, _Job] = {}
    for i, video in enumerate(_column(dataset, video_column)):
        source = video_source(video)
        try:
            identity = VideoIdentity.of(source)
        except FileNotFoundError as err:
            if on_error == "raise":
                raise FileNotFoundError(f"row {i}: video file {source!r} not found") from err
            logger.warning("frame cache: skipping row %d: video file %r not found", i, source)
            continue
        except TypeError as err:
            raise TypeError(f"row {i} of column {video_column!r}: {err}") from err
        key = identity.key(sampling)
        if key in cache or key in jobs:
            continue
        name = identity.video if isinstance(source, (str, os.PathLike)) else f"row {i} (embedded bytes)"
        jobs[key] = _Job(key=key, identity=identity, source=source, name=name)
    return list(jobs.values())


def _column(dataset: Any, column: str, chunk: int = 256) -> Iterator[Any]:
    """A dataset column read in chunks (embedded bytes are never all loaded at once)."""
    for start in range(0, len(dataset), chunk):
        yield from dataset[start : start + chunk][column]


# ------------------------------------------------------------------------------------------ caching a dataset


def _prepare_directory(directory: Path, format: str, jpeg_quality: int) -> None:
    """Create the folder and its description, or check that an existing cache has the same format."""
    directory.mkdir(parents=True, exist_ok=True)
    info = read_cache_info(directory)
    quality = jpeg_quality if format == "jpeg" else None
    wanted = {"layout_version": LAYOUT_VERSION, "format": format, "jpeg_quality": quality}
    if info is None:
        tmp = directory / (CACHE_INFO + _TMP_SUFFIX)
        tmp.write_text(json.dumps(wanted, indent=2) + "\n")
        os.replace(tmp, directory / CACHE_INFO)
    elif (info["format"], info.get("jpeg_quality")) != (wanted["format"], wanted["jpeg_quality"]):
        raise ValueError(
            f"{directory}: holds a {info['format']!r} frame cache (jpeg_quality {info.get('jpeg_quality')}), asked "
            f"for {format!r} (jpeg_quality {quality}); use another folder for another format"
        )
    for leftover in directory.glob(f"shard-*{SHARD_SUFFIX}{_TMP_SUFFIX}"):
        # A shard a killed run was writing: incomplete by construction, its videos are redone.
        leftover.unlink(missing_ok=True)


def cache_frames(
    dataset: Any,
    processor: Any,
    output_dir: str | os.PathLike,
    *,
    num_proc: int | None = None,
    format: str = "raw",
    jpeg_quality: int = 95,
    on_error: str = "raise",
    video_column: str = "video",
    shard_videos: int = DEFAULT_SHARD_VIDEOS,
) -> Any:
    """Decode each distinct video of a dataset once into a frame cache; return the dataset pointing at it.

    Frames are the processor's own (:meth:`GLCCLProcessor.sample_frames`: ``load_video``'s sampling, ``max_seconds``
    included, resized and centre-cropped, before normalisation). Videos already cached with the same sampling
    settings and unchanged on disk are skipped, so rerunning adds only what is missing. Only one process should
    write a folder at a time (with several training processes, build on the main process first).

    Args:
        dataset: a ``datasets.Dataset`` (or anything with ``len``, slicing to columns and ``add_column``) whose
            ``video_column`` holds paths, bytes or ``{"path", "bytes"}`` dicts.
        processor: a GLCCLProcessor; its sampling settings key the entries.
        output_dir: the cache folder (created if needed; an existing cache of the same format is extended).
        num_proc: decoding processes (None or 1: this process).
        format: "raw" (uint8, exact, ``3 x S x S`` bytes per frame) or "jpeg" (lossy, smaller).
        jpeg_quality: JPEG quality 1..95 for ``format="jpeg"``.
        on_error: a video that cannot be decoded: "raise" (default, names the file) or "skip" (logged, left out of
            the cache: reading it decodes it, and the collator's own ``on_error`` policy applies).
        video_column: the column holding the videos.
        shard_videos: videos per shard (a killed run loses at most one shard's worth of decoding).

    Returns:
        The dataset with a ``frame_cache`` column holding the cache folder's absolute path on every row; the
        collator and evaluation read frames from there.

    Raises:
        ValueError: a bad argument, or a folder holding a cache of another format.
        FileNotFoundError, VideoDecodeError: a missing or undecodable video (``on_error="raise"``).
    """
    _check_cache_arguments(format, jpeg_quality, on_error, num_proc, shard_videos)
    if not callable(getattr(processor, "sample_frames", None)):
        raise TypeError(f"processor {type(processor).__name__} has no sample_frames() method (a GLCCLProcessor has)")
    columns = getattr(dataset, "column_names", None) or []
    if video_column not in columns:
        raise ValueError(f"dataset has no {video_column!r} column (columns: {columns})")
    directory = Path(output_dir).absolute()
    _prepare_directory(directory, format, jpeg_quality)
    cache = FrameCache(directory)
    jobs = _missing_jobs(dataset, video_column, sampling_settings(processor), cache, on_error)
    logger.info("frame cache %s: %d videos cached, %d to decode", directory, len(cache), len(jobs))
    writer = _ShardWriter(directory, format, shard_videos)
    try:
        failures = _decode_into(writer, _run_jobs(jobs, processor, format, jpeg_quality, num_proc or 1), on_error)
    finally:
        writer.flush()  # keep what was decoded, also when a video stops the run
    if failures:
        logger.warning("frame cache %s: %d videos could not be decoded and are not cached", directory, len(failures))
    forget_frame_cache(directory)  # this process reopens it with the new shards
    if FRAME_CACHE_COLUMN in columns:
        dataset = dataset.remove_columns(FRAME_CACHE_COLUMN)
    return dataset.add_column(FRAME_CACHE_COLUMN, [str(directory)] * len(dataset))


def _check_cache_arguments(
    format: str, jpeg_quality: int, on_error: str, num_proc: int | None, shard_videos: int
) -> None:
    if format not in CACHE_FORMATS:
        raise ValueError(f"format={format!r}: expected one of {CACHE_FORMATS}")
    if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int) or not 1 <= jpeg_quality <= 95:
        raise ValueError(f"jpeg_quality must be an integer 1..95, got {jpeg_quality!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error={on_error!r}: expected 'raise' or 'skip'")
    if num_proc is not None:
        positive_int("num_proc", num_proc)
    positive_int("shard_videos", shard_videos)


def _decode_into(
    writer: _ShardWriter,
    results: Iterator[tuple[_Job, dict[str, Any] | None, Exception | None]],
    on_error: str,
) -> list[str]:
    """Write each decoded video; a failure raises naming the video ("raise") or is logged and listed ("skip")."""
    failures = []
    for job, row, error in results:
        if row is not None:
            writer.add(row)
            continue
        if on_error == "raise":
            named = with_source_name(error, job.name)
            if named is error:
                raise error
            raise named from error
        logger.warning("frame cache: skipping %s: %s: %s", job.name, type(error).__name__, error)
        failures.append(job.name)
    return failures


def _run_jobs(
    jobs: list[_Job], processor: Any, format: str, jpeg_quality: int, num_proc: int
) -> Iterator[tuple[_Job, dict[str, Any] | None, Exception | None]]:
    """Decode the jobs here (num_proc 1) or in a pool of processes, in completion order."""
    if num_proc == 1 or len(jobs) <= 1:
        threads = torch.get_num_threads()
        _init_worker(processor, format, jpeg_quality)
        try:
            yield from map(_sample, jobs)
        finally:
            torch.set_num_threads(threads)
            _WORKER_STATE.clear()
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(min(num_proc, len(jobs)), _init_worker, (processor, format, jpeg_quality)) as pool:
        yield from pool.imap_unordered(_sample, jobs)
