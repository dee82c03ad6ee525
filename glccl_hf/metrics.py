"""Retrieval metrics of a score matrix: ranks of the true item, R@K / MdR / MnR, the dual softmax, and the metric keys.

Metrics follow the reference (CLIP4Clip / X-CLIP retrieval code). For each query, ``rank`` is the 0-based position
of its true item among the candidates; ``R@K = 100 * mean(rank < K)``, ``MdR = median(rank) + 1`` (numpy's median:
the mean of the two middle ranks for an even count), ``MnR = mean(rank) + 1``.

Ties (pessimistic rule): the true item is placed after every other candidate with an equal score, i.e.
``rank = number of other candidates scoring >= the true item``. A degenerate model that scores everything alike
therefore gets R@1 = 0, not 100. (The reference's behaviour on ties is undefined: its ``compute_metrics`` returns one
rank per tied position, and its multi-caption path breaks ties by sort order.) Without ties every rule agrees.

Directions, for a score matrix ``S [texts, videos]`` and ``text_to_video[i]`` = the video of text ``i``:

- ``t2v``: every text is a query; candidates are all videos.
- ``v2t``: every video is a query; candidates are the videos' caption groups, a group scored by its best caption:
  ``G[k, j] = max over captions c of video k of S[c, j]``, and video ``j`` is ranked in column ``j`` of ``G`` against
  the other groups. This is the reference's multi-caption protocol (VATEX, MSR-VTT full: ``tensor_video_to_text_sim``
  max-pools each video's captions) and reduces to ranking ``S.T`` when every video has exactly one caption. It is not
  the rank of the best caption among all captions: another video with several high-scoring captions counts once.

DSL (dual softmax, CAMoE; off by default, reported separately under ``dsl_`` keys): each direction's scores are
multiplied by a prior computed across the queries of that direction, see :func:`dual_softmax`.

Metric keys are ``{direction}_{name}``: ``t2v_R@1`` ... ``v2t_MnR`` (:data:`METRIC_KEYS`, in report order), optionally
prefixed with ``dsl_``; :func:`parse_metric_key` reads one, :func:`parse_retrieval_metrics` validates a whole dict
(as the model card does), :func:`format_metrics_table` prints them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import torch

from .formatting import preview

__all__ = [
    "DIRECTIONS",
    "DSL_PREFIX",
    "METRIC_KEYS",
    "METRIC_NAMES",
    "RANK_STATISTICS",
    "RECALL_AT",
    "MetricKey",
    "caption_group_scores",
    "dual_softmax",
    "format_metrics_table",
    "logged_retrieval_metrics",
    "split_metric_key",
    "parse_metric_key",
    "parse_retrieval_metrics",
    "rank_metrics",
    "retrieval_metrics",
    "text_to_video_ranks",
    "video_to_text_ranks",
]

RECALL_AT: tuple[int, ...] = (1, 5, 10)
DIRECTIONS: tuple[str, ...] = ("t2v", "v2t")  # text-to-video, video-to-text
RANK_STATISTICS: tuple[str, ...] = ("MdR", "MnR")  # median and mean rank, 1-based
METRIC_NAMES: tuple[str, ...] = (*(f"R@{k}" for k in RECALL_AT), *RANK_STATISTICS)
# What retrieval_metrics reports, in this order (then the same under DSL_PREFIX with dsl=True).
METRIC_KEYS: tuple[str, ...] = tuple(f"{direction}_{name}" for direction in DIRECTIONS for name in METRIC_NAMES)
DSL_PREFIX = "dsl_"
# Keys Trainer.evaluate / Trainer.predict / log_history put next to the metrics (plus "mem_*"): not retrieval results.
TRAINER_KEYS = frozenset(
    {
        "loss",
        "runtime",
        "samples_per_second",
        "steps_per_second",
        "epoch",
        "step",
        "model_preparation_time",
        "jit_compilation_time",
    }
)
LOG_PREFIXES: tuple[str, ...] = ("eval_", "test_")  # Trainer.evaluate / Trainer.predict
# Rows of the score matrix compared at once when counting ranks: bounds the boolean temporary.
_RANK_CHUNK_ROWS = 4096


# ----------------------------------------------------------------------------------------------- metric keys


@dataclass(frozen=True)
class MetricKey:
    """One retrieval metric key, e.g. ``dsl_t2v_R@5``: ``dsl``, ``direction`` (``t2v`` / ``v2t``), ``name`` (``R@5``,
    ``MdR`` or ``MnR``)."""

    dsl: bool
    direction: str
    name: str

    def __str__(self) -> str:
        return f"{DSL_PREFIX if self.dsl else ''}{self.direction}_{self.name}"

    @property
    def is_recall(self) -> bool:
        """R@K (a percentage, higher is better) rather than a rank statistic (>= 1, lower is better)."""
        return self.name.startswith("R@")

    @property
    def label(self) -> str:
        """How tables name it: ``t2v R@5`` (``dsl_`` results are labelled by their table, not their key)."""
        return f"{self.direction} {self.name}"

    @property
    def order(self) -> tuple[int, int, int, int]:
        """Report order: plain before DSL; t2v then v2t; R@K by K, then MdR, MnR."""
        column = (0, int(self.name[2:])) if self.is_recall else (1, RANK_STATISTICS.index(self.name))
        return int(self.dsl), DIRECTIONS.index(self.direction), *column


def parse_metric_key(key: str) -> MetricKey | None:
    """``"dsl_t2v_R@5"`` -> ``MetricKey(dsl=True, direction="t2v", name="R@5")``; None for a key that is not a retrieval
    metric. R@K takes any K >= 1."""
    dsl = key.startswith(DSL_PREFIX)
    direction, _, name = key[len(DSL_PREFIX) if dsl else 0 :].partition("_")
    if direction not in DIRECTIONS:
        return None
    k = name[2:]
    is_recall = name.startswith("R@") and k.isascii() and k.isdigit() and not k.startswith("0")
    if not is_recall and name not in RANK_STATISTICS:
        return None
    return MetricKey(dsl, direction, name)


def split_metric_key(key: str) -> tuple[str, MetricKey] | None:
    """A Trainer log key's prefix (its ``metric_key_prefix``) and retrieval metric: ``"eval_vatex_dsl_t2v_R@1"`` ->
    ``("eval_vatex", dsl_t2v_R@1)``, ``"t2v_MdR"`` -> ``("", t2v_MdR)``; None for a key that ends in no metric."""
    parts = key.split("_")
    for start in range(len(parts)):
        metric = parse_metric_key("_".join(parts[start:]))
        if metric is not None:
            return "_".join(parts[:start]), metric
    return None


def logged_retrieval_metrics(logs: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The retrieval metrics among a Trainer log's ``{prefix}_*`` keys, prefix removed (``eval_t2v_R@1`` ->
    ``t2v_R@1`` for prefix ``"eval"``); bookkeeping such as ``eval_loss`` is left out."""
    return {
        str(split[1]): value
        for key, value in logs.items()
        if (split := split_metric_key(key)) is not None and split[0] == prefix
    }


