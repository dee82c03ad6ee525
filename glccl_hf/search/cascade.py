"""The cheap stages in front of the exact GLCCL score.

Stage 1 (first_stage vectors): a segment is one unit vector, the normalised mean of its normalised frame features;
a query is its normalised sentence feature. Their inner product is the mean over frames of the sentence-frame cosine,
a proxy for GLIM's sentence term (which lies between the mean and the max of the sentence-frame similarities). It is
searched exactly (flat) for small collections and with a faiss IVF-PQ index above `ann_threshold` segments.

Stage 2 (optional, `widen > 1`): GLIM's sentence-guided video-sentence score alone, about `frames x dim` per segment,
narrows stage 1's `widen x candidates` proposals to `candidates`.

Stage 3 is `GLCCLModel.similarity`, the exact fused score, on the `candidates` segments.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np
import torch

from ..modeling.glim import glim_weights
from ..modeling.modeling_glccl import GLCCLModel


def pooled_vectors(frame_embeds: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    r"""First-stage vectors `[segments, dim]`: the normalised mean of the normalised valid frames of
    `frame_embeds` `[segments, frames, dim]`."""
    frames = torch.nn.functional.normalize(frame_embeds.float(), dim=-1)
    weights = frame_mask.to(frames.dtype)[..., None]
    mean = (frames * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    return torch.nn.functional.normalize(mean, dim=-1)


def query_vectors(sentence_embeds: torch.Tensor) -> np.ndarray:
    """First-stage query vectors `[texts, dim]` float32: the normalised sentence features."""
    return torch.nn.functional.normalize(sentence_embeds.float(), dim=-1).cpu().numpy()


def sentence_frame_weights(
    model: GLCCLModel, sentence: torch.Tensor, frame_embeds: torch.Tensor, frame_mask: torch.Tensor
) -> torch.Tensor:
    r"""GLIM's sentence-guided frame weights `[segments, frames]` of one query `sentence` `[dim]` over
    `frame_embeds` `[segments, frames, dim]` (the weights the exact score uses for its video-sentence term)."""
    config = model.config
    dots = frame_embeds.float() @ sentence.float()
    return glim_weights(dots, frame_mask, config.glim_temperature, config.text_guided, config.mask_padded_frames)


def best_frames(weights: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Index of the valid frame with the largest weight, per segment: `[segments, frames] -> [segments]`."""
    return weights.masked_fill(frame_mask == 0, -1.0).argmax(-1)


def video_sentence_scores(
    model: GLCCLModel, sentence: torch.Tensor, frame_embeds: torch.Tensor, frame_mask: torch.Tensor
) -> torch.Tensor:
    r"""Stage 2: the sentence-guided video-sentence score of one query `sentence` `[dim]` against `[segments, frames,
    dim]`: `<s^ W_g, v^>` with `v` the GLIM-weighted sum of the frames. `[segments]`, without the logit scale."""
    frames = frame_embeds.float()
    weights = sentence_frame_weights(model, sentence, frames, frame_mask)
    video = torch.nn.functional.normalize((weights[..., None] * frames).sum(1), dim=-1)
    projection = model.score_heads.video_sentence_projection.detach().float()
    query = torch.nn.functional.normalize(sentence.float(), dim=-1) @ projection
    return video @ query


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best `(scores, ids)`, best first."""
    if len(scores) > k:
        keep = np.argpartition(-scores, k - 1)[:k]
        scores, ids = scores[keep], ids[keep]
    order = np.argsort(-scores, kind="stable")
    return scores[order], ids[order]


def ann_factory(count: int, dim: int) -> str:
    """The faiss index string for `count` vectors: IVF with about sqrt(count) lists (a power of two), PQ with one
    byte per 8 dimensions."""
    lists = 2 ** round(math.log2(max(64, math.sqrt(count))))
    sub_quantizers = max(1, dim // 8)
    while dim % sub_quantizers:
        sub_quantizers -= 1
    return f"IVF{lists},PQ{sub_quantizers}"


def build_ann(vectors: np.ndarray, ids: np.ndarray, *, train_size: int = 65536, seed: int = 0) -> faiss.Index:
    """An IVF-PQ inner-product index over `vectors` `[n, dim]` (float32) with the given int64 `ids`, trained on a
    random sample of at most `train_size` of them."""
    count, dim = vectors.shape
    index = faiss.index_factory(dim, ann_factory(count, dim), faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = rng.choice(count, size=min(count, train_size), replace=False)
    index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
    for start in range(0, count, 65536):
        index.add_with_ids(
            np.ascontiguousarray(vectors[start : start + 65536], dtype=np.float32), ids[start : start + 65536]
        )
    return index


def write_ann(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read_ann(path: Path) -> faiss.Index:
    from .storage import IndexFormatError

    try:
        return faiss.read_index(str(path))
    except RuntimeError as err:
        raise IndexFormatError(f"{path}: corrupt or truncated ANN index ({str(err).splitlines()[0]})") from err


def search_ann(index: faiss.Index, queries: np.ndarray, count: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    """`(scores, ids)` `[queries, count]`; missing results have id -1."""
    faiss.extract_index_ivf(index).nprobe = nprobe
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), count)
