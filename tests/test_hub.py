"""Tests of glccl_hf.hub: the model card (template, metadata, model-index) and Hub uploads, all offline with mocks."""

from __future__ import annotations

import json
import math
import shutil
import socket
from pathlib import Path
from typing import Any
from unittest import mock

import jinja2
import numpy as np
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, metadata_load
from modeling_fixtures import tiny_config, tiny_model
from transformers import AutoModel, AutoProcessor, CLIPConfig, CLIPTokenizer, Trainer, TrainingArguments
from transformers.dynamic_module_utils import get_class_from_dynamic_module

import glccl_hf  # noqa: F401  (registers GLCCL with the Auto classes)
from glccl_hf import GLCCLProcessor
from glccl_hf.data.synthetic import write_synthetic_tokenizer
from glccl_hf.hub import (
    RetrievalEvaluation,
    build_model_card,
    default_template_path,
    parse_retrieval_metrics,
    push_to_hub,
    push_trainer_to_hub,
    save_model_card,
    trainer_model_card,
    write_trainer_model_card,
)

REPO_ID = "user/glccl-tiny"
MODEL_FILES = {
    "model.safetensors",
    "config.json",
    "configuration_glccl.py",
    "modeling_glccl.py",
    "glim.py",
    "losses.py",
    "distributed.py",
}
PROCESSOR_FILES = {
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "processing_glccl.py",
    "video_glccl.py",
}
# What Trainer.evaluate returns: prefixed metrics plus bookkeeping.
EVAL_OUTPUT = {
    "eval_loss": 1.25,
    "eval_t2v_R@1": 44.5,
    "eval_t2v_R@5": 71.2,
    "eval_t2v_R@10": 80.9,
    "eval_t2v_MdR": 2.0,
    "eval_t2v_MnR": 14.3,
    "eval_v2t_R@1": 43.1,
    "eval_v2t_R@5": 70.4,
    "eval_v2t_R@10": 81.6,
    "eval_v2t_MdR": 2.0,
    "eval_v2t_MnR": 11.7,
    "eval_runtime": 3.2,
    "eval_samples_per_second": 312.5,
    "eval_steps_per_second": 9.8,
    "epoch": 5.0,
}


# ------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve a host or open a connection fails the test (on top of HF_HUB_OFFLINE=1)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> GLCCLProcessor:
    tokenizer_dir = write_synthetic_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    return GLCCLProcessor(tokenizer, max_words=8, max_frames=4, image_size=16)


@pytest.fixture(scope="module")
def training_args(tmp_path_factory: pytest.TempPathFactory) -> TrainingArguments:
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


def build_full_card(model, training_args) -> ModelCard:
    """A card with every argument of build_model_card set."""
    return build_model_card(
        model,
        repo_id=REPO_ID,
        base_model="openai/clip-vit-base-patch32",
        datasets=["user/msrvtt-videos"],
        train_dataset="msrvtt",
        train_split="train (9k)",
        training_args=training_args,
        hardware="1x H100",
        metrics=[
            RetrievalEvaluation("msrvtt", "test", EVAL_OUTPUT, config="1k-A"),
            RetrievalEvaluation("didemo", "test", {"t2v_R@1": 40.2, "t2v_R@50": 97.0}, post_processing="dsl"),
        ],
        license="apache-2.0",
    )


@pytest.fixture(scope="module")
def full_card(model, training_args) -> ModelCard:
    return build_full_card(model, training_args)


def model_index_results(card_text: str) -> list[dict[str, Any]]:
    """Flatten the model-index of a card's text: one dict per metric with its task and dataset."""
    index = ModelCard(card_text).data.to_dict()["model-index"]
    assert len(index) == 1
    return [
        {
            "task": result["task"]["type"],
            "dataset": result["dataset"]["type"],
            "dataset_name": result["dataset"]["name"],
            "split": result["dataset"].get("split"),
            "config": result["dataset"].get("config"),
            "metric": metric["type"],
            "value": metric["value"],
            "name": metric.get("name"),
            "args": metric.get("args"),
        }
        for result in index[0]["results"]
        for metric in result["metrics"]
    ]


