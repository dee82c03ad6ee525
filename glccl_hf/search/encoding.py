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


@dataclass
class EncodedBatch:
    """Videos whose every segment is encoded (ready to commit as one shard) and files that failed."""

    files: list[VideoFile] = field(default_factory=list)
    segments: list[list[tuple[float, float, list[float], torch.Tensor, torch.Tensor]]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def videos(self) -> list[str]:
        return [video.name for video in self.files]

    @property
    def num_segments(self) -> int:
        return sum(len(parts) for parts in self.segments)

    def shard(self) -> tuple[dict[str, list[Any]], torch.Tensor, torch.Tensor]:
        """The batch as shard rows, `frame_embeds` `[segments, frames, dim]` and `frame_mask` `[segments, frames]`."""
        rows: dict[str, list[Any]] = {
            name: [] for name in ("video", "start", "end", "num_frames", "frame_times", "file_size", "file_mtime_ns")
        }
        embeds, masks = [], []
        for video, parts in zip(self.files, self.segments, strict=True):
            for start, end, times, frame_embeds, frame_mask in parts:
                rows["video"].append(video.name)
                rows["start"].append(start)
                rows["end"].append(end)
                rows["num_frames"].append(int(frame_mask.sum()))
                rows["frame_times"].append(times)
                rows["file_size"].append(video.size)
                rows["file_mtime_ns"].append(video.mtime_ns)
                embeds.append(frame_embeds)
                masks.append(frame_mask)
        return rows, torch.stack(embeds), torch.stack(masks)


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
    dtype = next(model.parameters()).dtype
    pending: list[tuple[int, float, float, list[float], torch.Tensor, torch.Tensor]] = []
    encoded: dict[int, list[tuple[float, float, list[float], torch.Tensor, torch.Tensor]]] = {}
    expected: dict[int, int] = {}
    failed: set[int] = set()
    out = EncodedBatch()

    def encode_pending() -> None:
        pixel_values = torch.stack([item[4] for item in pending]).to(device, dtype=dtype)
        video_mask = torch.stack([item[5] for item in pending])
        with torch.no_grad():
            features = model.get_video_features(pixel_values, video_mask.to(device))
        frame_embeds = features.frame_embeds.float().cpu()
        for j, (index, start, end, times, _, mask) in enumerate(pending):
            if index not in failed:
                encoded.setdefault(index, []).append((start, end, times, frame_embeds[j], mask))
        pending.clear()

    def complete() -> EncodedBatch:
        nonlocal out
        for index in [i for i, count in expected.items() if len(encoded.get(i, [])) == count]:
            out.files.append(files[index])
            out.segments.append(encoded.pop(index))
            del expected[index]
        batch, out = out, EncodedBatch()
        return batch

    was_training = model.training
    model.eval()
    try:
        for item in loader:
            kind, index = item[0], item[1]
            if kind == "segment":
                pending.append((index, *item[2:]))
                if len(pending) >= batch_size:
                    encode_pending()
                    yield complete()
            elif kind == "done":
                expected[index] = item[2]
            else:
                failed.add(index)
                encoded.pop(index, None)
                out.failed.append((files[index].name, item[2]))
        if pending:
            encode_pending()
        yield complete()
    finally:
        model.train(was_training)
