"""Search benchmark: the cascade against exhaustive exact GLCCL scoring.

Part 1, recall (the trained demo GLCCL on synthetic videos): 30 s videos of 15 two-second scenes, cut into 6 s
segments (the demo's clip length), at least 2,000 segments. Queries are scene captions. For each `candidates` (and
with / without stage 2) it reports the recall of the exhaustive top-10 inside the cascade's top-10, the fraction of
the collection scored exactly, and how often the top hit holds the queried scene; it also compares first-stage
proxies (mean of normalised frames, max over frames, the stage-2 score itself) at equal exact budgets.

Part 2, latency and memory (random features at ViT-B/32 sizes: D = 512, 12 frames, 32 words): index build time,
bytes per segment, p50 / p95 ms per query of each stage and in total, exhaustive scoring, peak memory.

    python -m bench.search                          # recall + 10k and 100k segments
    python -m bench.search --sizes 10000 100000 1000000   # adds 1M (about 12 GB on disk, several minutes)

The demo model is trained once (about 4 min) into bench_output/search_demo/glccl and reused. Results are printed as
markdown and written to bench_output/search/results.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench import models
from glccl_hf import GLCCLModel, GLCCLProcessor, GLCCLTextFeatures
from glccl_hf.data import load_synthetic_tokenizer, make_synthetic_corpus
from glccl_hf.data.synthetic import SCENE_SEPARATOR
from glccl_hf.demo import DemoSettings
from glccl_hf.search import VideoIndex, cascade
from glccl_hf.search.ranking import text_row

OUTPUT = Path("bench_output")
DEMO_DIR = OUTPUT / "search_demo"
RESULTS_DIR = OUTPUT / "search"
CANDIDATES = (10, 20, 50, 100, 200)
RECALL_AT = 10


def demo_checkpoint() -> Path:
    """The demo GLCCL (glccl_hf.demo defaults) with its processor; trained here the first time."""
    return models.demo_checkpoint(DEMO_DIR, DemoSettings())


# ------------------------------------------------------------------------------------------------------ recall


def recall_corpus(videos: int) -> Path:
    """Synthetic 30 s videos (15 scenes of 2 s) unseen in training (another seed), made once."""
    root = RESULTS_DIR / f"recall_corpus_{videos}"
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
    mask = features.frame_mask.bool()
    sentences = torch.nn.functional.normalize(text.sentence_embeds.float(), dim=-1)
    cosines = torch.einsum("qd,sfd->qsf", sentences, frames)
    mean = torch.nn.functional.normalize((frames * mask[..., None]).sum(1), dim=-1)
    proxies = {
        "mean of normalised frames": sentences @ mean.T,
        "max over frames": cosines.masked_fill(~mask[None], -2).amax(-1),
        "sentence-guided video-sentence (stage 2)": torch.stack(
            [
                cascade.video_sentence_scores(index.model, s, features.frame_embeds, features.frame_mask)
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


def recall_study(videos: int, queries: int) -> dict:
    checkpoint = demo_checkpoint()
    corpus = recall_corpus(videos)
    path = RESULTS_DIR / f"recall_index_{videos}"
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
    ivf_path = RESULTS_DIR / f"recall_index_{videos}_ivf"
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


# ----------------------------------------------------------------------------------------------------- latency


def latency_model(tokenizer) -> tuple[GLCCLModel, GLCCLProcessor]:
    """GLCCL with ViT-B/32's joint space (D = 512, 12 frames, 32 words): the sizes the stored features and the exact
    scorer depend on. The towers are tiny: query encoding is measured separately."""
    model = models.random_glccl(
        width=64,
        projection_dim=512,
        max_words=32,
        max_frames=12,
        image_size=32,
        patch_size=16,
        tokenizer=tokenizer,
        max_positions=32,
        temporal_layers=1,
        heads_noise=0.02,
    )
    return model, GLCCLProcessor(tokenizer, max_words=32, max_frames=12, image_size=32)


def random_text(count: int, seed: int) -> GLCCLTextFeatures:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, 20, (count,), generator=generator)
    return GLCCLTextFeatures(
        sentence_embeds=torch.randn(count, 512, generator=generator),
        word_embeds=torch.randn(count, 32, 512, generator=generator),
        word_mask=(torch.arange(32)[None] < lengths[:, None]).long(),
    )


def peak_rss_reset() -> None:
    """Reset the kernel's peak resident set size of this process (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95))}


