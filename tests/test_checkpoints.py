"""glccl_hf.checkpoints: weights files checked from their header, complete checkpoints, the output-folder rule.
(The Trainer and the training script use them: tests/test_training.py runs them end to end.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from glccl_hf.checkpoints import (
    check_output_dir,
    checkpoint_problem,
    clear_previous_run,
    newest_complete_checkpoint,
    resumes_inside,
    safetensors_problem,
    weights_problem,
)


def _weights(path: Path) -> Path:
    save_file({"a": torch.arange(12.0), "b": torch.ones(3, 5)}, str(path))
    return path


def test_safetensors_problem_reads_the_header(tmp_path):
    whole = _weights(tmp_path / "model.safetensors")
    assert safetensors_problem(whole) is None
    data = whole.read_bytes()
    for cut, reason in [(4, "less than the 8-byte"), (20, "header alone"), (len(data) - 1, "header describes")]:
        whole.write_bytes(data[:cut])
        assert safetensors_problem(whole).startswith("truncated"), cut
        assert reason in safetensors_problem(whole), cut
    whole.write_bytes(data + b"\0")
    assert safetensors_problem(whole).startswith("corrupt")
    whole.write_bytes(b"\x05\0\0\0\0\0\0\0[1, 2")
    assert safetensors_problem(whole).startswith("corrupt")


def test_sharded_weights_name_the_bad_shard(tmp_path):
    shards = [_weights(tmp_path / f"model-0000{i}-of-00002.safetensors") for i in (1, 2)]
    index = {"weight_map": {"a": shards[0].name, "b": shards[1].name}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert weights_problem(tmp_path) is None
    shards[1].write_bytes(shards[1].read_bytes()[:-8])
    assert f"{shards[1]} is truncated" in weights_problem(tmp_path)
    shards[1].unlink()
    assert "missing" in weights_problem(tmp_path)
    assert weights_problem(tmp_path / "nowhere") is None  # nothing to judge (a Hub id, other formats)


def _checkpoint(folder: Path, complete: bool = True) -> Path:
    folder.mkdir(parents=True)
    _weights(folder / "model.safetensors")
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    return folder


def test_newest_complete_checkpoint_orders_by_step_and_skips_incomplete(tmp_path, caplog):
    _checkpoint(tmp_path / "checkpoint-9")
    _checkpoint(tmp_path / "checkpoint-10")
    _checkpoint(tmp_path / "checkpoint-12", complete=False)
    (tmp_path / "checkpoint-11").write_text("a file, not a checkpoint")
    cut = _checkpoint(tmp_path / "checkpoint-11x")  # not a checkpoint name
    assert checkpoint_problem(cut) is None
    assert newest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-10"  # 10 > 9 by step, not by name
    assert "skipped checkpoint-12 (it has no trainer_state.json" in caplog.text
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": ')
    assert "not valid JSON" in checkpoint_problem(tmp_path / "checkpoint-10")
    assert newest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-9"
    with pytest.raises(ValueError, match="no complete checkpoint.*no checkpoint-<step> folder"):
        newest_complete_checkpoint(tmp_path / "empty")


def test_output_dir_rule_and_what_overwrite_deletes(tmp_path):
    out = tmp_path / "out"
    check_output_dir(out)  # absent: fine
    out.mkdir()
    check_output_dir(out)  # empty: fine
    _checkpoint(out / "checkpoint-3")
    for name in ("config.json", "model.safetensors", "modeling_glccl.py", "test_results.json", "README.md"):
        (out / name).write_text("earlier run")
    (out / "my_notes.md").write_text("mine")
    with pytest.raises(ValueError, match=r"1 checkpoint\(s\) \(checkpoint-3\); 5 file\(s\) of a run .*my_notes.md"):
        check_output_dir(out)
    check_output_dir(out, resume_from_checkpoint="last")
    check_output_dir(out, overwrite_output_dir=True, resume_from_checkpoint=str(tmp_path / "elsewhere" / "ckpt"))
    with pytest.raises(ValueError, match="give only one"):
        check_output_dir(out, overwrite_output_dir=True, resume_from_checkpoint=str(out / "checkpoint-3"))
    assert resumes_inside(out, True) and not resumes_inside(out, None)
    removed = clear_previous_run(out)
    assert removed[0].name == "checkpoint-3" and len(removed) == 6
    assert [path.name for path in out.iterdir()] == ["my_notes.md"]
