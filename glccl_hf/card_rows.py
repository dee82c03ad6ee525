"""The tables of a GLCCL model card that describe the model and its training: architecture rows from the config,
training rows from the config and the `TrainingArguments` (or a mapping of the same fields)."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

__all__ = ["DATASET_NAMES", "architecture_rows", "format_number", "table_cell", "training_rows", "training_settings"]

# Display names of the datasets the loaders know.
DATASET_NAMES = {
    "msrvtt": "MSR-VTT",
    "msr-vtt": "MSR-VTT",
    "didemo": "DiDeMo",
    "vatex": "VATEX",
    "synthetic": "glccl-hf synthetic shapes",
}


def format_number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table_cell(value: Any) -> str:
    """A markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def architecture_rows(config: Any, model: Any | None) -> list[tuple[str, str]]:
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
        ("GLIM temperature", format_number(config.glim_temperature)),
        ("Interaction temperature", format_number(config.interaction_temperature)),
    ]
    if model is not None and hasattr(model, "num_parameters"):
        rows.append(("Parameters", f"{model.num_parameters() / 1e6:.1f} M"))
    return rows


def training_settings(training_args: Any) -> dict[str, Any]:
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
    """The optimisation rows of the training table, each present only when its settings were recorded."""
    rows = [
        _length_row(settings),
        ("Batch size", _batch_size(settings)),
        ("Gradient accumulation", _accumulation(settings)),
        ("Learning rate", _optional_number(settings.get("learning_rate"))),
        ("CLIP learning rate", _clip_learning_rate(settings)),
        ("Schedule", _schedule(settings)),
        ("Optimizer", _optimizer(settings) if settings.get("optim") is not None else None),
        ("Gradient clipping", _prefixed("norm ", settings.get("max_grad_norm"))),
        ("Precision", _precision(settings)),
        ("Seed", None if settings.get("seed") is None else str(settings["seed"])),
    ]
    return [(label, value) for label, value in rows if value]


def _optional_number(value: Any) -> str | None:
    return None if value is None else format_number(value)


def _prefixed(prefix: str, value: Any) -> str | None:
    return None if value is None else prefix + format_number(value)


def _length_row(settings: Mapping[str, Any]) -> tuple[str, str | None]:
    """Steps when the run was sized by ``max_steps``, else epochs."""
    max_steps = settings.get("max_steps")
    if isinstance(max_steps, int) and max_steps > 0:
        return "Training length", f"{max_steps} optimizer steps"
    return "Epochs", _optional_number(settings.get("num_train_epochs"))


def _accumulation(settings: Mapping[str, Any]) -> str | None:
    accumulation = settings.get("gradient_accumulation_steps")
    return None if accumulation in (None, 1) else f"{accumulation} micro-batches per optimizer step"


def _clip_learning_rate(settings: Mapping[str, Any]) -> str | None:
    learning_rate, coef_lr = settings.get("learning_rate"), settings.get("coef_lr")
    if coef_lr is None:
        return None
    value = f"{learning_rate * coef_lr:g} (" if isinstance(learning_rate, Real) else "("
    return f"{value}learning rate x coef_lr = {format_number(coef_lr)})"


def _schedule(settings: Mapping[str, Any]) -> str | None:
    schedule = settings.get("lr_scheduler_type")
    if schedule is None:
        return None
    warmup = settings.get("warmup_ratio") or settings.get("warmup_steps")
    if isinstance(warmup, Real) and 0 < warmup < 1:
        return f"{schedule}, warmup {warmup:.0%} of the steps"
    if isinstance(warmup, Real) and warmup >= 1:
        return f"{schedule}, warmup {int(warmup)} steps"
    return str(schedule)


def _precision(settings: Mapping[str, Any]) -> str | None:
    if "bf16" not in settings and "fp16" not in settings:
        return None
    return "bfloat16 mixed" if settings.get("bf16") else "float16 mixed" if settings.get("fp16") else "float32"


def _batch_size(settings: Mapping[str, Any]) -> str | None:
    """``"128 (32 per device)"``: the global contrastive batch, then the per-device share when it differs."""
    total, per_device = settings.get("global_batch_size"), settings.get("per_device_train_batch_size")
    if total is None:
        return None if per_device is None else f"{per_device} per device"
    return str(total) if per_device in (None, total) else f"{total} ({per_device} per device)"


def _optimizer(settings: Mapping[str, Any]) -> str:
    parts = [str(settings["optim"])]
    if settings.get("adam_beta1") is not None and settings.get("adam_beta2") is not None:
        parts.append(f"betas ({format_number(settings['adam_beta1'])}, {format_number(settings['adam_beta2'])})")
    if settings.get("adam_epsilon") is not None:
        parts.append(f"eps {format_number(settings['adam_epsilon'])}")
    if settings.get("weight_decay") is not None:
        parts.append(f"weight decay {format_number(settings['weight_decay'])}")
    return ", ".join(parts)


def training_rows(
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
        ("Loss", f"InfoNCE + {format_number(config.csc_loss_weight)} x CSC"),
    ]
    rows += _optimisation_rows(settings)
    if hardware:
        rows.append(("Hardware", hardware))
    return rows
