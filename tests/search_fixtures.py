"""Tiny GLCCL models, processors and synthetic videos for the search tests (not collected by pytest)."""

from __future__ import annotations

from pathlib import Path

from bench.models import random_glccl
from glccl_hf import GLCCLModel, GLCCLProcessor
from glccl_hf.data import load_synthetic_tokenizer, make_synthetic_corpus

MAX_WORDS, MAX_FRAMES, IMAGE = 12, 4, 16


def corpus_and_tokenizer(root: Path, n_train: int = 4, n_test: int = 2, seed: int = 0):
    """The synthetic corpus (6 s videos at 4 fps, 64 px) and its CLIP tokenizer."""
    corpus = make_synthetic_corpus(root, n_train, n_test, seed=seed)
    return corpus, load_synthetic_tokenizer(corpus)


def tiny_search_model(
    tokenizer, *, seed: int = 0, projection_dim: int = 32, max_frames: int = MAX_FRAMES
) -> GLCCLModel:
    """A random tiny GLCCL for the synthetic tokenizer, with non-identity score heads."""
    return random_glccl(
        width=32,
        projection_dim=projection_dim,
        max_words=MAX_WORDS,
        max_frames=max_frames,
        image_size=IMAGE,
        patch_size=8,
        tokenizer=tokenizer,
        max_positions=16,
        temporal_layers=1,
        matrix_noise=0.3,
        seed=seed,
    )


def tiny_processor(tokenizer, max_frames: int = MAX_FRAMES) -> GLCCLProcessor:
    return GLCCLProcessor(tokenizer, max_words=MAX_WORDS, max_frames=max_frames, image_size=IMAGE)


def save_checkpoint(model: GLCCLModel, processor: GLCCLProcessor, path: Path) -> Path:
    """A local checkpoint folder (weights, config, processor) as `VideoIndex.create` and the CLI load it."""
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def write_audio_only(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A Matroska file with one audio stream and no video."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        samples = np.zeros((1, int(seconds * rate)), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_zero_length_video(path: Path) -> Path:
    """A Matroska file with a video stream that holds no frame."""
    import av

    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "bgr0"
        container.start_encoding()  # the header is written, no frame follows
    return path