def parse_retrieval_metrics(metrics: Mapping[str, Any], where: str = "metrics") -> dict[str, float]:
    """Validate and normalise one evaluation's retrieval metrics.

    Args:
        metrics: ``{"t2v_R@1": 44.5, ...}`` as the evaluation returns it. One ``eval_`` or ``test_`` prefix is
            stripped; Trainer bookkeeping (``loss``, ``runtime``, ``samples_per_second``, ``steps_per_second``,
            ``epoch``, ``step``, ``model_preparation_time``, ``jit_compilation_time``, ``mem_*``) is dropped.
            Accepted keys are ``{t2v,v2t}_R@K`` for any K >= 1 (in %, 0..100), ``{t2v,v2t}_MdR`` and
            ``{t2v,v2t}_MnR`` (ranks, >= 1), each optionally prefixed with ``dsl_`` (results after DSL).
        where: how error messages name this evaluation.

    Returns:
        ``{key: float}`` in report order (see :attr:`MetricKey.order`).

    Raises:
        TypeError: `metrics` is not a mapping, or a value is not a real number.
        ValueError: unknown key, duplicate key after prefix stripping, value out of range or not finite, or no
            retrieval metric at all.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{where} must be a mapping of metric names to numbers, got {type(metrics).__name__}")
    parsed: dict[MetricKey, float] = {}
    for raw_key, value in metrics.items():
        if not isinstance(raw_key, str):
            raise TypeError(f"{where}: metric names must be strings, got {raw_key!r}")
        key = next((raw_key[len(p) :] for p in LOG_PREFIXES if raw_key.startswith(p)), raw_key)
        if key in TRAINER_KEYS or key.startswith("mem_"):
            continue
        metric = parse_metric_key(key)
        if metric is None:
            raise ValueError(
                f"{where}: unknown metric {raw_key!r}; expected t2v_/v2t_ followed by R@K, MdR or MnR "
                "(optionally prefixed with dsl_, and with eval_ or test_ before that)"
            )
        if metric in parsed:
            raise ValueError(f"{where}: metric {key!r} is given twice (with and without a prefix)")
        parsed[metric] = _metric_value(value, metric, where)
    if not parsed:
        raise ValueError(f"{where}: no retrieval metric (t2v_R@1, v2t_MdR, ...) among {sorted(metrics)}")
    return {str(metric): parsed[metric] for metric in sorted(parsed, key=lambda metric: metric.order)}


def _metric_value(value: Any, metric: MetricKey, where: str) -> float:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{where}: {metric} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where}: {metric} must be finite, got {value}")
    if metric.is_recall and not 0.0 <= value <= 100.0:
        raise ValueError(f"{where}: {metric} is a recall in percent and must lie in [0, 100], got {value}")
    if not metric.is_recall and value < 1.0:
        raise ValueError(f"{where}: {metric} is a rank (1 = top) and must be >= 1, got {value}")
    return value


def format_metrics_table(
    rows: Sequence[tuple[Sequence[str], Mapping[str, float]]],
    columns: Sequence[str],
    *,
    labels: Sequence[str] = ("",),
    headers: Sequence[str] | None = None,
    markdown: bool = True,
) -> str:
    """A table of metrics, one decimal per value: the one layout the evaluation script, the demo and the card print.

    Args:
        rows: ``(row labels, metrics)`` per row; a column the metrics lack is shown as ``-``.
        columns: the metric keys, one column each.
        labels: the headers of the leading label columns (one per row label).
        headers: the metric columns' headers; default: the keys themselves.
        markdown: a Markdown table (``| a | b |``), else plain text in fixed-width columns.
    """
    headers = list(columns if headers is None else headers)
    lines = [[*labels, *headers]]
    lines += [
        [*names, *("-" if metrics.get(c) is None else f"{metrics[c]:.1f}" for c in columns)] for names, metrics in rows
    ]
    if markdown:
        table = ["| " + " | ".join(cells) + " |" for cells in lines]
        table.insert(1, "|---" * len(lines[0]) + "|")
        return "\n".join(table)
    width = max(8, *(len(cell) + 1 for cells in lines for cell in cells))  # 8: room for "100.0" and "dsl_v2t"
    return "\n".join(
        "".join(f"{cell:<{width}}" for cell in cells[: len(labels)])
        + "".join(f"{cell:>{width}}" for cell in cells[len(labels) :])
        for cells in lines
    )


# ------------------------------------------------------------------------------------------------ validation


def _as_similarity(similarity: Any) -> torch.Tensor:
    """A CPU float tensor [texts, videos] without NaN (float16/bfloat16 widened to float32, integers to float64)."""
    tensor = torch.as_tensor(similarity).detach()
    if tensor.ndim != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ValueError(f"similarity must be a non-empty 2-D [texts, videos] matrix, got shape {tuple(tensor.shape)}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"similarity must hold real scores, got dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        tensor = tensor.double()
    elif tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    tensor = tensor.cpu()
    nan = torch.isnan(tensor)
    if bool(nan.any()):
        text, video = (int(i) for i in nan.nonzero()[0])
        raise ValueError(
            f"similarity has {int(nan.sum())} NaN score(s) (first at text {text}, video {video}): NaN cannot be ranked"
        )
    return tensor


def _as_text_to_video(text_to_video: Any, num_texts: int, num_videos: int) -> torch.Tensor:
    """int64 [texts] with every entry in [0, num_videos)."""
    index = torch.as_tensor(text_to_video).detach().cpu()
    if index.dtype == torch.bool or index.is_floating_point() or index.is_complex():
        raise TypeError(f"text_to_video must hold integer video indices, got dtype {index.dtype}")
    if index.ndim != 1 or index.shape[0] != num_texts:
        raise ValueError(
            f"text_to_video must have one video index per text (shape [{num_texts}] for similarity "
            f"[{num_texts}, {num_videos}]), got shape {tuple(index.shape)}"
        )
    index = index.long()
    bad = (index < 0) | (index >= num_videos)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"text_to_video[{first}] = {int(index[first])} is not a video column of similarity "
            f"(0 .. {num_videos - 1}); {int(bad.sum())} entries are out of range"
        )
    return index


def _require_captioned_videos(text_to_video: torch.Tensor, num_videos: int) -> None:
    """Video-to-text needs a caption for every video: an uncaptioned video has no true item to rank."""
    counts = torch.bincount(text_to_video, minlength=num_videos)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(
            f"{len(missing)} of {num_videos} videos have no caption in text_to_video (video columns "
            f"{preview(missing)}), so video-to-text retrieval is undefined for them. For a gallery with distractor "
            "videos compute text-to-video only: rank_metrics(text_to_video_ranks(similarity, text_to_video), 't2v')"
        )


# ----------------------------------------------------------------------------------------------------- ranks


def _count_at_least(scores: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per row of `scores` [queries, candidates], how many entries are >= `reference` [queries]."""
    counts = [
        (scores[start : start + _RANK_CHUNK_ROWS] >= reference[start : start + _RANK_CHUNK_ROWS, None]).sum(dim=1)
        for start in range(0, scores.shape[0], _RANK_CHUNK_ROWS)
    ]
    return torch.cat(counts)


