"""Part 2 of `bench.search`: latency, bytes and memory of the index at ViT-B/32 sizes with random features (see
`bench/search.py`)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch

from bench import models
from glccl_hf import GLCCLModel, GLCCLProcessor, GLCCLTextFeatures
from glccl_hf.data import make_synthetic_corpus
from glccl_hf.search import VideoIndex, cascade
from glccl_hf.search.ranking import text_row


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
        matrix_noise=0.02,
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


def latency_study(size: int, tokenizer, queries: int, exhaustive_queries: int, out: Path, chunk: int = 50_000) -> dict:
    """Part 2 at `size` segments of random features, the index built in `out` (the caller deletes it)."""
    model, processor = latency_model(tokenizer)
    path = out / f"latency_index_{size}"
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
    flat, owners = cascade.frame_vectors(flat_features.frame_embeds, flat_features.video_mask)
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


def tokenizer_corpus(out: Path) -> Path:
    """A one-video synthetic corpus in `out`, for its tokenizer (when the recall part is skipped)."""
    root = out / "tokenizer_corpus"
    if not (root / "tokenizer").exists():
        make_synthetic_corpus(root, 1, 1)
    return root
