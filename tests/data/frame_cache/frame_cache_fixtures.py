"""The tiny model, processor settings and checks the frame cache tests share (not collected by pytest)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from modeling_fixtures import tiny_config

from glccl_hf import GLCCLModel
from glccl_hf.processing import GLCCLProcessor

MAX_WORDS, MAX_FRAMES, IMAGE = 12, 4, 16  # IMAGE: the tiny model's
TESTS = Path(__file__).resolve().parents[2]


def tiny_model(processor: GLCCLProcessor) -> GLCCLModel:
    """The tiny model of the modeling tests with the synthetic tokenizer's vocabulary and special tokens."""
    config = tiny_config(max_words=MAX_WORDS)
    config.text_config.vocab_size = len(processor.tokenizer)
    config.text_config.bos_token_id = processor.tokenizer.bos_token_id
    config.text_config.eos_token_id = processor.tokenizer.eos_token_id
    torch.manual_seed(0)
    return GLCCLModel(config).eval()


def count_sampling(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every video the processor samples (decodes for the cache)."""
    calls: list[str] = []
    original = GLCCLProcessor.sample_frames

    def counted(self, source, name="video"):
        calls.append(name)
        return original(self, source, name=name)

    monkeypatch.setattr(GLCCLProcessor, "sample_frames", counted)
    return calls


def assert_same_batch(left: dict, right: dict) -> None:
    for key in ("input_ids", "attention_mask", "pixel_values", "video_mask"):
        assert torch.equal(left[key], right[key]), key
