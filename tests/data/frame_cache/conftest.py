"""Fixtures of the frame cache tests: a small synthetic corpus, its processor and its training split."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
from frame_cache_fixtures import IMAGE, MAX_FRAMES, MAX_WORDS
from video_fixtures import synthetic_processor

from glccl_hf.data import load_retrieval_dataset, make_synthetic_corpus
from glccl_hf.processing import GLCCLProcessor


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_corpus(tmp_path_factory.mktemp("synthetic"), 4, 3, seed=3)


@pytest.fixture(scope="module")
def processor(corpus: Path) -> GLCCLProcessor:
    return synthetic_processor(corpus, max_words=MAX_WORDS, max_frames=MAX_FRAMES, image_size=IMAGE)


@pytest.fixture()
def train(corpus: Path) -> datasets.Dataset:
    return load_retrieval_dataset(corpus, "train")