def find(results: list[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    return [r for r in results if all(r.get(key) == value for key, value in where.items())]


# ---------------------------------------------------------------------------------------------------- card


def test_card_renders_sections_tables_and_snippets(full_card: ModelCard):
    text = str(full_card)
    for tag in ("{{", "}}", "{%", "%}", "{#", "#}"):
        assert tag not in text, f"leftover Jinja {tag!r}"
    for heading in (
        "# glccl-tiny",
        "## Model description",
        "## Training",
        "## Evaluation",
        "## How to use",
        "### Retrieval",
        "## Limitations",
        "## Citation",
        "## License",
    ):
        assert f"\n{heading}\n" in text, heading
    # Evaluation table: every R@K present becomes a column, missing cells are "-", values at one decimal.
    assert "| Dataset | Split | Direction | Post-processing | R@1 | R@5 | R@10 | R@50 | MdR | MnR |" in text
    assert "| MSR-VTT (1k-A) | test | text-to-video | none | 44.5 | 71.2 | 80.9 | - | 2.0 | 14.3 |" in text
    assert "| MSR-VTT (1k-A) | test | video-to-text | none | 43.1 | 70.4 | 81.6 | - | 2.0 | 11.7 |" in text
    assert "| DiDeMo | test | text-to-video | DSL | 40.2 | - | - | 97.0 | - | - |" in text
    assert "| DiDeMo | test | video-to-text |" not in text  # no v2t metric given for DiDeMo
    # Training section from TrainingArguments and the config.
    for row in (
        "| Training data | MSR-VTT, split `train (9k)` |",
        "| Epochs | 5 |",
        "| Batch size | 128 |",
        "| Learning rate | 0.0001 |",
        "| Schedule | cosine, warmup 10% of the steps |",
        "| Frames per video | at most 4 |",
        "| Tokens per caption | at most 8, start and end tokens included |",
        "`mask_padded_words=False`, `mask_padded_frames=False`, `text_guided=True`",
        "| Loss | InfoNCE + 0.5 x CSC |",
        "| Hardware | 1x H100 |",
        "| Seed | 42 |",
    ):
        assert row in text, row
    assert "were not recorded" not in text
    assert "[`openai/clip-vit-base-patch32`](https://huggingface.co/openai/clip-vit-base-patch32)" in text
    # Usage: Auto classes with glccl_hf, remote code, the processor caveat, retrieval.
    assert "import glccl_hf" in text
    assert f'AutoModel.from_pretrained("{REPO_ID}")' in text
    assert f'AutoProcessor.from_pretrained("{REPO_ID}")' in text
    assert f'AutoModel.from_pretrained("{REPO_ID}", trust_remote_code=True)' in text
    assert "`AutoProcessor` needs\n`glccl_hf` installed" in text
    for call in ("model.get_text_features(", "model.get_video_features(", "model.similarity(text, video)"):
        assert call in text
    assert "`pixel_values` of shape `[videos, 4, 3, 16, 16]`" in text
    # Citation and license.
    assert "@misc{jing2026glccl," in text and "eprint        = {2605.17959}," in text
    assert "archivePrefix = {arXiv}" in text
    assert "released under the `apache-2.0` license" in text
    assert "Demonstration checkpoint" not in text


def test_front_matter_and_model_index(full_card: ModelCard, tmp_path: Path):
    path = save_model_card(full_card, tmp_path / "ckpt")
    assert path == tmp_path / "ckpt" / "README.md"
    metadata = metadata_load(path)
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "feature-extraction"
    assert metadata["tags"] == ["glccl", "text-video-retrieval", "video-retrieval", "clip"]
    assert metadata["base_model"] == "openai/clip-vit-base-patch32"
    assert metadata["datasets"] == ["user/msrvtt-videos"]
    assert metadata["license"] == "apache-2.0"
    assert metadata["language"] == ["en"]
    assert metadata["model-index"][0]["name"] == "glccl-tiny"

    results = model_index_results(path.read_text(encoding="utf-8"))
    # 10 MSR-VTT metrics (eval_loss, runtime, ... dropped) + 2 DiDeMo ones.
    assert len(results) == 12
    assert not [r for r in results if "eval" in r["name"] or r["metric"] in ("loss", "runtime", "epoch")]
    t2v = find(results, task="text-to-video-retrieval", dataset="msrvtt", split="test", config="1k-A")
    assert {r["name"]: r["value"] for r in t2v} == {
        "t2v R@1": 44.5,
        "t2v R@5": 71.2,
        "t2v R@10": 80.9,
        "t2v MdR": 2.0,
        "t2v MnR": 14.3,
    }
    assert [r["metric"] for r in t2v] == ["recall@1", "recall@5", "recall@10", "median_rank", "mean_rank"]
    index = metadata["model-index"][0]["results"]
    by_task = {(r["task"]["type"], r["dataset"]["type"]): r for r in index}
    assert set(by_task) == {
        ("text-to-video-retrieval", "msrvtt"),
        ("video-to-text-retrieval", "msrvtt"),
        ("text-to-video-retrieval", "didemo"),
    }
    msrvtt_v2t = by_task[("video-to-text-retrieval", "msrvtt")]
    assert msrvtt_v2t["dataset"] == {"name": "MSR-VTT", "type": "msrvtt", "config": "1k-A", "split": "test"}
    assert [(m["type"], m["value"]) for m in msrvtt_v2t["metrics"]] == [
        ("recall@1", 43.1),
        ("recall@5", 70.4),
        ("recall@10", 81.6),
        ("median_rank", 2.0),
        ("mean_rank", 11.7),
    ]
    assert all("args" not in m for m in msrvtt_v2t["metrics"])  # no post-processing
    didemo = by_task[("text-to-video-retrieval", "didemo")]["metrics"]
    assert [(m["type"], m["value"], m["name"], m["args"]) for m in didemo] == [
        ("recall@1", 40.2, "t2v R@1 (DSL)", {"post_processing": "DSL"}),
        ("recall@50", 97.0, "t2v R@50 (DSL)", {"post_processing": "DSL"}),
    ]
    # The card round-trips through huggingface_hub's loader.
    loaded = ModelCard.load(path)
    assert loaded.data.model_name == "glccl-tiny"
    assert len(loaded.data.eval_results) == 12


def test_template_defines_every_variable(model, training_args, full_card):
    """Rendering with StrictUndefined fails on any variable the template uses that build_model_card does not set."""
    strict = jinja2.Environment(undefined=jinja2.StrictUndefined)
    with mock.patch("jinja2.Template", strict.from_string):
        minimal = build_model_card(tiny_config())
        full = build_full_card(model, training_args)
    assert str(full) == str(full_card)
    assert str(minimal) == str(build_model_card(tiny_config()))
    assert default_template_path().name == "model_card.md"


def test_minimal_card_from_config():
    card = build_model_card(tiny_config())
    text = str(card)
    assert "# glccl\n" in text
    assert "No evaluation results were recorded for this checkpoint." in text
    assert "The optimisation settings (epochs, batch size, learning rates) were not recorded" in text
    assert "No license was specified for these weights." in text
    assert 'AutoModel.from_pretrained("path/to/this/checkpoint", trust_remote_code=True)' in text
    assert "| Parameters |" not in text  # only known from a model
    assert "Initialised from the CLIP checkpoint" not in text
    metadata = card.data.to_dict()
    assert not {"model-index", "model_name", "license", "base_model", "datasets"} & set(metadata)
    assert metadata["pipeline_tag"] == "feature-extraction"


def test_synthetic_demo_card_warns():
    card = build_model_card(tiny_config(), train_dataset="synthetic", model_name="glccl-demo")
    text = str(card)
    assert "> **Demonstration checkpoint.**" in text
    assert "is not useful for\n  real video retrieval" in text
    assert "Demonstration checkpoint" not in str(build_model_card(tiny_config(), train_dataset="msrvtt"))
    assert "Demonstration checkpoint" in str(build_model_card(tiny_config(), synthetic=True))
    assert "Demonstration checkpoint" not in str(
        build_model_card(tiny_config(), train_dataset="synthetic", synthetic=False)
    )


def test_metrics_mapping_keys_and_post_processing():
    card = build_model_card(
        tiny_config(),
        model_name="m",
        metrics={"user/my-videos/val": {"test_t2v_R@1": 10.0}, "vatex/test": {"v2t_MnR": 3.5}},
        post_processing="DSL",
    )
    results = model_index_results(str(card))
    assert find(results, task="text-to-video-retrieval", dataset="user/my-videos", split="val", value=10.0)
    assert find(results, task="video-to-text-retrieval", name="v2t MnR (DSL)", value=3.5, split="test")
    assert ModelCard(str(card)).data.to_dict()["model-index"][0]["results"][1]["dataset"]["name"] == "VATEX"
    assert "| Dataset | Split | Direction | Post-processing | R@1 | MnR |" in str(card)
    assert "| VATEX | test | video-to-text | DSL | - | 3.5 |" in str(card)
    # The same split with and without post-processing are distinct results; twice the same one is an error.
    both = [
        RetrievalEvaluation("msrvtt", "test", {"t2v_R@1": 44.0}),
        RetrievalEvaluation("msrvtt", "test", {"t2v_R@1": 49.0}, post_processing="DSL"),
    ]
    assert len(model_index_results(str(build_model_card(tiny_config(), metrics=both)))) == 2
    with pytest.raises(ValueError, match="msrvtt/test .* is given twice"):
        build_model_card(tiny_config(), metrics=[both[0], both[0]])
    # A RetrievalEvaluation without its own post-processing takes the card's, without being modified.
    build_model_card(tiny_config(), metrics=both[0], post_processing="DSL")
    assert both[0].post_processing is None


def test_parse_retrieval_metrics_normalises():
    parsed = parse_retrieval_metrics(
        {
            "eval_v2t_R@1": np.float32(40.5),
            "eval_t2v_MnR": torch.tensor(12.0),
            "eval_t2v_R@10": 80,
            "eval_t2v_R@1": 44.5,
            "eval_dsl_t2v_R@1": 47.0,
            "eval_loss": 0.5,
            "eval_mem_cpu_alloc_delta": 4096,
            "eval_jit_compilation_time": 0.1,
            "epoch": 1.0,
            "step": 10,
        }
    )
    assert parsed == {"t2v_R@1": 44.5, "t2v_R@10": 80.0, "t2v_MnR": 12.0, "v2t_R@1": 40.5, "dsl_t2v_R@1": 47.0}
    assert list(parsed) == ["t2v_R@1", "t2v_R@10", "t2v_MnR", "v2t_R@1", "dsl_t2v_R@1"]
    assert all(type(value) is float for value in parsed.values())


def test_dsl_metrics_from_the_evaluation_are_reported_as_dsl():
    from glccl_hf.evaluation import retrieval_metrics

    similarity = torch.tensor([[3.0, 1.0, 0.0], [2.5, 2.0, 0.0], [0.0, 1.0, 2.0]])
    metrics = retrieval_metrics(similarity, torch.tensor([0, 1, 2]), dsl=True)
    assert any(key.startswith("dsl_") for key in metrics)
    evaluation = RetrievalEvaluation("msrvtt", "test", {f"eval_{k}": v for k, v in metrics.items()})
    groups = evaluation.groups()
    assert set(groups) == {"none", "DSL"}
    assert groups["none"] == {k: v for k, v in metrics.items() if not k.startswith("dsl_")}
    assert groups["DSL"] == {k[4:]: v for k, v in metrics.items() if k.startswith("dsl_")}
    card = build_model_card(tiny_config(), metrics=[evaluation])
    text = str(card)
    plain_row = "| MSR-VTT | test | text-to-video | none | " + " | ".join(
        f"{metrics[f't2v_{label}']:.1f}" for label in ("R@1", "R@5", "R@10", "MdR", "MnR")
    )
    assert plain_row in text
    assert "| MSR-VTT | test | text-to-video | DSL | " in text and "| MSR-VTT | test | video-to-text | DSL | " in text
    results = model_index_results(text)
    assert len(results) == 20
    dsl = find(results, args={"post_processing": "DSL"})
    assert len(dsl) == 10 and all(r["name"].endswith(" (DSL)") for r in dsl)
    assert find(dsl, task="text-to-video-retrieval", metric="recall@1", value=round(metrics["dsl_t2v_R@1"], 2))
    # Plain metrics declared as DSL next to dsl_ ones would be two DSL results for the same split.
    with pytest.raises(ValueError, match="post_processing='DSL' for the plain metrics, and dsl_ metrics as well"):
        build_model_card(tiny_config(), metrics={"msrvtt/test": metrics}, post_processing="DSL")


@pytest.mark.parametrize(
    "metrics, error, match",
    [
        ({"t2v_R@1": 44.5, "accuracy": 0.5}, ValueError, "unknown metric 'accuracy'"),
        ({"eval_t2v_R@0": 1.0}, ValueError, "unknown metric 'eval_t2v_R@0'"),
        ({"t2v_R@1": "44.5"}, TypeError, "t2v_R@1 must be a real number, got str"),
        ({"t2v_R@1": None}, TypeError, "t2v_R@1 must be a real number"),
        ({"t2v_R@1": True}, TypeError, "t2v_R@1 must be a real number, got bool"),
        ({"t2v_R@1": math.nan}, ValueError, "t2v_R@1 must be finite"),
        ({"t2v_R@5": 150.0}, ValueError, r"t2v_R@5 is a recall in percent and must lie in \[0, 100\]"),
        ({"v2t_MdR": 0.0}, ValueError, "v2t_MdR is a rank .* must be >= 1"),
        ({"eval_loss": 1.0, "epoch": 2.0}, ValueError, "no retrieval metric"),
        ({"t2v_R@1": 1.0, "eval_t2v_R@1": 1.0}, ValueError, "'t2v_R@1' is given twice"),
        ({"eval_msrvtt_t2v_R@1": 1.0}, ValueError, "unknown metric 'eval_msrvtt_t2v_R@1'"),
        ({"t2v_dsl_R@1": 1.0}, ValueError, "unknown metric 't2v_dsl_R@1'"),
        ([("t2v_R@1", 1.0)], TypeError, "must be a mapping"),
    ],
)
def test_bad_metrics_raise_clear_errors(metrics, error, match):
    with pytest.raises(error, match=match):
        parse_retrieval_metrics(metrics)
    if isinstance(metrics, dict):  # the same error surfaces from build_model_card, naming the dataset and split
        with pytest.raises(error, match=f"metrics of msrvtt/test: .*{match}"):
            build_model_card(tiny_config(), metrics={"msrvtt/test": metrics})


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"metrics": {"msrvtt": {"t2v_R@1": 1.0}}}, ValueError, "'dataset/split'"),
        ({"metrics": [{"t2v_R@1": 1.0}]}, TypeError, r"metrics\[0\] must be a RetrievalEvaluation"),
        ({"metrics": "msrvtt/test"}, TypeError, "metrics must be a mapping"),
        ({"post_processing": "softmax"}, ValueError, "post_processing must be one of"),
        ({"base_model": "/models/clip"}, ValueError, "base_model must be a Hub model id"),
        ({"training_args": 3}, TypeError, "training_args must be a TrainingArguments"),
        ({"tags": [""]}, ValueError, "tags entries must be a non-empty string"),
        ({"model_name": "x", "max_words": 3}, ValueError, r"template_kwargs \['max_words'\] clash"),
        ({"template_path": "missing.md"}, FileNotFoundError, "template_path missing.md is not a file"),
    ],
)
def test_bad_card_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        build_model_card(tiny_config(), **kwargs)