def latency_study(size: int, tokenizer, queries: int, exhaustive_queries: int, chunk: int = 50_000) -> dict:
    model, processor = latency_model(tokenizer)
    path = RESULTS_DIR / f"latency_index_{size}"
    if path.exists():
        shutil.rmtree(path)
    index = VideoIndex.create(path, model, processor)
    rng = np.random.default_rng(size)
    peak_rss_reset()
    start = time.perf_counter()
    for first in range(0, size, chunk):
        count = min(chunk, size - first)
        frames = rng.standard_normal((count, 12, 512), dtype=np.float32)
        valid = rng.integers(6, 13, count)
        mask = (np.arange(12)[None] < valid[:, None]).astype(np.int64)
        names = [f"/videos/{(first + i) // 20:07d}.mp4" for i in range(count)]
        starts = [15.0 * ((first + i) % 20) for i in range(count)]
        index.add_features(frames, mask, names, starts, [s + 15.0 for s in starts], update_ann=False)
        del frames
    write_seconds = time.perf_counter() - start
    if size >= index.manifest["ann_threshold"]:
        index.build_ann()
    build_seconds = time.perf_counter() - start
    build_peak = peak_rss_mb()
    status = index.status()
    # Reopen as a user would (memory maps, nothing read yet), then search.
    index = VideoIndex.open(path, model=model)
    text = random_text(queries, seed=1)
    index.search_features(random_text(3, seed=2), 10)  # warm-up
    peak_rss_reset()
    timings: dict[str, list[float]] = {}
    totals = []
    for q in range(queries):
        start = time.perf_counter()
        index.search_features(text_row(text, q), 10, timings=timings)
        totals.append(time.perf_counter() - start)
    search_peak = peak_rss_mb()
    flat_ids = index.segment_ids()[: min(size, 10_000)]
    flat_features = index.features(flat_ids)
    flat, owners = cascade.frame_vectors(flat_features.frame_embeds, flat_features.frame_mask)
    query = cascade.query_vectors(text.sentence_embeds[:1])[0]
    flat_times = []
    for _ in range(20):
        start = time.perf_counter()
        cascade.top_k(*cascade.segment_max(flat @ query, flat_ids[owners]), 400)
        flat_times.append(time.perf_counter() - start)
    exhaustive: dict[str, list[float]] = {}
    for q in range(exhaustive_queries):
        index.search_features(text_row(text, q), 10, exhaustive=True, timings=exhaustive)
    return {
        "segments": size,
        "write_seconds": write_seconds,
        "build_seconds": build_seconds,
        "first_stage": status["first_stage"],
        "bytes_per_segment": status["bytes_per_segment"],
        "bytes": status["bytes"],
        "build_peak_rss_mb": build_peak,
        "search_peak_rss_mb": search_peak,
        "stages_ms": {stage: percentiles(seconds) for stage, seconds in timings.items()},
        "total_ms": percentiles(totals),
        "flat_first_stage_ms_10k_segments": percentiles(flat_times) | {"segments": len(flat)},
        "exhaustive_ms": percentiles(exhaustive["exhaustive"]) if exhaustive else None,
        "exhaustive_queries": exhaustive_queries,
    }


def query_encoding_ms(repeats: int = 30) -> dict[str, float]:
    """One query through a CLIP ViT-B/32-sized text tower (random weights, 32 tokens) and its projection."""
    from transformers import CLIPTextConfig, CLIPTextModel

    tower = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=512,
            intermediate_size=2048,
            num_hidden_layers=12,
            num_attention_heads=8,
            max_position_embeddings=77,
        )
    ).eval()
    ids = torch.randint(1, 1000, (1, 32))
    seconds = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            tower(input_ids=ids)
            seconds.append(time.perf_counter() - start)
    return percentiles(seconds[3:])


# ------------------------------------------------------------------------------------------------------ report


