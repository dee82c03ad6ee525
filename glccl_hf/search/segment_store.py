"""The segments one manifest describes, read from disk: their metadata in memory and their features memory-mapped.

A `SegmentStore` is a snapshot of one manifest generation; a writer that commits a new manifest opens a new store.
Segment ids are `shard.first_id + row`; removed segments keep their id (and bytes) until `compact`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from ..modeling.modeling_glccl import GLCCLVideoFeatures
from . import cascade, storage

# Indexed videos: name -> (file size, modification time ns, live segment ids).
Registry = dict[str, tuple[int, int, list[int]]]


class SegmentStore:
    """Every segment of one manifest: `live` `[segments]` bool, and per segment its `video`, `start`, `end` and
    `num_frames`; features are read on demand, as float32 on `device`."""

    def __init__(self, root: Path, manifest: dict[str, Any], device: torch.device) -> None:
        self.root = root
        self.manifest = manifest
        self.device = device
        frames, dim = manifest["frames"], manifest["dim"]
        self.shards = [storage.open_shard(root, entry, frames, dim) for entry in manifest["shards"]]
        self.first_ids = np.array([shard.first_id for shard in self.shards], dtype=np.int64)
        total = manifest["next_id"]
        self.live = np.zeros(total, dtype=bool)
        self.video = np.empty(total, dtype=object)
        self.start = np.zeros(total)
        self.end = np.zeros(total)
        self.num_frames = np.zeros(total, dtype=np.int64)
        for shard in self.shards:
            rows = slice(shard.first_id, shard.first_id + len(shard))
            self.live[rows] = True
            self.video[rows] = shard.table.column("video").to_numpy(zero_copy_only=False)
            self.start[rows] = shard.table.column("start").to_numpy()
            self.end[rows] = shard.table.column("end").to_numpy()
            self.num_frames[rows] = shard.table.column("num_frames").to_numpy()
        self.live[np.asarray(manifest["removed"], dtype=np.int64)] = False
        if manifest["ann"]:
            storage.check_file_size(root / manifest["ann"]["file"], manifest["ann"]["bytes"])
        # Read on the first search: writers commit often and need neither.
        self._ann: Any = None
        self._tail: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.live.sum())

    def live_ids(self) -> np.ndarray:
        """Ids of the live segments, ascending."""
        return np.flatnonzero(self.live)

    def check_live(self, segment_id: int) -> None:
        if not (0 <= segment_id < len(self.live)) or not self.live[segment_id]:
            raise KeyError(f"segment {segment_id} is not in the index")

    # ------------------------------------------------------------------------------------------------ reading

    def _locate(self, ids: np.ndarray) -> np.ndarray:
        """The shard of each segment id."""
        return np.searchsorted(self.first_ids, ids, side="right") - 1

    def _gather(self, ids: np.ndarray) -> np.ndarray:
        """Stored frame features of segments `ids` `[n, frames, dim]`, in the order of `ids`, as float32."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((len(ids), self.manifest["frames"], self.manifest["dim"]), dtype=np.float32)
        if len(ids) == 0:
            return out
        shard_of = self._locate(ids)
        for s in np.unique(shard_of):
            where = np.flatnonzero(shard_of == s)
            rows = ids[where] - self.first_ids[s]
            order = np.argsort(rows)  # ascending rows read a memory map front to back
            out[where[order]] = self.shards[s].frame_embeds[rows[order]]
        return out

    def features(self, ids: np.ndarray) -> GLCCLVideoFeatures:
        """Stored features of segments `ids`: `frame_embeds` `[n, frames, dim]` float32, `video_mask` `[n, frames]`."""
        frame_embeds = torch.from_numpy(self._gather(ids)).to(self.device)
        counts = torch.from_numpy(self.num_frames[ids])
        video_mask = (torch.arange(self.manifest["frames"])[None, :] < counts[:, None]).long().to(self.device)
        return GLCCLVideoFeatures(frame_embeds=frame_embeds, video_mask=video_mask)

    def rows(self, ids: np.ndarray) -> dict[str, list[Any]]:
        """Metadata rows (`storage.SEGMENT_SCHEMA`) of segments `ids`, in that order."""
        parts = []
        shard_of = self._locate(ids)
        for s in np.unique(shard_of):
            rows = ids[shard_of == s] - self.first_ids[s]
            parts.append(self.shards[s].table.take(rows))
        return pa.concat_tables(parts).to_pydict() if parts else {name: [] for name in storage.SEGMENT_SCHEMA.names}

    def frame_times(self, segment_id: int) -> list[float]:
        """Sampling times (seconds in the video) of a segment's frames, in frame order."""
        shard = self.shards[int(self._locate(np.array([segment_id]))[0])]
        return shard.table.column("frame_times")[segment_id - shard.first_id].as_py()

    def registry(self) -> Registry:
        """Indexed videos: name -> (file size, modification time ns, live segment ids)."""
        registry: Registry = {}
        for shard in self.shards:
            columns = shard.table.select(["video", "file_size", "file_mtime_ns"]).to_pydict()
            for row, (name, size, mtime) in enumerate(
                zip(columns["video"], columns["file_size"], columns["file_mtime_ns"], strict=True)
            ):
                segment_id = shard.first_id + row
                if self.live[segment_id]:
                    registry.setdefault(name, (size, mtime, []))[2].append(segment_id)
        return registry

    # ------------------------------------------------------------------------------------- stage-1 vectors

    def frame_chunks(self, ids: np.ndarray, chunk: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stage-1 frame vectors of segments `ids` in chunks: `(vectors [n, dim] float32, segment id of each)`."""
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            features = self.features(part)
            vectors, rows = cascade.frame_vectors(features.frame_embeds, features.video_mask)
            yield vectors, part[rows].astype(np.int64)

    def ann(self) -> Any:
        """The IVF-PQ frame index, read once (None below the threshold)."""
        if self._ann is None and self.manifest["ann"]:
            self._ann = cascade.read_ann(self.root / self.manifest["ann"]["file"])
        return self._ann

    def tail_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """Frame vectors and their segment ids of the live segments not in the IVF-PQ index (all of them below the
        threshold), computed once from the stored features."""
        if self._tail is None:
            covered = self.manifest["ann"]["covered"] if self.manifest["ann"] else 0
            tail = np.flatnonzero(self.live[covered:]) + covered
            chunks = list(self.frame_chunks(tail))
            vectors = np.concatenate([v for v, _ in chunks]) if chunks else np.empty((0, self.manifest["dim"]), "f4")
            owners = np.concatenate([o for _, o in chunks]) if chunks else np.empty(0, np.int64)
            self._tail = (vectors, owners)
        return self._tail


def segments_of(registry: Registry, videos: Iterable[str | os.PathLike]) -> list[int]:
    """Live segment ids of `videos`, each given by its name as indexed, its path, or a folder (every video under it)."""
    registry = dict(registry)
    ids: list[int] = []
    for video in videos:
        name = os.fspath(video)
        path = os.path.abspath(name)
        matches = [name] if name in registry else []
        if not matches:
            matches = [v for v in registry if v == path or v.startswith(path.rstrip(os.sep) + os.sep)]
        for match in matches:
            ids += registry.pop(match)[2]
    return ids
