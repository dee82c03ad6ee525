"""Search with a (briefly) trained demo GLCCL: its training captions, easy queries, find their own video first, and
the cascade returns what the exhaustive search returns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench.models import demo_processor
from glccl_hf import GLCCLModel
from glccl_hf.data import load_retrieval_dataset, make_synthetic_corpus
from glccl_hf.demo import DemoSettings, train_variant
from glccl_hf.search import VideoIndex

SETTINGS = DemoSettings(
    n_train=8, n_test=2, max_steps=120, batch_size=8, width=32, layers=1, image_size=16, max_frames=6
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("trained")
    corpus = make_synthetic_corpus(root / "data", SETTINGS.n_train, SETTINGS.n_test, seed=SETTINGS.seed)
    processor = demo_processor(corpus, SETTINGS)
    train = load_retrieval_dataset(corpus, "train")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only add overhead on a shared machine
    try:
        train_variant("glccl", {}, train, load_retrieval_dataset(corpus, "test"), processor, SETTINGS, root)
    finally:
        torch.set_num_threads(threads)
    return corpus, train, GLCCLModel.from_pretrained(root / "glccl"), processor


def test_training_captions_find_their_video_first(trained, tmp_path):
    corpus, train, model, processor = trained
    index = VideoIndex.create(tmp_path / "index", model, processor)
    assert len(index.add(corpus / "train", progress=False).added) == SETTINGS.n_train
    captions, videos = train["caption"], [str(Path(v).resolve()) for v in train["video"]]
    cascade = index.search(captions, k=3, candidates=4)
    exhaustive = index.search(captions, k=3, exhaustive=True)
    first = [hits[0].video for hits in exhaustive]
    # 8 videos: chance is 1 in 8; a caption can also describe a scene of another video (same colour, shape, ...).
    assert sum(f == v for f, v in zip(first, videos, strict=True)) >= 0.75 * len(captions)
    assert [h[0].video for h in cascade] == first
