"""The `make demo` code path at a reduced size (`--quick`): corpus, three models trained with GLCCLTrainer,
evaluation, results.md (the table docs/demo.md shows, compared with it), metrics.json, curves and checkpoints."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from transformers import AutoModel, AutoProcessor

from glccl_hf.data import load_retrieval_dataset
from glccl_hf.demo import (
    QUICK_SETTINGS,
    VARIANTS,
    DemoSettings,
    chance_metrics,
    format_table,
    main,
    parse_args,
)
from glccl_hf.evaluation import score_dataset

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# README shows the full table, docs/demo.md the quick one.
DOCUMENTATION = [README, *sorted((REPO / "docs").glob("*.md"))]
METRIC_KEYS = {f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MdR", "MnR")}


def test_chance_metrics_are_the_expectations_of_a_random_ranking():
    chance = chance_metrics(20)
    assert set(chance) == METRIC_KEYS
    assert chance["t2v_R@1"] == pytest.approx(5.0) and chance["v2t_R@5"] == pytest.approx(25.0)
    assert chance["t2v_MdR"] == chance["v2t_MnR"] == pytest.approx(10.5)
    assert chance_metrics(4)["t2v_R@5"] == 100.0


def readme_table(command: str) -> str:
    """The Markdown table that follows the `<!-- demo table: {command} -->` marker (up to the blank line), in README.md
    or a docs/ page: the documentation holds exactly one such line."""
    marker = f"<!-- demo table: {command} -->"
    pages = {page: page.read_text().splitlines() for page in DOCUMENTATION}
    holders = [page for page, lines in pages.items() for line in lines if line == marker]
    assert len(holders) == 1, f"README.md and docs/*.md need exactly one {marker!r} line, found {holders}"
    lines = pages[holders[0]]
    table = list(itertools.takewhile(bool, lines[lines.index(marker) + 1 :]))
    return "\n".join(table) + "\n"


def test_readme_full_table_has_the_demo_layout():
    table = readme_table("make demo")
    assert table.splitlines()[:2] == format_table({}).splitlines()
    assert [row.split(" | ")[0] for row in table.splitlines()[2:]] == [f"| {name}" for name in (*VARIANTS, "chance")]


def test_quick_demo_is_deterministic_and_is_the_table_in_readme(tmp_path, capsys):
    argv = ["--quick", "--output_dir", str(tmp_path)]
    main(argv)
    first = (tmp_path / "results.md").read_bytes()
    main(argv)  # a second run into the same folder works and, being seeded, reproduces the first byte for byte
    assert (tmp_path / "results.md").read_bytes() == first
    # The documented quick table is what the committed code prints (after a change, rerun the command it names).
    assert first.decode() == readme_table("python -m glccl_hf.demo --quick")

    results = json.loads((tmp_path / "metrics.json").read_text())
    assert first.decode() == format_table(results) + "\n"
    assert set(results) == {*VARIANTS, "chance"}
    for metrics in results.values():
        assert set(metrics) == METRIC_KEYS
    assert results["chance"] == pytest.approx(chance_metrics(QUICK_SETTINGS["n_test"]))
    assert (tmp_path / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert first.decode() in printed

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
    reloaded = score_dataset(
        AutoModel.from_pretrained(checkpoint),
        AutoProcessor.from_pretrained(checkpoint),
        load_retrieval_dataset(tmp_path / "data", "test"),
        progress=False,
    ).metrics()
    assert reloaded == pytest.approx(results["glccl"])


def test_quick_preset_takes_explicit_options_on_top():
    # The command line's own parse, which replaced the old settings_from_args: the same three checks.
    assert parse_args(["--quick"])[1] == DemoSettings(**QUICK_SETTINGS)
    assert parse_args(["--quick", "--max_steps", "2"])[1].max_steps == 2
    assert parse_args([])[1] == DemoSettings()


def test_command_line_quick_preset_and_explicit_options():
    arguments, settings = parse_args(["--quick", "--max_steps", "2", "--output_dir", "out"])
    assert settings == DemoSettings(**{**QUICK_SETTINGS, "max_steps": 2})
    assert (arguments.output_dir, arguments.quick) == ("out", True)
    # an explicit option equal to the full default still wins over the preset
    assert parse_args(["--quick", "--n_train", "200"])[1].n_train == 200
    assert parse_args([]) == parse_args(["--output_dir", "demo_output"])
    assert parse_args([])[1] == DemoSettings()


def test_help_describes_every_option(capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(["--help"])
    assert exited.value.code == 0
    shown = "".join(capsys.readouterr().out.split())  # whitespace dropped: argparse wraps to the terminal width
    for setting in dataclasses.fields(DemoSettings):
        assert f"--{setting.name}" in shown and "".join(setting.metadata["help"].split()) in shown
    assert "--quick" in shown and "--output_dir" in shown
