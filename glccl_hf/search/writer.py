"""Changing an index safely: one writer at a time (a file lock across processes), shards written beside the index,
and a change made visible only when its new manifest is renamed into place (the commit)."""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import storage

LOCK_FILE = ".lock"


@contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Exclusive write access to the index in `root`, across processes; a second writer fails at once."""
    with open(root / LOCK_FILE, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise RuntimeError(f"{root} is being modified by another process") from err
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class IndexWriter:
    """The manifest a writer is building: shards join it with `append`, and `commit` publishes it.

    `on_commit(manifest)` runs after each commit (the index reopens its segments there). Under a multi-process launch
    every process writes its own shards with a writer of its own, and only the lock holder appends and commits.
    """

    def __init__(self, root: Path, manifest: dict[str, Any], on_commit: Callable[[dict[str, Any]], None]) -> None:
        self.root = root
        self.manifest = manifest
        self.on_commit = on_commit

    def write_shard(
        self, rank: int, sequence: int, rows: dict[str, list[Any]], frame_embeds: torch.Tensor
    ) -> dict[str, Any]:
        """Write the shard `sequence` of process `rank` (not yet part of the index); returns its manifest entry.
        Names start with the generation being written, so no two writers' names collide."""
        name = f"{self.manifest['generation'] + 1:08d}-r{rank:03d}-{sequence:06d}"
        return storage.write_shard(self.root, name, rows, frame_embeds.float().cpu().numpy().astype(np.float16))

    def append(self, entries: list[dict[str, Any]], replaced: list[int]) -> int:
        """Give the shards their ids and hide the replaced segments (in the manifest only); returns the first id."""
        manifest = self.manifest
        first = manifest["next_id"]
        for entry in entries:
            entry["first_id"] = manifest["next_id"]
            manifest["next_id"] += entry["segments"]
            manifest["shards"].append(entry)
        manifest["removed"] = sorted(set(manifest["removed"]) | set(replaced))
        return first

    def commit(self) -> None:
        """Publish the manifest (the next generation) in one rename."""
        self.manifest["generation"] += 1
        storage.write_manifest(self.root, self.manifest)
        self.on_commit(self.manifest)

    def remove_unreferenced(self) -> None:
        """Delete what a killed writer or a replaced generation left behind."""
        storage.remove_unreferenced(self.root, self.manifest)
