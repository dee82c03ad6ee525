"""Tiny GLCCL models and inputs shared by the modeling tests (not collected by pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from glccl_hf import GLCCLConfig, GLCCLModel

VOCAB, SOT, EOT = 64, 62, 63
MAX_WORDS, MAX_FRAMES, IMAGE = 8, 4, 16

def tiny_config(**overrides) -> GLCCLConfig:
    text = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=16,
        bos_token_id=SOT,
        eos_token_id=EOT,
        pad_token_id=0,
    )
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=IMAGE, patch_size=8
    )
    settings = dict(projection_dim=32, max_words=MAX_WORDS, max_frames=MAX_FRAMES, temporal_layers=2)
    settings.update(overrides)
    return GLCCLConfig(text_config=text, vision_config=vision, **settings)


def tiny_model(seed: int = 0, perturb_heads: bool = True, **overrides) -> GLCCLModel:
    """A random tiny model; with `perturb_heads` its head matrices are non-identity, so their orientation matters."""
    torch.manual_seed(seed)
    model = GLCCLModel(tiny_config(**overrides)).eval()
    if perturb_heads:
        with torch.no_grad():
            for matrix in model.score_heads.parameters():
                matrix.add_(0.3 * torch.randn_like(matrix))
    return model


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
