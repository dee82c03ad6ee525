"""The cheap stages in front of the exact GLCCL score.

Stage 1 (max over frames): every valid frame is one unit vector (its normalised feature), a query is its normalised
sentence feature, and a segment's stage-1 score is its best frame's cosine. GLIM's sentence term lies between the
mean and the max over frames of the sentence-frame similarity and its softmax leans to the max; measured on the
trained demo model, the max proxy recovers the exact top-10 far better than the mean of normalised frames
(`python -m bench.search`, bench/search_recall.py). Frames are searched exactly (flat) for small collections and
with a faiss IVF-PQ index above `ann_threshold` segments.

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


def frame_vectors(frame_embeds: torch.Tensor, video_mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    r"""Stage-1 vectors of segments `[segments, frames, dim]`: the normalised valid frames `[vectors, dim]` float32
    and, for each, the row of its segment `[vectors]` (a segment's frames are consecutive)."""
    mask = video_mask.bool().cpu()
    frames = torch.nn.functional.normalize(frame_embeds.float().cpu(), dim=-1)
    rows = torch.arange(frame_embeds.shape[0])[:, None].expand_as(mask)
    return frames[mask].numpy(), rows[mask].numpy()


def segment_max(scores: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each segment's best frame score: `(scores, segment ids)` of the distinct `owners`, from per-frame `scores`."""
    order = np.lexsort((-scores, owners))
    owners, scores = owners[order], scores[order]
    first = np.ones(len(owners), dtype=bool)
    first[1:] = owners[1:] != owners[:-1]
    return scores[first], owners[first]


def query_vectors(sentence_embeds: torch.Tensor) -> np.ndarray:
    """First-stage query vectors `[texts, dim]` float32: the normalised sentence features."""
    return torch.nn.functional.normalize(sentence_embeds.float(), dim=-1).cpu().numpy()


def sentence_frame_weights(
    model: GLCCLModel, sentence: torch.Tensor, frame_embeds: torch.Tensor, video_mask: torch.Tensor
) -> torch.Tensor:
    r"""GLIM's sentence-guided frame weights `[segments, frames]` of one query `sentence` `[dim]` over
    `frame_embeds` `[segments, frames, dim]` (the weights the exact score uses for its video-sentence term)."""
    config = model.config
    dots = (frame_embeds.float() @ sentence.float())[..., None]  # [segments, frames, 1 query]: glim_weights' layout
    weights = glim_weights(
        dots, video_mask[..., None], config.glim_temperature, config.text_guided, config.mask_padded_frames
    )
    return weights[..., 0]


def best_frames(weights: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
    """Index of the valid frame with the largest weight, per segment: `[segments, frames] -> [segments]`."""
    return weights.masked_fill(video_mask == 0, -1.0).argmax(-1)


def video_sentence_scores(
    model: GLCCLModel, sentence: torch.Tensor, frame_embeds: torch.Tensor, video_mask: torch.Tensor
) -> torch.Tensor:
    r"""Stage 2: the sentence-guided video-sentence score of one query `sentence` `[dim]` against `[segments, frames,
    dim]`: `<s^ W_g, v^>` with `v` the GLIM-weighted sum of the frames. `[segments]`, without the logit scale."""
    frames = frame_embeds.float()
    weights = sentence_frame_weights(model, sentence, frames, video_mask)
    video = torch.nn.functional.normalize((weights[..., None] * frames).sum(1), dim=-1)
    projection = model.score_matrices.video_sentence_projection.detach().float()
    query = torch.nn.functional.normalize(sentence.float(), dim=-1) @ projection
    return video @ query


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best `(scores, ids)`, best first."""
    if len(scores) > k:
        keep = np.argpartition(-scores, k - 1)[:k]
        scores, ids = scores[keep], ids[keep]
    order = np.argsort(-scores, kind="stable")
    return scores[order], ids[order]


# Frame vectors the IVF-PQ quantizers are trained on (a random sample of segments' frames).
ANN_TRAIN_VECTORS = 32768


def ann_factory(count: int, dim: int) -> str:
    """The faiss index string for `count` frame vectors: IVF with about sqrt(count) / 2 lists (a power of two, 64 to
    4096), PQ with one byte per 16 dimensions (32 bytes at dim 512, keeping a segment within 14 KB)."""
    lists = 2 ** min(12, max(6, round(math.log2(max(1.0, math.sqrt(count) / 2)))))
    sub_quantizers = max(1, dim // 16)
    while dim % sub_quantizers:
        sub_quantizers -= 1
    return f"IVF{lists},PQ{sub_quantizers}"


def new_ann(count: int, dim: int, training: np.ndarray) -> faiss.Index:
    """An empty IVF-PQ inner-product index sized for `count` vectors, trained on `training` `[n, dim]`."""
    index = faiss.index_factory(dim, ann_factory(count, dim), faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(training, dtype=np.float32))
    return index


def describe_ann(index: faiss.Index) -> str:
    """`IVF{lists},PQ{bytes}` of an IVF-PQ index."""
    ivf = faiss.extract_index_ivf(index)
    return f"IVF{ivf.nlist},PQ{faiss.downcast_index(ivf).pq.M}"


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
