"""The frame cache's folder layout, its entry keys, and reading frames back.

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
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ..schema import video_source

logger = logging.getLogger(__name__)

FRAME_CACHE_COLUMN = "frame_cache"
CACHE_FORMATS: tuple[str, ...] = ("raw", "jpeg")
CACHE_INFO = "cache_info.json"
# Version of the folder layout above; a folder of another version is refused rather than misread.
LAYOUT_VERSION = 1
SHARD_SUFFIX = ".arrow"


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


# ------------------------------------------------------------------------------------------------- the format


def read_cache_info(directory: Path) -> dict[str, Any] | None:
    """The folder's ``cache_info.json``, or None when it has none.

    Raises:
        ValueError: the description is unreadable, or of a layout version or format this version does not read.
    """
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


def shard_schema(format: str) -> pa.Schema:
    """The Arrow schema of a shard: one row per video, its frames raw (one binary) or as one JPEG per frame."""
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


def decode_jpeg(images: list[bytes], image_size: int) -> torch.Tensor:
    """uint8 frames [frames, 3, S, S] from the JPEG files the writer's ``encode_jpeg`` stored."""
    from PIL import Image

    out = np.empty((len(images), 3, image_size, image_size), dtype=np.uint8)
    for i, data in enumerate(images):
        with Image.open(io.BytesIO(data)) as image:
            out[i] = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
    return torch.from_numpy(out)


# ---------------------------------------------------------------------------------------------------- reading


class FrameCache:
    """Read access to a frame cache folder (see the module docstring).

    The folder's complete shards are memory-mapped and indexed when the object is made; shards added later are
    seen after :meth:`refresh`.

    Args:
        directory: the cache folder, as written by :func:`glccl_hf.data.cache_frames`.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        info = read_cache_info(self.directory)
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
            uint8 [frames, 3, S, S], or None when the video is not cached with these settings, has changed since, or
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


def forget_frame_cache(directory: str | os.PathLike) -> None:
    """Drop the process's open FrameCache of a folder, so that its next use reopens it with the shards added since."""
    _OPEN_CACHES.pop(os.path.abspath(os.fspath(directory)), None)


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
