"""Evaluate a GLCCL checkpoint on a text-video retrieval split: t2v / v2t R@1, R@5, R@10, MdR, MnR.

    python examples/evaluate_glccl.py MODEL DATASET --split test [--videos_dir DIR] [--batch_size 16]
        [--num_workers 4] [--dsl] [--output metrics.json] [--report DIR] [--device cuda]
        [--missing_videos {error,drop}] [--on_error {raise,skip}] [--duplicates {drop,keep}] [--frame_cache DIR]

MODEL is a folder (or Hub id) saved with ``save_pretrained``; the processor is read from the same place unless
``--processor`` is given. DATASET is anything ``glccl_hf.data.load_retrieval_dataset`` reads (MSR-VTT, DiDeMo,
VATEX annotation folders, a videofolder, ...). Every caption and every video is encoded once; all pairs are scored
by the exact GLCCL scorer.

By default a missing video file or a video that cannot be decoded stops the run with an error naming it.
``--missing_videos drop`` leaves out the videos whose files are absent, ``--on_error skip`` those that cannot be
decoded (each with its captions); rows repeating an earlier row's video and caption exactly are left out unless
``--duplicates keep``. Whatever was left out is counted and named under the printed table and, with ``--output``,
in the JSON file: ``{"metrics": {...}, "evaluated": {"texts", "videos"}, "dropped": {...}}``.

``--frame_cache DIR`` decodes each video once into a frame cache (or reuses and completes one, e.g. the training
run's) and encodes the videos from it: the same metrics, much less CPU per video when a split is evaluated again.

``--report DIR`` also writes a report to look at: the rank distribution (PNG) and, for a few captions, the top-5
videos' thumbnails with the true video marked (HTML).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from glccl_hf.modeling.checks import positive_int
from transformers import AutoModel, AutoProcessor

import glccl_hf  # noqa: F401  (registers GLCCL with the Auto classes)
from glccl_hf.data import LoadReport, cache_frames, load_retrieval_dataset
from glccl_hf.data.collator import ON_ERROR_POLICIES
from glccl_hf.data.loaders import MISSING_VIDEO_POLICIES
from glccl_hf.evaluation import DUPLICATE_POLICIES, RetrievalScores, retrieval_corpus, score_dataset
from glccl_hf.formatting import preview
from glccl_hf.metrics import DIRECTIONS, DSL_PREFIX, METRIC_NAMES, format_metrics_table
from glccl_hf.report import write_retrieval_report
from glccl_hf.video import VideoDecodeError

logger = logging.getLogger("evaluate_glccl")


def _at_least(minimum: int):
    """An argparse type: an integer >= `minimum`, checked by the project's one positive-integer check."""

    def parse(text: str) -> int:
        value = int(text)
        try:
            return positive_int("the value", value, minimum)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

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
    parser.add_argument(
        "--block_size", type=_at_least(1), help="texts and videos per block of the exact scorer (default: automatic)"
    )
    parser.add_argument("--dsl", action="store_true", help="also report dual-softmax (DSL) re-scored metrics")
    parser.add_argument("--dsl_temperature", type=float, default=1.0, help="temperature of the dual softmax")
    parser.add_argument(
        "--missing_videos",
        choices=MISSING_VIDEO_POLICIES,
        default="error",
        help="a video file that is absent: 'error' (default) stops; 'drop' leaves it out with its captions (reported)",
    )
    parser.add_argument(
        "--on_error",
        choices=ON_ERROR_POLICIES,
        default="raise",
        help="a video that cannot be decoded: 'raise' (default) stops; 'skip' leaves it out, reported",
    )
    parser.add_argument(
        "--duplicates",
        choices=DUPLICATE_POLICIES,
        default="drop",
        help="rows repeating an earlier row's video and caption exactly: 'drop' (default, reported) or 'keep'",
    )
    parser.add_argument("--trust_remote_code", action="store_true", help="load the model with its saved code")
    parser.add_argument("--output", type=Path, help="write the metrics to this JSON file")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write an HTML/PNG report into this folder")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--frame_cache", type=Path, help="read (and first fill) this frame cache folder")
    return parser.parse_args(argv)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def format_table(metrics: dict[str, float]) -> str:
    """One row per direction (t2v, v2t, and dsl_ variants when present), columns R@K, MdR, MnR."""
    directions = [d for d in (*DIRECTIONS, *(DSL_PREFIX + d for d in DIRECTIONS)) if f"{d}_R@1" in metrics]
    rows = [((d,), {name: metrics[f"{d}_{name}"] for name in METRIC_NAMES}) for d in directions]
    return format_metrics_table(rows, METRIC_NAMES, markdown=False)


