"""Model cards and Hub uploads for GLCCL checkpoints.

- :func:`build_model_card` fills the card template (``model_card.md``): metadata (library, tags, base model,
  datasets, license, a ``model-index`` with text-to-video and video-to-text results) and the card's sections.
- :func:`save_model_card` writes it as ``README.md`` into a checkpoint folder.
- :func:`push_to_hub` uploads weights, model code, processor files and the card in one commit.
- :func:`trainer_model_card`, :func:`write_trainer_model_card` and :func:`push_trainer_to_hub` do the same for a
  ``transformers.Trainer`` run, whose own ``push_to_hub`` would otherwise write its generic card.

Metrics are the dictionaries the evaluation returns (``t2v_R@1``, ``t2v_R@5``, ``t2v_R@10``, ``t2v_MdR``,
``t2v_MnR``, the ``v2t_`` equivalents and, with DSL, the same under ``dsl_``), optionally with the ``eval_``
(``Trainer.evaluate``) or ``test_`` (``Trainer.predict``) prefix, keyed by dataset and split:
``{"msrvtt/test": trainer.evaluate()}``, or as :class:`RetrievalEvaluation` objects.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from numbers import Real
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, EvalResult, HfApi, ModelCard, ModelCardData
from huggingface_hub.repocard import RepoCard
from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = [
    "DEFAULT_TAGS",
    "PIPELINE_TAG",
    "RetrievalEvaluation",
    "build_model_card",
    "default_template_path",
    "parse_retrieval_metrics",
    "push_to_hub",
    "push_trainer_to_hub",
    "save_for_hub",
    "save_model_card",
    "trainer_model_card",
    "write_trainer_model_card",
]

TEMPLATE_FILENAME = "model_card.md"
CARD_FILENAME = "README.md"
# GLCCL embeds texts and videos; no transformers pipeline does retrieval, and "text-to-video" means generation.
PIPELINE_TAG = "feature-extraction"
DEFAULT_TAGS = ("glccl", "text-video-retrieval", "video-retrieval", "clip")

DIRECTIONS: dict[str, tuple[str, str, str]] = {
    # prefix: (model-index task type, task name, table label)
    "t2v": ("text-to-video-retrieval", "Text-to-Video Retrieval", "text-to-video"),
    "v2t": ("video-to-text-retrieval", "Video-to-Text Retrieval", "video-to-text"),
}
POST_PROCESSING = {"none": "none", "dsl": "DSL", "qb-norm": "QB-Norm"}
DATASET_NAMES = {
    "msrvtt": "MSR-VTT",
    "msr-vtt": "MSR-VTT",
    "didemo": "DiDeMo",
    "vatex": "VATEX",
    "synthetic": "glccl-hf synthetic shapes",
}
# Keys Trainer.evaluate / Trainer.predict / log_history add next to the metrics (plus "mem_*" memory metrics);
# not retrieval results.
TRAINER_KEYS = frozenset(
    {
        "loss",
        "runtime",
        "samples_per_second",
        "steps_per_second",
        "epoch",
        "step",
        "model_preparation_time",
        "jit_compilation_time",
    }
)
METRIC_PREFIXES = ("eval_", "test_")
DSL_PREFIX = "dsl_"  # glccl_hf.evaluation.retrieval_metrics(dsl=True) reports DSL-rescored metrics under it
_METRIC_KEY = re.compile(r"^(dsl_)?(t2v|v2t)_(?:R@([1-9][0-9]*)|(MdR|MnR))$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_MODEL_REMOTE_CODE = ("config.json", ("AutoConfig", "AutoModel"))
_PROCESSOR_REMOTE_CODE = ("processor_config.json", ("AutoProcessor",))


# ---------------------------------------------------------------------------------------------------- metrics


def parse_retrieval_metrics(metrics: Mapping[str, Any], where: str = "metrics") -> dict[str, float]:
    """Validate and normalise one evaluation's retrieval metrics.

    Args:
        metrics: ``{"t2v_R@1": 44.5, ...}`` as the evaluation returns it. One ``eval_`` or ``test_`` prefix is
            stripped; Trainer bookkeeping (``loss``, ``runtime``, ``samples_per_second``, ``steps_per_second``,
            ``epoch``, ``step``, ``model_preparation_time``, ``jit_compilation_time``, ``mem_*``) is dropped.
            Accepted keys are ``{t2v,v2t}_R@K`` for any K >= 1 (in %, 0..100), ``{t2v,v2t}_MdR`` and
            ``{t2v,v2t}_MnR`` (ranks, >= 1), each optionally prefixed with ``dsl_`` (results after DSL).
        where: how error messages name this evaluation.

    Returns:
        ``{key: float}`` in canonical order (plain before ``dsl_``; t2v then v2t; R@K by K, then MdR, MnR).

    Raises:
        TypeError: `metrics` is not a mapping, or a value is not a real number.
        ValueError: unknown key, duplicate key after prefix stripping, value out of range or not finite, or no
            retrieval metric at all.
    """
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{where} must be a mapping of metric names to numbers, got {type(metrics).__name__}")
    parsed: dict[str, float] = {}
    for raw_key, value in metrics.items():
        if not isinstance(raw_key, str):
            raise TypeError(f"{where}: metric names must be strings, got {raw_key!r}")
        key = _strip_prefix(raw_key)
        if key in TRAINER_KEYS or key.startswith("mem_"):
            continue
        match = _METRIC_KEY.match(key)
        if match is None:
            raise ValueError(
                f"{where}: unknown metric {raw_key!r}; expected t2v_/v2t_ followed by R@K, MdR or MnR "
                "(optionally prefixed with dsl_, and with eval_ or test_ before that)"
            )
        if key in parsed:
            raise ValueError(f"{where}: metric {key!r} is given twice (with and without a prefix)")
        parsed[key] = _metric_value(value, key, where, is_recall=match.group(3) is not None)
    if not parsed:
        raise ValueError(f"{where}: no retrieval metric (t2v_R@1, v2t_MdR, ...) among {sorted(metrics)}")
    return dict(sorted(parsed.items(), key=lambda item: _metric_order(item[0])))


def _strip_prefix(key: str) -> str:
    for prefix in METRIC_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _metric_value(value: Any, key: str, where: str, is_recall: bool) -> float:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{where}: {key} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{where}: {key} must be finite, got {value}")
    if is_recall and not 0.0 <= value <= 100.0:
        raise ValueError(f"{where}: {key} is a recall in percent and must lie in [0, 100], got {value}")
    if not is_recall and value < 1.0:
        raise ValueError(f"{where}: {key} is a rank (1 = top) and must be >= 1, got {value}")
    return value


def _metric_order(key: str) -> tuple[int, int, int, int]:
    match = _METRIC_KEY.match(key)
    dsl, direction = int(match.group(1) is not None), list(DIRECTIONS).index(match.group(2))
    if match.group(3) is not None:
        return dsl, direction, 0, int(match.group(3))
    return dsl, direction, 1, 0 if match.group(4) == "MdR" else 1


def _metric_label(key: str) -> str:
    """``t2v_R@5`` -> ``R@5``."""
    return key.split("_", 1)[1]


def _metric_type(label: str) -> str:
    """Model-index metric id: ``R@5`` -> ``recall@5``, ``MdR`` -> ``median_rank``, ``MnR`` -> ``mean_rank``."""
    if label.startswith("R@"):
        return "recall@" + label[2:]
    return {"MdR": "median_rank", "MnR": "mean_rank"}[label]


def _post_processing(value: Any, name: str = "post_processing") -> str:
    if not isinstance(value, str) or value.lower() not in POST_PROCESSING:
        raise ValueError(f"{name} must be one of {sorted(POST_PROCESSING.values())}, got {value!r}")
    return POST_PROCESSING[value.lower()]


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value.strip()


@dataclass
class RetrievalEvaluation:
    """Retrieval results of one checkpoint on one dataset split.

    Args:
        dataset: dataset identifier, used as the model-index ``dataset.type`` (a Hub dataset id or a short name
            such as ``"msrvtt"``, ``"didemo"``, ``"vatex"``).
        split: the evaluated split (``"test"``, ``"val"``).
        metrics: the evaluation's metrics (see :func:`parse_retrieval_metrics`); normalised on construction.
            ``dsl_`` keys are results after DSL and are reported as such, next to the plain ones.
        dataset_name: display name; defaults to a known name (``msrvtt`` -> ``MSR-VTT``) or `dataset`.
        config: dataset configuration, e.g. ``"1k-A"`` for the MSR-VTT test protocol.
        post_processing: what the plain (non-``dsl_``) metrics went through: ``"none"``, ``"DSL"`` or
            ``"QB-Norm"``; None takes :func:`build_model_card`'s `post_processing`.
    """

    dataset: str
    split: str
    metrics: Mapping[str, Any] = field(repr=False)
    dataset_name: str | None = None
    config: str | None = None
    post_processing: str | None = None

    def __post_init__(self) -> None:
        self.dataset = _text(self.dataset, "RetrievalEvaluation.dataset")
        self.split = _text(self.split, "RetrievalEvaluation.split")
        if self.dataset_name is None:
            self.dataset_name = DATASET_NAMES.get(self.dataset.lower(), self.dataset)
        self.dataset_name = _text(self.dataset_name, "RetrievalEvaluation.dataset_name")
        if self.config is not None:
            self.config = _text(self.config, "RetrievalEvaluation.config")
        if self.post_processing is not None:
            self.post_processing = _post_processing(self.post_processing, "RetrievalEvaluation.post_processing")
        where = f"metrics of {self.dataset}/{self.split}"
        self.metrics = parse_retrieval_metrics(self.metrics, where=where)
        has_dsl = any(key.startswith(DSL_PREFIX) for key in self.metrics)
        if has_dsl and self.post_processing == "DSL" and any(not k.startswith(DSL_PREFIX) for k in self.metrics):
            raise ValueError(f"{where}: post_processing='DSL' for the plain metrics, and dsl_ metrics as well")

    def groups(self) -> dict[str, dict[str, float]]:
        """``{post_processing: {"t2v_R@1": ..., ...}}``: the plain metrics under `post_processing` (``"none"`` when
        unset), the ``dsl_`` ones under ``"DSL"`` (prefix removed)."""
        groups: dict[str, dict[str, float]] = {}
        for key, value in self.metrics.items():
            if key.startswith(DSL_PREFIX):
                groups.setdefault("DSL", {})[key[len(DSL_PREFIX) :]] = value
            else:
                groups.setdefault(self.post_processing or "none", {})[key] = value
        return groups

    def eval_results(self) -> list[EvalResult]:
        """One model-index entry per metric, grouped by direction (text-to-video, video-to-text)."""
        results = []
        for post, metrics in self.groups().items():
            for key, value in metrics.items():
                task_type, task_name, _ = DIRECTIONS[key[:3]]
                label = _metric_label(key)
                results.append(
                    EvalResult(
                        task_type=task_type,
                        task_name=task_name,
                        dataset_type=self.dataset,
                        dataset_name=self.dataset_name,
                        dataset_config=self.config,
                        dataset_split=self.split,
                        metric_type=_metric_type(label),
                        metric_value=round(value, 2),
                        metric_name=f"{key[:3]} {label}" + ("" if post == "none" else f" ({post})"),
                        metric_args=None if post == "none" else {"post_processing": post},
                    )
                )
        return results


def _evaluations(metrics: Any, post_processing: str) -> list[RetrievalEvaluation]:
    """Normalise build_model_card's `metrics` argument into RetrievalEvaluations with post-processing set."""
    if metrics is None:
        return []
    if isinstance(metrics, RetrievalEvaluation):
        items = [metrics]
    elif isinstance(metrics, Mapping):
        items = [_evaluation_from_key(key, values) for key, values in metrics.items()]
    elif isinstance(metrics, Sequence) and not isinstance(metrics, str):
        items = list(metrics)
        for i, item in enumerate(items):
            if not isinstance(item, RetrievalEvaluation):
                raise TypeError(f"metrics[{i}] must be a RetrievalEvaluation, got {type(item).__name__}")
    else:
        raise TypeError(
            "metrics must be a mapping {'dataset/split': metrics_dict}, a RetrievalEvaluation or a list of them, "
            f"got {type(metrics).__name__}"
        )
    items = [item if item.post_processing else replace(item, post_processing=post_processing) for item in items]
    seen: set[tuple[str, str | None, str, str]] = set()
    for item in items:
        for post in item.groups():
            identity = (item.dataset, item.config, item.split, post)
            if identity in seen:
                raise ValueError(
                    f"metrics: {item.dataset}/{item.split} (config {item.config}, post-processing {post}) "
                    "is given twice"
                )
            seen.add(identity)
    return items