def _t2v_ranks(similarity: torch.Tensor, text_to_video: torch.Tensor) -> torch.Tensor:
    true_scores = similarity.gather(1, text_to_video[:, None])[:, 0]
    return _count_at_least(similarity, true_scores) - 1  # the true video is counted by >= itself


def _v2t_ranks(similarity: torch.Tensor, text_to_video: torch.Tensor) -> torch.Tensor:
    per_video = caption_group_scores(similarity, text_to_video).t()  # [query videos, caption groups]
    return _count_at_least(per_video, per_video.diagonal()) - 1


def text_to_video_ranks(similarity: Any, text_to_video: Any) -> torch.Tensor:
    """0-based rank of each text's true video among all videos (ties pessimistic).

    Args:
        similarity: scores [texts, videos] (tensor or array; higher is better).
        text_to_video: [texts] integers, the video column of each text's true video.

    Returns:
        int64 [texts]: the number of other videos scoring >= the true one.
    """
    scores = _as_similarity(similarity)
    return _t2v_ranks(scores, _as_text_to_video(text_to_video, *scores.shape))


def caption_group_scores(similarity: Any, text_to_video: Any) -> torch.Tensor:
    """Score of each video's caption group against each video: its best caption's score.

    Args:
        similarity: scores [texts, videos].
        text_to_video: [texts] integers, the video of each text.

    Returns:
        [videos (caption groups), videos]: ``G[k, j] = max over captions c of video k of similarity[c, j]``; -inf for a
        video without captions.
    """
    scores = _as_similarity(similarity)
    index = _as_text_to_video(text_to_video, *scores.shape)
    num_videos = scores.shape[1]
    groups = torch.full((num_videos, num_videos), float("-inf"), dtype=scores.dtype)
    return groups.scatter_reduce_(0, index[:, None].expand(-1, num_videos), scores, reduce="amax", include_self=True)


