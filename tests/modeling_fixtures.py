"""Tiny GLCCL models and inputs shared by the modeling tests (not collected by pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from bench.models import random_config, random_model
from glccl_hf import GLCCLConfig, GLCCLModel

VOCAB, SOT, EOT = 64, 62, 63
MAX_WORDS, MAX_FRAMES, IMAGE = 8, 4, 16


def tiny_config(**overrides) -> GLCCLConfig:
    """Two-layer towers at width 32 (4 heads, 16 px images in 8 px patches) for the 64-token vocabulary."""
    settings = dict(projection_dim=32, max_words=MAX_WORDS, max_frames=MAX_FRAMES, temporal_layers=2)
    settings.update(overrides)
    return random_config(
        width=32,
        layers=2,
        attention_heads=4,
        image_size=IMAGE,
        patch_size=8,
        vocabulary=(VOCAB, SOT, EOT),
        max_positions=16,
        **settings,
    )


def tiny_model(seed: int = 0, perturb_heads: bool = True, **overrides) -> GLCCLModel:
    """A random tiny model; with `perturb_heads` its head matrices are non-identity, so their orientation matters."""
    return random_model(tiny_config(**overrides), matrix_noise=0.3 if perturb_heads else 0.0, seed=seed)


def text_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids laid out as the reference: SOT, `length` word ids, EOT, then padding id 0."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.zeros(len(lengths), MAX_WORDS, dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, 0] = SOT
        input_ids[row, 1 : 1 + length] = torch.randint(1, SOT, (length,), generator=generator)
        input_ids[row, 1 + length] = EOT
    return input_ids, (input_ids != 0).long()


def video_batch(frame_counts: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random pixels for the real frames, zero images for the padded ones (the reference's padding)."""
    generator = torch.Generator().manual_seed(seed)
    pixel_values = torch.zeros(len(frame_counts), MAX_FRAMES, 3, IMAGE, IMAGE)
    video_mask = torch.zeros(len(frame_counts), MAX_FRAMES, dtype=torch.long)
    for row, count in enumerate(frame_counts):
        pixel_values[row, :count] = torch.randn(count, 3, IMAGE, IMAGE, generator=generator)
        video_mask[row, :count] = 1
    return pixel_values, video_mask


def naive_matrices(model: GLCCLModel) -> dict[str, torch.Tensor]:
    """The head matrices keyed by their paper symbols, as the naive formulation takes them."""
    heads = model.score_heads
    return {symbol: getattr(heads, name) for name, symbol in heads.paper_symbols.items()}


# A meta-path finder that reports the top-level packages in HIDDEN as not installed (as pip uninstall would leave
# it); a script may change HIDDEN as it goes.
_HIDE_PACKAGES = """
import importlib.abc, sys
HIDDEN = {hidden!r}
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
"""


def run_without_packages(
    script: str, tmp_path: Path, hidden: tuple[str, ...] = ("glccl_hf",)
) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python where the `hidden` packages cannot be imported (the set ``HIDDEN`` there), with
    a private remote-code cache: what a user of a checkpoint's remote code (trust_remote_code=True) without glccl_hf
    sees."""
    prelude = _HIDE_PACKAGES.format(hidden=set(hidden))
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)], env=env, capture_output=True, text=True, timeout=120
    )


# The remote code a saved processor carries (processing_glccl.py and what it imports); checks.py is shared with the
# model's code.
PROCESSOR_CODE = frozenset(
    {
        "processing_glccl.py",
        "video_glccl.py",
        "video_sampling_glccl.py",
        "pyav_glccl.py",
        "packet_lookahead_glccl.py",
        "display_matrix_glccl.py",
        "torchcodec_glccl.py",
        "video_errors_glccl.py",
        "frame_processing_glccl.py",
    }
)
SHARED_CODE = frozenset({"checks.py"})