def _evaluation_from_key(key: Any, values: Any) -> RetrievalEvaluation:
    """``"msrvtt/test"`` (or ``"user/dataset/test"``: the split follows the last slash)."""
    if not isinstance(key, str) or "/" not in key.strip("/"):
        raise ValueError(f"metrics keys must look like 'dataset/split' (e.g. 'msrvtt/test'), got {key!r}")
    dataset, split = key.strip("/").rsplit("/", 1)
    return RetrievalEvaluation(dataset=dataset, split=split, metrics=values)


# ------------------------------------------------------------------------------------------------- card rows


def _glccl_config(model_or_config: Any) -> Any:
    """The GLCCLConfig of a model or config (duck-typed: remote-code classes are distinct Python classes)."""
    config = getattr(model_or_config, "config", model_or_config)
    if getattr(config, "model_type", None) != "glccl":
        raise TypeError(
            "model_or_config must be a GLCCLModel or GLCCLConfig, got "
            f"{type(model_or_config).__name__} (model_type {getattr(config, 'model_type', None)!r})"
        )
    return config


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _cell(value: Any) -> str:
    """A markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _architecture_rows(config: Any, model: Any | None) -> list[tuple[str, str]]:
    vision, text = config.vision_config, config.text_config
    rows = [
        (
            "Image encoder",
            f"CLIP ViT, patch {vision.patch_size}, {vision.image_size} px input, "
            f"{vision.num_hidden_layers} layers of width {vision.hidden_size}",
        ),
        (
            "Text encoder",
            f"CLIP transformer, {text.num_hidden_layers} layers of width {text.hidden_size}, "
            f"vocabulary {text.vocab_size}",
        ),
        ("Joint embedding width", str(config.projection_dim)),
        (
            "Temporal module",
            f"{config.temporal_layers} transformer layer{'s' if config.temporal_layers != 1 else ''}, "
            f"{config.temporal_attention_heads} heads, over at most "
            f"{config.max_frames} frames",
        ),
        ("GLIM", "text-guided" if config.text_guided else "uniform frame weights (mean-pooling ablation)"),
        ("GLIM temperature", _number(config.glim_temperature)),
        ("Score sharpness", _number(config.interaction_temperature)),
    ]
    if model is not None and hasattr(model, "num_parameters"):
        rows.append(("Parameters", f"{model.num_parameters() / 1e6:.1f} M"))
    return rows


def _training_settings(training_args: Any) -> dict[str, Any]:
    """TrainingArguments (or anything with to_dict) or a plain mapping -> a dict, with the global batch size
    (``global_batch_size``: the pairs scored against each other in one contrastive batch, all processes together;
    gradient accumulation does not enlarge it)."""
    if training_args is None:
        return {}
    if isinstance(training_args, Mapping):
        return dict(training_args)
    if not callable(getattr(training_args, "to_dict", None)):
        raise TypeError(
            "training_args must be a TrainingArguments (or an object with to_dict()) or a mapping, "
            f"got {type(training_args).__name__}"
        )
    settings = dict(training_args.to_dict())
    try:  # TrainingArguments: per-device batch x devices x processes (features are gathered across processes)
        settings.setdefault("global_batch_size", training_args.train_batch_size * training_args.world_size)
    except (AttributeError, TypeError):
        pass
    return settings


def _optimisation_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    max_steps = settings.get("max_steps")
    if isinstance(max_steps, int) and max_steps > 0:
        rows.append(("Training length", f"{max_steps} optimizer steps"))
    elif settings.get("num_train_epochs") is not None:
        rows.append(("Epochs", _number(settings["num_train_epochs"])))
    batch = _batch_size(settings)
    if batch:
        rows.append(("Batch size", batch))
    accumulation = settings.get("gradient_accumulation_steps")
    if accumulation not in (None, 1):
        rows.append(("Gradient accumulation", f"{accumulation} micro-batches per optimizer step"))
    learning_rate, coef_lr = settings.get("learning_rate"), settings.get("coef_lr")
    if learning_rate is not None:
        rows.append(("Learning rate", _number(learning_rate)))
    if coef_lr is not None:
        clip_lr = f"{learning_rate * coef_lr:g} (" if isinstance(learning_rate, Real) else "("
        rows.append(("CLIP learning rate", f"{clip_lr}learning rate x coef_lr = {_number(coef_lr)})"))
    schedule = settings.get("lr_scheduler_type")
    if schedule is not None:
        warmup = settings.get("warmup_ratio") or settings.get("warmup_steps")
        if isinstance(warmup, Real) and 0 < warmup < 1:
            schedule = f"{schedule}, warmup {warmup:.0%} of the steps"
        elif isinstance(warmup, Real) and warmup >= 1:
            schedule = f"{schedule}, warmup {int(warmup)} steps"
        rows.append(("Schedule", str(schedule)))
    if settings.get("optim") is not None:
        rows.append(("Optimizer", _optimizer(settings)))
    if settings.get("max_grad_norm") is not None:
        rows.append(("Gradient clipping", f"norm {_number(settings['max_grad_norm'])}"))
    if "bf16" in settings or "fp16" in settings:
        precision = "bfloat16 mixed" if settings.get("bf16") else "float16 mixed" if settings.get("fp16") else "float32"
        rows.append(("Precision", precision))
    if settings.get("seed") is not None:
        rows.append(("Seed", str(settings["seed"])))
    return rows


def _batch_size(settings: Mapping[str, Any]) -> str | None:
    """``"128 (32 per device)"``: the global contrastive batch, then the per-device share when it differs."""
    total, per_device = settings.get("global_batch_size"), settings.get("per_device_train_batch_size")
    if total is None:
        return None if per_device is None else f"{per_device} per device"
    return str(total) if per_device in (None, total) else f"{total} ({per_device} per device)"


def _optimizer(settings: Mapping[str, Any]) -> str:
    parts = [str(settings["optim"])]
    if settings.get("adam_beta1") is not None and settings.get("adam_beta2") is not None:
        parts.append(f"betas ({_number(settings['adam_beta1'])}, {_number(settings['adam_beta2'])})")
    if settings.get("adam_epsilon") is not None:
        parts.append(f"eps {_number(settings['adam_epsilon'])}")
    if settings.get("weight_decay") is not None:
        parts.append(f"weight decay {_number(settings['weight_decay'])}")
    return ", ".join(parts)


def _training_rows(
    config: Any, train_dataset: str | None, train_split: str | None, settings: Mapping[str, Any], hardware: str | None
) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if train_dataset is not None:
        data = DATASET_NAMES.get(train_dataset.lower(), train_dataset)
        rows.append(("Training data", data + (f", split `{train_split}`" if train_split else "")))
    rows += [
        ("Frames per video", f"at most {config.max_frames}"),
        ("Tokens per caption", f"at most {config.max_words}, start and end tokens included"),
        (
            "Masking",
            f"`mask_padded_words={config.mask_padded_words}`, `mask_padded_frames={config.mask_padded_frames}`, "
            f"`text_guided={config.text_guided}`",
        ),
        ("Loss", f"InfoNCE + {_number(config.csc_loss_weight)} x CSC"),
    ]
    rows += _optimisation_rows(settings)
    if hardware:
        rows.append(("Hardware", hardware))
    return rows


def _eval_table(evaluations: Sequence[RetrievalEvaluation]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns (R@K for every K present, then MdR, MnR when present) and one row per evaluation and direction."""
    groups = [(item, post, metrics) for item in evaluations for post, metrics in item.groups().items()]
    labels = {_metric_label(key) for _, _, metrics in groups for key in metrics}
    columns = sorted(labels, key=lambda label: _metric_order("t2v_" + label))
    rows = []
    for item, post, metrics in groups:
        for prefix, (_, _, direction) in DIRECTIONS.items():
            if not any(key.startswith(prefix) for key in metrics):
                continue
            values = [metrics.get(f"{prefix}_{label}") for label in columns]
            rows.append(
                {
                    "dataset": _cell(item.dataset_name + (f" ({item.config})" if item.config else "")),
                    "split": _cell(item.split),
                    "direction": direction,
                    "post_processing": post,
                    "cells": ["-" if value is None else f"{value:.1f}" for value in values],
                }
            )
    return columns, rows


