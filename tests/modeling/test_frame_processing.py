"""Tests of modeling/frame_processing_glccl.py: CLIP preprocessing of decoded frames (resize, centre crop,
normalisation), compared with transformers' CLIPImageProcessor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glccl_hf.video import CLIP_MEAN, CLIP_STD, preprocess_frames


def realistic_frames(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth colour gradients with a few flat shapes and mild noise, uint8 [n, 3, H, W]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    out = []
    for i in range(n):
        img = np.stack(
            [
                128 + 100 * np.sin(3 * xx + i),
                128 + 100 * np.cos(2 * yy + 0.5 * i),
                128 + 90 * np.sin(2 * (xx + yy) + 0.3 * i),
            ],
            axis=-1,
        )
        for _ in range(3):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.05, 0.2) * min(height, width)
            mask = (np.mgrid[0:height, 0:width][0] - cy) ** 2 + (np.mgrid[0:height, 0:width][1] - cx) ** 2 < r * r
            img[mask] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 3, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize(("height", "width"), [(360, 640), (480, 360), (224, 224), (100, 150), (17, 33)])
def test_preprocess_matches_clip_image_processor(height: int, width: int) -> None:
    from transformers import CLIPImageProcessor

    frames = realistic_frames(3, height, width)
    ours = preprocess_frames(frames, image_size=224)
    assert ours.shape == (3, 3, 224, 224) and ours.dtype == torch.float32
    processor = CLIPImageProcessor()  # defaults: shortest_edge 224, crop 224, CLIP mean/std
    images = [f.permute(1, 2, 0).numpy() for f in frames]
    theirs = torch.as_tensor(np.asarray(processor(images=images, return_tensors="np")["pixel_values"]))
    assert theirs.shape == ours.shape
    assert (ours - theirs).abs().mean().item() < 0.02


def test_preprocess_flat_colour_and_sizes() -> None:
    colour = (200, 100, 30)
    frames = torch.tensor(colour, dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 50, 80).contiguous()
    out = preprocess_frames(frames, image_size=32)
    assert out.shape == (2, 3, 32, 32)
    for c in range(3):
        expected = (colour[c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c]
        assert torch.allclose(out[:, c], torch.full((2, 32, 32), expected), atol=1e-5)
    gray = preprocess_frames(frames[:, :1], image_size=32)
    assert torch.allclose(
        gray[:, 0], gray[:, 1] * CLIP_STD[1] / CLIP_STD[0] + (CLIP_MEAN[1] - CLIP_MEAN[0]) / CLIP_STD[0]
    )
    assert preprocess_frames(frames[:0], image_size=32).shape == (0, 3, 32, 32)


def test_preprocess_centre_crop_position() -> None:
    # A wide frame whose left and right thirds differ: the crop keeps the middle.
    frames = torch.zeros(1, 3, 10, 30, dtype=torch.uint8)
    frames[..., 10:20] = 255
    out = preprocess_frames(frames, image_size=10)
    white = (1 - CLIP_MEAN[0]) / CLIP_STD[0]
    assert torch.allclose(out[0, 0, :, 2:8], torch.full((10, 6), white), atol=1e-4)


@pytest.mark.parametrize(
    ("frames", "error", "word"),
    [
        (np.zeros((1, 3, 8, 8), np.uint8), TypeError, "torch.Tensor"),
        (torch.zeros(1, 3, 8, 8), ValueError, "uint8"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), ValueError, "shape"),
        (torch.zeros(1, 8, 8, 3, dtype=torch.uint8), ValueError, "shape"),
    ],
)
def test_preprocess_bad_input(frames, error: type[Exception], word: str) -> None:
    with pytest.raises(error, match=word):
        preprocess_frames(frames)


def test_preprocess_bad_image_size() -> None:
    with pytest.raises(ValueError, match="image_size"):
        preprocess_frames(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), image_size=0)
