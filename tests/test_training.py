"""GLCCLTrainer and examples/train_glccl.py: the optimisation recipe, retrieval evaluation, checkpoints, resuming,
two-process equivalence and the script's arguments. Tiny models, a four-video synthetic corpus."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import glccl_hf.modeling.processing_glccl
import pytest
import torch
import transformers
from modeling_fixtures import tiny_model
from train_ddp_check import PairDataset, collate_pairs, run, synthetic_processor, synthetic_tiny_model
from train_kill_check import kill_check_trainer
from transformers import AutoModel, AutoProcessor

from glccl_hf import GLCCLModel, GLCCLProcessor
from glccl_hf.data import (
    FrameCache,
    GLCCLDataCollator,
    load_retrieval_dataset,
    load_synthetic_tokenizer,
    make_synthetic_corpus,
)
from glccl_hf.evaluation import score_dataset
from glccl_hf.training import GLCCLTrainer, GLCCLTrainingArguments, glccl_parameter_groups, parameter_group_names

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
METRIC_KEYS = [f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MdR", "MnR")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_train=4, n_test=4, seed=0)


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return load_synthetic_tokenizer(corpus)


def training_args(output_dir: Path, **overrides) -> GLCCLTrainingArguments:
    settings = dict(output_dir=str(output_dir), use_cpu=True, report_to="none", disable_tqdm=True, save_strategy="no")
    settings.update(overrides)
    return GLCCLTrainingArguments(**settings)


# ------------------------------------------------------------------------------------------------ optimizer


def _expected_group(name: str) -> str:
    """The recipe, written out from parameter names alone: CLIP's parts at the small learning rate; no decay for
    biases, LayerNorms (every HF CLIP spelling) and the logit scale."""
    clip = name.split(".")[0] in ("text_model", "vision_model", "text_projection", "visual_projection", "logit_scale")
    norms = ("layer_norm1.", "layer_norm2.", "pre_layrnorm.", "post_layernorm.", "final_layer_norm.")
    no_decay = name.endswith(".bias") or any(norm in name for norm in norms) or name == "logit_scale"
    return f"{'clip' if clip else 'glccl'}_{'no_decay' if no_decay else 'decay'}"


def test_parameter_groups_follow_the_recipe():
    model = tiny_model()
    groups = parameter_group_names(model)
    placed = {name: group for group, names in groups.items() for name in names}
    assert sum(len(names) for names in groups.values()) == len(placed)  # no parameter in two groups
    assert placed.keys() == dict(model.named_parameters()).keys()
    for name, group in placed.items():
        assert group == _expected_group(name), name
    spot_checks = {
        "logit_scale": "clip_no_decay",
        "text_projection.weight": "clip_decay",
        "text_model.embeddings.token_embedding.weight": "clip_decay",
        "vision_model.pre_layrnorm.weight": "clip_no_decay",
        "text_model.final_layer_norm.weight": "clip_no_decay",
        "vision_model.encoder.layers.0.mlp.fc1.bias": "clip_no_decay",
        "temporal_encoder.frame_position_embeddings.weight": "glccl_decay",
        "temporal_encoder.encoder.layers.1.layer_norm2.weight": "glccl_no_decay",
        "temporal_encoder.encoder.layers.0.self_attn.q_proj.bias": "glccl_no_decay",
        "score_heads.frame_word_projection": "glccl_decay",
    }
    for name, group in spot_checks.items():
        assert placed[name] == group, name


def test_frozen_parameters_stay_out_of_the_optimizer():
    model = tiny_model()
    model.vision_model.requires_grad_(False)
    groups = glccl_parameter_groups(model, learning_rate=1e-4, coef_lr=1e-3, weight_decay=0.2)
    optimized = {id(p) for group in groups for p in group["params"]}
    assert not any(id(p) in optimized for p in model.vision_model.parameters())
    assert {id(p) for p in model.text_model.parameters()} <= optimized
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        glccl_parameter_groups(model, learning_rate=1e-4, coef_lr=1e-3, weight_decay=0.2)


def test_optimizer_has_the_reference_hyperparameters(tmp_path):
    args = training_args(tmp_path)
    assert (args.learning_rate, args.coef_lr, args.weight_decay) == (1e-4, 1e-3, 0.2)
    assert (args.adam_beta1, args.adam_beta2, args.adam_epsilon, args.max_grad_norm) == (0.9, 0.98, 1e-6, 1.0)
    assert args.warmup_steps == 0.1 and args.lr_scheduler_type == "cosine"
    assert args.remove_unused_columns is False and args.dataloader_drop_last is True
    model = tiny_model()
    trainer = GLCCLTrainer(model=model, args=args)
    optimizer = trainer.create_optimizer()
    assert isinstance(optimizer, torch.optim.AdamW)
    settings = {g["name"]: (g["lr"], g["weight_decay"], g["betas"], g["eps"]) for g in optimizer.param_groups}
    assert settings == {
        "glccl_decay": (1e-4, 0.2, (0.9, 0.98), 1e-6),
        "glccl_no_decay": (1e-4, 0.0, (0.9, 0.98), 1e-6),
        "clip_decay": (pytest.approx(1e-7), 0.2, (0.9, 0.98), 1e-6),
        "clip_no_decay": (pytest.approx(1e-7), 0.0, (0.9, 0.98), 1e-6),
    }
    names = parameter_group_names(model)
    assert [len(g["params"]) for g in optimizer.param_groups] == [len(names[g["name"]]) for g in optimizer.param_groups]


def test_bad_training_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="coef_lr"):
        training_args(tmp_path, coef_lr=-1.0)
    with pytest.raises(TypeError, match="GLCCLTrainingArguments"):
        GLCCLTrainer(model=tiny_model(), args=transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True))


def test_schedule_warms_up_then_follows_a_cosine(tmp_path):
    trainer = GLCCLTrainer(model=tiny_model(), args=training_args(tmp_path, learning_rate=2e-4, coef_lr=0.01))
    total, warmup = 20, 2  # warmup_steps=0.1 of 20 steps
    trainer.create_optimizer_and_scheduler(num_training_steps=total)
    for step in range(total + 1):
        factor = step / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        lrs = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
        assert lrs["glccl_decay"] == pytest.approx(2e-4 * factor, abs=1e-15), step
        assert lrs["glccl_no_decay"] == pytest.approx(2e-4 * factor, abs=1e-15), step
        assert lrs["clip_decay"] == pytest.approx(2e-6 * factor, abs=1e-17), step
        assert lrs["clip_no_decay"] == pytest.approx(2e-6 * factor, abs=1e-17), step
        trainer.optimizer.step()  # no gradients: nothing moves, the scheduler may step
        trainer.lr_scheduler.step()


def test_logit_scale_is_clamped_after_every_step(tmp_path):
    model = tiny_model(logit_scale_max=50.0)
    trainer = GLCCLTrainer(model=model, args=training_args(tmp_path))
    optimizer = trainer.create_optimizer()
    for param in model.parameters():
        param.grad = torch.zeros_like(param)
    with torch.no_grad():
        model.logit_scale.fill_(5.0)
    optimizer.step()
    assert model.logit_scale.item() == pytest.approx(math.log(50.0))
    with torch.no_grad():
        model.logit_scale.fill_(1.0)
    optimizer.step()  # below the ceiling, no gradient and no decay: unchanged
    assert model.logit_scale.item() == 1.0


# ------------------------------------------------------------------------------------ training and evaluation


def test_a_users_own_optimizer_gets_the_logit_scale_clamp(tokenizer, tmp_path):
    words, frames = [3, 1, 5, 2], [4, 1, 2, 3]
    model = synthetic_tiny_model(tokenizer)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0) + 0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    trainer = GLCCLTrainer(
        model=model, args=training_args(tmp_path, per_device_train_batch_size=4, max_steps=1),
        train_dataset=PairDataset(tokenizer, words, frames, seed=1), data_collator=collate_pairs,
        processing_class=synthetic_processor(tokenizer), optimizers=(optimizer, scheduler),
    )  # fmt: skip
    trainer.train()
    assert model.logit_scale.item() == pytest.approx(math.log(100.0))


def test_several_gpus_in_one_process_are_refused(tokenizer, tmp_path):
    from unittest import mock

    with mock.patch.object(GLCCLTrainingArguments, "n_gpu", new_callable=mock.PropertyMock, return_value=2):
        with pytest.raises(ValueError, match="one process per GPU"):
            GLCCLTrainer(model=synthetic_tiny_model(tokenizer), args=training_args(tmp_path))


def test_trainer_trains_evaluates_and_saves_a_reloadable_checkpoint(corpus, tokenizer, tmp_path):
    model = synthetic_tiny_model(tokenizer)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0) + 0.5)  # above the ceiling: the first step must clamp it
    processor = synthetic_processor(tokenizer)
    test = load_retrieval_dataset(corpus, "test")
    args = training_args(
        tmp_path / "run",
        per_device_train_batch_size=4,
        max_steps=2,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=True,
    )
    trainer = GLCCLTrainer(
        model=model,
        args=args,
        train_dataset=load_retrieval_dataset(corpus, "train"),
        eval_dataset=test,
        data_collator=GLCCLDataCollator(processor),
        processing_class=processor,
    )
    trainer.train()
    assert model.logit_scale.item() <= math.log(100.0) + 1e-6
    assert args.metric_for_best_model == "t2v_R@1" and trainer.state.best_metric is not None
    logged = {key for entry in trainer.state.log_history for key in entry}
    assert {"loss", "learning_rate", "clip_learning_rate", "eval_t2v_R@1", "eval_v2t_MnR"} <= logged
    # The model-card callback recorded the evaluation and wrote the GLCCL card when training ended.
    recorded = trainer.model_card_callback.evaluations["eval"]
    assert recorded["t2v_R@1"] == next(
        e["eval_t2v_R@1"] for e in reversed(trainer.state.log_history) if "eval_t2v_R@1" in e
    )
    card = (tmp_path / "run" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "## Training" in card and "| Training length | 2 optimizer steps |" in card

    checkpoint = tmp_path / "run" / "checkpoint-2"
    for name in ("model.safetensors", "modeling_glccl.py", "processor_config.json", "optimizer.pt", "scheduler.pt"):
        assert (checkpoint / name).is_file(), name
    assert "AutoModel" in json.loads((checkpoint / "config.json").read_text())["auto_map"]
    # The processor travels as remote code too (AutoProcessor with trust_remote_code, no glccl_hf needed).
    assert "AutoProcessor" in json.loads((checkpoint / "processor_config.json").read_text())["auto_map"]
    assert (checkpoint / "processing_glccl.py").is_file() and (checkpoint / "video_glccl.py").is_file()

    trainer.save_model(str(tmp_path / "final"))
    reloaded = AutoModel.from_pretrained(tmp_path / "final")
    reloaded_processor = AutoProcessor.from_pretrained(tmp_path / "final")
    assert isinstance(reloaded, GLCCLModel) and isinstance(reloaded_processor, GLCCLProcessor)
    assert (reloaded_processor.max_words, reloaded_processor.max_frames, reloaded_processor.image_size) == (8, 4, 16)
    inputs = reloaded_processor(text=list(test["caption"][:3]), videos=list(test["video"][:3]))
    with torch.no_grad():
        expected = model.eval()(**inputs).logits_per_text
        torch.testing.assert_close(reloaded(**inputs).logits_per_text, expected)


def test_evaluate_reports_retrieval_metrics(corpus, tokenizer, tmp_path):
    model = synthetic_tiny_model(tokenizer)
    processor = synthetic_processor(tokenizer)
    test = load_retrieval_dataset(corpus, "test")
    trainer = GLCCLTrainer(model=model, args=training_args(tmp_path), eval_dataset=test, processing_class=processor)
    metrics = trainer.evaluate()
    expected = score_dataset(model, processor, test, progress=False).metrics()
    assert {f"eval_{key}": value for key, value in expected.items()}.items() <= metrics.items()
    assert [f"eval_{key}" for key in METRIC_KEYS] == [key for key in metrics if key[5:] in METRIC_KEYS]
    assert metrics["eval_t2v_R@1"] == trainer.state.log_history[-1]["eval_t2v_R@1"]

    by_name = trainer.evaluate({"a": test.select(range(2)), "b": test})
    assert by_name["eval_b_t2v_R@1"] == metrics["eval_t2v_R@1"] and "eval_a_v2t_MnR" in by_name
    assert "test_t2v_R@1" in trainer.evaluate(test, metric_key_prefix="test")


def test_evaluate_needs_a_split_and_the_processor(corpus, tokenizer, tmp_path):
    model = synthetic_tiny_model(tokenizer)
    with pytest.raises(ValueError, match="eval_dataset"):
        GLCCLTrainer(model=model, args=training_args(tmp_path)).evaluate()
    test = load_retrieval_dataset(corpus, "test")
    with pytest.raises(ValueError, match="processing_class"):
        GLCCLTrainer(model=model, args=training_args(tmp_path)).evaluate(test)


def test_two_processes_match_one_process_over_the_global_batch(corpus, tmp_path):
    """torchrun with two gloo processes: the Trainer's step (loss, clipped gradients, updated weights) and its
    evaluation equal one process over the same global batch."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(TESTS / "train_ddp_check.py"), "--out_dir", str(tmp_path / "ddp"), "--corpus", str(corpus),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    single = run(tmp_path / "single", corpus, world_size=1)

    assert [r["world_size"] for r in ranks] == [2, 2] and single["world_size"] == 1
    assert ranks[0]["loss"] == pytest.approx(single["loss"], rel=1e-12)
    assert ranks[0]["grads"].keys() == single["grads"].keys() == dict(single["params"]).keys()
    for name, grad in single["grads"].items():
        torch.testing.assert_close(ranks[0]["grads"][name], grad, rtol=1e-9, atol=1e-13, msg=name)
    for name, param in single["params"].items():
        torch.testing.assert_close(ranks[0]["params"][name], param, rtol=1e-9, atol=1e-13, msg=name)
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name
    for rank in ranks:
        torch.testing.assert_close(rank["scores"], single["scores"], rtol=1e-9, atol=1e-9)
        assert {k: v for k, v in rank["metrics"].items() if k[5:] in METRIC_KEYS} == {
            k: v for k, v in single["metrics"].items() if k[5:] in METRIC_KEYS
        }
    assert single["scores"].shape == (3, 3)