def test_bad_model_or_card_type():
    with pytest.raises(TypeError, match="model_or_config must be a GLCCLModel or GLCCLConfig.*'clip'"):
        build_model_card(CLIPConfig())
    with pytest.raises(TypeError, match="card must be a huggingface_hub.ModelCard"):
        save_model_card("# card", ".")
    with pytest.raises(ValueError, match="RetrievalEvaluation.split must be a non-empty string"):
        RetrievalEvaluation("msrvtt", " ", {"t2v_R@1": 1.0})


def test_training_args_mapping_with_coef_lr():
    settings = {
        "learning_rate": 1e-4,
        "coef_lr": 1e-3,
        "num_train_epochs": 5,
        "global_batch_size": 128,
        "per_device_train_batch_size": 32,
        "gradient_accumulation_steps": 2,
        "bf16": True,
    }
    text = str(build_model_card(tiny_config(mask_padded_words=True), training_args=settings))
    assert "| CLIP learning rate | 1e-07 (learning rate x coef_lr = 0.001) |" in text
    assert "| Batch size | 128 (32 per device) |" in text
    assert "| Gradient accumulation | 2 micro-batches per optimizer step |" in text
    assert "| Precision | bfloat16 mixed |" in text
    assert "`mask_padded_words=True`" in text
    steps = str(build_model_card(tiny_config(), training_args={"max_steps": 300, "num_train_epochs": 3}))
    assert "| Training length | 300 optimizer steps |" in steps and "| Epochs |" not in steps


