"""Training runs on disk: which checkpoints can be resumed from, and what an earlier run left in an output folder.

- :func:`checkpoint_problem` / :func:`newest_complete_checkpoint`: a checkpoint whose save was interrupted (a
  SIGKILL, an out-of-memory kill, a preemption) lacks `trainer_state.json`, which `Trainer` writes last, or holds a
  truncated weights file; resuming skips it (saying why) instead of failing on it.
- :func:`weights_problem`: a truncated or corrupt `*.safetensors` file, named, found from its header alone.
- :func:`check_output_dir` / :func:`clear_previous_run`: an output folder that already holds a run is not silently
  reused: its checkpoints would mix with the new run's, and `resume_from_checkpoint="last"` would pick them up.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from . import modeling
from .formatting import preview

logger = logging.getLogger(__name__)

# Trainer's checkpoint folders: checkpoint-<global step>.
CHECKPOINT_FOLDER = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
# The model's remote code, saved beside every model and checkpoint.
MODEL_CODE_FILES: tuple[str, ...] = tuple(
    sorted(path.name for path in Path(modeling.__file__).parent.glob("*.py") if path.name != "__init__.py")
)
# What a training run writes at the top of its output folder (besides its checkpoints): the final model, its code,
# processor and card, the Trainer's state and arguments, the metrics files and the TensorBoard logs.
RUN_OUTPUT_PATTERNS: tuple[str, ...] = (
    "README.md",
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model*.bin",
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer*.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.*",
    "training_args.bin",
    "trainer_state.json",
    "*_results.json",
    "runs",
    *MODEL_CODE_FILES,
)


# ---------------------------------------------------------------------------------------------------- weights


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Why a `.safetensors` file cannot be loaded ("truncated: ..." or "corrupt: ..."), or None if it looks whole.

    Reads the header only: an 8-byte little-endian header length, a JSON header, then the tensor data, whose end
    the header's largest `data_offsets` gives. A file shorter than header + data was cut off while being written.
    """
    path = Path(path)
    size = path.stat().st_size
    if size < 8:
        return f"truncated: {size} bytes, less than the 8-byte header length"
    with path.open("rb") as file:
        header_size = int.from_bytes(file.read(8), "little")
        if 8 + header_size > size:
            return f"truncated: {size} bytes, but its header alone should take {8 + header_size}"
        try:
            header = json.loads(file.read(header_size))
            data_end = max(
                (int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"), default=0
            )
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, IndexError, TypeError, ValueError):
            return "corrupt: its header is not a safetensors header"
    expected = 8 + header_size + data_end
    if size < expected:
        return f"truncated: {size} bytes, its header describes {expected}"
    if size > expected:
        return f"corrupt: {size} bytes, its header describes {expected}"
    return None


def weights_problem(folder: str | os.PathLike) -> str | None:
    """Why the safetensors weights of a model folder cannot be loaded (the file named), or None.

    Checks `model.safetensors`, or every shard a `model.safetensors.index.json` lists. A folder without safetensors
    weights (other formats, a Hub id) is not judged: None.
    """
    folder = Path(folder)
    index = folder / SAFE_WEIGHTS_INDEX_NAME
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
            return f"{index} is truncated or corrupt (not a weights index)"
        files = [folder / shard for shard in shards]
    elif (folder / SAFE_WEIGHTS_NAME).is_file():
        files = [folder / SAFE_WEIGHTS_NAME]
    else:
        return None
    for file in files:
        if not file.is_file():
            return f"{file} is missing (listed in {index.name})"
        problem = safetensors_problem(file)
        if problem is not None:
            return f"{file} is {problem}"
    return None


def check_model_weights(folder: str | os.PathLike, what: str = "model") -> None:
    """Raise a ValueError naming the file when a model folder's safetensors weights are truncated or corrupt."""
    if Path(folder).is_dir():
        problem = weights_problem(folder)
        if problem is not None:
            raise ValueError(f"{what} {folder}: {problem}; save or download it again")


# ------------------------------------------------------------------------------------------------ checkpoints


def checkpoint_problem(checkpoint: str | os.PathLike) -> str | None:
    """Why a Trainer checkpoint folder cannot be resumed from, or None when it is complete.

    `Trainer` writes a checkpoint's `trainer_state.json` after its model, optimizer, scheduler and RNG states:
    without it (or with it cut off) the save was interrupted. The safetensors weights are checked too.
    """
    folder = Path(checkpoint)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    state = folder / TRAINER_STATE_NAME
    if not state.is_file():
        return f"it has no {TRAINER_STATE_NAME}, which Trainer writes last: its save did not finish"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return f"{state} is truncated or corrupt (not valid JSON): its save did not finish"
    return weights_problem(folder)


