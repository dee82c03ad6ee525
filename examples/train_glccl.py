#!/usr/bin/env python
"""Train (and evaluate) GLCCL for text-video retrieval with the Hugging Face Trainer.

One script for one CPU, one GPU or several GPUs (`torchrun --nproc_per_node N` or `accelerate launch`); the
contrastive loss always sees the global batch (the model gathers features across processes).

    # MSR-VTT from CLIP ViT-B/32, the paper's settings (32 words, 12 frames, global batch 128, 5 epochs)
    torchrun --nproc_per_node 4 examples/train_glccl.py --clip_model openai/clip-vit-base-patch32 \
        --dataset data/msrvtt --dataset_preset msrvtt --do_train --do_predict --output_dir glccl-msrvtt

    # every argument from one JSON file
    python examples/train_glccl.py args.json

Where the model comes from (one of): `--clip_model` (a CLIPModel folder or Hub id), `--model_name_or_path` (a GLCCL
checkpoint), or a fresh configuration (`--config_name` and/or `--config_overrides "k=v,text_config.k=v"`).
`--dataset_preset msrvtt|didemo|vatex` sets the paper's words, frames, global batch and epochs; every value given
explicitly (command line or JSON) wins over the preset. `--global_batch_size` (or the preset's) is split into
`per_device_train_batch_size = global / (processes x gradient_accumulation_steps)`; the effective values are logged.

Evaluation: `--eval_split val --eval_strategy epoch` evaluates retrieval during training (`eval_t2v_R@1` ...);
`--load_best_model_at_end` then selects by `t2v_R@1` unless `--metric_for_best_model` says otherwise. `--do_eval`
evaluates the eval split after training, `--do_predict` reports the test split (`--test_split`, default "test"),
which is never used for model selection unless you name it as `--eval_split`. The final model, its code and the
processor are saved in `--output_dir`, with a model card (README.md) listing the reported metrics; with
`--push_to_hub` that final card is the one uploaded. Resuming, the output folder and the frame cache
(`--frame_cache DIR`: each video decoded once, the same inputs exactly): docs/training.md and docs/datasets.md.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import datasets
import transformers
from glccl_hf.modeling.checks import positive_int
from transformers import AutoTokenizer, CLIPTextConfig, CLIPVisionConfig, HfArgumentParser, set_seed

from glccl_hf import GLCCLConfig, GLCCLModel, GLCCLProcessor
from glccl_hf.checkpoints import check_model_weights, check_output_dir, clear_previous_run
from glccl_hf.data import CACHE_FORMATS, GLCCLDataCollator, cache_frames, load_retrieval_dataset
from glccl_hf.training import GLCCLTrainer, GLCCLTrainingArguments

logger = logging.getLogger(__name__)


# The paper's per-dataset settings, as the reference runs them: each key is the argument it defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "msrvtt": {"max_words": 32, "max_frames": 12, "global_batch_size": 128, "num_train_epochs": 5},
    # max_seconds: the reference samples DiDeMo's seconds 0-31 only
    "didemo": {"max_words": 64, "max_frames": 64, "global_batch_size": 64, "num_train_epochs": 20, "max_seconds": 32},
    "vatex": {"max_words": 32, "max_frames": 12, "global_batch_size": 128, "num_train_epochs": 5},
}


@dataclass
class ModelArguments:
    clip_model: str | None = field(
        default=None, metadata={"help": "Start from this CLIPModel (folder or Hub id): CLIP weights + GLCCL init."}
    )
    model_name_or_path: str | None = field(default=None, metadata={"help": "Start from this GLCCL checkpoint."})
    config_name: str | None = field(
        default=None, metadata={"help": "A GLCCL config file or folder for a freshly initialised model."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Config fields as 'k=v,k=v' (GLCCLConfig fields; fresh models also 'text_config.k=v' and "
            "'vision_config.k=v'), e.g. 'csc_loss_weight=0.1,mask_padded_words=true'."
        },
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "CLIP tokenizer (folder or Hub id); default: from the checkpoint or CLIP."}
    )
    max_words: int | None = field(default=None, metadata={"help": "Text length Nw (SOT and EOT included)."})
    max_frames: int | None = field(default=None, metadata={"help": "Frames per video Nf."})
    image_size: int | None = field(
        default=None, metadata={"help": "Frame size; must match the vision encoder (sets it for fresh models)."}
    )
    sample_fps: float | None = field(default=None, metadata={"help": "Candidate frames per second (default 1)."})
    max_seconds: float | None = field(
        default=None, metadata={"help": "Sample frames from the first N seconds only (the DiDeMo preset: 32)."}
    )


@dataclass
class DataArguments:
    dataset: str = field(metadata={"help": "Dataset folder or Hub id, as glccl_hf.data.load_retrieval_dataset takes."})
    dataset_preset: str | None = field(
        default=None, metadata={"help": f"The paper's settings for one dataset: one of {sorted(PRESETS)}."}
    )
    train_split: str = field(default="train", metadata={"help": "Split trained on (--do_train)."})
    eval_split: str | None = field(
        default=None,
        metadata={"help": "Validation split for evaluation during training, model selection and --do_eval."},
    )
    test_split: str = field(default="test", metadata={"help": "Split reported by --do_predict (after training)."})
    videos_dir: str | None = field(default=None, metadata={"help": "Folder of the video files (layout default)."})
    missing_videos: str = field(
        default="error", metadata={"help": "'error': a missing video file fails the load; 'drop': its rows go."}
    )
    on_error: str = field(
        default="raise", metadata={"help": "A training video that fails to decode: 'raise' or 'skip' (logged)."}
    )
    global_batch_size: int | None = field(
        default=None,
        metadata={"help": "Contrastive batch over all processes; sets per_device_train_batch_size."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training rows."})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep the first N rows of the eval and test splits."}
    )
    frame_cache: str | None = field(
        default=None,
        metadata={"help": "Decode each video once into this frame cache folder (built or completed first), then "
                  "train and evaluate from it (glccl_hf.data.cache_frames)."},
    )  # fmt: skip
    frame_cache_format: str = field(
        default="raw", metadata={"help": "'raw' (exact uint8, default) or 'jpeg' (smaller, lossy)."}
    )
    frame_cache_num_proc: int | None = field(default=None, metadata={"help": "Processes decoding into the cache."})

    def __post_init__(self) -> None:
        if self.dataset_preset is not None:
            preset_defaults(self.dataset_preset)  # an unknown name is refused
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"--on_error {self.on_error!r}: expected 'raise' or 'skip'")
        if self.frame_cache_format not in CACHE_FORMATS:
            raise ValueError(f"--frame_cache_format {self.frame_cache_format!r}: expected one of {CACHE_FORMATS}")
        for name in ("global_batch_size", "max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None:
                positive_int(f"--{name}", getattr(self, name))


@dataclass
class OutputArguments:
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into a non-empty --output_dir, deleting the earlier run's checkpoints and model first "
            "(transformers 5 dropped this TrainingArguments field; transformers' own examples refused such a folder)."
        },
    )


ARGUMENT_CLASSES = (ModelArguments, DataArguments, GLCCLTrainingArguments, OutputArguments)
_NOT_GIVEN = object()  # a default no command line can produce (not a string: argparse would convert one)


# ------------------------------------------------------------------------------------------------- arguments


def preset_defaults(name: str | None) -> dict[str, Any]:
    """The argument defaults a `--dataset_preset` sets ({} for none)."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise ValueError(f"--dataset_preset {name!r}: expected one of {sorted(PRESETS)}")
    return dict(PRESETS[name])