def drop_report(scores: RetrievalScores, load_report: LoadReport) -> dict[str, dict]:
    """What the evaluation left out, for the JSON output: counts and every id."""
    return {
        "missing_videos": {"count": len(load_report.missing_videos), "video_ids": list(load_report.missing_videos)},
        "undecodable_videos": {
            "count": len(scores.skipped_videos),
            "captions": scores.skipped_captions,
            "videos": [vars(video) for video in scores.skipped_videos],
        },
        "duplicate_rows": {
            "count": len(scores.duplicates),
            "rows": [{"video_id": video_id, "caption": caption} for video_id, caption in scores.duplicates],
        },
    }


def format_drops(scores: RetrievalScores, load_report: LoadReport, duplicates: str) -> str:
    """The lines under the table: what was evaluated and what was left out (counts and the first names)."""
    lines = [f"evaluated: {len(scores.captions)} captions x {len(scores.video_ids)} videos"]
    lines.append(f"missing videos dropped: {_counted(load_report.missing_videos)}")
    skipped = _counted([video.video_id for video in scores.skipped_videos])
    if scores.skipped_videos:
        skipped += f", with their {scores.skipped_captions} caption(s)"
    lines.append(f"undecodable videos skipped: {skipped}")
    if duplicates == "keep":
        lines.append(f"duplicate rows kept (--duplicates keep): {_counted(load_report.duplicates)}")
    else:
        lines.append(f"duplicate rows dropped: {_counted(scores.duplicates)}")
    return "\n".join(lines)


def _counted(items: list, shown: int = 5) -> str:
    """'3 (a, b, c)': a count and the first few items."""
    if not items:
        return "0"
    return f"{len(items)} ({preview(items, shown, render=str)})"


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
    try:
        dataset, load_report = load_retrieval_dataset(
            args.dataset, args.split, missing_videos=args.missing_videos, return_report=True, **options
        )
    except FileNotFoundError as err:  # the message names the files and the --missing_videos option
        raise SystemExit(f"evaluate_glccl.py: error: {err}") from err
    logger.info("%s %s: %d captions of %d videos", args.dataset, args.split, len(dataset), _num_videos(dataset))
    try:
        if args.frame_cache is not None:
            dataset = cache_frames(
                dataset, processor, args.frame_cache, num_proc=max(1, args.num_workers), on_error=args.on_error
            )
        scores = score_dataset(
            model,
            processor,
            dataset,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            device=args.device or default_device(),
            block_size=args.block_size,
            progress=not args.no_progress,
            on_error=args.on_error,
            duplicates=args.duplicates,
        )
    except (FileNotFoundError, VideoDecodeError) as err:
        hint = "pass --on_error skip to leave out the videos that cannot be read (they are listed with the results)"
        raise SystemExit(f"evaluate_glccl.py: error: {err}\n{hint}") from err
    metrics = scores.metrics(dsl=args.dsl, dsl_temperature=args.dsl_temperature)
    print(format_table(metrics))
    print(format_drops(scores, load_report, args.duplicates))
    if args.output is not None:
        result = {
            "metrics": metrics,
            "evaluated": {"texts": len(scores.captions), "videos": len(scores.video_ids)},
            "dropped": drop_report(scores, load_report),
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        logger.info("metrics written to %s", args.output)
    if args.report is not None:
        videos = evaluated_videos(dataset, scores, args.duplicates)
        report = write_retrieval_report(args.report, scores, videos, metrics)
        logger.info("report written to %s", report)
    return metrics


def evaluated_videos(dataset, scores: RetrievalScores, duplicates: str) -> list:
    """The videos of the score matrix's columns, in order (videos left out by --on_error skip are not among them)."""
    corpus = retrieval_corpus(dataset, duplicates=duplicates)
    by_id = dict(zip(corpus.video_ids, corpus.videos, strict=True))
    return [by_id[video_id] for video_id in scores.video_ids]


def _num_videos(dataset) -> int:
    return sum(1 for index in dataset["caption_index"] if index == 0)


if __name__ == "__main__":
    main(sys.argv[1:])
