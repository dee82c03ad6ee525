#!/usr/bin/env python
"""The GLCCL search page over your videos, laid out as a Hugging Face Space's `app.py` (it runs locally too).

A Space repository (SDK gradio) holds this file as `app.py`, a `requirements.txt` with the line `glccl-hf[app]`,
your videos in `videos/`, and a README.md starting with:

    ---
    title: GLCCL video search
    sdk: gradio
    app_file: app.py
    ---

Settings come from the environment (a Space's "Variables"):
    GLCCL_MODEL   GLCCL checkpoint folder or Hub id (needed to build the index the first time)
    GLCCL_VIDEOS  folder of videos to index (default: videos)
    GLCCL_INDEX   index folder (default: index); built on first start, then only new or changed videos are encoded

Locally: `GLCCL_MODEL=path/to/checkpoint python examples/search_app.py` serves http://127.0.0.1:7860. A Space sets
GRADIO_SERVER_NAME=0.0.0.0, which the app follows; elsewhere it binds 127.0.0.1 only.
"""

from __future__ import annotations

import os
from pathlib import Path

from glccl_hf.search import VideoIndex
from glccl_hf.search.app import SearchApp, build_app
from glccl_hf.search.storage import MANIFEST


def open_index(index_dir: Path, videos: Path, model: str | None) -> VideoIndex:
    """The index in `index_dir`, created for `model` when absent, brought up to date with the videos in `videos`."""
    if (index_dir / MANIFEST).exists():
        index = VideoIndex.open(index_dir, model=model)
    elif model is None:
        raise SystemExit(f"{index_dir} holds no index yet: set GLCCL_MODEL to the GLCCL checkpoint to build it with")
    else:
        index = VideoIndex.create(index_dir, model)
    if videos.is_dir():
        report = index.add(str(videos), progress=False)
        for path, reason in report.failed:
            print(f"not indexed: {path}: {reason}")
    return index


def make_demo() -> SearchApp:
    index = open_index(
        Path(os.environ.get("GLCCL_INDEX", "index")),
        Path(os.environ.get("GLCCL_VIDEOS", "videos")),
        os.environ.get("GLCCL_MODEL"),
    )
    return build_app(index)


demo = make_demo()

if __name__ == "__main__":
    demo.launch()
