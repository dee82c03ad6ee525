"""Batch collation for GLCCL training: decodes videos (in DataLoader workers) and tokenizes captions."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..modeling.video_glccl import VideoDecodeError
from .frame_cache import FRAME_CACHE_COLUMN, load_cached_video
from .schema import video_source, with_source_name

logger = logging.getLogger(__name__)

ON_ERROR_POLICIES: tuple[str, ...] = ("raise", "skip")
# Slots of the shared skip counter: 0 for the main process, 1 + worker id for DataLoader workers.
_COUNTER_SLOTS = 1025


class GLCCLDataCollator:
    """Turn dataset rows (dicts with ``video`` and ``caption``) into GLCCL model inputs.

    Returns ``input_ids`` and ``attention_mask`` [B, max_words], ``pixel_values`` [B, max_frames, 3, S, S],
    ``video_mask`` [B, max_frames] and ``return_loss=True``. Give it to a DataLoader (or the Trainer, with
    ``remove_unused_columns=False``) so that decoding runs in the worker processes.

    A row's ``video`` is a path, the file's bytes, or a ``{"path", "bytes"}`` dict (a ``datasets.Video(decode=False)``
    value). A video that is missing or cannot be decoded:

    - ``on_error="raise"`` (default): the error is raised and names the file (or the video id for bytes);
    - ``on_error="skip"``: the row (video and caption) is left out of the batch, a warning logs the file and the
      reason, and ``skipped`` counts it. A batch whose every row fails raises an error. Nothing is ever replaced by
      a blank video.

    A row with a ``frame_cache`` value (the folder :func:`glccl_hf.data.cache_frames` wrote and put in that column)
    gets its frames from the cache when it holds a valid entry for the video and the processor's settings, and is
    decoded otherwise; the batch is the same either way (exactly, for a raw cache).

    ``skipped`` sums over the DataLoader workers too: the counter lives in shared memory.

    Args:
        processor: an object with ``load_video(source) -> (pixel_values [F, 3, S, S], video_mask [F])`` and
            ``tokenize(texts) -> {"input_ids", "attention_mask"}`` (``glccl_hf.processing.GLCCLProcessor``).
        on_error: "raise" or "skip".
        video_key, caption_key: the row keys holding the video and the caption.
        cache_videos: keep each decoded video (by path) in memory and decode it once, for small corpora trained for
            many epochs (the demo); each DataLoader worker holds its own cache. Embedded bytes are not cached.
    """

    def __init__(
        self,
        processor: Any,
        on_error: str = "raise",
        video_key: str = "video",
        caption_key: str = "caption",
        cache_videos: bool = False,
    ):
        if on_error not in ON_ERROR_POLICIES:
            raise ValueError(f"on_error={on_error!r}: expected one of {ON_ERROR_POLICIES}")
        for method in ("load_video", "tokenize"):
            if not callable(getattr(processor, method, None)):
                raise TypeError(f"processor {type(processor).__name__} has no {method}() method")
        self.processor = processor
        self.on_error = on_error
        self.video_key = video_key
        self.caption_key = caption_key
        self.cache_videos = cache_videos
        self._video_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._skip_counts = torch.zeros(_COUNTER_SLOTS, dtype=torch.int64).share_memory_()

    @property
    def skipped(self) -> int:
        """How many rows were left out for a bad video, in this process and its DataLoader workers together."""
        return int(self._skip_counts.sum())

    def reset_skipped(self) -> None:
        """Set the skip counter back to zero."""
        self._skip_counts.zero_()

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if len(rows) == 0:
            raise ValueError("GLCCLDataCollator got an empty batch")
        pixel_values, video_masks, captions, failures = [], [], [], []
        for i, row in enumerate(rows):
            source, name = self._source(row, i)
            caption = row.get(self.caption_key)
            if not isinstance(caption, str):
                raise ValueError(f"batch row {i} ({name}): {self.caption_key!r} must be a string, got {caption!r}")
            try:
                pv, vm = self._load_video(source, row.get(FRAME_CACHE_COLUMN))
            except (FileNotFoundError, VideoDecodeError) as err:
                if self.on_error == "raise":
                    named = with_source_name(err, name)
                    if named is err:
                        raise
                    raise named from err
                reason = f"{type(err).__name__}: {err}"
                logger.warning("GLCCLDataCollator: skipping %s: %s", name, reason)
                self._count_skip()
                failures.append(f"{name}: {reason}")
                continue
            pixel_values.append(pv)
            video_masks.append(vm)
            captions.append(caption)
        if not captions:
            raise VideoDecodeError(f"all {len(rows)} videos of the batch failed to load: " + "; ".join(failures))
        text = self.processor.tokenize(captions)
        return {
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
            "pixel_values": torch.stack(pixel_values),
            "video_mask": torch.stack(video_masks),
            "return_loss": True,
        }

    def _load_video(self, source: Any, frame_cache: str | None) -> tuple[torch.Tensor, torch.Tensor]:
        if not (self.cache_videos and isinstance(source, (str, os.PathLike))):
            return self._read_video(source, frame_cache)
        key = os.fspath(source)
        if key not in self._video_cache:
            self._video_cache[key] = self._read_video(source, frame_cache)
        return self._video_cache[key]

    def _read_video(self, source: Any, frame_cache: str | None) -> tuple[torch.Tensor, torch.Tensor]:
        if frame_cache is None:
            return self.processor.load_video(source)
        return load_cached_video(self.processor, source, frame_cache)

    def _source(self, row: Mapping[str, Any], i: int) -> tuple[Any, str]:
        """(what load_video gets, how messages name it)."""
        if self.video_key not in row:
            raise KeyError(f"batch row {i} has no {self.video_key!r} key (keys: {sorted(row)})")
        video = row[self.video_key]
        video_id = row.get("video_id")
        video = video_source(video)
        if isinstance(video, (bytes, bytearray, memoryview)):
            label = f"video {video_id!r}" if video_id is not None else f"batch row {i}"
            return video, f"{label} (embedded bytes)"
        if isinstance(video, (str, os.PathLike)):
            return video, os.fspath(video)
        raise TypeError(
            f"batch row {i}: {self.video_key!r} must be a path, bytes or a {{'path', 'bytes'}} dict, "
            f"got {type(video).__name__}"
        )

    def _count_skip(self) -> None:
        info = torch.utils.data.get_worker_info()
        slot = 0 if info is None else min(1 + info.id, _COUNTER_SLOTS - 1)
        self._skip_counts[slot] += 1