def given_arguments(argv: list[str]) -> dict[str, Any]:
    """The arguments typed on a command line the full parser accepted, by name (abbreviations and `--no_x` forms
    resolved by argparse): the command line parsed again with a default that no typed value can equal."""
    parser = HfArgumentParser(ARGUMENT_CLASSES, add_help=False)
    parser.set_defaults(**{f.name: _NOT_GIVEN for cls in ARGUMENT_CLASSES for f in fields(cls)})
    namespace, _ = parser.parse_known_args(argv)
    return {name: value for name, value in vars(namespace).items() if value is not _NOT_GIVEN}


def parse_args(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, GLCCLTrainingArguments, OutputArguments, set[str]]:
    """Parse the command line, or one JSON file of arguments, with the dataset preset as defaults.

    `--dataset_preset` is read first; the preset's values then become the parser's defaults, so every argument
    given explicitly wins over them. Returns the four argument dataclasses and the names of the arguments given
    explicitly.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    if len(argv) == 1 and argv[0].endswith(".json"):
        given = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        parsed = parser.parse_dict({**preset_defaults(given.get("dataset_preset")), **given})
    else:
        first, _ = parser.parse_known_args(argv)  # --help, a missing --dataset or a bad value stop here
        parser.set_defaults(**preset_defaults(first.dataset_preset))
        parsed = parser.parse_args_into_dataclasses(args=argv)
        given = given_arguments(argv)
    model_args, data_args, training_args, output_args = parsed
    split_global_batch(data_args, training_args, set(given))
    return model_args, data_args, training_args, output_args, set(given)


def split_global_batch(data_args: DataArguments, training_args: GLCCLTrainingArguments, given: set[str]) -> None:
    """per_device_train_batch_size = global_batch_size / (processes x gradient accumulation), when a global batch
    is set; an explicit per_device_train_batch_size wins over a preset's global batch."""
    if data_args.global_batch_size is None:
        return
    per_device_given = "per_device_train_batch_size" in given
    if per_device_given and "global_batch_size" not in given:
        data_args.global_batch_size = None  # the preset's global batch yields to the explicit per-device batch
        return
    shares = training_args.world_size * training_args.gradient_accumulation_steps
    if data_args.global_batch_size % shares:
        raise ValueError(
            f"--global_batch_size {data_args.global_batch_size} is not divisible by processes "
            f"({training_args.world_size}) x gradient_accumulation_steps ({training_args.gradient_accumulation_steps})"
        )
    per_device = data_args.global_batch_size // shares
    if per_device_given and training_args.per_device_train_batch_size != per_device:
        raise ValueError(
            f"--per_device_train_batch_size {training_args.per_device_train_batch_size} contradicts "
            f"--global_batch_size {data_args.global_batch_size} ({per_device} per process for {shares} shares)"
        )
    training_args.per_device_train_batch_size = per_device