# ------------------------------------------------------------------------------------------------------ card


def default_template_path() -> Path:
    """The card template shipped in the package (``glccl_hf/model_card.md``, a link to the repository's
    ``model_card.md``, copied into wheels as package data)."""
    path = Path(__file__).resolve().parent / TEMPLATE_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (a broken install?); pass template_path= to build_model_card")
    return path


def _string_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a string or a list of strings, got {type(value).__name__}")
    return [_text(item, f"{name} entries") for item in value]


def build_model_card(
    model_or_config: Any,
    *,
    repo_id: str | None = None,
    model_name: str | None = None,
    base_model: str | None = None,
    datasets: str | Sequence[str] | None = None,
    train_dataset: str | None = None,
    train_split: str | None = None,
    training_args: Any = None,
    hardware: str | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | RetrievalEvaluation | Sequence[RetrievalEvaluation] | None = None,
    post_processing: str = "none",
    license: str | None = None,
    language: str | Sequence[str] | None = "en",
    tags: str | Sequence[str] | None = None,
    description: str | None = None,
    code_url: str | None = None,
    synthetic: bool | None = None,
    template_path: str | os.PathLike | None = None,
    **template_kwargs: Any,
) -> ModelCard:
    """Fill the GLCCL model card template.

    Args:
        model_or_config: the `GLCCLModel` (adds the parameter count) or its `GLCCLConfig`.
        repo_id: the Hub repository, used in the usage snippets; defaults to `model_name`.
        model_name: title and model-index name; defaults to the last part of `repo_id`, else ``"glccl"``.
        base_model: Hub id of the CLIP checkpoint the model started from (``"openai/clip-vit-base-patch32"``).
        datasets: Hub dataset ids for the card metadata.
        train_dataset, train_split: what the model was trained on (``"msrvtt"``, ``"train (9k)"``), shown in the
            training section.
        training_args: `TrainingArguments` (the GLCCL subclass's ``coef_lr`` is read when present) or a mapping
            with the same field names (plus ``coef_lr`` and ``global_batch_size``, the contrastive batch over all
            processes, if wanted).
        hardware: free text, e.g. ``"1x H100, 3 h"``.
        metrics: ``{"msrvtt/test": metrics_dict, ...}`` (the split follows the last slash; metrics as returned by
            the evaluation or ``Trainer.evaluate``, ``eval_`` prefix allowed), a :class:`RetrievalEvaluation`, or
            a list of them.
        post_processing: ``"none"`` or ``"DSL"`` (or ``"QB-Norm"``): what the scores went through before ranking,
            for the evaluations that do not set their own.
        license: license id for the weights (``"apache-2.0"``, ``"mit"``); None leaves it unspecified.
        language: caption language(s) (CLIP is English).
        tags: tags added to :data:`DEFAULT_TAGS`.
        description: an extra paragraph under the title.
        code_url: git URL of the glccl-hf source, for the install line.
        synthetic: whether the model was trained on the synthetic demo corpus (adds a limitation); None infers it
            from `train_dataset` / `datasets` naming "synthetic".
        template_path: the card template; defaults to :func:`default_template_path`.
        template_kwargs: further variables for a custom template.

    Returns:
        a `huggingface_hub.ModelCard` whose metadata holds a ``model-index`` with one text-to-video and one
        video-to-text result per evaluation.
    """
    config = _glccl_config(model_or_config)
    model = model_or_config if model_or_config is not config else None
    if repo_id is not None:
        repo_id = _text(repo_id, "repo_id")
    model_name = _text(model_name, "model_name") if model_name is not None else None
    model_name = model_name or (repo_id.rsplit("/", 1)[-1] if repo_id else "glccl")
    if base_model is not None and not _HUB_ID.match(base_model):
        raise ValueError(
            f"base_model must be a Hub model id such as 'openai/clip-vit-base-patch32', got {base_model!r} "
            "(local paths cannot be linked from a card)"
        )
    datasets = _string_list(datasets, "datasets")
    train_dataset = _text(train_dataset, "train_dataset") if train_dataset is not None else None
    evaluations = _evaluations(metrics, _post_processing(post_processing))
    settings = _training_settings(training_args)
    if synthetic is None:
        named = [train_dataset or "", *(datasets or [])]
        synthetic = any("synthetic" in name.lower() for name in named)

    eval_results = [result for item in evaluations for result in item.eval_results()]
    card_data = ModelCardData(
        base_model=base_model,
        datasets=datasets,
        eval_results=eval_results or None,
        language=_string_list(language, "language"),
        library_name="transformers",
        license=license,
        model_name=model_name if eval_results else None,  # only the model-index uses it
        pipeline_tag=PIPELINE_TAG,
        tags=[*DEFAULT_TAGS, *(_string_list(tags, "tags") or [])],
    )
    eval_columns, eval_rows = _eval_table(evaluations)
    variables = {
        "model_name": model_name,
        # Without a Hub id the snippets load from the folder the card is saved in.
        "model_id": repo_id or "path/to/this/checkpoint",
        "base_model": base_model,
        "license": license,
        "description": description,
        "code_url": code_url,
        "synthetic": bool(synthetic),
        "architecture_rows": _architecture_rows(config, model),
        "training_rows": [
            (label, _cell(value))
            for label, value in _training_rows(config, train_dataset, train_split, settings, hardware)
        ],
        "training_recorded": bool(settings),
        "eval_columns": eval_columns,
        "eval_rows": eval_rows,
        "max_words": config.max_words,
        "max_frames": config.max_frames,
        "image_size": config.vision_config.image_size,
    }
    clashes = sorted(set(template_kwargs) & (set(variables) | {"card_data"}))
    if clashes:
        raise ValueError(f"template_kwargs {clashes} clash with variables build_model_card sets; use its arguments")
    path = Path(template_path) if template_path is not None else default_template_path()
    if not path.is_file():
        raise FileNotFoundError(f"template_path {path} is not a file")
    return ModelCard.from_template(card_data, template_path=str(path), **variables, **template_kwargs)