def checkpoint_folders(output_dir: str | os.PathLike) -> list[Path]:
    """The `checkpoint-<step>` folders of an output folder, newest (highest step) first."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in folder.iterdir() if (m := CHECKPOINT_FOLDER.match(path.name))]
    return [path for _, path in sorted(found, reverse=True) if path.is_dir()]


def newest_complete_checkpoint(output_dir: str | os.PathLike) -> Path:
    """The newest checkpoint of `output_dir` that can be resumed from; newer incomplete ones are skipped with a
    warning saying why. Raises a ValueError (listing every checkpoint's problem) when there is none."""
    problems: list[str] = []
    for checkpoint in checkpoint_folders(output_dir):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            for skipped in problems:
                logger.warning("resuming from %s: skipped %s", checkpoint, skipped)
            logger.info("resuming from %s, the newest complete checkpoint in %s", checkpoint, output_dir)
            return checkpoint
        problems.append(f"{checkpoint.name} ({problem})")
    found = "; ".join(problems) if problems else "no checkpoint-<step> folder"
    raise ValueError(f"no complete checkpoint to resume from in {output_dir}: {found}")


def check_checkpoint(checkpoint: str | os.PathLike) -> None:
    """Raise a ValueError saying why `checkpoint` cannot be resumed from, if it cannot."""
    problem = checkpoint_problem(checkpoint)
    if problem is not None:
        raise ValueError(f"cannot resume from {checkpoint}: {problem}")


# ------------------------------------------------------------------------------------------------ output folder


def previous_run_outputs(output_dir: str | os.PathLike) -> list[Path]:
    """What an earlier training run left in `output_dir`: its checkpoint folders, then the files of its final model
    and metrics (`RUN_OUTPUT_PATTERNS`)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    checkpoints = checkpoint_folders(folder)
    files = {path for pattern in RUN_OUTPUT_PATTERNS for path in folder.glob(pattern)}
    return checkpoints + sorted(files - set(checkpoints))


def describe_output_dir(output_dir: str | os.PathLike) -> str:
    """What `output_dir` holds, for messages: its checkpoints, an earlier run's files, anything else."""
    folder = Path(output_dir)
    checkpoints = [path.name for path in checkpoint_folders(folder)]
    run_files = [path.name for path in previous_run_outputs(folder) if path.name not in checkpoints]
    other = sorted(path.name for path in folder.iterdir() if path.name not in {*checkpoints, *run_files})
    parts = []
    for names, what in ((checkpoints, "checkpoint(s)"), (run_files, "file(s) of a run"), (other, "other entr(ies)")):
        if names:
            shown = preview(names, 6, render=str)
            parts.append(f"{len(names)} {what} ({shown})")
    return "; ".join(parts)


def resumes_inside(output_dir: str | os.PathLike, resume_from_checkpoint: str | bool | None) -> bool:
    """Whether `resume_from_checkpoint` ("last", True or a path) continues from a checkpoint in `output_dir`."""
    if resume_from_checkpoint in (None, False, ""):
        return False
    if resume_from_checkpoint is True or resume_from_checkpoint == "last":
        return True
    return Path(output_dir).resolve() in Path(resume_from_checkpoint).resolve().parents


def check_output_dir(
    output_dir: str | os.PathLike,
    *,
    overwrite_output_dir: bool = False,
    resume_from_checkpoint: str | bool | None = None,
) -> None:
    """Refuse to train into a non-empty `output_dir` unless told what to do with what it holds.

    Allowed: an empty or absent folder; `resume_from_checkpoint` (continue the run there); `overwrite_output_dir`
    (the caller then deletes the earlier run with :func:`clear_previous_run`). Both together are refused when the
    resumed checkpoint lies in `output_dir`, which the overwrite would delete.
    """
    folder = Path(output_dir)
    if overwrite_output_dir and resumes_inside(folder, resume_from_checkpoint):
        raise ValueError(
            f"--overwrite_output_dir deletes the checkpoints in {folder} that --resume_from_checkpoint "
            f"{resume_from_checkpoint} would continue from: give only one of them"
        )
    if overwrite_output_dir or resume_from_checkpoint not in (None, False, ""):
        return
    if folder.is_dir() and any(folder.iterdir()):
        raise ValueError(
            f"--output_dir {folder} is not empty: it holds {describe_output_dir(folder)}. A new run would replace "
            "its final model and some of its checkpoints, and leave its later checkpoints for --resume_from_checkpoint "
            "last to pick up. Give --overwrite_output_dir to delete the earlier run's checkpoints and model first, "
            "--resume_from_checkpoint last (or a checkpoint path) to continue it, or another --output_dir."
        )


def clear_previous_run(output_dir: str | os.PathLike) -> list[Path]:
    """Delete what an earlier run left in `output_dir` (:func:`previous_run_outputs`); other files stay.

    Returns the deleted paths.
    """
    removed = previous_run_outputs(output_dir)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if removed:
        logger.warning("deleted the earlier run in %s: %s", output_dir, ", ".join(path.name for path in removed))
    return removed