def test_resume_from_checkpoint_continues_exactly(tokenizer, tmp_path):
    words, frames = [3, 1, 5, 2, 6, 4, 2, 1], [4, 1, 2, 3, 4, 2, 1, 3]
    dataset = PairDataset(tokenizer, words, frames, seed=1)

    def trainer_for(model, output_dir):
        args = training_args(
            output_dir, per_device_train_batch_size=2, max_steps=4, save_strategy="steps", save_steps=2, seed=7
        )
        return GLCCLTrainer(
            model=model, args=args, train_dataset=dataset, data_collator=collate_pairs,
            processing_class=synthetic_processor(tokenizer),
        )  # fmt: skip

    straight = synthetic_tiny_model(tokenizer, seed=0)
    trainer_for(straight, tmp_path / "straight").train()
    resumed = synthetic_tiny_model(tokenizer, seed=1)  # different start: the weights must come from the checkpoint
    trainer = trainer_for(resumed, tmp_path / "resumed")
    trainer.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-2"))
    assert trainer.state.global_step == 4
    expected = dict(straight.named_parameters())
    for name, param in resumed.named_parameters():
        assert torch.equal(param, expected[name]), name


def test_training_logs_the_two_loss_terms(tokenizer, tmp_path):
    words, frames = [3, 1, 5, 2, 6, 4, 2, 1], [4, 1, 2, 3, 4, 2, 1, 3]
    model = synthetic_tiny_model(tokenizer)
    args = training_args(tmp_path, per_device_train_batch_size=4, max_steps=2, logging_steps=1, learning_rate=0.0)
    trainer = GLCCLTrainer(
        model=model, args=args, train_dataset=PairDataset(tokenizer, words, frames, seed=1),
        data_collator=collate_pairs, processing_class=synthetic_processor(tokenizer),
    )  # fmt: skip
    trainer.train()
    steps = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(steps) == 2
    weight = model.config.csc_loss_weight
    for entry in steps:
        assert entry["csc_loss"] > 0
        assert entry["loss"] == pytest.approx(entry["nce_loss"] + weight * entry["csc_loss"], rel=1e-5)


