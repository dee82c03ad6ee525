"""Gathering features across processes so the contrastive loss sees the whole global batch.

Every rank gathers the text and video features of all ranks (with gradients), scores the full global batch and
computes the same loss. The gather's backward sums, over ranks, the gradient each rank's loss sends to a slice, so a
rank's local features receive `world_size` times the gradient of the global loss; DDP then averages parameter
gradients over ranks, which gives exactly the single-process gradient of the global batch.

The reference's AllGather instead returns only the local slice of the incoming gradient in backward, so after DDP's
average its parameter gradient is `1 / world_size` of that (the same direction, a smaller effective learning rate).
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed_training() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllGatherWithGradient(torch.autograd.Function):
    """Concatenate `tensor` from every rank along dim 0; backward sums gradients over ranks and keeps this slice."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        world_size, rank = dist.get_world_size(), dist.get_rank()
        ctx.rank, ctx.batch = rank, tensor.shape[0]
        gathered = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(gathered, tensor.contiguous())
        return torch.cat(gathered, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()  # all_reduce works in place; autograd's buffer stays untouched
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.batch : (ctx.rank + 1) * ctx.batch]


def gather_batch(tensor: torch.Tensor) -> torch.Tensor:
    """All-gather along the batch axis with gradients (every rank must hold the same batch size)."""
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    if len({int(size) for size in sizes}) != 1:
        raise ValueError(
            f"per-process batch sizes differ ({[int(size) for size in sizes]}); the contrastive loss needs equal "
            "batches on every process (use drop_last / dataloader_drop_last=True)"
        )
    if not tensor.requires_grad:
        gathered = [torch.empty_like(tensor) for _ in sizes]
        dist.all_gather(gathered, tensor.contiguous())
        return torch.cat(gathered, dim=0)
    return _AllGatherWithGradient.apply(tensor)


__all__ = ["gather_batch", "is_distributed_training"]
