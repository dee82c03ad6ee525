"""Text-video retrieval evaluation: encode every caption and video once, score all pairs, rank.

One entry point per level:

- features: :func:`encode_texts` / :func:`encode_videos` once, then :func:`score_features` (the [texts, videos]
  matrix of fused GLCCL logits);
- dataset: :func:`score_dataset` reads a split (:func:`retrieval_corpus`), encodes and scores it, and returns
  :class:`RetrievalScores`, whose :meth:`RetrievalScores.metrics` ranks it.

Ranking and the metrics themselves (R@K, MdR, MnR, the tie rule, the multi-caption protocol, DSL) live in
:mod:`glccl_hf.metrics`; :func:`retrieval_metrics` and its helpers are importable from here too.

What a split's evaluation leaves out is always stated: rows repeating an earlier row's video and caption exactly are
dropped by default (``duplicates="drop"``; a repeated query would weigh twice in the t2v metrics), and with
``on_error="skip"`` a video that cannot be decoded is left out with its captions (the default, ``"raise"``, stops
with an error naming the file). Both are logged and listed in :class:`RetrievalScores`.

The package: ``encoding`` (each caption and video through the model once), ``corpus`` (a split as a score matrix's
rows and columns), ``scoring`` (the matrix, from features or from a split), ``distributed`` (the same matrix with
the work shared by several processes, as ``GLCCLTrainer.evaluate`` computes it).
"""

from ..metrics import (
    RECALL_AT,
    caption_group_scores,
    dual_softmax,
    rank_metrics,
    retrieval_metrics,
    text_to_video_ranks,
    video_to_text_ranks,
)
from .corpus import DATASET_COLUMNS, DUPLICATE_POLICIES, RetrievalCorpus, retrieval_corpus
from .distributed import score_dataset_across_processes
from .encoding import encode_texts, encode_videos
from .scoring import (
    RetrievalScores,
    SkippedVideo,
    evaluate_features,
    evaluate_retrieval,
    score_dataset,
    score_features,
)

__all__ = [
    "DATASET_COLUMNS",
    "DUPLICATE_POLICIES",
    "RECALL_AT",
    "RetrievalCorpus",
    "RetrievalScores",
    "SkippedVideo",
    "caption_group_scores",
    "dual_softmax",
    "encode_texts",
    "encode_videos",
    "evaluate_features",
    "evaluate_retrieval",
    "rank_metrics",
    "retrieval_corpus",
    "retrieval_metrics",
    "score_dataset",
    "score_dataset_across_processes",
    "score_features",
    "text_to_video_ranks",
    "video_to_text_ranks",
]
