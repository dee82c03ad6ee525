"""Adding segments to an index: which videos need encoding, encoded batches turned into committed shards (one commit
per batch, so a killed run loses at most that batch), the multi-process share of that work, and precomputed
features checked into shard rows."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..video import sample_timestamps
from .encoding import EncodedBatch
from .segment_store import Registry
from .segments import VideoFile
from .writer import IndexWriter


@dataclass
class AddReport:
    """What `VideoIndex.add` did: videos indexed (new or changed), videos already indexed unchanged, and
    `(path, reason)` for every source that could not be indexed."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    segments: int = 0

    def record(self, batch: EncodedBatch) -> None:
        """Count an encoded batch: its completed videos, their segments, and the files that failed."""
        self.added += batch.videos
        self.failed += batch.failed
        self.segments += batch.num_segments

    def merge(self, other: AddReport) -> None:
        """Count another process's share of the work."""
        self.added += other.added
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.segments += other.segments


def distributed() -> tuple[int, int]:
    """(rank, world size) of a torchrun / accelerate launch; the process group is started here when the launcher
    set the environment but nobody initialised it."""
    dist = torch.distributed
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return 0, 1
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def changed_files(files: Sequence[VideoFile], registry: Registry, report: AddReport) -> list[VideoFile]:
    """The files to encode: new ones and those whose size or modification time changed since they were indexed;
    the others are recorded as unchanged in `report`."""
    todo = []
    for video in files:
        known = registry.get(video.name)
        if known is not None and known[0] == video.size and known[1] == video.mtime_ns:
            report.unchanged.append(video.name)
        else:
            todo.append(video)
    return todo


def replaced_ids(videos: Iterable[str], registry: Registry) -> list[int]:
    """Segment ids of the earlier versions of `videos` (re-indexed videos replace their old segments)."""
    return [i for name in videos for i in registry.get(name, (0, 0, []))[2]]


def progress_bar(total: int, rank: int, world: int, enabled: bool) -> tqdm:
    """Videos done by this process; under a launch only the main process shows its bar."""
    desc = "Indexing videos" if world == 1 else f"Indexing videos (rank {rank})"
    return tqdm(total=total, desc=desc, unit="video", disable=not enabled or rank != 0)


def commit_batches(
    writer: IndexWriter, batches: Iterable[EncodedBatch], registry: Registry, report: AddReport, bar: tqdm
) -> None:
    """One process: each batch's completed videos become a shard, committed at once."""
    for sequence, batch in enumerate(batches):
        if batch.videos:
            rows, frame_embeds, _ = batch.shard()
            entry = writer.write_shard(0, sequence, rows, frame_embeds)
            writer.append([entry], replaced_ids(batch.videos, registry))
            writer.commit()
        report.record(batch)
        bar.update(len(batch.videos) + len(batch.failed))


def write_batches(
    writer: IndexWriter, rank: int, batches: Iterable[EncodedBatch], bar: tqdm
) -> tuple[list[dict[str, Any]], AddReport]:
    """One process of a launch: each batch's completed videos become a shard of this rank, left for rank 0 to
    commit; returns their manifest entries and this share's report."""
    entries, report = [], AddReport()
    for sequence, batch in enumerate(batches):
        if batch.videos:
            rows, frame_embeds, _ = batch.shard()
            entries.append(writer.write_shard(rank, sequence, rows, frame_embeds))
        report.record(batch)
        bar.update(len(batch.videos) + len(batch.failed))
    return entries, report


def gather(entries: list[dict[str, Any]], report: AddReport, world: int) -> list[tuple[list[dict], AddReport]]:
    """Every rank's `(shard entries, report)`, on every rank."""
    gathered: list[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, (entries, report))
    return gathered


# ---------------------------------------------------------------------------------------- precomputed features


def default_times(sampling: dict[str, Any], start: float, end: float, num_frames: int) -> list[float]:
    """The times the processor samples in `[start, end)`, or `num_frames` evenly spaced ones if it samples more."""
    times = sample_timestamps(max(end - start, 0.0), sampling["max_frames"], sampling["sample_fps"])
    if len(times) != num_frames:
        times = np.linspace(0.0, max(end - start, 0.0), num_frames, endpoint=False).tolist()
    return [start + t for t in times]


def feature_rows(
    manifest: dict[str, Any],
    frame_embeds: torch.Tensor,
    video_mask: torch.Tensor,
    videos: Sequence[str],
    starts: Sequence[float],
    ends: Sequence[float],
    frame_times: Sequence[Sequence[float]] | None,
) -> dict[str, list[Any]]:
    """Shard rows of precomputed segments (see `VideoIndex.add_features`), after checking the shapes against the
    index's and the mask's form (the real frames first)."""
    frames, dim = manifest["frames"], manifest["dim"]
    if frame_embeds.ndim != 3 or tuple(frame_embeds.shape[1:]) != (frames, dim):
        raise ValueError(f"frame_embeds must be [segments, {frames}, {dim}], got {list(frame_embeds.shape)}")
    count = frame_embeds.shape[0]
    if tuple(video_mask.shape) != (count, frames):
        raise ValueError(f"video_mask must be [{count}, {frames}], got {list(video_mask.shape)}")
    mask = video_mask.bool()
    prefix = torch.arange(frames)[None, :] < mask.sum(1, keepdim=True)
    if not bool((mask == prefix).all()) or not bool(mask[:, 0].all()):
        raise ValueError("video_mask must mark at least one frame per segment, the real frames first")
    for name, values in (("videos", videos), ("starts", starts), ("ends", ends)):
        if len(values) != count:
            raise ValueError(f"{name} has {len(values)} entries for {count} segments")
    num_frames = video_mask.sum(1).tolist()
    if frame_times is None:
        sampling = manifest["sampling"]
        frame_times = [default_times(sampling, s, e, n) for s, e, n in zip(starts, ends, num_frames, strict=True)]
    return {
        "video": [str(v) for v in videos],
        "start": [float(s) for s in starts],
        "end": [float(e) for e in ends],
        "num_frames": num_frames,
        "frame_times": [list(map(float, t)) for t in frame_times],
        "file_size": [-1] * count,  # not from a file: a later add() of the same path replaces these segments
        "file_mtime_ns": [-1] * count,
    }