def check_arguments(
    model_args: ModelArguments, data_args: DataArguments, training_args: GLCCLTrainingArguments
) -> None:
    """Refuse, before anything loads, a run with nothing to do, no validation split to evaluate or no model."""
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise ValueError("nothing to do: give --do_train, --do_eval and/or --do_predict")
    if (training_args.eval_strategy != "no" or training_args.do_eval) and data_args.eval_split is None:
        raise ValueError(
            "evaluation during training or --do_eval needs --eval_split (a validation split; the test split is used "
            "for model selection only if you name it here)"
        )
    if data_args.eval_split is not None and data_args.eval_split == data_args.test_split:
        logger.warning(
            "eval_split is the test split %r: checkpoints selected on it report optimistic test numbers",
            data_args.test_split,
        )
    if data_args.on_error == "skip" and training_args.world_size > 1:
        logger.warning(
            "on_error='skip' with %d processes: a skipped video makes the per-process batches unequal and the "
            "feature gather stops the run; prefer --missing_videos drop and clean videos",
            training_args.world_size,
        )
    check_model_source(model_args)


# ------------------------------------------------------------------------------------------------- the model


def parse_config_overrides(text: str | None) -> dict[str, Any]:
    """'k=v,text_config.k=v' -> {"k": v, "text_config": {"k": v}}, values typed (bool, int, float, None, str).

    Keys are checked against GLCCLConfig's typed fields and the CLIP text / vision config attributes.
    """
    allowed = set(inspect.get_annotations(GLCCLConfig))  # GLCCLConfig's own typed fields, not PreTrainedConfig's
    sub_configs = {"text_config": CLIPTextConfig(), "vision_config": CLIPVisionConfig()}
    overrides: dict[str, Any] = {}
    for item in text.split(",") if text else ():
        key, sep, raw = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ValueError(f"--config_overrides: {item!r} is not of the form key=value")
        head, dot, tail = key.partition(".")
        if dot and (head not in sub_configs or not hasattr(sub_configs[head], tail)):
            raise ValueError(f"--config_overrides: unknown field {key!r}")
        if not dot and (key in sub_configs or key not in allowed):
            raise ValueError(
                f"--config_overrides: unknown GLCCLConfig field {key!r} (fields: {sorted(allowed - set(sub_configs))})"
            )
        target = overrides.setdefault(head, {}) if dot else overrides
        target[tail if dot else key] = typed_value(raw)
    return overrides


