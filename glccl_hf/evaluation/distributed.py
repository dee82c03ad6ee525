"""Retrieval evaluation across processes: every process encodes one contiguous shard of the captions and of the
videos, the video features are gathered so each process holds all of them, each process scores its captions against
every video, and the score rows are gathered. Every process ends with the same full [texts, videos] matrix, equal to
a single-process evaluation's (``GLCCLTrainer.evaluate`` ranks it)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import torch
from torch.utils.data import Subset

from ..modeling.modeling_glccl import GLCCLVideoFeatures
from .corpus import retrieval_corpus
from .encoding import encode_texts, encode_videos
from .scoring import score_features

__all__ = ["ProcessGroup", "gather_rows", "score_dataset_across_processes", "shard_rows"]


class ProcessGroup(Protocol):
    """What the evaluation needs of the processes it runs on (an ``accelerate.Accelerator`` is one)."""

    num_processes: int
    process_index: int

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every process's `tensor`, concatenated along the first axis in process order."""


def shard_rows(total: int, world_size: int, rank: int) -> list[int]:
    """Rows of process `rank`: a contiguous block of ceil(total / world_size) rows, padded with the last row.

    Every process gets the same number of rows (at least one), so the gathers see equal shapes; concatenating the
    blocks in rank order and keeping the first `total` rows gives back rows 0 .. total - 1 exactly once.
    """
    per_rank = -(-total // world_size)
    return [min(rank * per_rank + i, total - 1) for i in range(per_rank)]


def gather_rows(processes: ProcessGroup, tensor: torch.Tensor, total: int) -> torch.Tensor:
    """Concatenate the equal-sized shards (`shard_rows`) of all processes in rank order, padding rows dropped."""
    if processes.num_processes == 1:
        return tensor[:total]
    return processes.gather(tensor.contiguous())[:total]


def score_dataset_across_processes(
    model: torch.nn.Module,
    processor: Any,
    dataset: Any,
    processes: ProcessGroup,
    *,
    batch_size: int,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    progress: bool = False,
    encoding_context: AbstractContextManager | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused logits [texts, videos] of a retrieval split (on the CPU) and each text's true video column.

    Call it on every process of `processes` with the same `dataset`: each encodes its shard (inside
    `encoding_context`, e.g. the Trainer's autocast), and all return the same full matrix. `device` defaults to
    the model's; the gathers run there (NCCL gathers GPU tensors only).
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    corpus = retrieval_corpus(dataset)
    world_size, rank = processes.num_processes, processes.process_index
    text_rows = shard_rows(len(corpus.captions), world_size, rank)
    video_rows = shard_rows(len(corpus.videos), world_size, rank)
    with encoding_context if encoding_context is not None else nullcontext():
        text = encode_texts(
            model,
            processor,
            [corpus.captions[i] for i in text_rows],
            batch_size=batch_size,
            device=device,
            progress=progress,
        )
        video = encode_videos(
            model,
            processor,
            Subset(corpus.videos, video_rows),
            batch_size=batch_size,
            num_workers=num_workers,
            device=device,
            progress=progress,
            names=[corpus.video_ids[i] for i in video_rows],
            frame_cache=corpus.frame_cache,
        )
    all_videos = GLCCLVideoFeatures(
        **{key: gather_rows(processes, value, len(corpus.videos)) for key, value in video.items()}
    )
    local_scores = score_features(model, text, all_videos).to(device)
    scores = gather_rows(processes, local_scores, len(corpus.captions)).cpu()
    return scores, corpus.text_to_video
