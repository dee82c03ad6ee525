"""Evaluate a GLCCL checkpoint on a text-video retrieval split: t2v / v2t R@1, R@5, R@10, MdR, MnR.

    python examples/evaluate_glccl.py MODEL DATASET --split test [--videos_dir DIR] [--batch_size 16]
        [--num_workers 4] [--dsl] [--output metrics.json] [--report DIR] [--device cuda]

MODEL is a folder (or Hub id) saved with ``save_pretrained``; the processor is read from the same place unless
``--processor`` is given. DATASET is anything ``glccl_hf.data.load_retrieval_dataset`` reads (MSR-VTT, DiDeMo,
VATEX annotation folders, a videofolder, ...). Every caption and every video is encoded once; all pairs are scored
by the exact GLCCL scorer. The metrics are printed as a table and, with ``--output``, written as JSON. ``--report DIR``
also writes a report to look at: the rank distribution (PNG) and, for a few captions, the top-5 videos' thumbnails
with the true video marked (HTML).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from transformers import AutoModel, AutoProcessor

import glccl_hf  # noqa: F401  (registers GLCCL with the Auto classes)
from glccl_hf.data import load_retrieval_dataset
from glccl_hf.evaluation import RECALL_AT, evaluate_retrieval

logger = logging.getLogger("evaluate_glccl")


def _at_least(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="model folder or Hub id (saved with save_pretrained)")
    parser.add_argument("dataset", help="dataset folder or Hub id, read by glccl_hf.data.load_retrieval_dataset")
    parser.add_argument("--split", default="test", help="split to evaluate (default: test)")
    parser.add_argument("--videos_dir", help="folder holding the videos (default: the loader's default)")
    parser.add_argument("--processor", help="processor folder or Hub id (default: MODEL)")
    parser.add_argument("--batch_size", type=_at_least(1), default=16, help="texts / videos per forward pass")
    parser.add_argument("--num_workers", type=_at_least(0), default=0, help="DataLoader workers decoding videos")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)")
    parser.add_argument("--max_words", type=_at_least(2), help="override the processor's max_words")
    parser.add_argument("--max_frames", type=_at_least(1), help="override the processor's max_frames")
    parser.add_argument("--block_size", type=_at_least(1), help="tile size of the exact scorer (default: automatic)")
    parser.add_argument("--dsl", action="store_true", help="also report dual-softmax (DSL) re-scored metrics")
    parser.add_argument("--dsl_temperature", type=float, default=1.0, help="temperature of the dual softmax")
    parser.add_argument("--trust_remote_code", action="store_true", help="load the model with its saved code")
    parser.add_argument("--output", type=Path, help="write the metrics to this JSON file")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write an HTML/PNG report into this folder")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    return parser.parse_args(argv)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def format_table(metrics: dict[str, float]) -> str:
    """One row per direction (t2v, v2t, and dsl_ variants when present), columns R@K, MdR, MnR."""
    columns = [f"R@{k}" for k in RECALL_AT] + ["MdR", "MnR"]
    directions = [d for d in ("t2v", "v2t", "dsl_t2v", "dsl_v2t") if f"{d}_R@1" in metrics]
    lines = [f"{'':<8}" + "".join(f"{c:>8}" for c in columns)]
    for direction in directions:
        lines.append(f"{direction:<8}" + "".join(f"{metrics[f'{direction}_{c}']:>8.1f}" for c in columns))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model = AutoModel.from_pretrained(args.model, trust_remote_code=args.trust_remote_code)
    processor = AutoProcessor.from_pretrained(args.processor or args.model)
    if args.max_words is not None:
        processor.max_words = args.max_words
    if args.max_frames is not None:
        processor.max_frames = args.max_frames
    options = {"videos_dir": args.videos_dir} if args.videos_dir is not None else {}
    dataset = load_retrieval_dataset(args.dataset, args.split, **options)
    logger.info("%s %s: %d captions of %d videos", args.dataset, args.split, len(dataset), _num_videos(dataset))

    if args.report is not None:
        metrics = evaluate_with_report(args, model, processor, dataset)
    else:
        metrics = evaluate_retrieval(
            model,
            processor,
            dataset,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            device=args.device or default_device(),
            dsl=args.dsl,
            dsl_temperature=args.dsl_temperature,
            block_size=args.block_size,
            progress=not args.no_progress,
        )
    print(format_table(metrics))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(metrics, indent=2) + "\n")
        logger.info("metrics written to %s", args.output)
    return metrics


def evaluate_with_report(args: argparse.Namespace, model, processor, dataset) -> dict[str, float]:
    """`evaluate_retrieval`'s metrics, keeping the score matrix for the report written into `args.report`."""
    from glccl_hf.evaluation import retrieval_corpus, retrieval_metrics, score_dataset
    from glccl_hf.report import write_retrieval_report

    scores = score_dataset(
        model,
        processor,
        dataset,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device or default_device(),
        block_size=args.block_size,
        progress=not args.no_progress,
    )
    metrics = retrieval_metrics(
        scores.similarity, scores.text_to_video, dsl=args.dsl, dsl_temperature=args.dsl_temperature
    )
    report = write_retrieval_report(args.report, scores, retrieval_corpus(dataset).videos, metrics)
    logger.info("report written to %s", report)
    return metrics


def _num_videos(dataset) -> int:
    return sum(1 for index in dataset["caption_index"] if index == 0)


if __name__ == "__main__":
    main(sys.argv[1:])
