"""The card and Hub tests' fixtures: no network, and one tiny model, processor, recipe and full card per module."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from card_fixtures import build_full_card
from huggingface_hub import ModelCard
from modeling_fixtures import tiny_model
from transformers import CLIPTokenizer, TrainingArguments

from glccl_hf import GLCCLModel, GLCCLProcessor
from glccl_hf.data.synthetic import write_synthetic_tokenizer


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve a host or open a connection fails the test (on top of HF_HUB_OFFLINE=1)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def model() -> GLCCLModel:
    return tiny_model()


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> GLCCLProcessor:
    """The tiny model's processor, with the synthetic tokenizer."""
    tokenizer_dir = write_synthetic_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    return GLCCLProcessor(tokenizer, max_words=8, max_frames=4, image_size=16)


@pytest.fixture(scope="module")
def training_args(tmp_path_factory: pytest.TempPathFactory) -> TrainingArguments:
    """TrainingArguments with the reference's recipe, as a card reports them."""
    return TrainingArguments(
        output_dir=str(tmp_path_factory.mktemp("args")),
        report_to=[],
        use_cpu=True,
        learning_rate=1e-4,
        num_train_epochs=5,
        per_device_train_batch_size=128,
        warmup_steps=0.1,
        weight_decay=0.2,
        lr_scheduler_type="cosine",
        adam_beta2=0.98,
        adam_epsilon=1e-6,
    )


@pytest.fixture(scope="module")
def full_card(model: GLCCLModel, training_args: TrainingArguments) -> ModelCard:
    return build_full_card(model, training_args)
