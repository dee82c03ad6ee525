"""Training GLCCL with the Hugging Face Trainer: the reference's optimisation recipe and retrieval evaluation.

The reference recipe: AdamW (betas 0.9 / 0.98, eps 1e-6), decoupled weight decay 0.2 except biases,
LayerNorm parameters and the logit scale; CLIP parameters at `learning_rate * coef_lr` (1e-4 * 1e-3), GLCCL's own
parameters (temporal module, score matrices) at `learning_rate`; 10% linear warmup then cosine; gradient-norm clip
1.0; the logit scale clamped to `log(logit_scale_max)` after every optimizer step (docs/method.md, section 6,
states the recipe and the reference's quirks).

`GLCCLTrainingArguments` carries these as defaults; `GLCCLTrainer` builds the parameter groups, clamps the logit
scale, evaluates by retrieval (R@K / MdR / MnR, the work shared by the processes: `glccl_hf.evaluation.distributed`)
and fills the GLCCL model card as it trains (`glccl_hf.trainer_card`). Its `train` refuses a run that would take no
optimizer step and resumes from complete checkpoints only (`glccl_hf.checkpoints`).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, TrainOutput, has_length, speed_metrics

from .checkpoints import check_checkpoint, newest_complete_checkpoint
from .evaluation.distributed import score_dataset_across_processes
from .metrics import retrieval_metrics
from .trainer_card import ModelCardCallback, write_trainer_model_card

logger = logging.getLogger(__name__)

# Parameters CLIP brings (CLIPModel's attribute names): trained at learning_rate * coef_lr, as the reference trains
# everything under its `clip.` module, logit scale included.
CLIP_PARAMETER_PREFIXES: tuple[str, ...] = (
    "text_model.",
    "vision_model.",
    "text_projection.",
    "visual_projection.",
    "logit_scale",
)
# Optimizer param-group names, in the order the optimizer holds them (GLCCL's own parameters first, so the Trainer's
# logged `learning_rate`, read from the first group, is the main learning rate).
PARAMETER_GROUPS: tuple[str, ...] = ("glccl_decay", "glccl_no_decay", "clip_decay", "clip_no_decay")
# Model selection when `load_best_model_at_end` is on and no metric is named.
DEFAULT_SELECTION_METRIC = "t2v_R@1"


@dataclass
class GLCCLTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the GLCCL reference's optimisation defaults and the CLIP learning-rate factor.

    Changed defaults: learning_rate 1e-4, weight_decay 0.2, adam_beta2 0.98, adam_epsilon 1e-6, warmup_steps 0.1
    (a float below 1 is a fraction of the training steps), lr_scheduler_type "cosine", max_grad_norm 1.0,
    remove_unused_columns False (the collator needs the raw rows), dataloader_drop_last True (every contrastive
    batch, and every process's share of it, is full), ddp_find_unused_parameters False (every parameter takes part
    in the loss; DDP would otherwise traverse the graph for unused ones at every step). With
    `load_best_model_at_end` and no `metric_for_best_model`, checkpoints are selected by `t2v_R@1` (there is no eval
    loss); `greater_is_better` defaults to False for the rank metrics MdR / MnR.
    """

    coef_lr: float = field(
        default=1e-3,
        metadata={"help": "CLIP parameters train at learning_rate * coef_lr (the reference: 1e-3); 0 freezes them."},
    )
    learning_rate: float = field(default=1e-4, metadata={"help": "Learning rate of GLCCL's own parameters."})
    weight_decay: float = field(
        default=0.2, metadata={"help": "Decoupled weight decay, except biases, LayerNorm and the logit scale."}
    )
    adam_beta2: float = field(default=0.98, metadata={"help": "Beta2 of AdamW."})
    adam_epsilon: float = field(default=1e-6, metadata={"help": "Epsilon of AdamW."})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "Linear warmup: steps (>= 1) or a fraction of the training steps (< 1)."}
    )
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule after the warmup."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clip."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep every dataset column: the GLCCL collator reads the raw rows."}
    )
    dataloader_drop_last: bool = field(
        default=True, metadata={"help": "Drop the last incomplete batch: the contrastive loss wants full batches."}
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={"help": "Every parameter takes part in the loss: DDP skips the search for unused ones."},
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.coef_lr, (int, float)) and math.isfinite(self.coef_lr) and self.coef_lr >= 0):
            raise ValueError(f"coef_lr must be a finite number >= 0, got {self.coef_lr!r}")
        # GLCCL evaluates by retrieval and reports no eval loss, the Trainer's default model-selection metric.
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = DEFAULT_SELECTION_METRIC
        # Ranks are better when lower; the Trainer would assume higher for every metric not ending in "loss".
        if self.greater_is_better is None and str(self.metric_for_best_model).endswith(("MdR", "MnR")):
            self.greater_is_better = False
        super().__post_init__()


