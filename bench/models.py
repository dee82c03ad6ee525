"""Models and processors the benchmarks build, and the search tests with them: GLCCLs with random weights at a
chosen size, and the demo's GLCCL trained on the synthetic corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from glccl_hf import GLCCLConfig, GLCCLModel, GLCCLProcessor
from glccl_hf.data import load_retrieval_dataset, load_synthetic_tokenizer, make_synthetic_corpus
from glccl_hf.demo import DemoSettings, train_variant


def random_config(
    *,
    width: int,
    projection_dim: int,
    max_words: int,
    max_frames: int,
    image_size: int = 224,
    patch_size: int = 32,
    layers: int = 1,
    attention_heads: int = 2,
    vocabulary: tuple[int, int, int] | None = None,
    max_positions: int = 77,
    **settings: Any,
) -> GLCCLConfig:
    """A GLCCL config at a chosen size: both towers `layers` deep at hidden size `width` (MLP 2x, `attention_heads`
    heads); with `vocabulary` = (size, start-of-text id, end-of-text id), a text tower for it with `max_positions`
    positions and the reference's padding id 0. `settings` are further GLCCLConfig fields."""
    encoder = dict(
        hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers, num_attention_heads=attention_heads
    )
    text_config = dict(encoder)
    if vocabulary is not None:
        vocab_size, bos_token_id, eos_token_id = vocabulary
        text_config.update(
            vocab_size=vocab_size,
            max_position_embeddings=max_positions,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=0,
        )
    return GLCCLConfig(
        text_config=text_config,
        vision_config=dict(encoder, image_size=image_size, patch_size=patch_size),
        projection_dim=projection_dim,
        max_words=max_words,
        max_frames=max_frames,
        **settings,
    )


def random_model(config: GLCCLConfig, *, matrix_noise: float = 0.0, seed: int = 0) -> GLCCLModel:
    """GLCCL with random weights (seeded), in eval mode. `matrix_noise` moves the score matrices off the identity, so
    that every one of them takes part."""
    torch.manual_seed(seed)
    model = GLCCLModel(config).eval()
    if matrix_noise:
        with torch.no_grad():
            for matrix in model.score_matrices.parameters():
                matrix.add_(matrix_noise * torch.randn_like(matrix))
    return model


def random_glccl(*, tokenizer: Any = None, matrix_noise: float = 0.0, seed: int = 0, **sizes: Any) -> GLCCLModel:
    """`random_model` of `random_config(**sizes)`; with `tokenizer`, the text tower is built for its vocabulary and
    special tokens."""
    vocabulary = None if tokenizer is None else (len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    return random_model(random_config(vocabulary=vocabulary, **sizes), matrix_noise=matrix_noise, seed=seed)


def demo_corpus(root: Path, settings: DemoSettings) -> Path:
    """The demo's synthetic corpus in `root`, made once."""
    if not (root / "test" / "metadata.csv").exists():
        make_synthetic_corpus(root, settings.n_train, settings.n_test, seed=settings.seed)
    return root


def demo_processor(corpus: Path, settings: DemoSettings) -> GLCCLProcessor:
    """The demo's processor for a synthetic corpus: its tokenizer, the settings' words, frames and image size."""
    return GLCCLProcessor(
        load_synthetic_tokenizer(corpus),
        max_words=settings.max_words,
        max_frames=settings.max_frames,
        image_size=settings.image_size,
    )


def demo_checkpoint(work: Path, settings: DemoSettings) -> Path:
    """`work/glccl`: the demo's GLCCL trained on its corpus (`work/data`) with its processor beside the weights, as
    `VideoIndex.create` loads a checkpoint; trained the first time only."""
    checkpoint = work / "glccl"
    if (checkpoint / "model.safetensors").exists() and (checkpoint / "processor_config.json").exists():
        return checkpoint
    corpus = demo_corpus(work / "data", settings)
    processor = demo_processor(corpus, settings)
    train, test = load_retrieval_dataset(corpus, "train"), load_retrieval_dataset(corpus, "test")
    metrics, _ = train_variant("glccl", {}, train, test, processor, settings, work)
    processor.save_pretrained(checkpoint)
    print(f"trained the demo model: {metrics}")
    return checkpoint
