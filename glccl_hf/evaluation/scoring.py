"""Scoring: the fused GLCCL logits of every text against every video, from encoded features (:func:`score_features`)
or from a whole split (:func:`score_dataset`, which also says what it left out); ``RetrievalScores.metrics()`` ranks
them."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.schema import video_source
from ..formatting import preview
from ..metrics import retrieval_metrics
from ..modeling.modeling_glccl import GLCCLTextFeatures, GLCCLVideoFeatures
from ..modeling.video_glccl import VideoDecodeError
from .corpus import retrieval_corpus
from .encoding import encode_available_videos, encode_texts, inference

__all__ = [
    "RetrievalScores",
    "SkippedVideo",
    "evaluate_features",
    "evaluate_retrieval",
    "score_dataset",
    "score_features",
]

logger = logging.getLogger(__name__)


def score_features(
    model: torch.nn.Module,
    text_features: GLCCLTextFeatures,
    video_features: GLCCLVideoFeatures,
    *,
    block_size: int | None = None,
) -> torch.Tensor:
    """The fused GLCCL logits of every text against every video, in eval mode and without autograd.

    Args:
        model: a GLCCLModel.
        text_features, video_features: from :func:`encode_texts` / :func:`encode_videos` (or the model's
            ``get_text_features`` / ``get_video_features``), on the model's device.
        block_size: texts and videos per block of the exact scorer (``GLCCLModel.similarity``); None chooses it.

    Returns:
        [texts, videos] on the CPU.
    """
    with inference(model):
        return model.similarity(text_features, video_features, block_size=block_size).cpu()


def evaluate_features(
    model: torch.nn.Module,
    text_features: GLCCLTextFeatures,
    video_features: GLCCLVideoFeatures,
    text_to_video: Any,
    *,
    dsl: bool = False,
    dsl_temperature: float = 1.0,
    block_size: int | None = None,
) -> dict[str, float]:
    """Deprecated: ``retrieval_metrics(score_features(model, text, video), text_to_video)`` (one entry point per
    level)."""
    warnings.warn(
        "evaluate_features is deprecated: use retrieval_metrics(score_features(model, text_features, video_features), "
        "text_to_video)",
        FutureWarning,
        stacklevel=2,
    )
    num_texts = text_features.sentence_embeds.shape[0]
    if len(text_to_video) != num_texts:
        raise ValueError(f"text_to_video has {len(text_to_video)} entries for {num_texts} encoded texts")
    similarity = score_features(model, text_features, video_features, block_size=block_size)
    return retrieval_metrics(similarity, text_to_video, dsl=dsl, dsl_temperature=dsl_temperature)


@dataclass
class SkippedVideo:
    """A video left out of an evaluation because it could not be read (``on_error="skip"``).

    Attributes:
        video_id: its id (column ``video_id``); path: its file, or a label for embedded bytes; reason: the error.
    """

    video_id: str
    path: str
    reason: str


@dataclass
class RetrievalScores:
    """A scored retrieval split, with what was left out of it.

    Attributes:
        similarity: [texts, videos] fused GLCCL logits (CPU).
        text_to_video: int64 [texts], the true video column of each text.
        captions: the texts (rows).
        video_ids: the videos' ids (columns).
        duplicates: ``(video_id, caption)`` of the dataset rows left out as exact repeats (``duplicates="drop"``).
        skipped_videos: the videos left out because they could not be read (``on_error="skip"``).
        skipped_captions: how many captions were left out with those videos.
    """

    similarity: torch.Tensor
    text_to_video: torch.Tensor
    captions: list[str]
    video_ids: list[str]
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped_videos: list[SkippedVideo] = field(default_factory=list)
    skipped_captions: int = 0

    def metrics(self, *, dsl: bool = False, dsl_temperature: float = 1.0) -> dict[str, float]:
        """``t2v_R@1`` ... ``v2t_MnR`` of this split (and ``dsl_`` ones with `dsl`): see
        :func:`glccl_hf.metrics.retrieval_metrics`."""
        return retrieval_metrics(self.similarity, self.text_to_video, dsl=dsl, dsl_temperature=dsl_temperature)


def score_dataset(
    model: torch.nn.Module,
    processor: Any,
    dataset: Any,
    *,
    batch_size: int = 16,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    block_size: int | None = None,
    progress: bool = True,
    on_error: str = "raise",
    duplicates: str = "drop",
) -> RetrievalScores:
    """Encode every caption and every video of a split once and score all pairs.

    Args:
        model: a GLCCLModel.
        processor: a GLCCLProcessor (``tokenize`` and ``load_video``).
        dataset: a split in the ``glccl_hf.data`` schema (see :func:`retrieval_corpus`).
        batch_size: texts and videos per forward pass.
        num_workers: DataLoader workers decoding videos.
        device: run on this device (the model is moved there); default: the model's device.
        block_size: texts and videos per block of the exact scorer.
        progress: show tqdm bars.
        on_error: "raise" (default): a missing or undecodable video stops the evaluation with an error naming the
            file; "skip": such a video is left out with its captions, logged, and listed in the result.
        duplicates: "drop" (default) or "keep" rows that repeat an earlier row's video and caption exactly (see
            :func:`retrieval_corpus`).

    Returns:
        :class:`RetrievalScores` with the [texts, videos] matrix, the pairing and what was left out, for inspection;
        its ``metrics()`` ranks it.
    """
    corpus = retrieval_corpus(dataset, duplicates=duplicates)
    video, failures = encode_available_videos(
        model,
        processor,
        corpus.videos,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
        names=corpus.video_ids,
        frame_cache=corpus.frame_cache,
        on_error=on_error,
    )
    skipped = [
        SkippedVideo(corpus.video_ids[index], _video_label(corpus.videos[index], corpus.video_ids[index]), reason)
        for index, reason in failures
    ]
    if video is None:
        raise VideoDecodeError(
            f"every video of the split failed to load ({len(skipped)}), nothing to evaluate: "
            + "; ".join(video.reason for video in skipped[:5])
        )
    kept_videos = np.setdiff1d(np.arange(len(corpus.video_ids)), [index for index, _ in failures])
    text_rows, text_to_video = _texts_of(corpus.text_to_video, kept_videos)
    if skipped:
        logger.warning(
            "left out %d of %d videos that could not be read, and their %d caption(s): %s",
            len(skipped),
            len(corpus.video_ids),
            len(corpus.captions) - len(text_rows),
            preview([f"{video.video_id} ({video.reason})" for video in skipped], 5),
        )
    captions = [corpus.captions[row] for row in text_rows]
    text = encode_texts(model, processor, captions, batch_size=batch_size, device=device, progress=progress)
    return RetrievalScores(
        similarity=score_features(model, text, video, block_size=block_size),
        text_to_video=text_to_video,
        captions=captions,
        video_ids=[corpus.video_ids[index] for index in kept_videos],
        duplicates=corpus.duplicates,
        skipped_videos=skipped,
        skipped_captions=len(corpus.captions) - len(text_rows),
    )


def _video_label(video: Any, video_id: str) -> str:
    """A row's video as a report names it: its path, or a label for embedded bytes."""
    source = video_source(video)
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"video {video_id!r} (embedded bytes)"


