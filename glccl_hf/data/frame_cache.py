"""A frame cache: each video decoded once, its sampled frames stored after resize and centre crop (uint8).

Decoding an MP4 and preprocessing its frames costs far more CPU than a GPU step takes per clip. ``cache_frames``
decodes every distinct video of a dataset once with the processor's own sampling (:meth:`GLCCLProcessor.sample_frames`:
the frames ``load_video`` picks, resized and centre-cropped, before normalisation) and stores them in Arrow shards;
``GLCCLDataCollator`` and ``encode_videos`` then read those frames instead of decoding, and normalise them exactly
as ``load_video`` does. A raw cache gives bit-identical model inputs; a JPEG cache is smaller and lossy.

Layout of a cache folder::

    cache_info.json            format ("raw" or "jpeg"), JPEG quality, layout version
    shard-<id>.arrow           Arrow IPC stream files, one row per video (`datasets.Dataset.from_file` loads one)

Each row holds ``key`` (the entry's key, below), ``video`` (the path, or ``sha256:<hex>`` for embedded bytes),
``size``, ``mtime_ns``, ``sampling`` (JSON of the processor's sampling settings), ``num_frames``, ``image_size`` and
``frames``: for "raw" one binary of ``num_frames x 3 x S x S`` uint8 (frame, channel, row, column); for "jpeg" a list
of one JPEG per frame.

An entry's key hashes the video's identity (absolute path, size and modification time; or the SHA-256 of embedded
bytes) with the sampling settings (``max_frames``, ``sample_fps``, ``max_seconds``, ``image_size``,
``video_backend``). Readers recompute it from the file as it is now, so a video changed since it was cached, or a
processor with other settings, finds no entry and is decoded: a stale entry is never used.

A shard is written to a temporary file and renamed into place once complete, so a process killed while caching
loses at most the shard it was writing; rerunning ``cache_frames`` adds only the missing videos.
"""

from __future__ import annotations

import hashlib
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

from ..modeling.checks import positive_int
from ..modeling.video_glccl import VideoDecodeError

logger = logging.getLogger(__name__)

FRAME_CACHE_COLUMN = "frame_cache"
CACHE_FORMATS: tuple[str, ...] = ("raw", "jpeg")
CACHE_INFO = "cache_info.json"
# Version of the folder layout above; a folder of another version is refused rather than misread.
LAYOUT_VERSION = 1
SHARD_SUFFIX = ".arrow"
_TMP_SUFFIX = ".tmp"
# A shard is closed after this many videos or this many frame bytes, whichever comes first.
DEFAULT_SHARD_VIDEOS = 64
_SHARD_MAX_BYTES = 512 * 2**20


# ------------------------------------------------------------------------------------------------- entry keys


def sampling_settings(processor: Any) -> dict[str, Any]:
    """The processor settings that decide which frames a video gives: part of every entry's key."""
    return {
        "max_frames": int(processor.max_frames),
        "sample_fps": float(processor.sample_fps),
        "max_seconds": None if processor.max_seconds is None else float(processor.max_seconds),
        "image_size": int(processor.image_size),
        "video_backend": str(processor.video_backend),
    }


@dataclass(frozen=True)
class VideoIdentity:
    """What identifies a video's content: its absolute path with size and modification time, or its bytes' hash."""

    video: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, source: Any) -> VideoIdentity:
        """The identity of a path or embedded bytes as they are now.

        Raises:
            OSError: the path cannot be stat'ed (e.g. it does not exist).
            TypeError: the source is neither a path nor bytes.
        """
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            return cls(video="sha256:" + hashlib.sha256(data).hexdigest(), size=len(data), mtime_ns=0)
        if isinstance(source, (str, os.PathLike)):
            path = os.path.abspath(os.fspath(source))
            stat = os.stat(path)
            return cls(video=path, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        raise TypeError(f"a frame cache stores videos given as a path or bytes, got {type(source).__name__}")

    def key(self, sampling: Mapping[str, Any]) -> str:
        """The entry key: a hash of this identity and the sampling settings."""
        text = json.dumps([self.video, self.size, self.mtime_ns, dict(sorted(sampling.items()))])
        return hashlib.sha256(text.encode()).hexdigest()


def video_source(video: Any) -> Any:
    """A dataset row's video as a path or bytes: a ``{"path", "bytes"}`` dict (``datasets.Video(decode=False)``)
    gives its embedded bytes, else its path."""
    if isinstance(video, Mapping):
        return video.get("bytes") or video.get("path")
    return video


# ------------------------------------------------------------------------------------------------ the format


def _read_info(directory: Path) -> dict[str, Any] | None:
    path = directory / CACHE_INFO
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable frame cache description ({err})") from err
    if info.get("layout_version") != LAYOUT_VERSION or info.get("format") not in CACHE_FORMATS:
        raise ValueError(
            f"{path}: frame cache layout {info.get('layout_version')!r} / format {info.get('format')!r} is not "
            f"one this version reads (layout {LAYOUT_VERSION}, formats {CACHE_FORMATS}); use a new folder"
        )
    return info


def _shard_schema(format: str) -> pa.Schema:
    frames = pa.large_binary() if format == "raw" else pa.list_(pa.binary())
    return pa.schema(
        [
            ("key", pa.string()),
            ("video", pa.string()),
            ("size", pa.int64()),
            ("mtime_ns", pa.int64()),
            ("sampling", pa.string()),
            ("num_frames", pa.int32()),
            ("image_size", pa.int32()),
            ("frames", frames),
        ]
    )


def encode_jpeg(frames: np.ndarray, quality: int) -> list[bytes]:
    """JPEG files (4:4:4, no chroma subsampling) of uint8 frames [n, 3, S, S]."""
    from PIL import Image

    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame.transpose(1, 2, 0))).save(
            buffer, format="JPEG", quality=quality, subsampling=0
        )
        encoded.append(buffer.getvalue())
    return encoded