# ------------------------------------------------------------------- runs that must not silently do nothing


def _parameters(model) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def _assert_untrained(model, before: dict[str, torch.Tensor]) -> None:
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_a_run_that_would_take_no_step_is_refused_before_training(tokenizer, tmp_path):
    """A per-process batch larger than the training set (drop_last) gives zero batches; max_steps=0 nothing to do."""
    model = synthetic_tiny_model(tokenizer)
    before = _parameters(model)
    three_pairs = PairDataset(tokenizer, [3, 1, 5], [4, 1, 2], seed=1)

    def trainer_for(**overrides) -> GLCCLTrainer:
        return GLCCLTrainer(
            model=model, args=training_args(tmp_path, **overrides), train_dataset=three_pairs,
            data_collator=collate_pairs, processing_class=synthetic_processor(tokenizer),
        )  # fmt: skip

    for schedule in ({"max_steps": 5}, {"num_train_epochs": 3}):  # the first trained 0 steps and returned
        trainer = trainer_for(per_device_train_batch_size=4, gradient_accumulation_steps=2, **schedule)
        with pytest.raises(ValueError, match=r"3 rows.*global batch 8 = 4 per device x 1 process.* x 2 .*0 steps"):
            trainer.train()
        assert trainer.state.global_step == 0
        _assert_untrained(model, before)
    with pytest.raises(ValueError, match="max_steps=0"):
        trainer_for(per_device_train_batch_size=1, max_steps=0).train()
    _assert_untrained(model, before)
    with pytest.raises(ValueError, match="num_train_epochs=0"):
        trainer_for(per_device_train_batch_size=1, num_train_epochs=0).train()
    _assert_untrained(model, before)
    # Fewer micro-batches than the accumulation steps still make one optimizer step: accepted.
    trainer = trainer_for(per_device_train_batch_size=1, gradient_accumulation_steps=4, num_train_epochs=1)
    trainer.train()
    assert trainer.state.global_step == 1