def test_user_text_cannot_break_tables():
    card = build_model_card(
        tiny_config(), train_dataset="a|b", train_split="x\ny", metrics={"c|d/test": {"t2v_R@1": 1.0}}
    )
    text = str(card)
    assert "| Training data | a\\|b, split `x y` |" in text
    assert "| c\\|d | test | text-to-video | none | 1.0 |" in text


# -------------------------------------------------------------------------- transformers' own push_to_hub


@pytest.fixture
def transformers_hub(full_card: ModelCard):
    """transformers' Hub entry points mocked; records each commit's files and README text."""
    commits: list[dict[str, Any]] = []

    def create_commit(repo_id: str, operations: list[Any], **kwargs: Any) -> str:
        files = {op.path_in_repo: op.path_or_fileobj for op in operations}
        readme = Path(files["README.md"]).read_text(encoding="utf-8") if "README.md" in files else None
        commits.append({"repo_id": repo_id, "files": set(files), "readme": readme, **kwargs})
        return "commit-url"

    api = mock.MagicMock()
    api.create_repo.return_value.repo_id = REPO_ID
    api.create_commit.side_effect = create_commit
    with (
        mock.patch("transformers.utils.hub.hf_api", return_value=api),
        mock.patch("transformers.utils.hub.create_and_tag_model_card", return_value=full_card) as card_factory,
    ):
        yield api, commits, card_factory


