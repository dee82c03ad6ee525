"""The model card of a `transformers.Trainer` run, filled as it trains.

:class:`ModelCardCallback` is a `TrainerCallback` (as sentence-transformers' ``ModelCardCallback``): ``on_evaluate``
records the retrieval metrics of every evaluation, ``on_train_end`` writes the card into ``output_dir``.
`GLCCLTrainer` adds one, and its ``create_model_card`` (which ``trainer.push_to_hub()`` calls) writes the card from
it: :func:`write_trainer_model_card`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard
from huggingface_hub.repocard import RepoCard
from transformers import TrainerCallback
from transformers.utils import logging

from .metrics import logged_retrieval_metrics, split_metric_key
from .model_card import RetrievalEvaluation, build_model_card, save_model_card

__all__ = ["ModelCardCallback", "trainer_model_card", "write_trainer_model_card"]

logger = logging.get_logger(__name__)

# Trainer.create_model_card's arguments under build_model_card's names (`tasks`, `dataset_args` have no equivalent).
_TRAINER_CARD_ARGUMENTS = {"finetuned_from": "base_model", "dataset_tags": "datasets", "dataset": "train_dataset"}


class ModelCardCallback(TrainerCallback):
    """Records each evaluation's retrieval metrics and writes the GLCCL card when training ends.

    Args:
        card_kwargs: :func:`trainer_model_card` arguments for the card written at the end of training
            (``eval_dataset="msrvtt"`` reports the latest ``eval_`` metrics, ``base_model=...``, ...).

    Attributes:
        evaluations: ``{metric_key_prefix: {"t2v_R@1": ..., ...}}``, the latest retrieval metrics of each prefix
            (``"eval"``, ``"eval_vatex"`` for a dict of eval datasets, ``"test"`` for ``Trainer.predict``).
    """

    def __init__(self, **card_kwargs: Any) -> None:
        self.card_kwargs = card_kwargs
        self.evaluations: dict[str, dict[str, float]] = {}

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any):
        for key, value in (metrics or {}).items():
            split = split_metric_key(key)
            if split is not None:
                self.evaluations.setdefault(split[0], {})[str(split[1])] = value

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any):
        if model is None or not (state.is_world_process_zero and args.should_save):
            return
        try:
            card = _card(model, args, self.logged_metrics, **self.card_kwargs)
        except (TypeError, ValueError) as err:  # a card is no reason to fail a finished run before it is saved
            logger.warning("no model card written at the end of training: %s", err)
            return
        save_model_card(card, args.output_dir)

    def logged_metrics(self, prefix: str) -> dict[str, float] | None:
        """The latest retrieval metrics recorded under `prefix`, None if none were."""
        return self.evaluations.get(prefix)


def _card(
    model: Any,
    training_args: Any,
    logged: Any,
    *,
    metrics: Any = None,
    eval_dataset: str | None = None,
    eval_split: str = "test",
    metric_key_prefix: str = "eval",
    splits: Mapping[str, str] | None = None,
    **card_kwargs: Any,
) -> ModelCard:
    """build_model_card for a run; with `eval_dataset` (and no `metrics`), `logged(metric_key_prefix)` are reported,
    or with `splits` every recorded prefix it names, each under its split."""
    if metrics is None and eval_dataset is not None and splits is not None:
        # A run reports what it evaluated, and says so when it evaluated nothing.
        metrics = [
            RetrievalEvaluation(dataset=eval_dataset, split=split, metrics=found)
            for prefix, split in splits.items()
            if (found := logged(prefix))
        ]
    elif metrics is None and eval_dataset is not None:
        found = logged(metric_key_prefix)
        if not found:
            raise ValueError(
                f"eval_dataset={eval_dataset!r} was given but trainer.state.log_history holds no "
                f"{metric_key_prefix}_ retrieval metrics ({metric_key_prefix}_t2v_R@1, ...): run trainer.evaluate() "
                "first, set metric_key_prefix, or pass metrics="
            )
        metrics = RetrievalEvaluation(dataset=eval_dataset, split=eval_split, metrics=found)
    card_kwargs.setdefault("repo_id", training_args.hub_model_id)
    card_kwargs.setdefault("training_args", training_args)
    return build_model_card(model, metrics=metrics, **card_kwargs)


def trainer_model_card(trainer: Any, **kwargs: Any) -> ModelCard:
    """A card for a Trainer run: its model, its `TrainingArguments` and, if asked, its latest evaluation.

    Args:
        trainer: a `transformers.Trainer` (GLCCLTrainer) holding a GLCCL model.
        metrics: explicit results, as for :func:`build_model_card`; they take precedence.
        eval_dataset: when set (and `metrics` is None), the latest ``{metric_key_prefix}_*`` retrieval metrics are
            reported as results on `eval_dataset` / `eval_split` (default ``"test"``): those the trainer's
            :class:`ModelCardCallback` recorded, else (a plain Trainer) the latest in ``trainer.state.log_history``.
        metric_key_prefix: the prefix of those metric keys: ``"eval"`` (default), or ``"eval_<name>"`` when the
            Trainer evaluated a dict of datasets.
        splits: instead of one prefix, ``{metric_key_prefix: split}`` for every evaluation to report (for example
            ``{"eval": "validation", "test": "test"}``); prefixes never evaluated are left out.
        kwargs: further :func:`build_model_card` arguments; `repo_id` defaults to the trainer's Hub repository.
            The trainer's :class:`ModelCardCallback`'s ``card_kwargs`` fill in what is not given.
    """
    callback = next((c for c in trainer.callback_handler.callbacks if isinstance(c, ModelCardCallback)), None)
    if callback is not None:
        kwargs = {**callback.card_kwargs, **kwargs}  # the run's card fields; explicit arguments win

    def logged(prefix: str) -> dict[str, Any] | None:
        recorded = callback.logged_metrics(prefix) if callback is not None else None
        if recorded:
            return recorded
        # Metrics that never passed through on_evaluate (a plain Trainer, or a history loaded from a checkpoint).
        return next(
            (
                found
                for entry in reversed(trainer.state.log_history)
                if (found := logged_retrieval_metrics(entry, prefix))
            ),
            None,
        )

    kwargs.setdefault("repo_id", getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id)
    return _card(trainer.model, trainer.args, logged, **kwargs)


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
        for old, new in _TRAINER_CARD_ARGUMENTS.items():
            value = kwargs.pop(old, None)
            if value is not None and kwargs.get(new) is None:
                kwargs[new] = value if new != "train_dataset" or isinstance(value, str) else ", ".join(value)
        for ignored in ("tasks", "dataset_args"):
            kwargs.pop(ignored, None)
        card = trainer_model_card(trainer, **kwargs)
    return save_model_card(card, trainer.args.output_dir)
