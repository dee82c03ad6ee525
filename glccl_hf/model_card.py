"""The GLCCL model card: the results a checkpoint reports and the card built from the template (``model_card.md``).

- :class:`RetrievalEvaluation`: one split's retrieval metrics, as the card's ``model-index`` and results table state
  them (metric keys and their validation come from :mod:`glccl_hf.metrics`).
- :func:`build_model_card` fills the template: metadata (library, tags, base model, datasets, license, a
  ``model-index`` with text-to-video and video-to-text results) and the sections (architecture and training tables
  from :mod:`glccl_hf.card_rows`).
- :func:`save_model_card` writes it as ``README.md`` into a checkpoint folder.

A Trainer run's card is filled as it trains by :class:`glccl_hf.trainer_card.ModelCardCallback`; uploads are in
:mod:`glccl_hf.hub`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard import RepoCard

from .card_rows import DATASET_NAMES, architecture_rows, table_cell, training_rows, training_settings
from .metrics import DSL_PREFIX, MetricKey, format_metrics_table, parse_metric_key, parse_retrieval_metrics

__all__ = [
    "CARD_FILENAME",
    "DEFAULT_TAGS",
    "PIPELINE_TAG",
    "RetrievalEvaluation",
    "build_model_card",
    "default_template_path",
    "glccl_config_of",
    "save_model_card",
]

TEMPLATE_FILENAME = "model_card.md"
CARD_FILENAME = "README.md"
# GLCCL embeds texts and videos; no transformers pipeline does retrieval, and "text-to-video" means generation.
PIPELINE_TAG = "feature-extraction"
DEFAULT_TAGS = ("glccl", "text-video-retrieval", "video-retrieval", "clip")
DIRECTION_TASKS: dict[str, tuple[str, str, str]] = {
    # metric direction: (model-index task type, task name, table label)
    "t2v": ("text-to-video-retrieval", "Text-to-Video Retrieval", "text-to-video"),
    "v2t": ("video-to-text-retrieval", "Video-to-Text Retrieval", "video-to-text"),
}
TABLE_LABELS = ("Dataset", "Split", "Direction", "Post-processing")
POST_PROCESSING = {"none": "none", "dsl": "DSL", "qb-norm": "QB-Norm"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def _metric_type(name: str) -> str:
    """Model-index metric id: ``R@5`` -> ``recall@5``, ``MdR`` -> ``median_rank``, ``MnR`` -> ``mean_rank``."""
    if name.startswith("R@"):
        return "recall@" + name[2:]
    return {"MdR": "median_rank", "MnR": "mean_rank"}[name]


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
                metric = parse_metric_key(key)
                task_type, task_name, _ = DIRECTION_TASKS[metric.direction]
                results.append(
                    EvalResult(
                        task_type=task_type,
                        task_name=task_name,
                        dataset_type=self.dataset,
                        dataset_name=self.dataset_name,
                        dataset_config=self.config,
                        dataset_split=self.split,
                        metric_type=_metric_type(metric.name),
                        metric_value=round(value, 2),
                        metric_name=metric.label + ("" if post == "none" else f" ({post})"),
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


def glccl_config_of(model_or_config: Any) -> Any:
    """The GLCCLConfig of a model or config (duck-typed: remote-code classes are distinct Python classes)."""
    config = getattr(model_or_config, "config", model_or_config)
    if getattr(config, "model_type", None) != "glccl":
        raise TypeError(
            "model_or_config must be a GLCCLModel or GLCCLConfig, got "
            f"{type(model_or_config).__name__} (model_type {getattr(config, 'model_type', None)!r})"
        )
    return config


def _eval_table(evaluations: Sequence[RetrievalEvaluation]) -> str:
    """The card's results table: a column per metric present (R@K by K, then MdR, MnR), a row per evaluation,
    post-processing and direction; "" without evaluations."""
    rows = []
    for item in evaluations:
        dataset = table_cell(item.dataset_name + (f" ({item.config})" if item.config else ""))
        for post, metrics in item.groups().items():
            for direction, (_, _, label) in DIRECTION_TASKS.items():
                values = {
                    metric.name: value
                    for key, value in metrics.items()
                    if (metric := parse_metric_key(key)).direction == direction
                }
                if values:
                    rows.append(((dataset, table_cell(item.split), label, post), values))
    names = {name for _, values in rows for name in values}
    columns = sorted(names, key=lambda name: MetricKey(False, "t2v", name).order)  # R@K by K, then MdR, MnR
    return format_metrics_table(rows, columns, labels=TABLE_LABELS) if rows else ""


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
    from_scratch: bool | None = None,
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
        from_scratch: whether the weights started from random initialisation instead of a pretrained CLIP (the card
            then claims no CLIP pre-training); None infers it: a synthetic-data model without `base_model` is.
        template_path: the card template; defaults to :func:`default_template_path`.
        template_kwargs: further variables for a custom template.

    Returns:
        a `huggingface_hub.ModelCard` whose metadata holds a ``model-index`` with one text-to-video and one
        video-to-text result per evaluation.
    """
    config = glccl_config_of(model_or_config)
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
    settings = training_settings(training_args)
    if synthetic is None:
        named = [train_dataset or "", *(datasets or [])]
        synthetic = any("synthetic" in name.lower() for name in named)
    if from_scratch is None:
        from_scratch = synthetic and base_model is None
    if from_scratch and base_model is not None:
        raise ValueError(
            f"from_scratch=True contradicts base_model={base_model!r}: a model starts from one or the other"
        )

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
    variables = {
        "model_name": model_name,
        # Without a Hub id the snippets load from the folder the card is saved in.
        "model_id": repo_id or "path/to/this/checkpoint",
        "base_model": base_model,
        "license": license,
        "description": description,
        "code_url": code_url,
        "synthetic": bool(synthetic),
        "from_scratch": bool(from_scratch),
        "architecture_rows": architecture_rows(config, model),
        "training_rows": [
            (label, table_cell(value))
            for label, value in training_rows(config, train_dataset, train_split, settings, hardware)
        ],
        "training_recorded": bool(settings),
        "eval_table": _eval_table(evaluations),
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