def typed_value(raw: str) -> Any:
    """'true' / 'false' -> bool, 'none' / 'null' -> None, then int, float, or the string itself."""
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def check_model_source(model_args: ModelArguments) -> None:
    """Refuse no model, or contradictory ones: CLIP, a GLCCL checkpoint or a fresh config, exactly one."""
    given = [name for name in ("clip_model", "model_name_or_path") if getattr(model_args, name)]
    if len(given) > 1:
        raise ValueError("give only one of --clip_model and --model_name_or_path")
    if given and model_args.config_name:
        raise ValueError(f"--config_name is for a fresh model; it cannot be combined with --{given[0]}")
    if not (given or model_args.config_name or model_args.config_overrides):
        raise ValueError(
            "no model: give --clip_model (a CLIP checkpoint), --model_name_or_path (a GLCCL checkpoint) or "
            "--config_name / --config_overrides (a fresh model)"
        )


def model_overrides(model_args: ModelArguments) -> dict[str, Any]:
    """`--config_overrides` with `--max_words` / `--max_frames` (or the preset's) merged in; a conflict is an error."""
    overrides = parse_config_overrides(model_args.config_overrides)
    for name in ("max_words", "max_frames"):
        value = getattr(model_args, name)
        if value is not None and overrides.setdefault(name, value) != value:
            raise ValueError(f"--{name} {value} contradicts --config_overrides {name}={overrides[name]}")
    return overrides


def load_model(model_args: ModelArguments, tokenizer: Any) -> GLCCLModel:
    """The model to train: from CLIP, from a GLCCL checkpoint, or freshly initialised from a config."""
    check_model_source(model_args)
    overrides = model_overrides(model_args)
    pretrained = model_args.clip_model or model_args.model_name_or_path
    if pretrained and any(key in overrides for key in ("text_config", "vision_config")):
        raise ValueError("text_config./vision_config. overrides are for fresh models (--config_name / defaults)")
    if model_args.clip_model:
        model = GLCCLModel.from_clip_pretrained(model_args.clip_model, **overrides)
    elif model_args.model_name_or_path:
        model = load_checkpoint(model_args.model_name_or_path, overrides)
    else:
        model = GLCCLModel(fresh_config(model_args, overrides, tokenizer))
    image_size, vocab_size = model.config.vision_config.image_size, model.config.text_config.vocab_size
    if model_args.image_size not in (None, image_size):
        raise ValueError(
            f"--image_size {model_args.image_size} differs from the vision encoder's image_size {image_size}"
        )
    if len(tokenizer) > vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the text encoder only {vocab_size}: "
            "use the model's tokenizer (--tokenizer_name)"
        )
    return model


def load_checkpoint(path: str, overrides: dict[str, Any]) -> GLCCLModel:
    """A GLCCL checkpoint, its weights checked first (a truncated file is named); its word count is fixed."""
    check_model_weights(path, what="--model_name_or_path")
    config = GLCCLConfig.from_pretrained(path)
    if overrides.get("max_words", config.max_words) != config.max_words:
        raise ValueError(
            f"max_words={overrides['max_words']} differs from the checkpoint's {config.max_words}: the word-axis "
            "score matrices are sized by it (drop --max_words / the preset's value, or start from CLIP)"
        )
    return GLCCLModel.from_pretrained(path, **overrides)


def fresh_config(model_args: ModelArguments, overrides: dict[str, Any], tokenizer: Any) -> GLCCLConfig:
    """A new GLCCLConfig: `--config_name` (or the defaults) with the overrides; the text vocabulary and SOT/EOT
    ids follow the tokenizer unless overridden, and `--image_size` sets the vision encoder's input size."""
    text = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        **overrides.get("text_config", {}),
    }
    vision = dict(overrides.get("vision_config", {}))
    if model_args.image_size is not None:
        vision["image_size"] = model_args.image_size
    base = GLCCLConfig.from_pretrained(model_args.config_name).to_dict() if model_args.config_name else {}
    settings = {**base, **overrides}
    settings["text_config"] = {**base.get("text_config", {}), **text}
    settings["vision_config"] = {**base.get("vision_config", {}), **vision}
    return GLCCLConfig(**{key: value for key, value in settings.items() if key not in ("model_type", "auto_map")})