def video_to_text_ranks(similarity: Any, text_to_video: Any) -> torch.Tensor:
    """0-based rank of each video's caption group among all videos' caption groups (ties pessimistic).

    A group is scored by its best caption (see :func:`caption_group_scores`); with one caption per video this is the
    rank of the video's caption in its column of ``similarity``.

    Args:
        similarity: scores [texts, videos].
        text_to_video: [texts] integers, the video of each text; every video needs at least one caption.

    Returns:
        int64 [videos]: the number of other caption groups scoring >= the video's own.
    """
    scores = _as_similarity(similarity)
    index = _as_text_to_video(text_to_video, *scores.shape)
    _require_captioned_videos(index, scores.shape[1])
    return _v2t_ranks(scores, index)


def rank_metrics(ranks: Any, prefix: str) -> dict[str, float]:
    """R@1/5/10, median and mean rank of 0-based `ranks`.

    Returns:
        ``{prefix}_R@1``, ``{prefix}_R@5``, ``{prefix}_R@10`` (percent), ``{prefix}_MdR``, ``{prefix}_MnR`` (1-based).
    """
    values = torch.as_tensor(ranks).detach().cpu().numpy()
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D sequence, got shape {values.shape}")
    metrics = {f"{prefix}_R@{k}": float(100.0 * np.mean(values < k)) for k in RECALL_AT}
    metrics[f"{prefix}_MdR"] = float(np.median(values) + 1)
    metrics[f"{prefix}_MnR"] = float(np.mean(values) + 1)
    return metrics


