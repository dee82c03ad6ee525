"""Ranking the segments for a query: the cascade (stage 1 proposals, stage 2 narrowing, the exact GLCCL score) or
the exhaustive exact score, then each hit's best moment. The stages themselves are in `cascade`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..modeling.checks import positive_int
from ..modeling.modeling_glccl import GLCCLModel, GLCCLTextFeatures
from . import cascade
from .segment_store import SegmentStore

# Segments scored exactly per query, and stage 1's proposals per exact candidate (recall: bench/search_recall.py).
DEFAULT_CANDIDATES = 100
DEFAULT_WIDEN = 4
DEFAULT_NPROBE = 32
# Segments scored exactly at once by the exhaustive search (bounds its memory).
EXHAUSTIVE_CHUNK = 4096


@dataclass(frozen=True)
class SearchHit:
    """One retrieved segment: `video` from `start` to `end` seconds, its exact GLCCL `score` for the query, and
    `best_time`, the sampled frame GLIM's sentence-guided weights favour most (the moment that matches)."""

    video: str
    start: float
    end: float
    score: float
    segment_id: int
    best_time: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StageClock:
    """Appends the seconds since the previous lap to `timings[stage]`."""

    def __init__(self, timings: dict[str, list[float]]) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings.setdefault(stage, []).append(now - self.last)
        self.last = now


def text_row(text: GLCCLTextFeatures, i: int) -> GLCCLTextFeatures:
    """Query `i` of `text`, as a batch of one."""
    return GLCCLTextFeatures(**{key: value[i : i + 1] for key, value in text.items()})


def search_features(
    model: GLCCLModel,
    store: SegmentStore,
    text: GLCCLTextFeatures,
    k: int,
    *,
    candidates: int | None,
    exhaustive: bool,
    widen: int | None,
    nprobe: int,
    timings: dict[str, list[float]],
) -> list[list[SearchHit]]:
    """The `k` best segments of `store` for each query of `text` `[queries, ...]` (see `VideoIndex.search_features`)."""
    positive_int("k", k)
    count = text.sentence_embeds.shape[0]
    if len(store) == 0:
        return [[] for _ in range(count)]
    if exhaustive:
        start = time.perf_counter()
        results = exhaustive_search(model, store, text, k)
        timings.setdefault("exhaustive", []).append((time.perf_counter() - start) / count)
        return results
    candidates = positive_int("candidates", DEFAULT_CANDIDATES if candidates is None else candidates)
    widen = positive_int("widen", DEFAULT_WIDEN if widen is None else widen)
    return [
        cascade_search(model, store, text_row(text, i), k, max(candidates, k), widen, nprobe, timings)
        for i in range(count)
    ]


@torch.no_grad()
def exact_scores(model: GLCCLModel, store: SegmentStore, text: GLCCLTextFeatures, ids: np.ndarray) -> torch.Tensor:
    """Exact fused GLCCL scores `[texts, len(ids)]` (logit scale applied), on the CPU."""
    return model.similarity(text, store.features(ids)).float().cpu()


def exhaustive_search(model: GLCCLModel, store: SegmentStore, text: GLCCLTextFeatures, k: int) -> list[list[SearchHit]]:
    """Every live segment scored exactly, `EXHAUSTIVE_CHUNK` at a time, keeping the running top `k` per query."""
    live = store.live_ids()
    queries = text.sentence_embeds.shape[0]
    best_scores = torch.full((queries, 0), float("-inf"))
    best_ids = torch.zeros((queries, 0), dtype=torch.long)
    for start in range(0, len(live), EXHAUSTIVE_CHUNK):
        ids = live[start : start + EXHAUSTIVE_CHUNK]
        scores = torch.cat([best_scores, exact_scores(model, store, text, ids)], dim=1)
        pool = torch.cat([best_ids, torch.from_numpy(ids)[None].expand(len(scores), -1)], dim=1)
        best_scores, order = scores.topk(min(k, scores.shape[1]), dim=1)
        best_ids = pool.gather(1, order)
    return [hits(model, store, text_row(text, i), best_ids[i].numpy(), best_scores[i].numpy()) for i in range(queries)]


def first_stage(
    store: SegmentStore, query: np.ndarray, count: int, nprobe: int = DEFAULT_NPROBE
) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1: `(scores, ids)` of the `count` live segments whose best frame is closest to the normalised query
    vector `[dim]` (cosine), best first."""
    scores, ids = np.empty(0, np.float32), np.empty(0, np.int64)
    tail_vectors, tail_owners = store.tail_frames()
    if len(tail_owners):
        scores, ids = cascade.segment_max(tail_vectors @ query, tail_owners)
    ann = store.ann()
    if ann is not None:
        # A segment contributes several frames, and removed segments stay in the IVF index until the next build.
        frames = count * min(store.manifest["frames"], 4) + min(len(store.manifest["removed"]), 4 * count)
        ann_scores, ann_ids = cascade.search_ann(ann, query[None], frames, nprobe)
        keep = (ann_ids[0] >= 0) & store.live[np.clip(ann_ids[0], 0, None)]
        scores = np.concatenate([scores, ann_scores[0][keep]])
        ids = np.concatenate([ids, ann_ids[0][keep]])
        scores, ids = cascade.segment_max(scores, ids)
    return cascade.top_k(scores, ids, count)


@torch.no_grad()
def cascade_search(
    model: GLCCLModel,
    store: SegmentStore,
    text: GLCCLTextFeatures,
    k: int,
    candidates: int,
    widen: int,
    nprobe: int,
    timings: dict[str, list[float]],
) -> list[SearchHit]:
    """One query `text` `[1, ...]` through the cascade: stage 1 proposes `widen * candidates` segments, stage 2 keeps
    `candidates` (when `widen > 1`), the exact score ranks them."""
    clock = StageClock(timings)
    sentence = text.sentence_embeds[0]
    query = cascade.query_vectors(text.sentence_embeds)[0]
    _, ids = first_stage(store, query, candidates * widen, nprobe)
    clock.lap("first_stage")
    if widen > 1 and len(ids) > candidates:
        features = store.features(ids)
        rough = cascade.video_sentence_scores(model, sentence, features.frame_embeds, features.video_mask)
        _, ids = cascade.top_k(rough.cpu().numpy(), ids, candidates)
    clock.lap("second_stage")
    scores = exact_scores(model, store, text, ids)[0].numpy()
    scores, ids = cascade.top_k(scores, ids, k)
    clock.lap("exact")
    found = hits(model, store, text, ids, scores)
    clock.lap("hits")
    return found


def hits(
    model: GLCCLModel, store: SegmentStore, text: GLCCLTextFeatures, ids: np.ndarray, scores: np.ndarray
) -> list[SearchHit]:
    """SearchHits of one query `text` `[1, ...]`, with each segment's best moment."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return []
    features = store.features(ids)
    weights = cascade.sentence_frame_weights(model, text.sentence_embeds[0], features.frame_embeds, features.video_mask)
    best = cascade.best_frames(weights, features.video_mask).tolist()
    return [
        SearchHit(
            video=str(store.video[i]),
            start=float(store.start[i]),
            end=float(store.end[i]),
            score=float(score),
            segment_id=int(i),
            best_time=float(store.frame_times(int(i))[frame]),
        )
        for i, score, frame in zip(ids, scores, best, strict=True)
    ]
