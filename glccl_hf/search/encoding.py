"""Decode video files into segments (in DataLoader workers) and encode them with the model in batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import av
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..modeling.checks import positive_int
from ..modeling.modeling_glccl import GLCCLModel
from ..processing import GLCCLProcessor
from .segments import VideoFile, iter_segments

# What a bad file raises while it is decoded; anything else is a bug and propagates.
_FILE_ERRORS = (ValueError, OSError, EOFError, RuntimeError, av.FFmpegError)


def _reason(err: BaseException, name: str) -> str:
    """The error's message without the file name it starts with (the report pairs it with the name)."""
    message = str(err) or type(err).__name__
    return message[len(name) + 2 :] if message.startswith(f"{name}: ") else message


class _SegmentStream(IterableDataset):
    """Yields `("segment", file, start, end, times, pixel_values, video_mask)` per segment, then `("done", file,
    count)` per file, or `("failed", file, reason)`; worker w of W takes files w, w + W, ..."""

    def __init__(self, files: Sequence[VideoFile], processor: GLCCLProcessor, segment_seconds: float) -> None:
        self.files = files
        self.processor = processor
        self.segment_seconds = segment_seconds

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        worker = get_worker_info()
        share = range(len(self.files)) if worker is None else range(worker.id, len(self.files), worker.num_workers)
        processor = self.processor
        for index in share:
            video = self.files[index]
            count = 0
            try:
                segments = iter_segments(video, self.segment_seconds, processor.sample_fps, processor.max_frames)
                for segment in segments:
                    pixel_values, video_mask = processor.load_video(segment.frames, name=video.name)
                    yield ("segment", index, segment.start, segment.end, segment.times, pixel_values, video_mask)
                    count += 1
            except _FILE_ERRORS as err:
                yield ("failed", index, _reason(err, video.name))
                continue
            yield ("done", index, count)


# One encoded segment: (start, end, frame times, frame_embeds [frames, dim], video_mask [frames]).
Segment = tuple[float, float, list[float], torch.Tensor, torch.Tensor]


@dataclass
class EncodedBatch:
    """Videos whose every segment is encoded (ready to commit as one shard) and files that failed."""

    files: list[VideoFile] = field(default_factory=list)
    segments: list[list[Segment]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def videos(self) -> list[str]:
        return [video.name for video in self.files]

    @property
    def num_segments(self) -> int:
        return sum(len(parts) for parts in self.segments)

    def shard(self) -> tuple[dict[str, list[Any]], torch.Tensor, torch.Tensor]:
        """The batch as shard rows, `frame_embeds` `[segments, frames, dim]` and `video_mask` `[segments, frames]`."""
        rows: dict[str, list[Any]] = {
            name: [] for name in ("video", "start", "end", "num_frames", "frame_times", "file_size", "file_mtime_ns")
        }
        embeds, masks = [], []
        for video, parts in zip(self.files, self.segments, strict=True):
            for start, end, times, frame_embeds, video_mask in parts:
                rows["video"].append(video.name)
                rows["start"].append(start)
                rows["end"].append(end)
                rows["num_frames"].append(int(video_mask.sum()))
                rows["frame_times"].append(times)
                rows["file_size"].append(video.size)
                rows["file_mtime_ns"].append(video.mtime_ns)
                embeds.append(frame_embeds)
                masks.append(video_mask)
        return rows, torch.stack(embeds), torch.stack(masks)


class _Assembler:
    """Gathers the stream's segments into forward passes and each file's encoded segments until the file is
    complete (its "done" count reached); a file that fails is dropped, whatever of it was encoded."""

    def __init__(self, files: Sequence[VideoFile], model: GLCCLModel, device: torch.device) -> None:
        self.files = files
        self.model = model
        self.device = device
        self.dtype = next(model.parameters()).dtype
        self.pending: list[tuple[int, float, float, list[float], torch.Tensor, torch.Tensor]] = []
        self.encoded: dict[int, list[Segment]] = {}
        self.expected: dict[int, int] = {}
        self.failed: set[int] = set()
        self.out = EncodedBatch()

    def take(self, item: tuple[Any, ...]) -> int:
        """Record one item of the stream; returns the number of segments waiting for a forward pass."""
        kind, index = item[0], item[1]
        if kind == "segment":
            self.pending.append((index, *item[2:]))
        elif kind == "done":
            self.expected[index] = item[2]
        else:
            self.failed.add(index)
            self.encoded.pop(index, None)
            self.out.failed.append((self.files[index].name, item[2]))
        return len(self.pending)

    @torch.no_grad()
    def encode_pending(self) -> None:
        """One forward pass over the waiting segments."""
        if not self.pending:
            return
        pixel_values = torch.stack([item[4] for item in self.pending]).to(self.device, dtype=self.dtype)
        video_mask = torch.stack([item[5] for item in self.pending])
        features = self.model.get_video_features(pixel_values, video_mask.to(self.device))
        frame_embeds = features.frame_embeds.float().cpu()
        for j, (index, start, end, times, _, mask) in enumerate(self.pending):
            if index not in self.failed:
                self.encoded.setdefault(index, []).append((start, end, times, frame_embeds[j], mask))
        self.pending.clear()

    def complete(self) -> EncodedBatch:
        """The files completed and failed since the last call."""
        for index in [i for i, count in self.expected.items() if len(self.encoded.get(i, [])) == count]:
            self.out.files.append(self.files[index])
            self.out.segments.append(self.encoded.pop(index))
            del self.expected[index]
        batch, self.out = self.out, EncodedBatch()
        return batch


def encode_files(
    files: Sequence[VideoFile],
    model: GLCCLModel,
    processor: GLCCLProcessor,
    segment_seconds: float,
    *,
    batch_size: int,
    num_workers: int,
    device: torch.device,
) -> Iterator[EncodedBatch]:
    """Encode every segment of `files`, `batch_size` segments per forward pass; after each pass, yield the videos
    it completed and the files that failed since the last yield."""
    positive_int("batch_size", batch_size)
    positive_int("num_workers", num_workers, minimum=0)
    if not files:
        return
    loader = DataLoader(
        _SegmentStream(files, processor, segment_seconds), batch_size=None, num_workers=min(num_workers, len(files))
    )
    assembler = _Assembler(files, model, device)
    was_training = model.training
    model.eval()
    try:
        for item in loader:
            if assembler.take(item) >= batch_size:
                assembler.encode_pending()
                yield assembler.complete()
        assembler.encode_pending()
        yield assembler.complete()
    finally:
        model.train(was_training)
