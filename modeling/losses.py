"""GLCCL's training objective: symmetric InfoNCE on the fused score plus the Contrastive Score Consistency loss.

docs/method.md in the glccl-hf repository states both losses and the reference's quirks they keep.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def infonce_loss(logits: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE on `[batch, batch]` logits whose diagonal holds the positive pairs (scale already applied)."""
    targets = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


def csc_loss(score_parts: torch.Tensor) -> torch.Tensor:
    r"""
    Contrastive Score Consistency, as the reference computes it (its `var_loss`).

    `score_parts` `[scores, batch, batch]` (the four GLCCL scores). The unbiased variance across the scores is taken
    per pair; the loss is the mean variance of the positive pairs (the diagonal) divided by the sum of the
    off-diagonal variances over batch^2 (the reference zeroes the diagonal and averages all entries). Low spread on
    positives, high spread on negatives. Invariant to the logit scale.

    Returns 0 (with a zero gradient) where the ratio is undefined: a batch of one, or zero variance on every
    negative pair. InfoNCE alone then drives training.
    """
    variance = score_parts.var(dim=0)  # [batch, batch]
    batch = variance.shape[0]
    positive = variance.diagonal().mean()
    negative = (variance.sum() - variance.diagonal().sum()) / batch**2
    defined = negative > 0
    return torch.where(defined, positive / torch.where(defined, negative, torch.ones_like(negative)), 0.0)


__all__ = ["csc_loss", "infonce_loss"]
