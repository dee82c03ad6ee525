"""A static HTML page of search results (thumbnails and captions inlined), for those without Gradio:
`glccl-search search --html out.html`."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from .index import SearchHit
from .thumbnails import ThumbnailCache, data_uri, playable_file

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; background: #fafafa; color: #222; }
h2 { font-size: 1.1em; margin-top: 28px; }
.hits { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 240px; background: #fff; border: 1px solid #ddd; border-radius: 6px; overflow: hidden; }
figure img { width: 240px; height: 150px; object-fit: contain; background: #111; display: block; }
figcaption { font-size: 0.8em; padding: 6px 8px; word-break: break-all; }
"""


def hit_caption(hit: SearchHit) -> str:
    """The file name, the segment's time range and the score."""
    return f"{os.path.basename(hit.video)} · {hit.start:.1f}–{hit.end:.1f} s · score {hit.score:.2f}"


def results_html(results: Sequence[tuple[str, Sequence[SearchHit]]], thumbnails: ThumbnailCache | None = None) -> str:
    """One section per `(query, hits)`: the hits' thumbnails (the frame at `best_time`) with captions, each linking
    to its video file from the segment's start."""
    thumbnails = thumbnails or ThumbnailCache()
    sections = []
    for query, hits in results:
        figures = []
        for rank, hit in enumerate(hits, 1):
            image = f'<img src="{data_uri(thumbnails.get(hit.video, hit.best_time))}" alt="rank {rank}">'
            path = playable_file(hit.video)
            if path is not None:
                image = f'<a href="{html.escape(f"file://{quote(path)}#t={hit.start:.3f}")}">{image}</a>'
            text = f"{rank}. {hit_caption(hit)} · best at {hit.best_time:.1f} s"
            figures.append(f"<figure>{image}<figcaption>{html.escape(text)}</figcaption></figure>")
        body = "".join(figures) if figures else "<p>No hits (the index is empty).</p>"
        sections.append(f"<h2>{html.escape(query)}</h2><div class=\"hits\">{body}</div>")
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>GLCCL search results</title>"
        f"<style>{_STYLE}</style></head><body><h1>GLCCL search results</h1>{''.join(sections)}</body></html>\n"
    )


def write_results_html(
    path: str | os.PathLike,
    results: Sequence[tuple[str, Sequence[SearchHit]]],
    thumbnails: ThumbnailCache | None = None,
) -> Path:
    """Write `results_html(results)` to `path` (its folder must exist) and return the path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--html {path}: folder {path.parent} does not exist")
    path.write_text(results_html(results, thumbnails), encoding="utf-8")
    return path
