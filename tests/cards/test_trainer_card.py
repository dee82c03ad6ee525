"""Tests of glccl_hf.trainer_card: the card of a Trainer run, filled by ModelCardCallback or from the log history."""

from __future__ import annotations

from unittest import mock

import pytest
from card_fixtures import EVAL_OUTPUT, find, glccl_trainer, make_trainer, model_index_results
from transformers import Trainer

import glccl_hf  # noqa: F401  (registers GLCCL with the Auto classes)
from glccl_hf.trainer_card import ModelCardCallback, trainer_model_card, write_trainer_model_card


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


# --------------------------------------------------------------------------------------------- ModelCardCallback


def test_glccl_trainer_card_is_filled_by_its_callback(model, processor, tmp_path):
    """GLCCLTrainer's ModelCardCallback records each evaluation (on_evaluate, as Trainer.evaluate calls it): the card
    reports them without reading the log history."""
    trainer = glccl_trainer(model, processor, tmp_path / "out")
    callback = trainer.model_card_callback
    assert isinstance(callback, ModelCardCallback) and callback in trainer.callback_handler.callbacks
    trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, {"eval_t2v_R@1": 1.0})
    later = {**EVAL_OUTPUT, "eval_vatex_t2v_R@1": 33.0, "eval_vatex_dsl_v2t_MdR": 2.0}
    trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, later)
    assert callback.evaluations["eval"]["t2v_R@1"] == 44.5 and len(callback.evaluations["eval"]) == 10
    assert callback.evaluations["eval_vatex"] == {"t2v_R@1": 33.0, "dsl_v2t_MdR": 2.0}
    assert trainer.state.log_history == []  # nothing was logged: the card's metrics come from the callback
    trainer.create_model_card(eval_dataset="msrvtt")
    results = model_index_results((tmp_path / "out" / "README.md").read_text(encoding="utf-8"))
    assert find(results, task="text-to-video-retrieval", dataset="msrvtt", metric="recall@1", value=44.5)
    assert len(results) == 10
    card = trainer_model_card(trainer, eval_dataset="vatex", metric_key_prefix="eval_vatex")
    assert [(r["metric"], r["value"], r["args"]) for r in model_index_results(str(card))] == [
        ("recall@1", 33.0, None),
        ("median_rank", 2.0, {"post_processing": "DSL"}),
    ]


def test_callback_writes_the_card_when_training_ends(model, processor, tmp_path, caplog):
    trainer = glccl_trainer(model, processor, tmp_path / "out")
    readme = tmp_path / "out" / "README.md"
    callback = trainer.model_card_callback  # called as Trainer's callback handler calls it at the end of train()
    callback.card_kwargs.update(eval_dataset="msrvtt", base_model="openai/clip-vit-base-patch32")
    callback.on_train_end(trainer.args, trainer.state, trainer.control, model=trainer.model)
    assert not readme.exists()  # asked for eval metrics that were never recorded: warned, not failed
    assert "no model card written at the end of training" in caplog.text
    trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, EVAL_OUTPUT)
    callback.on_train_end(trainer.args, trainer.state, trainer.control, model=trainer.model)
    text = readme.read_text(encoding="utf-8")
    assert "Initialised from the CLIP checkpoint" in text and "| Batch size | 4 |" in text
    assert len(model_index_results(text)) == 10
    with mock.patch.object(type(trainer.args), "should_save", new_callable=mock.PropertyMock, return_value=False):
        readme.unlink()
        callback.on_train_end(trainer.args, trainer.state, trainer.control, model=trainer.model)
    assert not readme.exists()  # only the process that saves writes the card
