"""examples/search_app.py (a Space's app.py): builds the index from GLCCL_MODEL and GLCCL_VIDEOS on first start,
reopens it after, and exposes the page as `demo`."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

pytest.importorskip("gradio")
from search_fixtures import corpus_and_tokenizer, save_checkpoint, tiny_processor, tiny_search_model  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "search_app.py"


def test_space_app_builds_then_reopens_its_index(tmp_path, monkeypatch):
    corpus, tokenizer = corpus_and_tokenizer(tmp_path / "corpus", 2, 1)
    checkpoint = save_checkpoint(tiny_search_model(tokenizer), tiny_processor(tokenizer), tmp_path / "checkpoint")
    monkeypatch.setenv("GLCCL_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("GLCCL_VIDEOS", str(corpus / "train"))
    monkeypatch.delenv("GLCCL_MODEL", raising=False)
    with pytest.raises(SystemExit, match="set GLCCL_MODEL"):
        runpy.run_path(str(EXAMPLE))

    monkeypatch.setenv("GLCCL_MODEL", str(checkpoint))
    demo = runpy.run_path(str(EXAMPLE))["demo"]
    assert sorted(Path(p).name for p in demo.video_files) == ["video00000.mp4", "video00001.mp4"]
    monkeypatch.delenv("GLCCL_MODEL")  # reopening needs no model: the index names its checkpoint
    again = runpy.run_path(str(EXAMPLE))["demo"]
    assert again.video_files == demo.video_files and len(again.service.index) == 2
