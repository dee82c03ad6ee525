"""Scorer inputs at ViT-B/32 sizes (32 words, 12 frames, D = 512): random features shaped like CLIP's."""

from __future__ import annotations

import torch
from glccl_hf.modeling.modeling_glccl import GLCCLTextFeatures, GLCCLVideoFeatures

WORDS, FRAMES, DIM = 32, 12, 512


def clip_like_features(num_texts: int, num_videos: int, seed: int = 0) -> tuple[GLCCLTextFeatures, GLCCLVideoFeatures]:
    """Text `[texts, WORDS, DIM]` and video `[videos, FRAMES, DIM]` features on the CPU in fp32: a shared component
    plus noise, as real CLIP embeddings are far from orthogonal, with 4 to 32 words and 3 to 12 frames."""
    generator = torch.Generator().manual_seed(seed)
    common = torch.randn(DIM, generator=generator)
    word_mask = torch.zeros(num_texts, WORDS, dtype=torch.long)
    for row, length in enumerate(torch.randint(4, WORDS + 1, (num_texts,), generator=generator).tolist()):
        word_mask[row, :length] = 1
    video_mask = torch.zeros(num_videos, FRAMES, dtype=torch.long)
    for row, count in enumerate(torch.randint(3, FRAMES + 1, (num_videos,), generator=generator).tolist()):
        video_mask[row, :count] = 1
    text = GLCCLTextFeatures(
        sentence_embeds=common + torch.randn(num_texts, DIM, generator=generator),
        word_embeds=common + torch.randn(num_texts, WORDS, DIM, generator=generator),
        word_mask=word_mask,
    )
    video = GLCCLVideoFeatures(
        frame_embeds=common + torch.randn(num_videos, FRAMES, DIM, generator=generator), video_mask=video_mask
    )
    return text, video


def to_device(features, device: torch.device | str, dtype: torch.dtype):
    """`features` (text or video) with the floating tensors in `dtype` on `device`, the masks moved only."""
    return type(features)(
        **{k: v.to(device, dtype=dtype) if v.is_floating_point() else v.to(device) for k, v in features.items()}
    )
