"""Part 1 of `bench.search`: recall of the cascade against the exhaustive exact search, with the demo GLCCL on
synthetic videos whose scenes the queries describe (see `bench/search.py`)."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from bench import models
from glccl_hf import GLCCLTextFeatures
from glccl_hf.data import make_synthetic_corpus
from glccl_hf.data.synthetic import SCENE_SEPARATOR
from glccl_hf.demo import DemoSettings
from glccl_hf.search import VideoIndex, cascade

CANDIDATES = (10, 20, 50, 100, 200)
RECALL_AT = 10


def recall_corpus(videos: int, out: Path) -> Path:
    """Synthetic 30 s videos (15 scenes of 2 s) unseen in training (another seed), made once in `out`."""
    root = out / f"recall_corpus_{videos}"
    if not (root / "train" / "metadata.csv").exists():
        if root.exists():
            shutil.rmtree(root)
        make_synthetic_corpus(root, videos, 1, seed=1, scenes_per_video=15)
    return root


def video_scenes(corpus: Path) -> dict[str, list[str]]:
    """Each video's scene captions (2 s each), by resolved path."""
    with open(corpus / "train" / "metadata.csv", newline="") as handle:
        return {
            str((corpus / "train" / row["file_name"]).resolve()): row["video_scenes"].split(SCENE_SEPARATOR)
            for row in csv.DictReader(handle)
        }


def scene_queries(corpus: Path, count: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """`count` random (caption, video path, scene index) triples from the corpus metadata."""
    with open(corpus / "train" / "metadata.csv", newline="") as handle:
        rows = {row["file_name"]: row["video_scenes"].split(SCENE_SEPARATOR) for row in csv.DictReader(handle)}
    rng = np.random.default_rng(seed)
    names = sorted(rows)
    picks = []
    for _ in range(count):
        name = names[rng.integers(len(names))]
        scene = int(rng.integers(len(rows[name])))
        picks.append((rows[name][scene], str((corpus / "train" / name).resolve()), scene))
    return picks


def recall_of(reference: list[list[int]], found: list[list[int]]) -> float:
    return float(np.mean([len(set(r) & set(f)) / len(r) for r, f in zip(reference, found, strict=True)]))


def proxy_recall(
    index: VideoIndex, text: GLCCLTextFeatures, exhaustive_ids: list[list[int]], exact: torch.Tensor, ids: np.ndarray
) -> dict[str, dict[int, float]]:
    """Recall@10 of first-stage proxies, each followed by exact reranking of its top `candidates` (exact scores
    `[queries, segments]` precomputed over `ids`)."""
    features = index.features(ids)
    frames = torch.nn.functional.normalize(features.frame_embeds, dim=-1)
    mask = features.video_mask.bool()
    sentences = torch.nn.functional.normalize(text.sentence_embeds.float(), dim=-1)
    cosines = torch.einsum("qd,sfd->qsf", sentences, frames)
    mean = torch.nn.functional.normalize((frames * mask[..., None]).sum(1), dim=-1)
    proxies = {
        "mean of normalised frames": sentences @ mean.T,
        "max over frames": cosines.masked_fill(~mask[None], -2).amax(-1),
        "sentence-guided video-sentence (stage 2)": torch.stack(
            [
                cascade.video_sentence_scores(index.model, s, features.frame_embeds, features.video_mask)
                for s in text.sentence_embeds
            ]
        ),
    }
    out = {}
    for name, scores in proxies.items():
        out[name] = {}
        for candidates in CANDIDATES:
            picked = scores.topk(candidates, dim=1).indices
            reranked = exact.gather(1, picked).topk(RECALL_AT, dim=1).indices
            found = [ids[picked[q, reranked[q]].numpy()].tolist() for q in range(len(picked))]
            out[name][candidates] = recall_of(exhaustive_ids, found)
    return out


def recall_study(videos: int, queries: int, out: Path, demo_dir: Path) -> dict:
    """Part 1 over `videos` synthetic videos and `queries` scene captions, with the demo GLCCL trained once into
    `demo_dir`; the corpus and the index are kept in `out`."""
    checkpoint = models.demo_checkpoint(demo_dir, DemoSettings())
    corpus = recall_corpus(videos, out)
    path = out / f"recall_index_{videos}"
    if path.exists():
        index = VideoIndex.open(path, model=checkpoint)
    else:
        index = VideoIndex.create(path, checkpoint, segment_seconds=6)
    start = time.perf_counter()
    report = index.add(corpus / "train", batch_size=64, progress=True)
    add_seconds = time.perf_counter() - start
    segments = len(index)
    picks = scene_queries(corpus, queries)
    text = index.encode_queries([caption for caption, _, _ in picks])
    exhaustive = index.search_features(text, RECALL_AT, exhaustive=True)
    exhaustive_ids = [[hit.segment_id for hit in hits] for hits in exhaustive]

    scenes = video_scenes(corpus)

    def holds_scene(hit, caption: str) -> bool:
        """The hit's segment shows a scene with the queried caption (captions repeat across videos)."""
        return caption in scenes[hit.video][int(hit.start) // 2 : int(round(hit.end)) // 2]

    def best_time_in_scene(hit, caption: str) -> bool:
        return scenes[hit.video][min(int(hit.best_time) // 2, len(scenes[hit.video]) - 1)] == caption

    table = []
    for widen in (1, 4):
        for candidates in CANDIDATES:
            results = index.search_features(text, RECALL_AT, candidates=candidates, widen=widen)
            found = [[hit.segment_id for hit in hits] for hits in results]
            table.append(
                {
                    "candidates": candidates,
                    "widen": widen,
                    "scored_exactly": candidates / segments,
                    "recall@10": recall_of(exhaustive_ids, found),
                    "top1_holds_scene": float(
                        np.mean([holds_scene(h[0], c) for h, (c, _, _) in zip(results, picks, strict=True)])
                    ),
                }
            )
    ids = index.segment_ids()
    with torch.no_grad():
        exact = index.model.similarity(text, index.features(ids)).float()
    top1 = [hits[0] for hits in exhaustive]
    moments = [(h, c) for h, (c, _, _) in zip(top1, picks, strict=True) if holds_scene(h, c)]
    best_time_hits = float(np.mean([best_time_in_scene(h, c) for h, c in moments])) if moments else float("nan")
    # The same queries with stage 1 on an IVF-PQ frame index (built on a copy: the collection is below the threshold).
    ivf_path = out / f"recall_index_{videos}_ivf"
    if ivf_path.exists():
        shutil.rmtree(ivf_path)
    shutil.copytree(path, ivf_path)
    ivf = VideoIndex.open(ivf_path, model=index.model)
    ivf.build_ann()
    ivf_table = []
    for candidates in CANDIDATES:
        results = ivf.search_features(text, RECALL_AT, candidates=candidates)
        found = [[hit.segment_id for hit in hits] for hits in results]
        ivf_table.append({"candidates": candidates, "recall@10": recall_of(exhaustive_ids, found)})
    ivf_kind = ivf.status()["first_stage"]
    shutil.rmtree(ivf_path)
    return {
        "ivf_first_stage": {"kind": ivf_kind, "table": ivf_table},
        "segments": segments,
        "videos": len(report.added) + len(report.unchanged),
        "add_seconds": add_seconds,
        "queries": queries,
        "exhaustive_top1_holds_scene": float(
            np.mean([holds_scene(h, c) for h, (c, _, _) in zip(top1, picks, strict=True)])
        ),
        "best_time_in_the_queried_scene": best_time_hits,
        "cascade": table,
        "proxies": proxy_recall(index, text, exhaustive_ids, exact, ids),
    }