def load_tokenizer(model_args: ModelArguments) -> tuple[Any, dict[str, Any]]:
    """The CLIP tokenizer, and the video settings of a checkpoint's saved processor (if it is read from one)."""
    path = model_args.model_name_or_path
    if path and model_args.tokenizer_name is None:
        try:
            saved = GLCCLProcessor.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: its GLCCL processor could not be loaded ({err}); give --tokenizer_name") from err
        return saved.tokenizer, {"sample_fps": saved.sample_fps, "video_backend": saved.video_backend}
    name = model_args.tokenizer_name or model_args.clip_model
    if name is None:
        raise ValueError("a fresh model needs --tokenizer_name (a CLIP tokenizer)")
    return AutoTokenizer.from_pretrained(name), {}


def build_processor(
    model_args: ModelArguments, tokenizer: Any, saved: dict[str, Any], config: GLCCLConfig
) -> GLCCLProcessor:
    """The processor for the model: its words, frames and image size, so inputs always fit the model."""
    settings = dict(saved)
    for name in ("sample_fps", "max_seconds"):
        if getattr(model_args, name) is not None:
            settings[name] = getattr(model_args, name)
    return GLCCLProcessor(
        tokenizer,
        max_words=config.max_words,
        max_frames=config.max_frames,
        image_size=config.vision_config.image_size,
        **settings,
    )


# -------------------------------------------------------------------------------------------------- the run


def setup_logging(training_args: GLCCLTrainingArguments) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        # log_level defaults to "passive" (keep the library's level): show info, as transformers' examples do.
        transformers.utils.logging.set_verbosity_info()
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    logging.getLogger("glccl_hf").setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def prepare_output_dir(training_args: GLCCLTrainingArguments, overwrite_output_dir: bool) -> None:
    """Refuse a non-empty --output_dir unless the run resumes there; --overwrite_output_dir deletes the earlier run."""
    check_output_dir(
        training_args.output_dir,
        overwrite_output_dir=overwrite_output_dir,
        resume_from_checkpoint=training_args.resume_from_checkpoint,
    )
    if overwrite_output_dir:
        with training_args.main_process_first(desc="deleting the earlier run"):
            if training_args.should_save:
                clear_previous_run(training_args.output_dir)


def effective_settings(
    data_args: DataArguments, training_args: GLCCLTrainingArguments, config: GLCCLConfig
) -> dict[str, Any]:
    """The values this run trains with, after preset, overrides and the per-process batch split."""
    contrastive = training_args.per_device_train_batch_size * training_args.world_size
    return {
        "dataset_preset": data_args.dataset_preset,
        "max_words": config.max_words,
        "max_frames": config.max_frames,
        "image_size": config.vision_config.image_size,
        "processes": training_args.world_size,
        "per_device_train_batch_size": training_args.per_device_train_batch_size,
        "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
        "contrastive_batch": contrastive,
        "optimizer_batch": contrastive * training_args.gradient_accumulation_steps,
        "num_train_epochs": training_args.num_train_epochs,
        "max_steps": training_args.max_steps,
        "learning_rate": training_args.learning_rate,
        "clip_learning_rate": training_args.learning_rate * training_args.coef_lr,
        "weight_decay": training_args.weight_decay,
        "warmup_steps": training_args.warmup_steps,
        "lr_scheduler_type": getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type),
        "csc_loss_weight": config.csc_loss_weight,
        "seed": training_args.seed,
    }


def load_split(
    split: str,
    max_rows: int | None,
    data_args: DataArguments,
    training_args: GLCCLTrainingArguments,
    processor: GLCCLProcessor,
) -> datasets.Dataset:
    """One split in the glccl_hf.data schema, cut to its first `max_rows` rows, reading its frames from
    `--frame_cache` when given (the main process fills the cache first).

    A prefix of rows stays a consistent retrieval split: `video_index` numbers videos by first appearance, so the
    videos of the first N rows are exactly videos 0 .. k-1.
    """
    dataset = load_retrieval_dataset(
        data_args.dataset, split, videos_dir=data_args.videos_dir, missing_videos=data_args.missing_videos
    )
    if max_rows is not None and max_rows < len(dataset):
        dataset = dataset.select(range(max_rows))
    if data_args.frame_cache is None:
        return dataset
    with training_args.main_process_first(desc="frame cache"):
        return cache_frames(
            dataset,
            processor,
            data_args.frame_cache,
            num_proc=data_args.frame_cache_num_proc,
            format=data_args.frame_cache_format,
            on_error=data_args.on_error,
        )


