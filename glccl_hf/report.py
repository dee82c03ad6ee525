"""A retrieval report to look at, beside the metrics JSON: the distribution of the true video's rank for every caption
(`rank_distribution.png`) and, for a few captions, the top-5 videos with the true one marked (`report.html`, thumbnails
inlined).

    from glccl_hf.evaluation import retrieval_corpus, score_dataset
    scores = score_dataset(model, processor, dataset)
    write_retrieval_report("report", scores, retrieval_corpus(dataset).videos, scores.metrics())
"""

from __future__ import annotations

import html
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image, ImageDraw

from .data.schema import video_source
from .evaluation import RetrievalScores
from .metrics import text_to_video_ranks
from .search.thumbnails import data_uri, frames_at, placeholder

# Buckets of the 1-based rank of the true video: [first, last] inclusive.
RANK_BUCKETS: list[tuple[int, float, str]] = [
    (1, 1, "1"),
    (2, 2, "2"),
    (3, 5, "3-5"),
    (6, 10, "6-10"),
    (11, 50, "11-50"),
    (51, 100, "51-100"),
    (101, math.inf, ">100"),
]
THUMBNAIL_SIDE = 200
_TRUE = "#16a34a"


def rank_histogram(ranks: Any) -> list[tuple[str, int]]:
    """How many 0-based `ranks` fall in each of RANK_BUCKETS (labelled by 1-based rank)."""
    one_based = np.asarray(ranks, dtype=np.int64) + 1
    return [(label, int(((one_based >= low) & (one_based <= high)).sum())) for low, high, label in RANK_BUCKETS]


def rank_distribution_png(
    ranks: Any, path: str | os.PathLike, title: str = "text-to-video rank of the true video"
) -> Path:
    """A bar chart of `rank_histogram(ranks)` (counts and percentages written on the bars)."""
    counts = rank_histogram(ranks)
    total = max(sum(count for _, count in counts), 1)
    width, height, left, bottom, top = 640, 320, 40, 40, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 12), f"{title} ({total} captions)", fill="black")
    slot = (width - 2 * left) / len(counts)
    tallest = max(count for _, count in counts) or 1
    for i, (label, count) in enumerate(counts):
        x0 = left + i * slot + 8
        bar = (height - top - bottom) * count / tallest
        colour = _TRUE if i == 0 else "#2563eb"  # rank 1 in the true video's colour
        draw.rectangle((x0, height - bottom - bar, x0 + slot - 16, height - bottom), fill=colour)
        draw.text((x0, height - bottom - bar - 14), f"{count} ({100 * count / total:.0f}%)", fill="black")
        draw.text((x0, height - bottom + 6), label, fill="black")
    draw.line((left, height - bottom, width - left, height - bottom), fill="black")
    path = Path(path)
    image.save(path)
    return path


def video_thumbnail(source: Any, max_side: int = THUMBNAIL_SIDE) -> Image.Image:
    """The frame in the middle of a video (a path, the file's bytes, or a `{"path", "bytes"}` dataset value); a
    placeholder saying why when it cannot be read."""
    source = video_source(source)
    if isinstance(source, (bytes, bytearray)):
        source = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
    else:
        return placeholder("no preview", (max_side, max_side * 9 // 16))
    try:
        with av.open(_opened(source), metadata_errors="ignore") as container:
            seconds = (container.duration or 0) / av.time_base
        return frames_at(source, [seconds / 2], max_side)[0]
    except (OSError, ValueError, av.FFmpegError):
        return placeholder("no preview:\nnot decodable", (max_side, max_side * 9 // 16))


def _opened(source: str | bytes) -> Any:
    return io.BytesIO(source) if isinstance(source, bytes) else source


def _pick_queries(count: int, texts: int) -> list[int]:
    """`count` caption rows spread evenly over the split (first and last included), each once."""
    return sorted({int(i) for i in np.linspace(0, texts - 1, min(count, texts)).round()})


def write_retrieval_report(
    out_dir: str | os.PathLike,
    scores: RetrievalScores,
    videos: Sequence[Any],
    metrics: Mapping[str, float],
    *,
    num_queries: int = 5,
    top: int = 5,
) -> Path:
    """Write `rank_distribution.png` and `report.html` (metrics, the chart, and for `num_queries` captions the `top`
    videos by score with the true one outlined and its rank) into `out_dir`; returns the HTML's path.

    Args:
        scores: the scored split (`glccl_hf.evaluation.score_dataset`).
        videos: the videos in column order (`retrieval_corpus(dataset).videos`): paths or bytes.
        metrics: printed at the top (e.g. `scores.metrics()`).
    """
    if len(videos) != scores.similarity.shape[1]:
        raise ValueError(f"{len(videos)} videos given for a score matrix of {scores.similarity.shape[1]} videos")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ranks = text_to_video_ranks(scores.similarity, scores.text_to_video)
    rank_distribution_png(ranks, out / "rank_distribution.png")
    thumbnails: dict[int, str] = {}
    sections = []
    for row in _pick_queries(num_queries, len(scores.captions)):
        truth = int(scores.text_to_video[row])
        best = torch.topk(scores.similarity[row], min(top, scores.similarity.shape[1])).indices.tolist()
        figures = []
        for place, column in enumerate(best, 1):
            if column not in thumbnails:
                thumbnails[column] = data_uri(video_thumbnail(videos[column]))
            mark = f' style="outline: 4px solid {_TRUE}"' if column == truth else ""
            label = f"{place}. {scores.video_ids[column]} · {float(scores.similarity[row, column]):.2f}"
            label += " (true video)" if column == truth else ""
            figures.append(
                f'<figure{mark}><img src="{thumbnails[column]}" alt="{html.escape(label)}">'
                f"<figcaption>{html.escape(label)}</figcaption></figure>"
            )
        found = f"true video {html.escape(scores.video_ids[truth])} at rank {int(ranks[row]) + 1}"
        sections.append(
            f'<h2>“{html.escape(scores.captions[row])}”</h2><p>{found}</p><div class="hits">{"".join(figures)}</div>'
        )
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.2f}</td></tr>" for k, v in metrics.items())
    page = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>GLCCL retrieval report</title><style>'
        "body{font-family:system-ui,sans-serif;margin:24px} .hits{display:flex;gap:12px;flex-wrap:wrap}"
        "figure{margin:0;width:200px} figure img{width:200px} figcaption{font-size:.8em}"
        "td{padding:2px 10px}</style></head><body><h1>GLCCL retrieval report</h1>"
        f'<table>{table}</table><img src="rank_distribution.png" alt="rank distribution">{"".join(sections)}'
        "</body></html>\n"
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    return out / "report.html"
