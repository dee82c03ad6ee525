"""bench/gpu.sh, the GPU check, through its CPU fallback (`--device cpu --quick`): every part runs and reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_its_cpu_fallback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"}  # PYTHON: use this environment, no install
    command = ["bash", str(ROOT / "bench" / "gpu.sh"), "--device", "cpu", "--quick", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["environment"]["device"] == "cpu" and report["quick"] is True

    scorer = report["scorer"]
    assert [(row["texts"], row["dtype"]) for row in scorer] == [(16, "fp32"), (16, "bf16"), (32, "fp32"), (32, "bf16")]
    for row in scorer:
        assert row["seconds"] > 0
        low, high = row["logit_range"]
        # bf16 logits differ from the fp32 ones, but by far less than the logits' own spread.
        assert (
            row["max_abs_diff_vs_fp32"] == 0
            if row["dtype"] == "fp32"
            else 0 < row["max_abs_diff_vs_fp32"] < 0.1 * (high - low)
        )

    step = report["train_step"]["results"]
    assert [(row["precision"], row["gradient_checkpointing"]) for row in step] == [
        ("fp32", False),
        ("fp32", True),
        ("bf16", False),
        ("bf16", True),
    ]
    assert all(row["samples_per_second"] > 0 for row in step)

    encoding = report["video_encoding"]
    assert encoding["frame cache (raw)"]["segments_per_second"] > 0 and encoding["decoding"]["segments_per_second"] > 0

    demo = report["demo"]["metrics"]
    assert set(demo) == {"glccl", "no_glim", "no_csc", "chance"} and "t2v_R@1" in demo["glccl"]
    assert "| scorer (texts x videos) |" in result.stdout and "demo:" in result.stdout
