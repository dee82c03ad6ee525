"""Search-app helpers for the tests: a small index of synthetic videos, a free port, a launched app (not collected)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from search_fixtures import MAX_FRAMES, corpus_and_tokenizer, tiny_processor, tiny_search_model

from glccl_hf.search import VideoIndex


def synthetic_index(root: Path, n_train: int = 4, n_test: int = 2) -> VideoIndex:
    """An index of the synthetic corpus's videos (6 s each, one segment per video) with a tiny random GLCCL."""
    corpus, tokenizer = corpus_and_tokenizer(root / "corpus", n_train, n_test)
    index = VideoIndex.create(root / "index", tiny_search_model(tokenizer), tiny_processor(tokenizer))
    index.add(str(corpus), progress=False)
    return index


def add_random_segments(index: VideoIndex, count: int, seed: int = 0) -> None:
    """`count` segments of random features over the index's videos (times within their 6 s), for latency at size."""
    videos = index.videos()
    generator = torch.Generator().manual_seed(seed)
    frame_embeds = torch.randn(count, MAX_FRAMES, index.manifest["dim"], generator=generator)
    video_mask = torch.ones(count, MAX_FRAMES, dtype=torch.long)
    names = [videos[i % len(videos)] for i in range(count)]
    starts = [float(i % 4) for i in range(count)]
    index.add_features(frame_embeds, video_mask, names, starts, [start + 2.0 for start in starts])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def launched(app, **options) -> Iterator[str]:
    """Serve a search app on a free local port for the duration; yields its URL."""
    port = free_port()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True, **options)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()