def test_model_push_to_hub_uploads_weights_code_and_card(model, transformers_hub, full_card):
    api, commits, card_factory = transformers_hub
    assert model.push_to_hub(REPO_ID) == "commit-url"
    api.create_repo.assert_called_once()
    card_factory.assert_called_once()
    (commit,) = commits
    assert commit["files"] == MODEL_FILES | {"README.md"}
    assert commit["readme"] == str(full_card)


def test_processor_push_to_hub_uploads_processor_files(processor, transformers_hub):
    api, commits, _ = transformers_hub
    processor.push_to_hub(REPO_ID)
    (commit,) = commits
    assert PROCESSOR_FILES | {"README.md"} <= commit["files"]
    assert not commit["files"] & MODEL_FILES


# ------------------------------------------------------------------------------------ one-commit push_to_hub


@pytest.fixture
def hf_api_calls(tmp_path: Path):
    """HfApi mocked: create_repo answers, upload_folder copies the folder it is given; any create_commit fails."""
    uploads: list[dict[str, Any]] = []

    def upload_folder(self: HfApi, *, folder_path: str, **kwargs: Any) -> str:
        copy = tmp_path / f"upload{len(uploads)}"
        shutil.copytree(folder_path, copy)
        uploads.append({"folder": copy, "files": {p.name for p in copy.iterdir()}, **kwargs})
        return "commit-info"

    repo = mock.MagicMock(repo_id=REPO_ID)
    with (
        mock.patch.object(HfApi, "create_repo", autospec=True, return_value=repo) as create_repo,
        mock.patch.object(HfApi, "create_branch", autospec=True) as create_branch,
        mock.patch.object(HfApi, "upload_folder", autospec=True, side_effect=upload_folder),
        mock.patch.object(HfApi, "create_commit", autospec=True, side_effect=AssertionError("unexpected commit")),
    ):
        yield create_repo, create_branch, uploads


