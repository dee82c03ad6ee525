"""`make demo`: GLCCL trained from scratch on the embedded synthetic corpus, beside its two ablations and chance.

Builds the synthetic corpus (videos of coloured shapes with several scenes; each caption describes one scene, so a
caption is only partly relevant to its video), trains three small models with `GLCCLTrainer` under the same budget
- GLCCL, GLIM off (`text_guided=False`: mean pooling over frames) and CSC off (`csc_loss_weight=0`) - evaluates
them on the test split, and prints text-to-video and video-to-text R@1/5/10, MdR and MnR beside chance. Writes
`results.md` (that table, in the Markdown README.md shows), `metrics.json`, `training_curves.png` and one checkpoint
per model (weights, code, processor, model card).

    python -m glccl_hf.demo --output_dir demo_output            # `make demo`: about 4 minutes on 2 CPU cores
    python -m glccl_hf.demo --quick --output_dir demo_quick     # a reduced budget (seconds), the one tests check
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import HfArgumentParser, set_seed

from .data import GLCCLDataCollator, load_retrieval_dataset, load_synthetic_tokenizer, make_synthetic_corpus
from .evaluation import score_dataset
from .metrics import METRIC_KEYS, RECALL_AT, format_metrics_table, parse_metric_key
from .model_card import build_model_card, save_model_card
from .modeling.configuration_glccl import GLCCLConfig
from .modeling.modeling_glccl import GLCCLModel
from .modeling.processing_glccl import GLCCLProcessor
from .training import GLCCLTrainer, GLCCLTrainingArguments

logger = logging.getLogger(__name__)

# The three models of the comparison: config overrides of GLCCL's defaults.
VARIANTS: dict[str, dict[str, Any]] = {
    "glccl": {},
    "no_glim": {"text_guided": False},
    "no_csc": {"csc_loss_weight": 0.0},
}


@dataclass
class DemoSettings:
    """The demo's budget. Defaults take about 4 minutes on 2 CPU cores; every one is a command-line option."""

    n_train: int = field(default=200, metadata={"help": "Training videos (3 captions each)."})
    n_test: int = field(default=60, metadata={"help": "Test videos (1 caption each)."})
    max_steps: int = field(default=1000, metadata={"help": "Optimizer steps per model."})
    batch_size: int = field(default=32, metadata={"help": "Contrastive batch size."})
    learning_rate: float = field(
        default=2e-3, metadata={"help": "Learning rate (every parameter: the models are trained from scratch)."}
    )
    width: int = field(default=64, metadata={"help": "Hidden size of both encoders and the joint space."})
    layers: int = field(default=2, metadata={"help": "Layers of each encoder."})
    image_size: int = field(default=32, metadata={"help": "Frame size in pixels."})
    max_words: int = field(default=12, metadata={"help": "Text length Nw (the synthetic captions are 9 words)."})
    max_frames: int = field(
        default=6, metadata={"help": "Frames per video Nf (the synthetic videos last 6 s: one frame per second)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the corpus, the initialisation and the batches."})
    # The float sums, hence the metrics, depend on the thread count; one thread makes the tables the same on every
    # machine whatever its core count (and is the fastest on a shared 2-core machine).
    num_threads: int = field(
        default=1, metadata={"help": "CPU intra-op threads (1: the same tables on every machine)."}
    )


# `--quick`: the same pipeline at a size the test suite reruns in seconds (README carries its table too).
QUICK_SETTINGS: dict[str, Any] = {
    "n_train": 12,
    "n_test": 8,
    "max_steps": 6,
    "batch_size": 6,
    "width": 32,
    "layers": 1,
}
RESULTS_FILENAME = "results.md"