def is_clip_parameter(name: str) -> bool:
    """Whether parameter `name` (as `GLCCLModel.named_parameters()` gives it) belongs to the CLIP backbone."""
    return name.startswith(CLIP_PARAMETER_PREFIXES)


def no_decay_parameter_names(model: nn.Module) -> set[str]:
    """Parameters without weight decay: every bias, every LayerNorm parameter and the logit scale.

    LayerNorm parameters are found by module type, so CLIP's `pre_layrnorm`, `layer_norm1`, `final_layer_norm` ...
    are all covered whatever their name. (The reference means the same with its `['bias', 'LayerNorm.bias',
    'LayerNorm.weight']` filter, but OpenAI CLIP's `ln_*` names slip through it, so it decays LayerNorm weights;
    that is not reproduced. Its logit scale is decayed too, at a negligible 1e-7 learning rate; a decayed log
    temperature is pulled towards a scale of 1, so it is exempt here.)
    """
    names = set()
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for param_name, _ in module.named_parameters(recurse=False):
            if isinstance(module, nn.LayerNorm) or param_name == "bias" or param_name == "logit_scale":
                names.add(prefix + param_name)
    return names


def parameter_group_names(model: nn.Module) -> dict[str, list[str]]:
    """Which trainable parameter goes to which group of `PARAMETER_GROUPS`: (GLCCL's own | CLIP) x (decay | none)."""
    no_decay = no_decay_parameter_names(model)
    names: dict[str, list[str]] = {group: [] for group in PARAMETER_GROUPS}
    for name, param in model.named_parameters():
        if param.requires_grad:
            owner = "clip" if is_clip_parameter(name) else "glccl"
            names[f"{owner}_{'no_decay' if name in no_decay else 'decay'}"].append(name)
    return names