def record(trainer: GLCCLTrainer, split: str, metrics: dict[str, float], into: dict[str, float]) -> dict[str, float]:
    """Log and save one split's metrics (`{split}_results.json`), add them to `into`; returns them."""
    trainer.log_metrics(split, metrics)
    trainer.save_metrics(split, metrics)
    into.update(metrics)
    return metrics


def card_arguments(model_args: ModelArguments, data_args: DataArguments) -> dict[str, Any]:
    """The model card's fields: the base CLIP model (a Hub id, never a local path) or a from-scratch start, the
    dataset (its preset, Hub id or folder name) and which evaluation reports which split."""
    dataset = data_args.dataset_preset or (
        Path(data_args.dataset).name if Path(data_args.dataset).exists() else data_args.dataset
    )
    clip = model_args.clip_model
    return {
        "base_model": clip if clip and not Path(clip).exists() else None,
        "train_dataset": dataset,
        "train_split": data_args.train_split,
        "from_scratch": not (clip or model_args.model_name_or_path),  # a fresh config: no CLIP pre-training
        "eval_dataset": dataset,
        "splits": {"eval": data_args.eval_split, "test": data_args.test_split},
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train and/or evaluate as the arguments say; returns the train, eval and test metrics (prefixed)."""
    # 1. Arguments: the command line or one JSON file, the dataset preset as defaults, the global batch split.
    model_args, data_args, training_args, output_args, _ = parse_args(argv)
    check_arguments(model_args, data_args, training_args)  # contradictions refused before anything loads

    # 2. Logging: info on the main process, the effective settings once the model is known.
    setup_logging(training_args)

    # 3. Output folder: a non-empty one is refused unless the run resumes there or --overwrite_output_dir clears it.
    if training_args.do_train:
        prepare_output_dir(training_args, output_args.overwrite_output_dir)
    set_seed(training_args.seed)

    # 4. Tokenizer: the checkpoint's own, or CLIP's (a checkpoint's saved video settings come with it).
    tokenizer, saved_video_settings = load_tokenizer(model_args)

    # 5. Model (from CLIP, a GLCCL checkpoint or a fresh config), and the processor sized to it.
    model = load_model(model_args, tokenizer)
    processor = build_processor(model_args, tokenizer, saved_video_settings, model.config)
    logger.info("effective settings: %s", json.dumps(effective_settings(data_args, training_args, model.config)))

    # 6. Datasets: the training and validation splits (the test split is loaded for --do_predict only).
    train_dataset = eval_dataset = None
    if training_args.do_train:
        train_dataset = load_split(
            data_args.train_split, data_args.max_train_samples, data_args, training_args, processor
        )
    if data_args.eval_split is not None:
        eval_dataset = load_split(data_args.eval_split, data_args.max_eval_samples, data_args, training_args, processor)

    # 7. Trainer: the reference's optimisation recipe, retrieval evaluation.
    trainer = GLCCLTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=GLCCLDataCollator(processor, on_error=data_args.on_error),
        processing_class=processor,
    )
    # The card's fields; its callback records every evaluation below and reports each under its split.
    trainer.model_card_callback.card_kwargs.update(card_arguments(model_args, data_args))
    metrics: dict[str, float] = {}

    # 8. Train, resuming from a checkpoint ("last": the newest complete one in --output_dir); save the final model.
    if training_args.do_train:
        resume = training_args.resume_from_checkpoint
        result = trainer.train(resume_from_checkpoint=True if resume == "last" else resume)
        trainer.save_model()  # the final model with its code, and the processor
        record(trainer, "train", result.metrics, metrics)
        trainer.save_state()

    # 9. Evaluate: the validation split (--do_eval), the test split (--do_predict).
    if training_args.do_eval:
        record(trainer, "eval", trainer.evaluate(), metrics)
    if training_args.do_predict:
        test = load_split(data_args.test_split, data_args.max_eval_samples, data_args, training_args, processor)
        test_metrics = trainer.evaluate(test, metric_key_prefix="test")
        record(trainer, "test", test_metrics, metrics)

    # 10. Model card (README.md) beside the final model, with every evaluation above; --push_to_hub uploads it.
    if training_args.do_train:
        if training_args.push_to_hub:
            trainer.push_to_hub()  # writes the card (create_model_card), then uploads the folder
        else:
            trainer.create_model_card()  # on the main process only
    return metrics


if __name__ == "__main__":
    main()