def demo_config(tokenizer: Any, settings: DemoSettings, **overrides: Any) -> GLCCLConfig:
    """A small GLCCL for the synthetic corpus: the reference's architecture at a width a CPU trains in minutes."""
    width, layers = settings.width, settings.layers
    encoder = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers, num_attention_heads=2)
    text_config = dict(
        encoder,
        vocab_size=len(tokenizer),
        max_position_embeddings=max(16, settings.max_words),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=0,
    )
    vision_config = dict(encoder, image_size=settings.image_size, patch_size=settings.image_size // 4)
    return GLCCLConfig(
        text_config=text_config,
        vision_config=vision_config,
        projection_dim=width,
        max_words=settings.max_words,
        max_frames=settings.max_frames,
        temporal_layers=1,
        **overrides,
    )


def chance_metrics(num_videos: int) -> dict[str, float]:
    """Expected metrics of a random ranking of `num_videos` candidates with one caption per video."""
    metrics = {}
    for direction in ("t2v", "v2t"):
        for k in RECALL_AT:
            metrics[f"{direction}_R@{k}"] = 100.0 * min(k, num_videos) / num_videos
        metrics[f"{direction}_MdR"] = (num_videos + 1) / 2
        metrics[f"{direction}_MnR"] = (num_videos + 1) / 2
    return metrics


def train_variant(
    name: str,
    overrides: dict[str, Any],
    train_dataset: Any,
    test_dataset: Any,
    processor: GLCCLProcessor,
    settings: DemoSettings,
    output_dir: Path,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Train one model from scratch, evaluate it on the test split, save it with its card. Returns
    (test metrics, the Trainer's log history)."""
    set_seed(settings.seed)
    model = GLCCLModel(demo_config(processor.tokenizer, settings, **overrides))
    args = GLCCLTrainingArguments(
        output_dir=str(output_dir / name),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        coef_lr=1.0,  # trained from scratch: the CLIP parts are random, not pretrained, so no slower learning rate
        logging_steps=max(1, settings.max_steps // 40),
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        seed=settings.seed,
        disable_tqdm=False,
    )
    collator = GLCCLDataCollator(processor, cache_videos=True)  # 200 tiny videos, decoded once, reused every epoch
    trainer = GLCCLTrainer(
        model=model, args=args, train_dataset=train_dataset, data_collator=collator, processing_class=processor
    )
    trainer.train()
    metrics = score_dataset(model, processor, test_dataset, batch_size=64).metrics()
    trainer.save_model()
    card = build_model_card(
        model,
        model_name=f"glccl-demo-{name}",
        metrics={"synthetic/test": metrics},
        training_args=args,
        synthetic=True,
    )
    save_model_card(card, args.output_dir)
    return metrics, trainer.state.log_history


def format_table(results: dict[str, dict[str, float]]) -> str:
    """The Markdown table README.md shows: t2v and v2t R@1/5/10, MdR and MnR (one decimal), one row per model."""

    rows = [((name,), metrics) for name, metrics in results.items()]
    headers = [parse_metric_key(key).label for key in METRIC_KEYS]  # "t2v R@1", ...
    return format_metrics_table(rows, METRIC_KEYS, labels=("model",), headers=headers)


def plot_training_curves(histories: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """The two loss terms of every model against the step, one PNG: InfoNCE (comparable across the models) and
    CSC (which the no_csc model computes but does not train on)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, term, title in zip(axes, ("nce_loss", "csc_loss"), ("InfoNCE loss", "CSC loss"), strict=True):
        for name, history in histories.items():
            points = [(entry["step"], entry[term]) for entry in history if term in entry]
            axis.plot(*zip(*points, strict=True), label=name)
        axis.set_xlabel("optimizer step")
        axis.set_title(title)
        axis.legend()
    axes[1].set_yscale("log")
    figure.suptitle("GLCCL demo on the synthetic corpus (training batches)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_demo(output_dir: str | Path, settings: DemoSettings | None = None) -> dict[str, dict[str, float]]:
    """The whole demo; returns `{"glccl": metrics, "no_glim": ..., "no_csc": ..., "chance": ...}`."""
    settings = settings or DemoSettings()
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.num_threads)
    try:
        return _run_demo(Path(output_dir), settings)
    finally:
        torch.set_num_threads(threads)  # the caller's setting back (the demo may run inside a larger process)


def _run_demo(output_dir: Path, settings: DemoSettings) -> dict[str, dict[str, float]]:
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    corpus_dir = output_dir / "data"
    if corpus_dir.exists():
        shutil.rmtree(corpus_dir)  # the demo's own corpus from an earlier run: regenerated (deterministic, seconds)
    corpus = make_synthetic_corpus(corpus_dir, settings.n_train, settings.n_test, seed=settings.seed)
    train_dataset = load_retrieval_dataset(corpus, "train")
    test_dataset = load_retrieval_dataset(corpus, "test")
    processor = GLCCLProcessor(
        load_synthetic_tokenizer(corpus),
        max_words=settings.max_words,
        max_frames=settings.max_frames,
        image_size=settings.image_size,
    )
    logger.info("synthetic corpus: %d training captions, %d test videos", len(train_dataset), len(test_dataset))

    results, histories = {}, {}
    for name, overrides in VARIANTS.items():
        print(f"\n== training {name} ({overrides or 'the full model'})", flush=True)
        results[name], histories[name] = train_variant(
            name, overrides, train_dataset, test_dataset, processor, settings, output_dir
        )
    results["chance"] = chance_metrics(settings.n_test)

    (output_dir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    (output_dir / RESULTS_FILENAME).write_text(format_table(results) + "\n")
    plot_training_curves(histories, output_dir / "training_curves.png")
    (output_dir / "settings.json").write_text(json.dumps(asdict(settings), indent=2) + "\n")
    print(f"\nTest split: {settings.n_test} videos, one caption each (R@K in %, MdR/MnR are ranks, lower is better)")
    print(format_table(results))
    written = ", ".join(str(output_dir / name) for name in (RESULTS_FILENAME, "metrics.json", "training_curves.png"))
    print(f"\nwrote {written} and the checkpoints")
    print(f"total time {time.time() - start:.0f} s")
    return results


@dataclass
class DemoArguments:
    """Where the demo writes, and which budget it starts from (the settings' options are DemoSettings)."""

    output_dir: str = field(
        default="demo_output", metadata={"help": "Folder for the corpus, checkpoints, results.md and metrics.json."}
    )
    quick: bool = field(
        default=False,
        metadata={
            "help": f"Reduced budget ({', '.join(f'{k}={v}' for k, v in QUICK_SETTINGS.items())}); options given win."
        },
    )


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and each option's default."""


def parse_args(argv: list[str] | None = None) -> tuple[DemoArguments, DemoSettings]:
    """The command line: `--quick` is read first and its settings become the defaults, so options given win."""
    parser = HfArgumentParser((DemoArguments, DemoSettings), description=__doc__, formatter_class=_HelpFormatter)
    first, _ = parser.parse_known_args(argv)
    if first.quick:
        parser.set_defaults(**QUICK_SETTINGS)
    arguments, settings = parser.parse_args_into_dataclasses(args=argv)
    return arguments, settings


def main(argv: list[str] | None = None) -> None:
    arguments, settings = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    run_demo(arguments.output_dir, settings)


if __name__ == "__main__":
    main()
