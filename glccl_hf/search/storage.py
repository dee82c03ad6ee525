"""On-disk layout of a video index: a manifest and append-only shards, every file written beside its final name and
renamed into place, the manifest last.

    INDEX/
      manifest.json               format version, model identity, sampling settings, the shard list, removed ids
      shards/NAME.parquet         one row per segment: video, start, end, num_frames, frame_times, file size/mtime
      shards/NAME.frames.npy      float16 [segments, frames, dim]: per-frame features after the temporal module
      ann-GEN.faiss               IVF-PQ over the normalised frame features (only above `ann_threshold` segments)
      processor/                  the processor the index samples and tokenizes with (written by model_setup)

Segment ids are `shard.first_id + row`; a shard joins the index when a manifest naming it is renamed into place, so a
killed writer leaves at most unreferenced files, which the next writer deletes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARDS_DIR = "shards"
SHARD_SUFFIXES = (".parquet", ".frames.npy")

# Config entries that name or date a checkpoint without changing what it computes.
_VOLATILE_CONFIG_KEYS = frozenset(
    {"transformers_version", "architectures", "auto_map", "dtype", "torch_dtype", "name_or_path"}
)

SEGMENT_SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("num_frames", pa.int16()),
        ("frame_times", pa.list_(pa.float32())),
        ("file_size", pa.int64()),
        ("file_mtime_ns", pa.int64()),
    ]
)


class IndexFormatError(ValueError):
    """A file of the index is missing, truncated or corrupt; the message names it."""


class ModelMismatchError(ValueError):
    """The index was built with another model (or other sampling settings) than the one given."""


def _clean_config(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _clean_config(item)
            for key, item in value.items()
            if not str(key).startswith("_") and key not in _VOLATILE_CONFIG_KEYS
        }
    return value


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the model's configuration and of every weight's name, dtype, shape and bytes: two models with the
    same fingerprint give the same features and scores."""
    digest = hashlib.sha256()
    config = _clean_config(model.config.to_dict())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Persist a rename in `path` (POSIX: the directory entry is data of the directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: Path, write: Any) -> int:
    """Call `write(file_object)` on a temporary file beside `path`, fsync it and rename it into place; returns the
    file's size. A crash leaves either the old file or the new one, never a mix."""
    tmp = _temporary(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path.stat().st_size


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{root} is not a video index: {MANIFEST} not found (create one with VideoIndex.create)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise IndexFormatError(f"{path}: corrupt or truncated manifest ({err})") from err
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise IndexFormatError(f"{path}: not a video index manifest (no format_version)")
    if manifest["format_version"] != FORMAT_VERSION:
        raise IndexFormatError(
            f"{path}: format version {manifest['format_version']} is not supported (this glccl-hf reads "
            f"{FORMAT_VERSION}); re-index the videos into a new folder"
        )
    return manifest


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """The commit point of every change: the new manifest replaces the old one in one rename."""
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    atomic_write(root / MANIFEST, lambda handle: handle.write(text))
    fsync_dir(root)


def write_shard(
    root: Path,
    name: str,
    rows: dict[str, list[Any]],
    frame_embeds: np.ndarray,
) -> dict[str, Any]:
    """Write one shard's three files (not yet part of the index); returns its manifest entry without `first_id`.

    Args:
        rows: the SEGMENT_SCHEMA columns, one entry per segment.
        frame_embeds: float16 `[segments, frames, dim]`.
    """
    directory = root / SHARDS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    count = len(rows["video"])
    if frame_embeds.shape[0] != count:
        raise ValueError(f"shard {name}: {count} rows but {frame_embeds.shape[0]} feature rows")
    table = pa.table(rows, schema=SEGMENT_SCHEMA)
    sizes = {
        ".parquet": atomic_write(directory / f"{name}.parquet", lambda handle: pq.write_table(table, handle)),
        ".frames.npy": atomic_write(
            directory / f"{name}.frames.npy", lambda handle: np.save(handle, frame_embeds.astype(np.float16))
        ),
    }
    fsync_dir(directory)
    return {"name": name, "segments": count, "bytes": sizes}


@dataclass
class Shard:
    """One shard opened for reading: metadata in memory, features memory-mapped."""

    name: str
    first_id: int
    table: pa.Table
    frame_embeds: np.ndarray  # float16 [segments, frames, dim], memory-mapped

    def __len__(self) -> int:
        return self.table.num_rows


def _load_array(path: Path, expected_bytes: int, shape: tuple[int, ...]) -> np.ndarray:
    check_file_size(path, expected_bytes)
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as err:
        raise IndexFormatError(f"{path}: corrupt or truncated feature file ({err})") from err
    if array.dtype != np.float16 or array.shape != shape:
        raise IndexFormatError(f"{path}: expected float16 {list(shape)}, found {array.dtype} {list(array.shape)}")
    return array


def check_file_size(path: Path, expected_bytes: int) -> None:
    if not path.is_file():
        raise IndexFormatError(f"{path}: missing index file (the manifest lists it)")
    size = path.stat().st_size
    if size != expected_bytes:
        raise IndexFormatError(
            f"{path}: truncated or overwritten: {size} bytes, the manifest recorded {expected_bytes}"
        )


def open_shard(root: Path, entry: dict[str, Any], frames: int, dim: int) -> Shard:
    """Open the shard a manifest entry names, checking every file's size and shape; errors name the file."""
    directory = root / SHARDS_DIR
    name, count = entry["name"], entry["segments"]
    parquet_path = directory / f"{name}.parquet"
    check_file_size(parquet_path, entry["bytes"][".parquet"])
    try:
        table = pq.read_table(parquet_path)
    except (pa.ArrowException, OSError) as err:
        raise IndexFormatError(f"{parquet_path}: corrupt segment metadata ({err})") from err
    if table.num_rows != count or not table.schema.equals(SEGMENT_SCHEMA):
        raise IndexFormatError(f"{parquet_path}: expected {count} segment rows with the index's columns")
    frame_embeds = _load_array(directory / f"{name}.frames.npy", entry["bytes"][".frames.npy"], (count, frames, dim))
    return Shard(name, entry["first_id"], table, frame_embeds)


def referenced_files(manifest: dict[str, Any]) -> set[str]:
    """Paths (relative to the index root) of every file the manifest uses."""
    files = {MANIFEST}
    for entry in manifest["shards"]:
        files.update(f"{SHARDS_DIR}/{entry['name']}{suffix}" for suffix in SHARD_SUFFIXES)
    if manifest.get("ann"):
        files.add(manifest["ann"]["file"])
    return files


def remove_unreferenced(root: Path, manifest: dict[str, Any]) -> int:
    """Delete files a killed writer or a replaced generation left behind; returns how many were deleted."""
    keep = referenced_files(manifest)
    removed = 0
    for path in [*root.glob("ann-*.faiss"), *root.glob(".*.tmp-*"), *(root / SHARDS_DIR).glob("*")]:
        if path.is_file() and path.relative_to(root).as_posix() not in keep:
            path.unlink()
            removed += 1
    return removed


def disk_usage(root: Path, manifest: dict[str, Any]) -> dict[str, int]:
    """Bytes on disk per kind of file the manifest references."""
    usage = {"metadata": 0, "frame_features": 0, "ann_index": 0, "manifest": 0}
    kinds = {".parquet": "metadata", ".frames.npy": "frame_features"}
    for entry in manifest["shards"]:
        for suffix, size in entry["bytes"].items():
            usage[kinds[suffix]] += size
    if manifest.get("ann"):
        usage["ann_index"] = manifest["ann"]["bytes"]
    usage["manifest"] = (root / MANIFEST).stat().st_size
    return usage