def test_push_to_hub_one_commit_with_everything(model, processor, full_card, hf_api_calls):
    create_repo, create_branch, uploads = hf_api_calls
    result = push_to_hub(REPO_ID, model, processor, full_card, private=True, token="hf_x", commit_message="msg")
    assert result == "commit-info"
    create_repo.assert_called_once_with(mock.ANY, REPO_ID, private=True, token="hf_x", exist_ok=True)
    create_branch.assert_not_called()
    (upload,) = uploads  # one commit
    assert upload["files"] == MODEL_FILES | PROCESSOR_FILES | {"README.md"}
    assert upload["repo_id"] == REPO_ID and upload["commit_message"] == "msg" and upload["token"] == "hf_x"
    assert upload["revision"] is None and upload["create_pr"] is False
    folder = upload["folder"]
    assert (folder / "README.md").read_text(encoding="utf-8") == str(full_card)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_glccl.GLCCLConfig",
        "AutoModel": "modeling_glccl.GLCCLModel",
    }
    # What was uploaded loads back: the model through the uploaded code (the class the auto_map names, imported
    # from the folder, as trust_remote_code does where glccl_hf is absent) and through AutoModel, the processor
    # through glccl_hf.
    remote_class = get_class_from_dynamic_module(config["auto_map"]["AutoModel"], str(folder))
    assert remote_class.__module__.startswith("transformers_modules")
    for loaded in (remote_class.from_pretrained(folder), AutoModel.from_pretrained(folder)):
        torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    restored = AutoProcessor.from_pretrained(folder)
    assert isinstance(restored, GLCCLProcessor)
    assert (restored.max_words, restored.max_frames, restored.image_size) == (8, 4, 16)


def test_push_to_hub_default_card_and_branch(model, processor, hf_api_calls):
    _, create_branch, uploads = hf_api_calls
    push_to_hub(REPO_ID, model, processor, revision="dev", create_pr=True)
    create_branch.assert_called_once_with(mock.ANY, REPO_ID, branch="dev", token=None, exist_ok=True)
    (upload,) = uploads
    assert upload["revision"] == "dev" and upload["create_pr"] is True
    readme = (upload["folder"] / "README.md").read_text(encoding="utf-8")
    assert "# glccl-tiny\n" in readme
    assert f'AutoModel.from_pretrained("{REPO_ID}", trust_remote_code=True)' in readme
    assert "model-index" not in metadata_load(upload["folder"] / "README.md")


def test_push_to_hub_without_processor(model, hf_api_calls):
    _, _, uploads = hf_api_calls
    push_to_hub(REPO_ID, model, None)
    assert uploads[0]["files"] == MODEL_FILES | {"README.md"}


