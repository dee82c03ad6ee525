"""Tests of glccl_hf.model_card (and card_rows): the card's template, metadata, model-index and tables."""

from __future__ import annotations

import math
from pathlib import Path
from unittest import mock

import jinja2
import numpy as np
import pytest
import torch
from card_fixtures import REPO_ID, build_full_card, find, model_index_results
from huggingface_hub import ModelCard, metadata_load
from modeling_fixtures import tiny_config
from transformers import CLIPConfig

import glccl_hf  # noqa: F401  (registers GLCCL with the Auto classes)
from glccl_hf.metrics import parse_retrieval_metrics
from glccl_hf.model_card import RetrievalEvaluation, build_model_card, default_template_path, save_model_card


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
    # Usage: Auto classes with glccl_hf, remote code for the model and the processor, retrieval.
    assert "import glccl_hf" in text
    assert f'AutoModel.from_pretrained("{REPO_ID}")' in text
    assert f'AutoProcessor.from_pretrained("{REPO_ID}")' in text
    assert f'AutoModel.from_pretrained("{REPO_ID}", trust_remote_code=True)' in text
    # The processor is remote code too (processing_glccl.py travels with the checkpoint): the card says so.
    assert f'AutoProcessor.from_pretrained("{REPO_ID}", trust_remote_code=True)' in text
    assert "needs only `av`" in text and "not remote code" not in text
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


CLIP_PRETRAINING_CLAIMS = (
    "Initialised from the CLIP checkpoint",
    ", initialised from CLIP",
    "(its layers start from CLIP's first text layers)",
    "CLIP was pre-trained on English image-text pairs",
    "The base CLIP weights",
)


def test_from_scratch_card_claims_no_clip_pretraining():
    """The demo's card (synthetic data, no base model, as glccl_hf.demo builds it) says it was trained from scratch."""
    demo = str(build_model_card(tiny_config(), model_name="glccl-demo", metrics=None, synthetic=True))
    for claim in CLIP_PRETRAINING_CLAIMS:
        assert claim not in demo, claim
    assert "Trained from scratch: the encoders have CLIP's architecture but started from random weights" in demo
    assert "The training data keeps its own license and terms of use." in demo
    explicit = str(build_model_card(tiny_config(), train_dataset="msrvtt", from_scratch=True))
    assert "Trained from scratch" in explicit and "CLIP was pre-trained" not in explicit
    # A model that started from CLIP still says so, with CLIP's limitations and licence.
    from_clip = str(build_model_card(tiny_config(), base_model="openai/clip-vit-base-patch32", synthetic=True))
    for claim in CLIP_PRETRAINING_CLAIMS:
        assert claim in from_clip, claim
    assert "Trained from scratch" not in from_clip
    with pytest.raises(ValueError, match="from_scratch=True contradicts base_model"):
        build_model_card(tiny_config(), base_model="openai/clip-vit-base-patch32", from_scratch=True)
    # Without either, the card makes no claim about where the weights started.
    unknown = str(build_model_card(tiny_config()))
    assert "Trained from scratch" not in unknown and "CLIP was pre-trained" not in unknown


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


def test_default_template_path_is_the_repository_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import glccl_hf.model_card as model_card

    repository_template = Path(__file__).resolve().parents[2] / "model_card.md"  # the repository root
    assert default_template_path().read_text() == repository_template.read_text()
    monkeypatch.setattr(model_card, "__file__", str(tmp_path / "glccl_hf" / "model_card.py"))
    with pytest.raises(FileNotFoundError, match="pass template_path= to build_model_card"):
        default_template_path()
