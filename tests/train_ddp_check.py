"""One GLCCLTrainer training step on a fixed global batch, then retrieval evaluation; run alone or under torchrun.

Used by tests/test_training.py (not collected by pytest): under `torchrun --nproc_per_node 2` every rank writes
`rank{r}.pt` with the logged loss, the clipped gradients the optimizer received, the updated parameters, the
evaluation's score matrix and metrics; the test compares them with `run(...)` in one process over the same global
batch. The helpers here (tiny model for the synthetic tokenizer, tensor dataset, collator) are shared with the test.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/train_ddp_check.py --out_dir D --corpus C
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import TrainerCallback

# modeling_fixtures, and bench/ that it builds its models with, when run as a script
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from modeling_fixtures import IMAGE, MAX_FRAMES, MAX_WORDS, tiny_config  # noqa: E402

from glccl_hf import GLCCLModel, GLCCLProcessor  # noqa: E402
from glccl_hf.data import load_retrieval_dataset, load_synthetic_tokenizer  # noqa: E402
from glccl_hf.training import GLCCLTrainer, GLCCLTrainingArguments  # noqa: E402

# The global batch: words per caption and real frames per video of its four pairs.
GLOBAL_WORDS = [6, 2, 4, 1]
GLOBAL_FRAMES = [4, 2, 1, 3]
EVAL_VIDEOS = 3  # an odd count, so the two processes' shards are padded


def synthetic_tiny_model(tokenizer: Any, seed: int = 0, dtype: torch.dtype = torch.float32) -> GLCCLModel:
    """modeling_fixtures' tiny model, its vocabulary and SOT/EOT ids those of `tokenizer`; heads perturbed off the
    identity so every score matrix matters."""
    config = tiny_config()
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(seed)
    model = GLCCLModel(config).to(dtype)
    with torch.no_grad():
        for matrix in model.score_matrices.parameters():
            matrix.add_(0.3 * torch.randn_like(matrix))
    return model


def synthetic_processor(tokenizer: Any) -> GLCCLProcessor:
    return GLCCLProcessor(tokenizer, max_words=MAX_WORDS, max_frames=MAX_FRAMES, image_size=IMAGE)


class PairDataset(Dataset):
    """Pre-tokenised captions and random-pixel videos (no decoding), one pair per row."""

    def __init__(
        self, tokenizer: Any, words: list[int], frames: list[int], seed: int = 0, dtype: torch.dtype = torch.float32
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        sot, eot = tokenizer.bos_token_id, tokenizer.eos_token_id
        self.rows = []
        for length, count in zip(words, frames, strict=True):
            input_ids = torch.zeros(MAX_WORDS, dtype=torch.long)
            input_ids[0], input_ids[1 + length] = sot, eot
            input_ids[1 : 1 + length] = torch.randint(1, min(sot, eot), (length,), generator=generator)
            pixel_values = torch.zeros(MAX_FRAMES, 3, IMAGE, IMAGE, dtype=dtype)
            pixel_values[:count] = torch.randn(count, 3, IMAGE, IMAGE, generator=generator, dtype=dtype)
            video_mask = torch.zeros(MAX_FRAMES, dtype=torch.long)
            video_mask[:count] = 1
            self.rows.append(
                {
                    "input_ids": input_ids,
                    "attention_mask": (input_ids != 0).long(),
                    "pixel_values": pixel_values,
                    "video_mask": video_mask,
                }
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.rows[index]


def collate_pairs(rows: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    batch = {key: torch.stack([row[key] for row in rows]) for key in rows[0]}
    return {**batch, "return_loss": True}


class GradientRecorder(TrainerCallback):
    """Keeps the gradients the optimizer is about to apply (after DDP's average and the norm clip)."""

    def __init__(self) -> None:
        self.grads: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def run(out_dir: str | os.PathLike, corpus: str | os.PathLike, world_size: int = 1) -> dict[str, Any]:
    """One training step over the global batch (this process's share of it) and an evaluation; returns what the
    comparison needs."""
    tokenizer = load_synthetic_tokenizer(corpus)
    model = synthetic_tiny_model(tokenizer, dtype=torch.float64)  # float64: the comparison can be tight
    args = GLCCLTrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=len(GLOBAL_WORDS) // world_size,
        per_device_eval_batch_size=2,
        max_steps=1,
        warmup_steps=0,  # the one step runs at the full learning rate
        learning_rate=1e-3,
        coef_lr=0.5,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    recorder = GradientRecorder()
    trainer = GLCCLTrainer(
        model=model,
        args=args,
        train_dataset=PairDataset(tokenizer, GLOBAL_WORDS, GLOBAL_FRAMES, dtype=torch.float64),
        data_collator=collate_pairs,
        processing_class=synthetic_processor(tokenizer),
        callbacks=[recorder],
    )
    trainer.train()
    eval_dataset = load_retrieval_dataset(corpus, "test").select(range(EVAL_VIDEOS))
    scores, _ = trainer.retrieval_scores(eval_dataset)
    return {
        "loss": trainer.state.log_history[0]["loss"],
        "grads": recorder.grads,
        "params": {name: p.detach().clone() for name, p in model.named_parameters()},
        "scores": scores,
        "metrics": trainer.evaluate(eval_dataset),
        "world_size": trainer.accelerator.num_processes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--corpus", required=True, help="a make_synthetic_corpus folder")
    options = parser.parse_args()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    result = run(Path(options.out_dir) / "trainer", options.corpus, world_size)
    rank = int(os.environ.get("RANK", "0"))
    torch.save(result, Path(options.out_dir) / f"rank{rank}.pt")


if __name__ == "__main__":
    main()
