"""Gathering features across processes so the contrastive loss sees the whole global batch.

Every rank gathers the text and video features of all ranks (with gradients), scores the full global batch and
computes the same loss. The gather is torch's differentiable `all_gather`, whose backward sums, over ranks, the
gradient each rank's loss sends to a slice, so a rank's local features receive `world_size` times the gradient of
the global loss; DDP then averages parameter gradients over ranks, which gives exactly the single-process gradient
of the global batch.

The reference's AllGather instead returns only the local slice of the incoming gradient in backward, so after DDP's
average its parameter gradient is `1 / world_size` of that (the same direction, a smaller effective learning rate).
docs/method.md in the glccl-hf repository lists this among the departures from the reference.
"""

from __future__ import annotations

import re
import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as differentiable

# torch 2.13 deprecates this all_gather for a function of its private _functional_collectives module (same
# gradient). Silenced once, for calls from this module only: a catch_warnings() per call would reset every module's
# once-only warning registry at each training step.
warnings.filterwarnings(
    "ignore",
    message=r"torch\.distributed\.nn\.functional\.all_gather",
    category=FutureWarning,
    module=re.escape(__name__),
)


def is_distributed_training() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_batch(tensor: torch.Tensor) -> torch.Tensor:
    """All-gather along the batch axis with gradients (every rank must hold the same batch size)."""
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    if len({int(size) for size in sizes}) != 1:
        raise ValueError(
            f"per-process batch sizes differ ({[int(size) for size in sizes]}); the contrastive loss needs equal "
            "batches on every process (use drop_last / dataloader_drop_last=True)"
        )
    return torch.cat(differentiable.all_gather(tensor), dim=0)


__all__ = ["gather_batch", "is_distributed_training"]