def decode_jpeg(images: list[bytes], image_size: int) -> torch.Tensor:
    """uint8 frames [n, 3, S, S] from the JPEG files :func:`encode_jpeg` wrote."""
    from PIL import Image

    out = np.empty((len(images), 3, image_size, image_size), dtype=np.uint8)
    for i, data in enumerate(images):
        with Image.open(io.BytesIO(data)) as image:
            out[i] = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
    return torch.from_numpy(out)


# ----------------------------------------------------------------------------------------------- reading


class FrameCache:
    """Read access to a frame cache folder (see the module docstring).

    The folder's complete shards are memory-mapped and indexed when the object is made; shards added later are
    seen after :meth:`refresh`.

    Args:
        directory: the cache folder, as written by :func:`cache_frames`.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        info = _read_info(self.directory)
        if info is None:
            raise FileNotFoundError(f"{self.directory}: no frame cache here (no {CACHE_INFO}); cache_frames builds one")
        self.format: str = info["format"]
        self.jpeg_quality: int | None = info.get("jpeg_quality")
        self._tables: list[pa.Table] = []
        self._index: dict[str, tuple[int, int]] = {}
        self._shard_names: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        """Index the shards completed since this object was made (or last refreshed)."""
        for path in sorted(self.directory.glob(f"shard-*{SHARD_SUFFIX}")):
            if path.name in self._shard_names:
                continue
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_stream(source).read_all()
            self._shard_names.add(path.name)
            self._tables.append(table)
            shard = len(self._tables) - 1
            for row, key in enumerate(table.column("key").to_pylist()):
                self._index.setdefault(key, (shard, row))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    @property
    def shard_paths(self) -> list[Path]:
        """The complete shards, sorted by name."""
        return [self.directory / name for name in sorted(self._shard_names)]

    def frames(self, source: Any, sampling: Mapping[str, Any]) -> torch.Tensor | None:
        """The cached frames of a video for these sampling settings, or None when there is no valid entry.

        Args:
            source: a path, embedded bytes or a ``{"path", "bytes"}`` dict.
            sampling: :func:`sampling_settings` of the processor that will normalise the frames.

        Returns:
            uint8 [n, 3, S, S], or None when the video is not cached with these settings, has changed since, or
            cannot be stat'ed (decoding it then reports why).
        """
        try:
            key = VideoIdentity.of(video_source(source)).key(sampling)
        except (OSError, TypeError):
            return None
        return self.frames_for_key(key)

    def frames_for_key(self, key: str) -> torch.Tensor | None:
        """The frames stored under an entry key, or None."""
        location = self._index.get(key)
        if location is None:
            return None
        shard, row = location
        table = self._tables[shard]
        count = table.column("num_frames")[row].as_py()
        size = table.column("image_size")[row].as_py()
        if self.format == "jpeg":
            return decode_jpeg(table.column("frames")[row].as_py(), size)
        buffer = table.column("frames")[row].as_buffer()
        # A copy: the tensor outlives no memory map and may be written to by the caller.
        array = np.frombuffer(buffer, dtype=np.uint8).reshape(count, 3, size, size).copy()
        return torch.from_numpy(array)


# One open FrameCache per folder and process (each DataLoader worker opens its own on first use).
_OPEN_CACHES: dict[str, FrameCache] = {}


def open_frame_cache(directory: str | os.PathLike) -> FrameCache:
    """The process's FrameCache of a folder, opened on first use."""
    key = os.path.abspath(os.fspath(directory))
    cache = _OPEN_CACHES.get(key)
    if cache is None:
        cache = _OPEN_CACHES[key] = FrameCache(key)
    return cache


def load_cached_video(processor: Any, source: Any, cache_dir: str | os.PathLike | None, name: str = "video") -> Any:
    """``processor.load_video`` of a video, from its cached frames when the cache holds a valid entry.

    A video the cache lacks (or holds for other settings, or that changed since) is decoded as without a cache, so
    the result never depends on the cache's state: raw-cached frames normalise to exactly the decoded values.
    """
    if cache_dir is not None:
        frames = open_frame_cache(cache_dir).frames(source, sampling_settings(processor))
        if frames is not None:
            return processor.load_video(frames, name=name)
        logger.debug("frame cache %s: no entry for %s, decoding it", cache_dir, name)
    return processor.load_video(video_source(source), name=name)


# ----------------------------------------------------------------------------------------------- writing


class _ShardWriter:
    """Collects entries and writes them as complete shards: a temporary file, renamed when closed."""

    def __init__(self, directory: Path, format: str, shard_videos: int):
        self.directory = directory
        self.schema = _shard_schema(format)
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


def _prepare_directory(directory: Path, format: str, jpeg_quality: int) -> None:
    """Create the folder and its description, or check that an existing cache has the same format."""
    directory.mkdir(parents=True, exist_ok=True)
    info = _read_info(directory)
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
    _OPEN_CACHES.pop(str(directory), None)  # this process reopens it with the new shards
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
            if job.name in str(error):
                raise error
            raise type(error)(f"{job.name}: {error}") from error
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