def glccl_parameter_groups(
    model: nn.Module, learning_rate: float, coef_lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """The optimizer's parameter groups (see `parameter_group_names`), trainable parameters only.

    Each group carries its `name`, `lr`, `weight_decay` and `lr_scale` (1, or `coef_lr` for CLIP's groups: its
    learning rate relative to `learning_rate`). Empty groups are left out.
    """
    parameters = dict(model.named_parameters())
    groups = []
    for group_name, names in parameter_group_names(model).items():
        if not names:
            continue
        lr_scale = coef_lr if group_name.startswith("clip") else 1.0
        groups.append(
            {
                "params": [parameters[name] for name in names],
                "name": group_name,
                "lr": learning_rate * lr_scale,
                "lr_scale": lr_scale,
                "weight_decay": 0.0 if group_name.endswith("no_decay") else weight_decay,
            }
        )
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


def optimizer_steps_per_epoch(
    rows: int, per_device_batch: int, processes: int, accumulation_steps: int, drop_last: bool
) -> int:
    """Optimizer steps in one epoch over `rows` training rows.

    Each process takes `per_device_batch` rows per micro-batch; with `drop_last` an incomplete global micro-batch
    is dropped. Trainer steps the optimizer every `accumulation_steps` micro-batches and once more on a remainder.
    """
    rows_per_micro_batch = per_device_batch * processes
    micro_batches = rows // rows_per_micro_batch if drop_last else -(-rows // rows_per_micro_batch)
    return -(-micro_batches // accumulation_steps)


class GLCCLTrainer(Trainer):
    """`Trainer` for GLCCL: the reference's parameter groups and logit-scale clamp, and retrieval evaluation.

    Give it `processing_class=` a `GLCCLProcessor` (saved with every checkpoint and used to decode the evaluation
    videos) and `GLCCLTrainingArguments`. The train dataset's rows go through the data collator (e.g.
    `GLCCLDataCollator`); the eval dataset is a retrieval split (`video`, `caption`, `video_index`,
    `caption_index` columns, as `load_retrieval_dataset` returns) that `evaluate()` scores text-to-video and
    video-to-text. Its `model_card_callback` (`glccl_hf.trainer_card.ModelCardCallback`) records every evaluation
    and writes the GLCCL model card when training ends; `create_model_card` (which `push_to_hub` calls) writes it.
    """

    # The model's loss is a mean over the batch: the Trainer divides it by the gradient-accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.args.n_gpu > 1:
            # nn.DataParallel would split every contrastive batch into per-GPU problems with fewer negatives.
            raise ValueError(
                f"{self.args.n_gpu} GPUs visible to one process: launch one process per GPU (torchrun / accelerate "
                "launch) so the contrastive loss sees the global batch, or set CUDA_VISIBLE_DEVICES to one GPU"
            )
        # Records every evaluation's retrieval metrics for the model card, and writes the card when training ends.
        self.model_card_callback = ModelCardCallback()
        self.add_callback(self.model_card_callback)
        # Running sums of the loss's two terms since the last log, reported beside `loss`.
        self._loss_terms: dict[str, float | torch.Tensor] = {"nce_loss": 0.0, "csc_loss": 0.0}
        self._loss_terms_count = 0
        if not isinstance(self.args, GLCCLTrainingArguments):
            raise TypeError(
                f"args must be GLCCLTrainingArguments (coef_lr and the GLCCL defaults), got {type(self.args).__name__}"
            )
        if self.args.gradient_accumulation_steps > 1:
            # Each micro-batch is its own contrastive problem: accumulation does not enlarge the set of negatives.
            logger.warning(
                "gradient_accumulation_steps=%d: the contrastive loss sees per-process batch x processes = %d pairs "
                "per micro-batch, not the accumulated batch",
                self.args.gradient_accumulation_steps,
                self.args.per_device_train_batch_size * self.args.world_size,
            )

    # ------------------------------------------------------------------------------------------------- training

    def train(
        self,
        resume_from_checkpoint: str | bool | None = None,
        trial: Any = None,
        ignore_keys_for_eval: list[str] | None = None,
    ) -> TrainOutput:
        """`Trainer.train`, refusing a run that would take no step, and resuming from complete checkpoints only.

        `resume_from_checkpoint=True` resumes from the newest complete checkpoint in `output_dir`: one whose save
        was interrupted is skipped, with a warning saying why (`glccl_hf.checkpoints`). A checkpoint path that
        cannot be resumed from is refused with the reason (a truncated weights file is named).
        """
        self.check_training_steps()
        if resume_from_checkpoint is True:
            resume_from_checkpoint = str(newest_complete_checkpoint(self.args.output_dir))
        elif resume_from_checkpoint not in (None, False):
            check_checkpoint(resume_from_checkpoint)
        return super().train(
            resume_from_checkpoint=resume_from_checkpoint, trial=trial, ignore_keys_for_eval=ignore_keys_for_eval
        )

    def check_training_steps(self) -> None:
        """Refuse, before anything trains, a schedule or a training set that gives no optimizer step.

        Trainer would otherwise return at once from a training set smaller than one batch (drop_last) as if it had
        trained, and `max_steps=0` still takes a step.
        """
        args = self.args
        if args.max_steps == 0:
            raise ValueError("max_steps=0 trains nothing: give max_steps >= 1, or -1 to train num_train_epochs epochs")
        if args.max_steps < 0 and args.num_train_epochs <= 0:
            raise ValueError(
                f"num_train_epochs={args.num_train_epochs} (and max_steps={args.max_steps}) trains nothing: give "
                "num_train_epochs > 0 or max_steps >= 1"
            )
        if self.train_dataset is None or not has_length(self.train_dataset):
            return  # Trainer refuses a missing set; an iterable one needs max_steps, which Trainer checks
        rows, per_device = len(self.train_dataset), args.per_device_train_batch_size
        processes, accumulation = args.world_size, args.gradient_accumulation_steps
        steps = optimizer_steps_per_epoch(rows, per_device, processes, accumulation, args.dataloader_drop_last)
        if steps == 0:
            dropped = " (dataloader_drop_last drops an incomplete batch)" if args.dataloader_drop_last else ""
            raise ValueError(
                f"the training set has {rows} rows, fewer than one micro-batch of {per_device * processes}: global "
                f"batch {per_device * processes * accumulation} = {per_device} per device x {processes} process(es) "
                f"x {accumulation} gradient accumulation step(s), so an epoch has 0 steps{dropped}. Lower "
                "per_device_train_batch_size (the script's --global_batch_size) or use more training rows"
            )

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        """Trainer's checkpoint save, into a fresh folder: a folder of the same step that an earlier save left (an
        interrupted one, or the run this one resumed) is deleted first, so none of its files survive beside the
        new ones and `trainer_state.json`, written last, marks a finished save."""
        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        if self.args.should_save and os.path.isdir(folder):
            logger.warning("replacing %s, left by an earlier save", folder)
            shutil.rmtree(folder)
        self.accelerator.wait_for_everyone()  # no process writes its RNG state into the folder before it is gone
        super()._save_checkpoint(model, trial)

    # ------------------------------------------------------------------------------------------------ optimizer

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW (or `args.optim`) over the four GLCCL parameter groups, clamping the logit scale after each step."""
        opt_model = self.model if model is None else model
        if self.optimizer is not None:
            # A user's own optimizer (`optimizers=`) gets the reference's logit-scale clamp too, once.
            if not getattr(self.optimizer, "_glccl_logit_scale_clamp", False):
                self.optimizer.register_step_post_hook(self._logit_scale_clamp_hook(opt_model))
                self.optimizer._glccl_logit_scale_clamp = True
            return self.optimizer
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        if any(key in optimizer_kwargs for key in ("params", "model", "optimizer_dict")):
            # GaLore, LOMO, layer-wise optimizers build their own groups and would drop GLCCL's.
            raise ValueError(f"optim={self.args.optim!r} builds its own parameter groups; GLCCLTrainer needs its own")
        groups = glccl_parameter_groups(opt_model, self.args.learning_rate, self.args.coef_lr, self.args.weight_decay)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        self.optimizer.register_step_post_hook(self._logit_scale_clamp_hook(opt_model))
        self.optimizer._glccl_logit_scale_clamp = True
        self._log_parameter_groups()
        return self.optimizer

    @staticmethod
    def _logit_scale_clamp_hook(model: nn.Module):
        """A post-step hook keeping `exp(logit_scale) <= logit_scale_max`, as the reference clamps after each step."""
        unwrapped = getattr(model, "module", model)
        logit_scale = unwrapped.logit_scale
        ceiling = math.log(unwrapped.config.logit_scale_max)

        def clamp(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            with torch.no_grad():
                logit_scale.clamp_(max=ceiling)

        return clamp

    def _log_parameter_groups(self) -> None:
        for group in self.optimizer.param_groups:
            logger.info(
                "param group %s: %d tensors, %d parameters, lr %.3g, weight_decay %g",
                group["name"],
                len(group["params"]),
                sum(p.numel() for p in group["params"]),
                group["lr"],
                group["weight_decay"],
            )

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """The model's loss; its InfoNCE and CSC terms are recorded so that `log` reports them beside `loss`."""
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training and outputs["nce_loss"] is not None:
            for key in self._loss_terms:  # detached tensors: no device sync until the terms are logged
                self._loss_terms[key] = self._loss_terms[key] + outputs[key].detach()
            self._loss_terms_count += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Log the CLIP learning rate beside the main one (`learning_rate` is read from the first param group), and
        the mean InfoNCE and CSC terms since the last log beside the training `loss`."""
        if "loss" in logs and self._loss_terms_count:
            terms = {key: float(total) / self._loss_terms_count for key, total in self._loss_terms.items()}
            logs = {**logs, **terms}
            self._loss_terms = dict.fromkeys(self._loss_terms, 0.0)
            self._loss_terms_count = 0
        if "learning_rate" in logs and self.optimizer is not None:
            first_scale = self.optimizer.param_groups[0].get("lr_scale", 1.0)
            if first_scale > 0:
                base = logs["learning_rate"] / first_scale
                logs = {**logs, "learning_rate": base, "clip_learning_rate": base * self.args.coef_lr}
        super().log(logs, start_time)

    def create_model_card(self, **kwargs: Any) -> None:
        """Write the GLCCL model card that `model_card_callback` filled (`glccl_hf.trainer_card`) instead of the
        Trainer's generic one, so `push_to_hub` uploads it. Takes the Trainer's arguments (`model_name`,
        `finetuned_from`, ...) and those of `trainer_model_card` (`metrics`, `eval_dataset`, `base_model`, ...)."""
        write_trainer_model_card(self, **kwargs)

    # ----------------------------------------------------------------------------------------------- evaluation

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Retrieval metrics on a split: `{prefix}_t2v_R@1` ... `{prefix}_v2t_MnR`, logged and returned.

        Every caption and video is encoded once, each process taking a shard (`retrieval_scores`); every process
        ranks the same full score matrix, so the metrics are identical on all of them and equal to one process's.

        Args:
            eval_dataset: a retrieval split (`video`, `caption`, `video_index`, `caption_index` columns), or a dict
                of them (metrics prefixed `{prefix}_{name}_`); default `self.eval_dataset`.
            ignore_keys: unused (the Trainer's signature; no model outputs are collected).
            metric_key_prefix: prefix of the metric names.
        """
        override = eval_dataset is not None
        eval_dataset = eval_dataset if override else self.eval_dataset
        if eval_dataset is None:
            raise ValueError("evaluate() needs an eval_dataset (a retrieval split) here or in the Trainer")
        if isinstance(eval_dataset, dict):
            metrics = {}
            for name, dataset in eval_dataset.items():
                metrics.update(self.evaluate(dataset, ignore_keys, f"{metric_key_prefix}_{name}"))
            return metrics
        self._memory_tracker.start()
        start_time = time.time()
        scores, text_to_video = self.retrieval_scores(eval_dataset)
        metrics = retrieval_metrics(scores, text_to_video)
        metrics = {f"{metric_key_prefix}_{key}": value for key, value in metrics.items()}
        metrics.update(speed_metrics(metric_key_prefix, start_time, num_samples=len(text_to_video)))
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        self._memory_tracker.stop_and_update_metrics(metrics)
        return metrics

    def retrieval_scores(self, dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused logits [texts, videos] of a retrieval split (CPU) and each text's true video column,
        computed across all processes (`glccl_hf.evaluation.distributed`)."""
        if self.processing_class is None:
            raise ValueError("GLCCLTrainer needs processing_class=GLCCLProcessor to encode the evaluation split")
        return score_dataset_across_processes(
            self.accelerator.unwrap_model(self.model),
            self.processing_class,
            dataset,
            self.accelerator,
            batch_size=self.args.per_device_eval_batch_size,
            device=self.args.device,
            num_workers=self.args.dataloader_num_workers,
            progress=self.is_local_process_zero() and not self.args.disable_tqdm,
            encoding_context=self.autocast_smart_context_manager(),
        )
