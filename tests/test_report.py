"""The retrieval report: rank distribution PNG and the top-5 thumbnails with the true video marked; the example
script's --report."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from modeling_fixtures import IMAGE, MAX_FRAMES, MAX_WORDS, tiny_config
from PIL import Image
from video_fixtures import synthetic_processor, write_flat_video

from glccl_hf import GLCCLModel
from glccl_hf.data import make_synthetic_corpus
from glccl_hf.evaluation import RetrievalScores
from glccl_hf.report import rank_histogram, video_thumbnail, write_retrieval_report

REPO = Path(__file__).resolve().parents[1]


def test_rank_histogram_buckets_one_based_ranks():
    ranks = [0, 0, 1, 2, 4, 5, 9, 10, 49, 50, 99, 100, 5000]  # 0-based
    assert rank_histogram(ranks) == [
        ("1", 2), ("2", 1), ("3-5", 2), ("6-10", 2), ("11-50", 2), ("51-100", 2), (">100", 2)
    ]  # fmt: skip


def test_report_marks_the_true_video_among_the_top_five(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    videos = [str(write_flat_video(tmp_path / f"v{i}.mkv", [c] * 10)) for i, c in enumerate(colours)]
    videos[5] = Path(videos[5]).read_bytes()  # a dataset row holding the file's bytes
    similarity = torch.tensor(
        [
            [9.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # true video 0 at rank 1
            [2.0, 1.0, 9.0, 8.0, 7.0, 6.0],  # true video 1 at rank 6: not among the top 5
            [1.0, 2.0, 3.0, 9.0, 4.0, 5.0],  # true video 2 at rank 4
        ]
    )
    scores = RetrievalScores(similarity, torch.tensor([0, 1, 2]), ["cap <a>", "cap b", "cap c"], list("abcdef"))
    page = write_retrieval_report(tmp_path / "report", scores, videos, {"t2v_R@1": 33.3}, num_queries=3).read_text()
    assert page.count("(true video)</figcaption>") == 2
    assert "true video b at rank 6" in page and "true video c at rank 4" in page
    assert "cap &lt;a&gt;" in page and "t2v_R@1" in page
    marked = re.findall(r'<figure style="outline[^>]*><img src="data:image/jpeg;base64,([^"]+)"', page)
    colour = np.asarray(Image.open(io.BytesIO(base64.b64decode(marked[0]))).convert("RGB")).mean((0, 1))
    assert np.allclose(colour, colours[0], atol=8)  # the marked thumbnail is the true video's frame
    assert len(re.findall(r"<figure", page)) == 15
    chart = Image.open(tmp_path / "report" / "rank_distribution.png")
    assert chart.size == (640, 320)
    with pytest.raises(ValueError, match="5 videos given for a score matrix of 6"):
        write_retrieval_report(tmp_path / "bad", scores, videos[:5], {})


def test_thumbnail_of_a_bad_video_is_a_placeholder(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"no video" * 30)
    assert video_thumbnail(str(bad)).size == (200, 112)
    assert video_thumbnail(None).size == (200, 112)


def test_example_script_writes_the_report(tmp_path):
    corpus = make_synthetic_corpus(tmp_path / "corpus", n_train=1, n_test=3, seed=0)
    processor = synthetic_processor(corpus, max_words=MAX_WORDS, max_frames=MAX_FRAMES, image_size=IMAGE)
    config = tiny_config()
    config.text_config.vocab_size = len(processor.tokenizer)
    config.text_config.bos_token_id = processor.tokenizer.bos_token_id
    config.text_config.eos_token_id = processor.tokenizer.eos_token_id
    torch.manual_seed(0)
    checkpoint = tmp_path / "checkpoint"
    GLCCLModel(config).save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    command = [
        sys.executable, str(REPO / "examples" / "evaluate_glccl.py"), str(checkpoint), str(corpus),
        "--device", "cpu", "--no_progress", "--output", str(tmp_path / "metrics.json"), "--report", str(tmp_path / "r"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ), cwd=REPO)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    page = (tmp_path / "r" / "report.html").read_text()
    assert f"{metrics['t2v_R@1']:.2f}" in page and page.count("<h2>") == 3
    assert (tmp_path / "r" / "rank_distribution.png").stat().st_size > 0