def markdown(results: dict) -> str:
    lines = []
    if "recall" in results:
        r = results["recall"]
        lines += [
            f"Recall (demo GLCCL, {r['segments']} segments of 6 s from {r['videos']} synthetic 30 s videos, "
            f"{r['queries']} scene-caption queries): recall@10 = share of the exhaustive top-10 in the cascade's "
            "top-10.",
            "",
            "| candidates | scored exactly | recall@10, stage 1 only | recall@10, with stage 2 (widen 4) |",
            "|---|---|---|---|",
        ]
        rows = {(row["candidates"], row["widen"]): row for row in r["cascade"]}
        for c in CANDIDATES:
            lines.append(
                f"| {c} | {100 * c / r['segments']:.1f}% | {rows[(c, 1)]['recall@10']:.3f} | "
                f"{rows[(c, 4)]['recall@10']:.3f} |"
            )
        lines += [
            "",
            "First-stage proxy, each reranked exactly on its top `candidates` (recall@10):",
            "",
            "| proxy | " + " | ".join(str(c) for c in CANDIDATES) + " |",
            "|---" * (len(CANDIDATES) + 1) + "|",
        ]
        for name, by_c in r["proxies"].items():
            lines.append(f"| {name} | " + " | ".join(f"{by_c[c]:.3f}" for c in CANDIDATES) + " |")
        ivf = r["ivf_first_stage"]
        lines += [
            "",
            f"With stage 1 on {ivf['kind']} (widen 4): "
            + ", ".join(f"{row['candidates']}: {row['recall@10']:.3f}" for row in ivf["table"]),
        ]
        lines += [
            "",
            f"Top hit shows a scene with the queried caption: exhaustive {r['exhaustive_top1_holds_scene']:.3f}; "
            f"its best_time falls in that scene: {r['best_time_in_the_queried_scene']:.3f}.",
            "",
        ]
    if results.get("latency"):
        lines += [
            "| segments | first stage | build s | bytes/segment | stage 1 p50/p95 | stage 2 p50/p95 | exact p50/p95 "
            "| hits p50/p95 | cascade total p50/p95 ms | exhaustive ms/query | peak RSS build / search MB |",
            "|---" * 11 + "|",
        ]
        for row in results["latency"]:
            st = row["stages_ms"]

            def pair(stage, st=st):
                return f"{st[stage]['p50']:.1f} / {st[stage]['p95']:.1f}"

            ex = row["exhaustive_ms"]
            lines.append(
                f"| {row['segments']:,} | {row['first_stage']} | {row['build_seconds']:.0f} | "
                f"{row['bytes_per_segment']:.0f} | {pair('first_stage')} | {pair('second_stage')} | {pair('exact')} "
                f"| {pair('hits')} | {row['total_ms']['p50']:.1f} / {row['total_ms']['p95']:.1f} | "
                f"{ex['p50']:.0f} (n={row['exhaustive_queries']}) | "
                f"{row['build_peak_rss_mb']:.0f} / {row['search_peak_rss_mb']:.0f} |"
            )
        lines.append("")
        q = results["query_encoding_ms"]
        lines.append(
            f"Query encoding (ViT-B/32-sized text tower, 32 tokens): p50 {q['p50']:.1f} ms, "
            f"p95 {q['p95']:.1f} ms, not included above."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--recall-videos", type=int, default=400, help="30 s videos: 5 segments each")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--queries", type=int, default=100, help="timed cascade queries per size")
    parser.add_argument(
        "--exhaustive-queries",
        type=int,
        nargs="*",
        default=None,
        help="exhaustive queries per size (default 5, and 1 at 1M)",
    )
    parser.add_argument("--skip-recall", action="store_true")
    parser.add_argument("--output", default=str(RESULTS_DIR / "results.json"))
    args = parser.parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    results: dict = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}}
    if not args.skip_recall:
        results["recall"] = recall_study(args.recall_videos, args.recall_queries)
        print(markdown(results), flush=True)
    tokenizer = load_synthetic_tokenizer(
        recall_corpus(args.recall_videos) if not args.skip_recall else make_tokenizer_corpus()
    )
    results["latency"] = []
    for i, size in enumerate(args.sizes):
        exhaustive = args.exhaustive_queries[i] if args.exhaustive_queries else (1 if size >= 1_000_000 else 5)
        print(f"== {size:,} segments", flush=True)
        results["latency"].append(latency_study(size, tokenizer, args.queries, exhaustive))
        shutil.rmtree(RESULTS_DIR / f"latency_index_{size}")
    results["query_encoding_ms"] = query_encoding_ms()
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))
    print(f"\nwrote {args.output}", file=sys.stderr)


def make_tokenizer_corpus() -> Path:
    root = RESULTS_DIR / "tokenizer_corpus"
    if not (root / "tokenizer").exists():
        make_synthetic_corpus(root, 1, 1)
    return root


if __name__ == "__main__":
    main()
