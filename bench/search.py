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
import json
import os
import shutil
import sys
from pathlib import Path

import torch

from bench.search_latency import latency_study, query_encoding_ms, tokenizer_corpus
from bench.search_recall import CANDIDATES, recall_corpus, recall_study
from glccl_hf.data import load_synthetic_tokenizer

OUTPUT = Path("bench_output")
DEMO_DIR = OUTPUT / "search_demo"
RESULTS_DIR = OUTPUT / "search"


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
        results["recall"] = recall_study(args.recall_videos, args.recall_queries, RESULTS_DIR, DEMO_DIR)
        print(markdown(results), flush=True)
    corpus = tokenizer_corpus(RESULTS_DIR) if args.skip_recall else recall_corpus(args.recall_videos, RESULTS_DIR)
    tokenizer = load_synthetic_tokenizer(corpus)
    results["latency"] = []
    for i, size in enumerate(args.sizes):
        exhaustive = args.exhaustive_queries[i] if args.exhaustive_queries else (1 if size >= 1_000_000 else 5)
        print(f"== {size:,} segments", flush=True)
        results["latency"].append(latency_study(size, tokenizer, args.queries, exhaustive, RESULTS_DIR))
        shutil.rmtree(RESULTS_DIR / f"latency_index_{size}")
    results["query_encoding_ms"] = query_encoding_ms()
    Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))
    print(f"\nwrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