def test_push_to_hub_rejects_bad_inputs_before_creating_the_repo(model, processor, hf_api_calls):
    create_repo, _, uploads = hf_api_calls
    with pytest.raises(TypeError, match="model_or_config must be a GLCCLModel"):
        push_to_hub(REPO_ID, torch.nn.Linear(2, 2), processor)
    with pytest.raises(TypeError, match="card must be a huggingface_hub.ModelCard"):
        push_to_hub(REPO_ID, model, processor, card="# readme")
    with pytest.raises(ValueError, match="repo_id must be a non-empty string"):
        push_to_hub("", model, processor)
    create_repo.assert_not_called()
    assert not uploads


def test_push_to_hub_refuses_a_checkpoint_without_its_code(model, processor, hf_api_calls):
    _, _, uploads = hf_api_calls
    with (
        mock.patch.object(type(model), "_auto_class", None),
        pytest.raises(ValueError, match="cannot load with trust_remote_code"),
    ):
        push_to_hub(REPO_ID, model, processor)
    with (
        mock.patch.object(type(processor), "_auto_class", None),
        pytest.raises(ValueError, match="cannot load with trust_remote_code: processor_config.json"),
    ):
        push_to_hub(REPO_ID, model, processor)
    assert not uploads


# ------------------------------------------------------------------------------------------------- Trainer


class CardTrainer(Trainer):
    """The create_model_card override proposed for GLCCLTrainer."""

    def create_model_card(self, **kwargs: Any) -> None:
        """Write the GLCCL model card (not Trainer's generic one) to output_dir/README.md."""
        from glccl_hf.hub import write_trainer_model_card

        write_trainer_model_card(self, **kwargs)


def make_trainer(trainer_class: type[Trainer], model, processor, output_dir: Path) -> Trainer:
    args = TrainingArguments(
        output_dir=str(output_dir),
        report_to=[],
        use_cpu=True,
        hub_model_id=REPO_ID,
        per_device_train_batch_size=4,
        learning_rate=1e-4,
        remove_unused_columns=False,
    )
    trainer = trainer_class(model=model, args=args, processing_class=processor)
    trainer.state.log_history += [
        {"loss": 3.2, "epoch": 1.0, "step": 5},
        {"eval_t2v_R@1": 10.0, "eval_loss": 3.0, "epoch": 1.0, "step": 5},
        {**EVAL_OUTPUT, "eval_custom_count": 7, "step": 10},  # a non-retrieval eval key is left out
        {"train_runtime": 12.0, "epoch": 5.0, "step": 10},
    ]
    return trainer


@pytest.fixture
def trainer_hub():
    """transformers.trainer's Hub API mocked; upload_folder records the uploaded files (after ignore_patterns)."""
    uploads: list[dict[str, Any]] = []

    def upload_folder(*, folder_path: str, ignore_patterns: list[str], **kwargs: Any) -> str:
        folder = Path(folder_path)
        files = {
            p.name for p in folder.iterdir() if not p.name.startswith("_") and not p.name.startswith("checkpoint-")
        }
        readme = (folder / "README.md").read_text(encoding="utf-8")
        uploads.append({"files": files, "readme": readme, "ignore_patterns": ignore_patterns, **kwargs})
        return "commit-info"

    api = mock.MagicMock()
    api.create_repo.return_value.repo_id = REPO_ID
    api.upload_folder.side_effect = upload_folder
    with mock.patch("transformers.trainer.hf_api", return_value=api):
        yield api, uploads


def check_trainer_upload(upload: dict[str, Any]) -> None:
    assert MODEL_FILES | PROCESSOR_FILES | {"README.md"} <= upload["files"]
    readme = upload["readme"]
    assert "# glccl-tiny\n" in readme and "## How to use" in readme
    assert "proofread" not in readme and "trained from scratch" not in readme  # Trainer's generic card
    results = model_index_results(readme)
    # The latest evaluation in log_history, eval_ prefix stripped.
    assert find(results, task="text-to-video-retrieval", dataset="msrvtt", split="test", metric="recall@1", value=44.5)
    assert find(results, task="video-to-text-retrieval", dataset="msrvtt", metric="mean_rank", value=11.7)
    assert len(results) == 10
    assert "| Batch size | 4 |" in readme and "| Learning rate | 0.0001 |" in readme


