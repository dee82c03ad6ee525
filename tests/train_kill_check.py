"""A GLCCLTrainer run killed (SIGKILL) in the middle of a checkpoint save; run as a subprocess by the tests.

Eight synthetic pairs, two per step, a checkpoint every two steps. When it saves checkpoint-`kill_step` the process
kills itself after the model files are written and before the optimizer state and `trainer_state.json`: what an
out-of-memory kill, a preemption or a crash leaves behind. `kill_check_trainer` builds the same run, for the test's
resume (not collected by pytest).

    python tests/train_kill_check.py --output_dir D --corpus C --kill_step 4
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_ddp_check, when run as a script

from train_ddp_check import PairDataset, collate_pairs, synthetic_processor, synthetic_tiny_model  # noqa: E402

from glccl_hf.data import load_synthetic_tokenizer  # noqa: E402
from glccl_hf.training import GLCCLTrainer, GLCCLTrainingArguments  # noqa: E402

WORDS = [3, 1, 5, 2, 6, 4, 2, 1]
FRAMES = [4, 1, 2, 3, 4, 2, 1, 3]


class KilledWhileSaving(GLCCLTrainer):
    """Dies by SIGKILL while saving the checkpoint of step `kill_step`, its model files written, the rest not."""

    def __init__(self, *args: Any, kill_step: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kill_step = kill_step

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        if self.state.global_step == self.kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
        super()._save_optimizer_and_scheduler(output_dir)


def kill_check_trainer(
    output_dir: str | os.PathLike, tokenizer: Any, max_steps: int = 6, trainer_class: type = GLCCLTrainer, **kwargs
) -> GLCCLTrainer:
    """The run: a tiny model on eight pairs, two per step, saving every two steps."""
    args = GLCCLTrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        max_steps=max_steps,
        save_strategy="steps",
        save_steps=2,
        seed=7,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    return trainer_class(
        model=synthetic_tiny_model(tokenizer),
        args=args,
        train_dataset=PairDataset(tokenizer, WORDS, FRAMES, seed=1),
        data_collator=collate_pairs,
        processing_class=synthetic_processor(tokenizer),
        **kwargs,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--corpus", required=True, help="a make_synthetic_corpus folder (its tokenizer)")
    parser.add_argument("--kill_step", type=int, required=True)
    options = parser.parse_args()
    tokenizer = load_synthetic_tokenizer(options.corpus)
    trainer = kill_check_trainer(
        options.output_dir, tokenizer, trainer_class=KilledWhileSaving, kill_step=options.kill_step
    )
    trainer.train()


if __name__ == "__main__":
    main()
