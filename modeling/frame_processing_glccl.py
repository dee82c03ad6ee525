"""CLIP preprocessing of decoded frames, as the GLCCL reference (and CLIPImageProcessor) does it, in torch (no
torchvision): bicubic antialiased resize of the short side, PIL-like uint8 rounding, centre crop, scaling to [0, 1]
and normalisation with CLIP's mean and std.

Part of the remote code a checkpoint carries with the processor (imported by video_glccl.py and processing_glccl.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import positive_int

__all__ = ["CLIP_MEAN", "CLIP_STD", "preprocess_frames", "resize_crop_frames"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Chunk size for preprocessing: bounds the float32 working memory for large frames.
_PREPROCESS_CHUNK = 4


def resize_crop_frames(frames: torch.Tensor, image_size: int = 224) -> torch.Tensor:
    """The geometric half of :func:`preprocess_frames`: resize and centre crop, before normalisation.

    Resize the short side to ``image_size`` (bicubic, antialiased, long side ``int(image_size * long / short)``),
    quantise to uint8 values like PIL does and centre crop ``image_size`` x ``image_size``. Frames already
    ``image_size`` x ``image_size`` come back unchanged, so preprocessing the result again normalises only.

    Args:
        frames: uint8 tensor [n, 3, H, W] (RGB) or [n, 1, H, W] (grayscale, repeated to RGB).
        image_size: output side S.

    Returns:
        uint8 tensor [n, 3, S, S].
    """
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a torch.Tensor, got {type(frames).__name__}")
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (decoded pixel values 0..255), got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[1] not in (1, 3):
        raise ValueError(f"frames must have shape [n, 3, H, W] (or [n, 1, H, W]), got {list(frames.shape)}")
    size = positive_int("image_size", image_size)
    n, _, height, width = frames.shape
    if height < 1 or width < 1:
        raise ValueError(f"frames have an empty spatial size {height}x{width}")
    if height <= width:
        new_h, new_w = size, int(size * width / height)
    else:
        new_h, new_w = int(size * height / width), size
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    out = torch.empty((n, 3, size, size), dtype=torch.uint8)
    for i in range(0, n, _PREPROCESS_CHUNK):
        x = frames[i : i + _PREPROCESS_CHUNK]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if (new_h, new_w) != (height, width):
            x = x.to(torch.float32)
            x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
            # The reference resizes a PIL uint8 image: clip bicubic overshoot and round like it.
            x = x.clamp_(0.0, 255.0).round_()
        out[i : i + _PREPROCESS_CHUNK] = x[:, :, top : top + size, left : left + size]
    return out


def preprocess_frames(frames: torch.Tensor, image_size: int = 224) -> torch.Tensor:
    """CLIP preprocessing of decoded frames, as the reference (and CLIPImageProcessor) does it.

    :func:`resize_crop_frames` (short side to ``image_size``, bicubic antialiased, PIL-like uint8 rounding, centre
    crop), then scaling to [0, 1] and normalisation with the CLIP mean/std.

    Args:
        frames: uint8 tensor [n, 3, H, W] (RGB) or [n, 1, H, W] (grayscale, repeated to RGB).
        image_size: output side S.

    Returns:
        float32 tensor [n, 3, S, S].
    """
    cropped = resize_crop_frames(frames, image_size)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    out = torch.empty(cropped.shape, dtype=torch.float32)
    for i in range(0, cropped.shape[0], _PREPROCESS_CHUNK):
        # (x - mean) / std written in place: the same float32 operations, one temporary fewer.
        torch.sub(cropped[i : i + _PREPROCESS_CHUNK].to(torch.float32), mean, out=out[i : i + _PREPROCESS_CHUNK])
        out[i : i + _PREPROCESS_CHUNK].div_(std)
    return out