def test_push_trainer_to_hub_uploads_our_card(model, processor, tmp_path, trainer_hub):
    api, uploads = trainer_hub
    trainer = make_trainer(Trainer, model, processor, tmp_path / "out")
    result = push_trainer_to_hub(trainer, eval_dataset="msrvtt", base_model="openai/clip-vit-base-patch32")
    assert result == "commit-info"
    api.create_repo.assert_called_once()
    (upload,) = uploads
    check_trainer_upload(upload)
    assert upload["repo_id"] == REPO_ID and upload["commit_message"] == "End of training"
    assert "openai/clip-vit-base-patch32" in upload["readme"]
    assert "create_model_card" not in vars(trainer)  # the class's method is back


def test_glccl_trainer_override_writes_our_card(model, processor, tmp_path, trainer_hub, full_card):
    _, uploads = trainer_hub
    trainer = make_trainer(CardTrainer, model, processor, tmp_path / "out")
    trainer.push_to_hub(eval_dataset="msrvtt", license="mit", finetuned_from="openai/clip-vit-base-patch32")
    check_trainer_upload(uploads[0])
    metadata = ModelCard(uploads[0]["readme"]).data
    assert metadata.license == "mit" and metadata.base_model == "openai/clip-vit-base-patch32"
    # A ready card passes through unchanged.
    trainer.push_to_hub(card=full_card)
    assert uploads[1]["readme"] == str(full_card)


def test_glccl_trainer_push_to_hub(model, processor, tmp_path, trainer_hub):
    """The real GLCCLTrainer (glccl_hf.training) writes this card through its create_model_card override."""
    from glccl_hf.training import GLCCLTrainer, GLCCLTrainingArguments

    _, uploads = trainer_hub
    args = GLCCLTrainingArguments(
        output_dir=str(tmp_path / "out"),
        report_to=[],
        use_cpu=True,
        hub_model_id=REPO_ID,
        per_device_train_batch_size=4,
    )
    trainer = GLCCLTrainer(model=model, args=args, processing_class=processor)
    trainer.state.log_history.append({**EVAL_OUTPUT, "step": 10})
    trainer.push_to_hub(eval_dataset="msrvtt", train_dataset="msrvtt", train_split="train")
    check_trainer_upload(uploads[0])
    assert "| CLIP learning rate | 1e-07 (learning rate x coef_lr = 0.001) |" in uploads[0]["readme"]
    assert "| Schedule | cosine, warmup 10% of the steps |" in uploads[0]["readme"]


def test_trainer_card_from_a_named_eval_dataset(model, processor, tmp_path):
    """Trainer.evaluate on a dict of datasets logs eval_<name>_t2v_R@1 ...: metric_key_prefix selects them."""
    trainer = make_trainer(Trainer, model, processor, tmp_path / "out")
    trainer.state.log_history.append(
        {"eval_vatex_t2v_R@1": 33.0, "eval_vatex_v2t_MdR": 3.0, "eval_msrvtt_t2v_R@1": 1.0}
    )
    card = trainer_model_card(trainer, eval_dataset="vatex", metric_key_prefix="eval_vatex")
    results = model_index_results(str(card))
    assert [(r["dataset"], r["metric"], r["value"]) for r in results] == [
        ("vatex", "recall@1", 33.0),
        ("vatex", "median_rank", 3.0),
    ]
    # With the plain prefix the latest entry holding eval_t2v_* keys is used (the earlier EVAL_OUTPUT one).
    assert len(model_index_results(str(trainer_model_card(trainer, eval_dataset="msrvtt")))) == 10


def test_trainer_card_needs_logged_metrics(model, processor, tmp_path):
    trainer = make_trainer(Trainer, model, processor, tmp_path / "out")
    trainer.state.log_history.clear()
    with pytest.raises(ValueError, match="log_history holds no eval_ retrieval metrics"):
        trainer_model_card(trainer, eval_dataset="msrvtt")
    card = trainer_model_card(trainer, metrics={"vatex/test": {"t2v_R@1": 30.0}})
    assert find(model_index_results(str(card)), dataset="vatex", metric="recall@1", value=30.0)
    with mock.patch.object(Trainer, "is_world_process_zero", return_value=False):
        assert write_trainer_model_card(trainer) is None
    assert not (tmp_path / "out" / "README.md").exists()


def test_default_template_path_is_the_repository_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import glccl_hf.hub as hub

    repository_template = Path(__file__).resolve().parents[1] / "model_card.md"
    assert default_template_path().read_text() == repository_template.read_text()
    monkeypatch.setattr(hub, "__file__", str(tmp_path / "glccl_hf" / "hub.py"))
    with pytest.raises(FileNotFoundError, match="pass template_path= to build_model_card"):
        default_template_path()