def save_model_card(card: RepoCard, directory: str | os.PathLike) -> Path:
    """Write `card` as ``README.md`` into `directory` (created if needed); returns the file's path."""
    if not isinstance(card, RepoCard):
        raise TypeError(f"card must be a huggingface_hub.ModelCard, got {type(card).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CARD_FILENAME
    card.save(path)
    return path


# ------------------------------------------------------------------------------------------------------ push


def save_for_hub(directory: str | os.PathLike, model: Any, processor: Any = None, card: RepoCard | None = None) -> Path:
    """Save what a GLCCL repository holds into `directory`: weights and config with their remote code, the processor
    (tokenizer files and ``processor_config.json``) and ``README.md`` (`card`, or a default one when None).

    Raises:
        ValueError: the saved config (or processor config) has no ``auto_map`` or a file it names is missing, so
            ``trust_remote_code`` loading would fail.
    """
    _glccl_config(model)
    if processor is not None and not callable(getattr(processor, "save_pretrained", None)):
        raise TypeError(f"processor must have save_pretrained (a GLCCLProcessor), got {type(processor).__name__}")
    directory = Path(directory)
    model.save_pretrained(directory)
    _check_remote_code(directory, *_MODEL_REMOTE_CODE)
    if processor is not None:
        processor.save_pretrained(directory)
        _check_remote_code(directory, *_PROCESSOR_REMOTE_CODE)
    save_model_card(card if card is not None else build_model_card(model), directory)
    return directory


def _check_remote_code(directory: Path, config_name: str, auto_classes: tuple[str, ...]) -> None:
    config = json.loads((directory / config_name).read_text(encoding="utf-8"))
    auto_map = config.get("auto_map") or {}
    missing_classes = [name for name in auto_classes if name not in auto_map]
    missing_files = sorted(
        {
            reference.split(".")[0] + ".py"
            for reference in auto_map.values()
            if isinstance(reference, str) and "--" not in reference
        }
        - {path.name for path in directory.glob("*.py")}
    )
    if missing_classes or missing_files:
        raise ValueError(
            f"the saved checkpoint cannot load with trust_remote_code: {config_name}'s auto_map lacks "
            f"{missing_classes}, missing files {missing_files}; register the classes first "
            "(GLCCLConfig.register_for_auto_class(), GLCCLModel.register_for_auto_class('AutoModel'), "
            "GLCCLProcessor.register_for_auto_class('AutoProcessor'))"
        )


def push_to_hub(
    repo_id: str,
    model: Any,
    processor: Any,
    card: RepoCard | None = None,
    *,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str = "Upload GLCCL model, processor and model card",
    commit_description: str | None = None,
) -> CommitInfo:
    """Upload a GLCCL model, its processor and its card to the Hub in one commit.

    Everything is saved into a temporary folder (:func:`save_for_hub`) and sent with one
    `HfApi.upload_folder`, so the repository never holds weights without their code, processor or card. (Calling
    ``model.push_to_hub`` and ``processor.push_to_hub`` instead makes two commits, and each writes transformers'
    generic README unless the repository already has one.)

    Args:
        repo_id: ``"user/name"`` (created if missing).
        model: the `GLCCLModel`.
        processor: its `GLCCLProcessor`, or None to upload no processor files.
        card: the model card; None builds a default one with :func:`build_model_card` (no metrics).
        private: visibility when the repository is created.
        token: Hub token; None uses the saved login.
        revision: branch to commit to (created if missing).
        create_pr: open a pull request instead of committing to the branch.
        commit_message, commit_description: the commit's text.

    Returns:
        the `CommitInfo` of the upload.
    """
    repo_id = _text(repo_id, "repo_id")
    _glccl_config(model)
    if card is not None and not isinstance(card, RepoCard):
        raise TypeError(f"card must be a huggingface_hub.ModelCard, got {type(card).__name__}")
    api = HfApi(token=token, library_name="glccl-hf")
    repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
    if revision is not None and not revision.startswith("refs/pr/"):
        api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
    if card is None:
        card = build_model_card(model, repo_id=repo_id)
    with tempfile.TemporaryDirectory(prefix="glccl-push-") as folder:
        save_for_hub(folder, model, processor, card)
        logger.info("Uploading %s to %s", sorted(os.listdir(folder)), repo_id)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message,
            commit_description=commit_description,
            token=token,
            revision=revision,
            create_pr=create_pr,
        )


