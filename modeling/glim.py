"""GLIM (text-guided global-local aggregation) and the four GLCCL scores, computed exactly without materialising
the word-guided video features.

GLIM aggregates a video's frames with softmax weights given by a text query: the sentence gives one video summary
`v[a, b]`, every token position gives one "frame" summary `g[a, b, t]`. Each summary is a weighted sum of the frames
of video b, so every dot product with it is a weighted sum of query-frame dot products, and its squared norm is
`weights^T G_b weights` with the per-video Gram matrix `G_b = X_b X_b^T`. The scorer below therefore needs only
[texts, videos, frames, queries] dot products and [videos, frames, frames] Gram matrices, never the
[texts, videos, words, dim] tensor (65 GB in fp32 for 1k x 1k), and it is exact: the same arithmetic regrouped.

Its cost is dominated by the one GEMM of the text-side queries against the frames; the rest is laid out for the
CPU: frames are never the last axis of a reduction (reductions along a 12-long last axis are slow), and the
frame-word pools run on cache-sized chunks.

Names follow the configuration: `glim_temperature` (tau = 5) divides GLIM's frame logits, `interaction_temperature`
(0.01) divides the similarities inside the four scores' attention pools, and `block_size` is the number of texts
(and of videos) scored together. docs/method.md in the glccl-hf repository states the method equation by equation
and maps each step to the function below that computes it.
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import torch
from torch import nn

from .checks import positive_int


def _score_dtype(dtype: torch.dtype) -> torch.dtype:
    # The scores are sums of sharp softmaxes (interaction temperature 0.01): half precision is promoted to float32.
    return torch.promote_types(dtype, torch.float32)


class GLCCLScoreMatrices(nn.Module):
    r"""
    The eight learnable matrices of the four scores, identity-initialised, named by role (the model holds them as
    `score_heads`, the attribute name its checkpoints' weights are saved under).

    `[dim, dim]` projections: `video_sentence_projection` (the paper's W_g) and `frame_word_projection` (W_loc).
    `[words, words]` mixing matrices of the attention pools: `video_word_pool` (W_wl), `sentence_frame_pool` (W_wfl),
    `frame_word_word_pool` (W_wm), `frame_word_frame_pool` (W_wfm), `frame_word_video_pool` (W_wm2) and
    `frame_word_sentence_pool` (W_wfm2).
    """

    # Each matrix's symbol in the paper's notation and the reference implementation's parameter name.
    paper_symbols = {
        "video_sentence_projection": "W_g",
        "frame_word_projection": "W_loc",
        "video_word_pool": "W_wl",
        "sentence_frame_pool": "W_wfl",
        "frame_word_word_pool": "W_wm",
        "frame_word_frame_pool": "W_wfm",
        "frame_word_video_pool": "W_wm2",
        "frame_word_sentence_pool": "W_wfm2",
    }

    def __init__(self, projection_dim: int, max_words: int) -> None:
        super().__init__()
        self.video_sentence_projection = nn.Parameter(torch.eye(projection_dim))
        self.frame_word_projection = nn.Parameter(torch.eye(projection_dim))
        self.video_word_pool = nn.Parameter(torch.eye(max_words))
        self.sentence_frame_pool = nn.Parameter(torch.eye(max_words))
        self.frame_word_word_pool = nn.Parameter(torch.eye(max_words))
        self.frame_word_frame_pool = nn.Parameter(torch.eye(max_words))
        self.frame_word_video_pool = nn.Parameter(torch.eye(max_words))
        self.frame_word_sentence_pool = nn.Parameter(torch.eye(max_words))


def __getattr__(name: str) -> object:
    # The class's former name, resolved on access (PEP 562) so that using it warns.
    if name == "GLCCLScoreHeads":
        message = "GLCCLScoreHeads is deprecated: it holds eight matrices, not heads; use GLCCLScoreMatrices"
        warnings.warn(message, FutureWarning, stacklevel=2)
        return GLCCLScoreMatrices
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def attention_pool(
    logits: torch.Tensor, mixing: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1
) -> torch.Tensor:
    r"""
    X-CLIP's attention over similarities along axis `dim` (the last or the second to last), in units of the
    interaction temperature T: `sum_x z * (softmax_x(z) @ mixing)` with `z = similarity / T`, where `@ mixing`
    right-multiplies the softmax axis by the `[n, n]` matrix. (Multiplying the result by T gives the score; keeping
    T as the unit saves a pass over the large tensors, and a pooled value can feed the next pool directly.) Pooling
    a `[..., u, t]` tensor along `dim=-2` equals pooling its transpose along the last axis, without the transposed
    copy.

    `mask` (broadcastable to `logits`, 1 = keep) removes positions from the softmax and from the sum.
    """
    if dim not in (-1, -2):
        raise ValueError(f"attention_pool pools along dim -1 or -2, got {dim}")
    logits_for_softmax = logits if mask is None else logits.masked_fill(mask == 0, float("-inf"))
    weights = logits_for_softmax.softmax(dim)
    # Right-multiplying the second-to-last axis by `mixing` is a left multiplication by its transpose.
    mixed = weights @ mixing if dim == -1 else mixing.transpose(0, 1) @ weights
    if mask is not None:
        mixed = mixed * mask
    return (logits * mixed).sum(dim)


def glim_weights(
    query_frame_dots: torch.Tensor,
    video_mask: torch.Tensor,
    temperature: float,
    text_guided: bool,
    mask_padded_frames: bool,
) -> torch.Tensor:
    r"""
    GLIM's frame weights: softmax of `query_frame_dots / temperature` over the frames axis, the second to last
    (`[..., frames, queries]`; reductions along a short last axis are slow on CPU). `temperature` is the config's
    `glim_temperature`.

    `video_mask` (1 on real frames) is broadcastable to `query_frame_dots`. Padded frames join the softmax unless
    `mask_padded_frames` (the reference masks nothing). With `text_guided=False` the weights are uniform over the
    (valid) frames.
    """
    valid = video_mask.to(torch.bool) if mask_padded_frames else torch.ones_like(video_mask, dtype=torch.bool)
    if not text_guided:
        valid = valid.expand_as(query_frame_dots).to(query_frame_dots.dtype)
        return valid / valid.sum(-2, keepdim=True)
    logits = query_frame_dots / temperature
    if mask_padded_frames:
        logits = logits.masked_fill(~valid, float("-inf"))
    return logits.softmax(-2)


def _no_autocast(device: torch.device) -> torch.autocast:
    # Autocast would run the score matmuls in half precision again; the scorer keeps its own dtype.
    return torch.autocast(device_type=device.type, enabled=False)


def _summary_norm(weights: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    r"""`||sum_f weights[..., f, k] X_bf||` from the Gram matrix: weights `[texts, videos, frames, summaries]`,
    gram `[videos, frames, frames]` -> `[texts, videos, summaries]`."""
    quadratic = ((gram @ weights) * weights).sum(-2)
    # Round-off can make a tiny square negative; the floor keeps sqrt and its gradient finite.
    return quadratic.clamp_min(torch.finfo(quadratic.dtype).tiny).sqrt()


class GLIMScorer:
    r"""
    Scores every text against every video with GLIM and the four GLCCL scores, in blocks of `block_size` texts x
    `block_size` videos.

    Built once from the (un-normalised) features; `parts()` returns `[4, texts, videos]`: video-sentence,
    video-word, sentence-frame and frame-word scores, each multiplied by the logit scale. Blocks bound the memory to
    `O(block_size^2 * words^2)` and the result is differentiable.

    Args:
        sentence_embeds: `[texts, dim]`.
        word_embeds: `[texts, words, dim]`.
        word_mask: `[texts, words]`, 1 for real tokens.
        frame_embeds: `[videos, frames, dim]`, after the temporal module.
        video_mask: `[videos, frames]`, 1 for real frames.
        score_matrices: the eight score matrices (`GLCCLScoreMatrices`).
        logit_scale: 0-d tensor, `exp(logit_scale)` already clamped.
    """

    # Elements of one [block texts, block videos, words, words] tensor. On CPU 32 x 32 pairs at 32 words: a GEMM
    # block large enough to run near the CPU's peak (64 x 64 measured no faster); on an accelerator large enough to
    # amortise kernel launches over many pairs (181 x 181 pairs at 32 words, about 130 MB a tensor in float32).
    cpu_block_budget = 2**20
    accelerator_block_budget = 2**25
    # Elements of one [texts, videos, words, words] tensor of the frame-word score on CPU: 512 KB in float32, half
    # a core's L2 cache, so the pools' several passes over it do not go to memory.
    cpu_cache_budget = 2**17

    def __init__(
        self,
        sentence_embeds: torch.Tensor,
        word_embeds: torch.Tensor,
        word_mask: torch.Tensor,
        frame_embeds: torch.Tensor,
        video_mask: torch.Tensor,
        score_matrices: GLCCLScoreMatrices,
        logit_scale: torch.Tensor,
        *,
        glim_temperature: float = 5.0,
        interaction_temperature: float = 0.01,
        mask_padded_words: bool = False,
        mask_padded_frames: bool = False,
        text_guided: bool = True,
    ) -> None:
        num_words = word_embeds.shape[1]
        if score_matrices.video_word_pool.shape[0] != num_words:
            raise ValueError(
                f"word_embeds has {num_words} token positions but the score matrices are sized for "
                f"max_words={score_matrices.video_word_pool.shape[0]}; pad or truncate texts to max_words"
            )
        self.num_words = num_words
        self.glim_temperature = glim_temperature
        self.interaction_temperature = interaction_temperature
        self.mask_padded_words = mask_padded_words
        self.mask_padded_frames = mask_padded_frames
        self.text_guided = text_guided
        self.dtype = _score_dtype(frame_embeds.dtype)
        self.logit_scale = logit_scale.to(self.dtype)
        with _no_autocast(frame_embeds.device):
            self._prepare_matrices(score_matrices)
            self._prepare_texts(sentence_embeds, word_embeds, word_mask)
            self._prepare_videos(frame_embeds, video_mask)

    def _prepare_matrices(self, score_matrices: GLCCLScoreMatrices) -> None:
        """The eight matrices in the score dtype, cast once per call: a half-precision model holds them in its own
        dtype, and the scores are computed in float32."""
        cast = {name: matrix.to(self.dtype) for name, matrix in score_matrices.named_parameters()}
        self.matrices = SimpleNamespace(**cast)

    def _prepare_texts(self, sentence_embeds: torch.Tensor, word_embeds: torch.Tensor, word_mask: torch.Tensor) -> None:
        """Per-text quantities shared by every block: norms and the query matrix."""
        dtype = self.dtype
        sentence = sentence_embeds.to(dtype)
        words = word_embeds.to(dtype)
        self.word_mask = word_mask.to(dtype)
        self.sentence_norm = sentence.norm(dim=-1)  # [texts]
        self.word_norm = words.norm(dim=-1)  # [texts, words]
        if self.mask_padded_words:
            # Padding takes no part in any score, so whatever its features are (even zeros) must stay finite.
            words = words * self.word_mask[..., None]
            self.word_norm = self.word_norm.masked_fill(self.word_mask == 0, 1.0)
        # One query matrix per text, all dotted with frames at once: s^ W_g, the raw words, the raw sentence and
        # w^ W_loc. In this order GLIM's queries (words, sentence) are adjacent, and so are the queries dotted with
        # the sentence-guided summary (s^ W_g, words) and with the word-guided ones (sentence, w^ W_loc).
        projected_sentence = (sentence / self.sentence_norm[:, None]) @ self.matrices.video_sentence_projection
        projected_words = (words / self.word_norm[..., None]) @ self.matrices.frame_word_projection
        self.text_queries = torch.cat([projected_sentence[:, None], words, sentence[:, None], projected_words], dim=1)
        self.text_queries_t = self.text_queries.flatten(0, 1).t()  # [dim, texts * queries], the GEMM's operand

    def _prepare_videos(self, frame_embeds: torch.Tensor, video_mask: torch.Tensor) -> None:
        """Per-video quantities shared by every block: the frames and their Gram matrices."""
        self.frames = frame_embeds.to(self.dtype)
        self.video_mask = video_mask
        self.gram = self.frames @ self.frames.transpose(1, 2)  # [videos, frames, frames]

    @property
    def queries_per_text(self) -> int:
        return self.text_queries.shape[1]

    @property
    def num_texts(self) -> int:
        return self.text_queries.shape[0]

    @property
    def num_videos(self) -> int:
        return self.frames.shape[0]

    def default_block_size(self) -> int:
        """Texts (and videos) per block when `parts()` is given none: the device's budget of elements per
        `[block, block, words, max(words, frames)]` tensor."""
        per_pair = self.num_words * max(self.num_words, self.frames.shape[1])
        on_cpu = self.frames.device.type == "cpu"
        budget = self.cpu_block_budget if on_cpu else self.accelerator_block_budget
        return max(1, int(math.sqrt(budget / per_pair)))

    def frame_word_chunk(self, block_videos: int) -> int:
        """Texts per chunk of the frame-word score: on CPU, a [chunk, block_videos, words, words] tensor fits the
        cache budget (measured: 4 texts x 32 videos pools twice as fast as 32 x 32); elsewhere the whole block."""
        if self.frames.device.type != "cpu":
            return self.num_texts
        return max(1, self.cpu_cache_budget // (block_videos * self.num_words * self.num_words))

    def parts(self, block_size: int | None = None) -> torch.Tensor:
        """All four score matrices, `[4, texts, videos]`, computed block by block."""
        size = self.default_block_size() if block_size is None else positive_int("block_size", block_size)
        rows = []
        with _no_autocast(self.frames.device):
            for t0 in range(0, self.num_texts, size):
                texts = slice(t0, t0 + size)
                row = [self._block(texts, slice(v0, v0 + size)) for v0 in range(0, self.num_videos, size)]
                rows.append(torch.cat(row, dim=-1))
        return torch.cat(rows, dim=1)

    def _frame_word_first_pools(
        self, frame_word_sim_t: torch.Tensor, mask_words: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""
        The two first-level pools of the frame-word score, `per_guided_frame [a, b, u]` (pooled over the words t,
        one value per word-guided frame u) and `per_word [a, b, t]` (pooled over the guided frames u, one value per
        word t), from F / T held transposed, `frame_word_sim_t[a, b, u, t] = <w^_t W_loc, g^_u> / T` with T the
        interaction temperature.

        per_guided_frame pools along the last axis, per_word along the second to last, so one layout serves both.
        On CPU this runs over chunks of texts whose `[texts, videos, words, words]` tensors stay in cache (the pools
        make several passes over them).
        """
        matrices = self.matrices
        chunk = self.frame_word_chunk(frame_word_sim_t.shape[1])
        per_guided_frame, per_word = [], []
        for r0 in range(0, frame_word_sim_t.shape[0], chunk):
            rows = slice(r0, r0 + chunk)
            mask = None if mask_words is None else mask_words[rows]  # [a, 1, words]
            mask_t = None if mask is None else mask[:, :, None, :]  # [a, 1, 1, t]
            mask_u = None if mask is None else mask[:, :, :, None]  # [a, 1, u, 1]
            per_guided_frame.append(attention_pool(frame_word_sim_t[rows], matrices.frame_word_word_pool, mask_t))
            per_word.append(attention_pool(frame_word_sim_t[rows], matrices.frame_word_frame_pool, mask_u, dim=-2))
        return torch.cat(per_guided_frame), torch.cat(per_word)

    def _query_frame_dots(self, texts: slice, videos: slice) -> torch.Tensor:
        """Every text-side query against every frame, one GEMM: `[block texts, block videos, frames, queries]`."""
        frames = self.frames[videos]
        queries_t = self.text_queries_t[:, texts.start * self.queries_per_text : texts.stop * self.queries_per_text]
        dots = frames.flatten(0, 1) @ queries_t  # [videos * frames, texts * queries]
        num_videos, num_frames = frames.shape[:2]
        dots = dots.view(num_videos, num_frames, -1, self.queries_per_text)
        return dots.permute(2, 0, 1, 3).contiguous()

    def _block(self, texts: slice, videos: slice) -> torch.Tensor:
        """The four scores of one block: `[4, block texts, block videos]`, in the numbered steps of docs/method.md
        (glccl-hf repository): GLIM, then scores 1 to 4."""
        nw = self.num_words
        matrices = self.matrices
        # [a, b, frames, queries]; queries: s^ W_g, words w_1..w_Nw, sentence s, w^_1 W_loc..w^_Nw W_loc.
        dots = self._query_frame_dots(texts, videos)

        # GLIM on un-normalised features, one softmax over frames for all its queries: the word-guided weights
        # (beta, one column per word u) and the sentence-guided weights (alpha, the last column).
        frame_valid = self.video_mask[videos][None, :, :, None]  # [1, b, frames, 1]
        glim = glim_weights(
            dots[..., 1 : nw + 2], frame_valid, self.glim_temperature, self.text_guided, self.mask_padded_frames
        )  # [a, b, frames, words + 1]
        summary_norm = _summary_norm(glim, self.gram[videos])  # ||g[a, b, u]||, then ||v[a, b]||
        beta, alpha = glim[..., :nw], glim[..., nw]
        guided_norm, video_norm = summary_norm[..., :nw], summary_norm[..., nw]

        # Every similarity below is divided by the interaction temperature T, the unit of the pools' softmaxes.
        temperature = self.interaction_temperature
        inv_word_norm = 1 / (self.word_norm[texts][:, None, :] * temperature)  # [a, 1, words]
        word_mask = self.word_mask[texts]
        mask_words = word_mask[:, None, :] if self.mask_padded_words else None  # [a, 1, words]

        # Dot products with the summaries are GLIM-weighted sums of query-frame dot products: <s^ W_g, v> and
        # <w_t, v> from alpha; <s, g^_u> and <w^_t W_loc, g^_u> from beta / ||g_u||, whose dot products are with the
        # normalised summaries g^_u (here also divided by T).
        video_dots = (alpha[..., None] * dots[..., : nw + 1]).sum(-2)  # [a, b, 1 + words]
        beta_unit = beta / (guided_norm[..., None, :] * temperature)  # [a, b, frames, u]
        sentence_guided_dots = (beta_unit * dots[..., nw + 1, None]).sum(-2)  # [a, b, u]
        frame_word_sim_t = beta_unit.transpose(-1, -2) @ dots[..., nw + 2 :]  # F^T: [a, b, u, t]

        # 1. video-sentence: (s^ W_g) . v^
        video_sentence = video_dots[..., 0] / video_norm

        # 2. video-word: M[a, b, t] = <v^, w^_t>, pooled over words.
        video_word_sim = video_dots[..., 1:] * (inv_word_norm / video_norm[..., None])
        video_word = attention_pool(video_word_sim, matrices.video_word_pool, mask_words)

        # 3. sentence-frame: N[a, b, u] = <s^, g^_u>, pooled over the word-guided frames.
        sentence_guided_sim = sentence_guided_dots / self.sentence_norm[texts][:, None, None]  # T is in beta_unit
        sentence_frame = attention_pool(sentence_guided_sim, matrices.sentence_frame_pool, mask_words)

        # 4. frame-word: F[a, b, t, u] = <w^_t W_loc, g^_u>, pooled over words t for each guided frame u
        # (per_guided_frame) and over guided frames u for each word t (per_word); each is pooled again.
        per_guided_frame, per_word = self._frame_word_first_pools(frame_word_sim_t, mask_words)
        sentence_to_frame = attention_pool(per_guided_frame, matrices.frame_word_sentence_pool, mask_words)
        video_to_word = attention_pool(per_word, matrices.frame_word_video_pool, mask_words)
        frame_word = (sentence_to_frame + video_to_word) / 2

        unit_scores = torch.stack([video_sentence / temperature, video_word, sentence_frame, frame_word])
        return (self.logit_scale * temperature) * unit_scores


__all__ = ["GLCCLScoreMatrices", "GLIMScorer", "attention_pool", "glim_weights"]
