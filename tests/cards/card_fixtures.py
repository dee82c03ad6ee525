"""Shared by the model-card, Trainer-card and Hub tests (their fixtures are in conftest.py): the evaluation output
and card they report, Trainers with logged evaluations, and readers of a card's model-index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard
from transformers import Trainer, TrainingArguments

from glccl_hf.model_card import RetrievalEvaluation, build_model_card

REPO_ID = "user/glccl-tiny"
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


def glccl_trainer(model, processor, output_dir: Path):
    from glccl_hf.training import GLCCLTrainer, GLCCLTrainingArguments

    args = GLCCLTrainingArguments(
        output_dir=str(output_dir), report_to=[], use_cpu=True, hub_model_id=REPO_ID, per_device_train_batch_size=4
    )
    return GLCCLTrainer(model=model, args=args, processing_class=processor)