# --------------------------------------------------------------------------------------------------- Trainer


def _last_eval_metrics(log_history: Sequence[Mapping[str, Any]], prefix: str) -> dict[str, Any] | None:
    """The retrieval metrics (``{prefix}_*`` keys, prefix removed) of the latest evaluation a Trainer logged."""
    start = prefix + "_"
    for entry in reversed(log_history):
        found = {
            key[len(start) :]: value
            for key, value in entry.items()
            if key.startswith(start) and _METRIC_KEY.match(key[len(start) :])
        }
        if found:
            return found
    return None


def trainer_model_card(
    trainer: Any,
    *,
    metrics: Any = None,
    eval_dataset: str | None = None,
    eval_split: str = "test",
    metric_key_prefix: str = "eval",
    **card_kwargs: Any,
) -> ModelCard:
    """A card for a Trainer run: its model, its `TrainingArguments` and, if asked, its latest evaluation.

    Args:
        trainer: a `transformers.Trainer` (GLCCLTrainer) holding a GLCCL model.
        metrics: explicit results, as for :func:`build_model_card`; they take precedence.
        eval_dataset: when set (and `metrics` is None), the latest ``{metric_key_prefix}_*`` retrieval metrics
            of ``trainer.state.log_history`` are reported as results on `eval_dataset` / `eval_split`.
        metric_key_prefix: the prefix of those log keys: ``"eval"``, or ``"eval_<name>"`` when the Trainer
            evaluated a dict of datasets.
        card_kwargs: further :func:`build_model_card` arguments; `repo_id` defaults to the trainer's Hub repository.
    """
    if metrics is None and eval_dataset is not None:
        logged = _last_eval_metrics(trainer.state.log_history, metric_key_prefix)
        if logged is None:
            raise ValueError(
                f"eval_dataset={eval_dataset!r} was given but trainer.state.log_history holds no "
                f"{metric_key_prefix}_ retrieval metrics ({metric_key_prefix}_t2v_R@1, ...): run trainer.evaluate() "
                "first, set metric_key_prefix, or pass metrics="
            )
        metrics = RetrievalEvaluation(dataset=eval_dataset, split=eval_split, metrics=logged)
    card_kwargs.setdefault("repo_id", getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id)
    card_kwargs.setdefault("training_args", trainer.args)
    return build_model_card(trainer.model, metrics=metrics, **card_kwargs)