def test_resume_last_skips_a_checkpoint_whose_save_was_killed(corpus, tokenizer, tmp_path, caplog):
    """A real SIGKILL in the middle of saving checkpoint-4: `resume_from_checkpoint=True` ("last") continues from
    checkpoint-2, says why checkpoint-4 was skipped, and the re-saved checkpoint-4 holds nothing of the killed save."""
    out = tmp_path / "run"
    command = [
        sys.executable, str(TESTS / "train_kill_check.py"), "--output_dir", str(out), "--corpus", str(corpus),
        "--kill_step", "4",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-3000:]
    partial = out / "checkpoint-4"
    assert (partial / "model.safetensors").is_file() and not (partial / "trainer_state.json").exists()
    (partial / "left_by_the_killed_save.txt").write_text("stale")

    trainer = kill_check_trainer(out, tokenizer, max_steps=6)
    with caplog.at_level(logging.INFO, logger="glccl_hf"):
        trainer.train(resume_from_checkpoint=True)
    assert trainer.state.global_step == 6
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    skipped = [message for message in warnings if "checkpoint-4" in message]
    assert skipped and "trainer_state.json" in skipped[0] and "checkpoint-2" in skipped[0], caplog.text
    assert json.loads((partial / "trainer_state.json").read_text())["global_step"] == 4
    assert not (partial / "left_by_the_killed_save.txt").exists()


