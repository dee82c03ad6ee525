"""The `make demo` code path at a reduced size: corpus, three models trained with GLCCLTrainer, evaluation,
metrics.json, curves and checkpoints."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModel, AutoProcessor

from glccl_hf.data import load_retrieval_dataset
from glccl_hf.demo import VARIANTS, DemoSettings, chance_metrics, main
from glccl_hf.evaluation import evaluate_retrieval

METRIC_KEYS = {f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MdR", "MnR")}


def test_chance_metrics_are_the_expectations_of_a_random_ranking():
    chance = chance_metrics(20)
    assert set(chance) == METRIC_KEYS
    assert chance["t2v_R@1"] == pytest.approx(5.0) and chance["v2t_R@5"] == pytest.approx(25.0)
    assert chance["t2v_MdR"] == chance["v2t_MnR"] == pytest.approx(10.5)
    assert chance_metrics(4)["t2v_R@5"] == 100.0


def test_reduced_demo_writes_metrics_curves_and_checkpoints(tmp_path, capsys):
    settings = DemoSettings(n_train=6, n_test=5, max_steps=3, batch_size=4, width=32, layers=1)
    argv = ["--output_dir", str(tmp_path)] + [f"--{k}={v}" for k, v in vars(settings).items()]
    main(argv)
    first = json.loads((tmp_path / "metrics.json").read_text())
    main(argv)  # a second run into the same folder works and, being seeded, reproduces the first
    assert json.loads((tmp_path / "metrics.json").read_text()) == first

    results = json.loads((tmp_path / "metrics.json").read_text())
    assert set(results) == {*VARIANTS, "chance"}
    for metrics in results.values():
        assert set(metrics) == METRIC_KEYS
    assert results["chance"] == pytest.approx(chance_metrics(5))
    assert (tmp_path / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "| glccl |" in printed and "| chance |" in printed

    # Each checkpoint reloads with its ablation switch and its card.
    for name, overrides in VARIANTS.items():
        checkpoint = tmp_path / name
        model = AutoModel.from_pretrained(checkpoint)
        for key, value in overrides.items():
            assert getattr(model.config, key) == value
        card = (checkpoint / "README.md").read_text()
        assert "model-index" in card and "synthetic" in card.lower()
        assert (checkpoint / "processor_config.json").is_file()
        assert (checkpoint / "processing_glccl.py").is_file() and (checkpoint / "video_glccl.py").is_file()

    # The reported metrics are those of the saved model.
    checkpoint = tmp_path / "glccl"
    reloaded = evaluate_retrieval(
        AutoModel.from_pretrained(checkpoint),
        AutoProcessor.from_pretrained(checkpoint),
        load_retrieval_dataset(tmp_path / "data", "test"),
        progress=False,
    )
    assert reloaded == pytest.approx(results["glccl"])