def write_trainer_model_card(trainer: Any, card: RepoCard | None = None, **kwargs: Any) -> Path | None:
    """Write the GLCCL card to ``trainer.args.output_dir/README.md`` (main process only).

    Made to replace ``Trainer.create_model_card``: accepts its keyword arguments (``model_name``, ``license``,
    ``language``, ``tags``, ``finetuned_from`` -> `base_model`, ``dataset_tags`` -> `datasets`, ``dataset`` ->
    `train_dataset`; ``tasks`` and ``dataset_args`` are ignored) next to those of :func:`trainer_model_card`.
    A given `card` is written as is; the other arguments are then ignored.

    Returns:
        the README path, or None on processes other than the main one.
    """
    if not trainer.is_world_process_zero():
        return None
    if card is None:
        renames = {"finetuned_from": "base_model", "dataset_tags": "datasets", "dataset": "train_dataset"}
        for old, new in renames.items():
            value = kwargs.pop(old, None)
            if value is not None and kwargs.get(new) is None:
                kwargs[new] = value if new != "train_dataset" or isinstance(value, str) else ", ".join(value)
        for ignored in ("tasks", "dataset_args"):
            kwargs.pop(ignored, None)
        card = trainer_model_card(trainer, **kwargs)
    return save_model_card(card, trainer.args.output_dir)


def push_trainer_to_hub(
    trainer: Any,
    card: RepoCard | None = None,
    *,
    commit_message: str | None = "End of training",
    blocking: bool = True,
    token: str | None = None,
    revision: str | None = None,
    private: bool | None = None,
    **card_kwargs: Any,
) -> Any:
    """``trainer.push_to_hub()`` with the GLCCL card instead of Trainer's generic one.

    Trainer saves the model (weights, config, remote code), the processor (``processing_class``) and the training
    arguments into ``output_dir`` and uploads the folder in one commit; its ``create_model_card`` step is replaced
    for this call by :func:`write_trainer_model_card` (`card`, or one built from `card_kwargs`). Works with any
    Trainer; a GLCCLTrainer that overrides ``create_model_card`` the same way can call ``trainer.push_to_hub``.
    """

    def create_model_card(**kwargs: Any) -> None:
        write_trainer_model_card(trainer, card=card, **{**kwargs, **card_kwargs})

    trainer.create_model_card = create_model_card
    try:
        return trainer.push_to_hub(
            commit_message=commit_message, blocking=blocking, token=token, revision=revision, private=private
        )
    finally:
        del trainer.create_model_card