# ------------------------------------------------------------------------------------------------------- DSL


def dual_softmax(similarity: Any, temperature: float = 1.0, dim: int = 0) -> torch.Tensor:
    """Dual-softmax re-scoring (CAMoE's DSL): ``S * softmax(S / temperature, dim) * S.shape[dim]``.

    The prior is the softmax across the *queries* of the other direction: ``dim=0`` (over texts, for each video) for
    text-to-video on ``S [texts, videos]``, ``dim=1`` (over videos, for each text) for video-to-text. The constant
    factor ``S.shape[dim]`` (kept from the public implementations) does not change any ranking. GLCCL's logits already
    carry the logit scale (about 100), so ``temperature=1`` is the usual setting. Computed in float64: with logits
    that far apart, float32 priors underflow to exact zeros, which would create artificial ties.

    Args:
        similarity: scores [texts, videos].
        temperature: positive softmax temperature.
        dim: 0 or 1 (or -2 / -1), the axis the prior normalises over.

    Returns:
        float64 [texts, videos].
    """
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not np.isfinite(temperature):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    if dim not in (0, 1, -1, -2):
        raise ValueError(f"dim must be 0 or 1 for a [texts, videos] matrix, got {dim!r}")
    scores = _as_similarity(similarity).double()
    return scores * torch.softmax(scores / temperature, dim=dim) * scores.shape[dim]


# --------------------------------------------------------------------------------------------------- metrics


def retrieval_metrics(
    similarity: Any, text_to_video: Any, *, dsl: bool = False, dsl_temperature: float = 1.0
) -> dict[str, float]:
    """Text-to-video and video-to-text retrieval metrics of a score matrix.

    Args:
        similarity: scores [texts, videos] (torch tensor or numpy array; any device). Texts may outnumber videos
            (several captions per video).
        text_to_video: [texts] integers, ``text_to_video[i]`` = the video column of text ``i``. Every video needs at
            least one caption (else video-to-text is undefined: a ValueError names them).
        dsl: also report the metrics after dual-softmax re-scoring, under ``dsl_``-prefixed keys.
        dsl_temperature: the dual softmax's temperature.

    Returns:
        :data:`METRIC_KEYS` (``t2v_R@1`` ... ``v2t_MnR``), and with `dsl` the same prefixed ``dsl_``. Ranks use the
        pessimistic tie rule and the best-caption v2t protocol of the module docstring.
    """
    scores = _as_similarity(similarity)
    index = _as_text_to_video(text_to_video, *scores.shape)
    _require_captioned_videos(index, scores.shape[1])
    metrics = {**rank_metrics(_t2v_ranks(scores, index), "t2v"), **rank_metrics(_v2t_ranks(scores, index), "v2t")}
    if dsl:
        t2v = _t2v_ranks(dual_softmax(scores, dsl_temperature, dim=0), index)
        v2t = _v2t_ranks(dual_softmax(scores, dsl_temperature, dim=1), index)
        metrics.update(rank_metrics(t2v, f"{DSL_PREFIX}t2v"))
        metrics.update(rank_metrics(v2t, f"{DSL_PREFIX}v2t"))
    return metrics