@pytest.fixture(scope="module")
def finished_run(tokenizer, tmp_path_factory) -> Path:
    """A finished two-step run with checkpoint-2 (copy it before changing it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    kill_check_trainer(out, tokenizer, max_steps=2).train()
    return out


def test_a_truncated_checkpoint_is_named(script, finished_run, tokenizer, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    weights = out / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    trainer = kill_check_trainer(out, tokenizer, max_steps=4)
    with pytest.raises(ValueError, match=r"checkpoint-2/model.safetensors.*truncated"):
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-2"))
    # "last" finds no complete checkpoint and says why the one it saw was refused
    with pytest.raises(ValueError, match=r"no complete checkpoint.*checkpoint-2.*model.safetensors.*truncated"):
        trainer.train(resume_from_checkpoint=True)
    # the script's --model_name_or_path names the file too
    model_args = script.ModelArguments(model_name_or_path=str(out / "checkpoint-2"))
    with pytest.raises(ValueError, match=r"--model_name_or_path .*checkpoint-2/model.safetensors.*truncated"):
        script.load_model(model_args, tokenizer)
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(ValueError, match=r"model.safetensors.*(corrupt|truncated)"):
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-2"))


# ----------------------------------------------------------------------------------------- the example script


def _load_script():
    spec = importlib.util.spec_from_file_location("train_glccl", ROOT / "examples" / "train_glccl.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _load_script()


def _run_main(script, argv: list[str]) -> dict[str, float]:
    """The script's main(), with the library's log level restored afterwards (main sets it to info)."""
    verbosity = transformers.utils.logging.get_verbosity()
    try:
        return script.main(argv)
    finally:
        transformers.utils.logging.set_verbosity(verbosity)


def test_script_reads_a_json_file_and_explicit_values_beat_the_preset(script, tmp_path):
    arguments = {
        "dataset": "data/didemo",
        "dataset_preset": "didemo",
        "max_frames": 16,
        "output_dir": str(tmp_path),
        "use_cpu": True,
        "report_to": "none",
    }
    path = tmp_path / "args.json"
    path.write_text(json.dumps(arguments))
    model_args, data_args, train_args, _, explicit = script.parse_args([str(path)])
    assert explicit == set(arguments)
    assert (model_args.max_words, model_args.max_frames) == (64, 16)
    assert (train_args.num_train_epochs, train_args.per_device_train_batch_size) == (20, 64)
    assert data_args.global_batch_size == 64 and isinstance(train_args, GLCCLTrainingArguments)
    assert model_args.max_seconds == 32  # the reference samples DiDeMo's seconds 0-31 only


def test_script_command_line_preset_and_batch_split(script, tmp_path):
    base = ["--dataset", "d", "--output_dir", str(tmp_path), "--use_cpu", "--report_to", "none"]
    model_args, data_args, args, _, explicit = script.parse_args(
        [*base, "--dataset_preset", "msrvtt", "--num_train_epochs", "2", "--gradient_accumulation_steps", "2"]
    )
    assert {"dataset_preset", "num_train_epochs", "gradient_accumulation_steps"} <= explicit
    assert "max_words" not in explicit
    assert (model_args.max_words, model_args.max_frames, args.num_train_epochs) == (32, 12, 2)
    assert model_args.max_seconds is None
    assert args.per_device_train_batch_size == 64  # 128 / (1 process x 2 accumulation steps)

    # an explicit per-device batch wins over the preset's global batch
    _, data_args, args, _, _ = script.parse_args(
        [*base, "--dataset_preset", "vatex", "--per_device_train_batch_size", "8"]
    )
    assert args.per_device_train_batch_size == 8 and data_args.global_batch_size is None
    _, _, args, _, _ = script.parse_args([*base, "--global_batch_size", "6"])
    assert args.per_device_train_batch_size == 6

    with pytest.raises(ValueError, match="not divisible"):
        script.parse_args([*base, "--global_batch_size", "128", "--gradient_accumulation_steps", "3"])
    with pytest.raises(ValueError, match="contradicts"):
        script.parse_args([*base, "--global_batch_size", "128", "--per_device_train_batch_size", "8"])
    with pytest.raises(ValueError, match="dataset_preset"):
        script.parse_args([*base, "--dataset_preset", "kinetics"])
    with pytest.raises(ValueError, match="on_error"):
        script.parse_args([*base, "--on_error", "ignore"])


def test_script_help_and_abbreviated_or_negated_arguments_beat_the_preset(script, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        script.parse_args(["--help"])
    assert exited.value.code == 0
    shown = "".join(capsys.readouterr().out.split())  # whitespace dropped: argparse wraps to the terminal width
    assert "--dataset_preset" in shown and "(default:None)" in shown and "objectat" not in shown

    base = ["--dataset", "d", "--output_dir", str(tmp_path), "--use_cpu", "--report_to", "none"]
    model_args, _, args, _, explicit = script.parse_args(
        [*base, "--dataset_preset", "didemo", "--max_fr", "8", "--no_dataloader_drop_last"]
    )
    assert (model_args.max_words, model_args.max_frames, args.num_train_epochs) == (64, 8, 20)
    assert {"max_frames", "dataloader_drop_last"} <= explicit and "max_words" not in explicit
    assert args.dataloader_drop_last is False


def test_script_config_overrides(script):
    parsed = script.parse_config_overrides("csc_loss_weight=0.1,mask_padded_words=true,text_config.hidden_size=32")
    assert parsed == {"csc_loss_weight": 0.1, "mask_padded_words": True, "text_config": {"hidden_size": 32}}
    assert script.parse_config_overrides("logit_scale_max=none,max_frames=4") == {
        "logit_scale_max": None,
        "max_frames": 4,
    }
    for bad, reason in [("bogus=1", "bogus"), ("text_config.nope=1", "text_config.nope"), ("max_words", "key=value")]:
        with pytest.raises(ValueError, match=reason):
            script.parse_config_overrides(bad)


def test_script_trains_reports_and_saves_the_evaluated_model(script, corpus, tokenizer, tmp_path):
    synthetic_tiny_model(tokenizer).config.save_pretrained(tmp_path / "config")
    out = tmp_path / "out"
    argv = [
        "--dataset", str(corpus), "--config_name", str(tmp_path / "config"),
        "--tokenizer_name", str(corpus / "tokenizer"), "--do_train", "--do_predict", "--max_steps", "2",
        "--global_batch_size", "4", "--output_dir", str(out), "--use_cpu", "--report_to", "none",
        "--disable_tqdm", "true", "--save_strategy", "no",
    ]  # fmt: skip
    metrics = _run_main(script, argv)
    for name in ("model.safetensors", "config.json", "processor_config.json", "test_results.json", "README.md"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "model-index" in card
    # A fresh config (--config_name) is trained from scratch: the card says so and claims no CLIP pre-training.
    assert "Trained from scratch" in card and "started from CLIP" not in card and "initialised from CLIP" not in card
    model = AutoModel.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    reloaded = score_dataset(model, processor, load_retrieval_dataset(corpus, "test"), progress=False).metrics()
    assert {f"test_{key}": value for key, value in reloaded.items()}.items() <= metrics.items()


def test_script_refuses_inconsistent_setups(script, corpus, tmp_path):
    base = ["--dataset", str(corpus), "--output_dir", str(tmp_path), "--use_cpu", "--report_to", "none"]
    tokenizer = ["--tokenizer_name", str(corpus / "tokenizer")]
    with pytest.raises(ValueError, match="nothing to do"):
        _run_main(script, base)
    with pytest.raises(ValueError, match="--eval_split"):
        _run_main(script, [*base, "--do_train", "--eval_strategy", "epoch"])
    with pytest.raises(ValueError, match="no model"):
        _run_main(script, [*base, "--do_train", *tokenizer])
    with pytest.raises(ValueError, match="only one of"):
        _run_main(script, [*base, "--do_train", "--clip_model", "a", "--model_name_or_path", "b"])
    with pytest.raises(ValueError, match="contradicts"):
        _run_main(script, [*base, "--do_train", "--config_overrides", "max_words=8", "--max_words", "16", *tokenizer])


def _script_argv(corpus: Path, config: Path, out: Path, *extra: str) -> list[str]:
    """A tiny from-scratch run of the script on the synthetic corpus (no checkpoints unless `extra` asks)."""
    return [
        "--dataset", str(corpus), "--config_name", str(config), "--tokenizer_name", str(corpus / "tokenizer"),
        "--do_train", "--global_batch_size", "4", "--output_dir", str(out), "--use_cpu", "--report_to", "none",
        "--disable_tqdm", "true", "--save_strategy", "no", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def script_config(tokenizer, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("config")
    synthetic_tiny_model(tokenizer).config.save_pretrained(folder)
    return folder


def test_script_refuses_to_reuse_an_output_dir_unless_told_how(script, corpus, script_config, tmp_path):
    out = tmp_path / "out"
    (out / "checkpoint-4").mkdir(parents=True)  # an earlier, longer run: its last checkpoint and final model
    (out / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (out / "model.safetensors").write_bytes(b"earlier run")
    (out / "notes.txt").write_text("the user's own file")
    argv = _script_argv(corpus, script_config, out, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1")
    with pytest.raises(ValueError, match="not empty") as refused:
        _run_main(script, argv)
    message = str(refused.value)
    for part in (str(out), "checkpoint-4", "model.safetensors", "--overwrite_output_dir", "--resume_from_checkpoint"):
        assert part in message
    assert (out / "model.safetensors").read_bytes() == b"earlier run"  # nothing touched

    # --overwrite_output_dir: the earlier run's checkpoints and model go first, the user's other files stay
    _run_main(script, [*argv, "--overwrite_output_dir"])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert (out / "notes.txt").read_text() == "the user's own file"
    AutoModel.from_pretrained(out)

    # --resume_from_checkpoint: continuing the run in its own folder is the point
    argv = _script_argv(corpus, script_config, out, "--max_steps", "3", "--save_strategy", "steps", "--save_steps", "1")
    metrics = _run_main(script, [*argv, "--resume_from_checkpoint", "last"])
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 3 and "train_loss" in metrics
    with pytest.raises(ValueError, match="overwrite_output_dir.*resume_from_checkpoint"):
        _run_main(script, [*argv, "--resume_from_checkpoint", "last", "--overwrite_output_dir"])


def test_script_stops_before_a_run_without_steps(script, corpus, script_config, tmp_path):
    out = tmp_path / "out"
    rows = len(load_retrieval_dataset(corpus, "train"))
    with pytest.raises(ValueError, match=rf"{rows} rows.*global batch {4 * rows} = {4 * rows} per device.*0 steps"):
        too_large = ["--global_batch_size", str(4 * rows), "--max_steps", "2"]  # trained 0 steps, wrote a card
        _run_main(script, _script_argv(corpus, script_config, out, *too_large))
    with pytest.raises(ValueError, match="max_steps=0"):
        _run_main(script, _script_argv(corpus, script_config, tmp_path / "out2", "--max_steps", "0"))
    assert not (out / "README.md").exists() and not (tmp_path / "out2" / "README.md").exists()


def test_script_pushes_the_final_card(script, corpus, script_config, tmp_path):
    """--push_to_hub (Hub mocked as in cards/test_hub.py): the last upload carries the card with the test metrics."""
    from unittest import mock

    from huggingface_hub import ModelCard

    uploads: list[dict] = []

    def upload_folder(*, folder_path: str, **kwargs) -> str:
        uploads.append({"readme": (Path(folder_path) / "README.md").read_text(encoding="utf-8"), **kwargs})
        return "commit-info"

    api = mock.MagicMock()
    api.create_repo.return_value.repo_id = "user/glccl-tiny"
    api.upload_folder.side_effect = upload_folder
    out = tmp_path / "out"
    argv = _script_argv(
        corpus, script_config, out, "--max_steps", "1", "--do_predict", "--push_to_hub",
        "--hub_model_id", "user/glccl-tiny",
    )  # fmt: skip
    with mock.patch("transformers.trainer.hf_api", return_value=api):
        metrics = _run_main(script, argv)
    assert uploads, "nothing was pushed"
    final = uploads[-1]
    assert final["readme"] == (out / "README.md").read_text(encoding="utf-8")
    results = {(r.dataset_split, r.metric_name): r.metric_value for r in ModelCard(final["readme"]).data.eval_results}
    assert results[("test", "t2v R@1")] == pytest.approx(metrics["test_t2v_R@1"], abs=0.05)
    assert results[("test", "v2t R@1")] == pytest.approx(metrics["test_v2t_R@1"], abs=0.05)


def test_script_frame_cache_gives_the_same_run(script, corpus, tokenizer, tmp_path, monkeypatch):
    synthetic_tiny_model(tokenizer).config.save_pretrained(tmp_path / "config")
    cache = tmp_path / "frames"

    def run(name: str, *extra: str) -> dict[str, float]:
        argv = [
            "--dataset", str(corpus), "--config_name", str(tmp_path / "config"),
            "--tokenizer_name", str(corpus / "tokenizer"), "--do_train", "--do_predict", "--max_steps", "2",
            "--global_batch_size", "4", "--output_dir", str(tmp_path / name), "--use_cpu", "--report_to", "none",
            "--disable_tqdm", "true", "--save_strategy", "no", *extra,
        ]  # fmt: skip
        metrics = _run_main(script, argv)
        return {key: value for key, value in metrics.items() if not key.endswith(("_runtime", "_per_second"))}

    decoded = run("decoded")
    reads = []
    read_frames = glccl_hf.modeling.processing_glccl.read_frames
    monkeypatch.setattr(
        glccl_hf.modeling.processing_glccl,
        "read_frames",
        lambda source, *a, **k: reads.append(source) or read_frames(source, *a, **k),
    )
    assert run("cached", "--frame_cache", str(cache)) == decoded
    train, test = (set(load_retrieval_dataset(corpus, split)["video"]) for split in ("train", "test"))
    assert len(FrameCache(cache)) == len(train | test)
    assert sorted(reads) == sorted(train | test)  # each video decoded once, into the cache; every batch read from it