def _texts_of(text_to_video: torch.Tensor, kept_videos: np.ndarray) -> tuple[list[int], torch.Tensor]:
    """The text rows whose video is kept, and their video columns renumbered among the kept videos."""
    column = torch.full((int(text_to_video.max()) + 1,), -1, dtype=torch.long)
    column[torch.from_numpy(kept_videos)] = torch.arange(len(kept_videos))
    new_index = column[text_to_video]
    rows = (new_index >= 0).nonzero().flatten()
    return rows.tolist(), new_index[rows]


def evaluate_retrieval(
    model: torch.nn.Module,
    processor: Any,
    dataset: Any,
    *,
    dsl: bool = False,
    dsl_temperature: float = 1.0,
    **options: Any,
) -> dict[str, float]:
    """Deprecated: ``score_dataset(model, processor, dataset, **options).metrics(dsl=dsl)`` (one entry point per
    level). `options` are :func:`score_dataset`'s."""
    warnings.warn(
        "evaluate_retrieval is deprecated: use score_dataset(model, processor, dataset, ...).metrics(dsl=...), "
        "which also keeps the score matrix and what was left out",
        FutureWarning,
        stacklevel=2,
    )
    return score_dataset(model, processor, dataset, **options).metrics(dsl=dsl, dsl_temperature=dsl_temperature)
