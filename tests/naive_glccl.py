"""A deliberately naive, obviously-correct GLCCL scorer and loss, used as the oracle in tests.

Nothing here is meant to be fast or memory-light: the word-guided video summaries g [Bt, Bv, Nw, D] and the
frame-word similarities F [Bt, Nw, Bv, Nw] are materialised in full, and every score is written one formula per
line with explicit einsum strings. Index letters used throughout (matching docs/method.md):

    a  text (Bt)            b  video (Bv)            d  feature (D)         f  frame (Nf)
    t  token of text a (Nw) u  token of text a (Nw), the axis of the word-guided summaries g[a, b, u]
    s  the token axis after right-multiplying a softmax over t (or u) by an [Nw, Nw] matrix

"softmax_x(Z / T) @ W" (T the interaction temperature, 0.01) means: softmax over axis x, then contract that axis
with the ROW index of W (Q[..., s] = sum_x P[..., x] * W[x, s]); the score is then sum_s Z[..., s] * Q[..., s].
This is the orientation of the reference implementation (JingXiaolun/GLCCL, modules/modeling_glccl.py).

Masking options (both off by default, like the reference):
- mask_padded_frames: GLIM's softmaxes over f give weight 0 to padded frames (also the uniform weights when
  text_guided=False become 1/n_valid over valid frames).
- mask_padded_words: every softmax over a token axis (t or u, both belonging to text a) gives weight 0 to padded
  tokens, and every sum over a token axis after the W product (the s sums) skips padded positions. Skipping is
  done with torch.where, so even non-finite values at padded positions cannot leak into the forward result.
A video whose frames are all padded (with mask_padded_frames) or a text whose tokens are all padded (with
mask_padded_words) gives NaN here: such inputs do not occur in practice and are not handled.

The module has no test_ functions, so pytest does not collect it; tests import it as `naive_glccl`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf

MATRIX_KEYS = ("W_g", "W_loc", "W_wl", "W_wfl", "W_wm", "W_wfm", "W_wm2", "W_wfm2")


def identity_matrices(dim: int, num_words: int, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """The eight score matrices at their initial value (all identities), keyed by their docs/method.md symbols."""
    mats = {"W_g": torch.eye(dim, dtype=dtype), "W_loc": torch.eye(dim, dtype=dtype)}
    for key in MATRIX_KEYS[2:]:
        mats[key] = torch.eye(num_words, dtype=dtype)
    return mats


def naive_glim(s, w, X, video_mask, *, mask_padded_frames=False, text_guided=True, glim_temperature=5.0):
    """GLIM on un-normalised features. Returns (v_hat [Bt, Bv, D], g_hat [Bt, Bv, Nw, D]), both L2-normalised."""
    Bt, Nw = w.shape[:2]
    Bv, Nf = X.shape[:2]
    frame_valid = video_mask.bool() if mask_padded_frames else torch.ones(Bv, Nf, dtype=torch.bool, device=X.device)

    if text_guided:
        sent_frame_logits = torch.einsum("ad,bfd->abf", s, X) / glim_temperature  # [Bt, Bv, Nf]
        sent_frame_logits = sent_frame_logits.masked_fill(~frame_valid[None, :, :], float("-inf"))
        alpha = torch.softmax(sent_frame_logits, dim=-1)  # [Bt, Bv, Nf], over f

        word_frame_logits = torch.einsum("atd,bfd->abtf", w, X) / glim_temperature  # [Bt, Bv, Nw, Nf]
        word_frame_logits = word_frame_logits.masked_fill(~frame_valid[None, :, None, :], float("-inf"))
        beta = torch.softmax(word_frame_logits, dim=-1)  # [Bt, Bv, Nw, Nf], over f
    else:
        uniform = frame_valid.to(X.dtype) / frame_valid.to(X.dtype).sum(dim=-1, keepdim=True)  # [Bv, Nf]
        alpha = uniform[None, :, :].expand(Bt, Bv, Nf)
        beta = uniform[None, :, None, :].expand(Bt, Bv, Nw, Nf)

    v = torch.einsum("abf,bfd->abd", alpha, X)  # [Bt, Bv, D]
    g = torch.einsum("abtf,bfd->abtd", beta, X)  # [Bt, Bv, Nw, D], materialised on purpose
    v_hat = v / v.norm(dim=-1, keepdim=True)
    g_hat = g / g.norm(dim=-1, keepdim=True)
    return v_hat, g_hat


def naive_glccl_scores(
    s,
    w,
    word_mask,
    X,
    video_mask,
    mats: dict,
    logit_scale,
    *,
    mask_padded_words=False,
    mask_padded_frames=False,
    text_guided=True,
    glim_temperature=5.0,
    interaction_temperature=0.01,
):
    """GLCCL's four scores and their mean.

    s [Bt, D], w [Bt, Nw, D], word_mask [Bt, Nw], X [Bv, Nf, D], video_mask [Bv, Nf] (un-normalised features);
    mats: dict with keys MATRIX_KEYS; logit_scale: lambda, already exp'd (float or 0-d tensor).
    Returns (fused [Bt, Bv], parts [4, Bt, Bv]) with parts in the order (vs, vw, sf, fw).
    """
    Bt, Nw = w.shape[:2]
    T = interaction_temperature
    lam = torch.as_tensor(logit_scale, dtype=s.dtype, device=s.device)
    neg_inf = float("-inf")
    # tok[a, t]: True where token t of text a takes part (every token when mask_padded_words is off).
    tok = word_mask.bool() if mask_padded_words else torch.ones(Bt, Nw, dtype=torch.bool, device=w.device)
    zero = torch.zeros((), dtype=s.dtype, device=s.device)

    v_hat, g_hat = naive_glim(s, w, X, video_mask, mask_padded_frames=mask_padded_frames,
                              text_guided=text_guided, glim_temperature=glim_temperature)
    s_hat = s / s.norm(dim=-1, keepdim=True)  # [Bt, D]
    w_hat = w / w.norm(dim=-1, keepdim=True)  # [Bt, Nw, D]

    # 1. video-sentence
    s_proj = torch.einsum("ad,de->ae", s_hat, mats["W_g"])  # s_hat @ W_g
    S_vs = lam * torch.einsum("ad,abd->ab", s_proj, v_hat)

    # 2. video-word: M[a, t, b], softmax over t, W_wl's row index is t
    M = torch.einsum("abd,atd->atb", v_hat, w_hat)
    P_vw = torch.softmax((M / T).masked_fill(~tok[:, :, None], neg_inf), dim=1)
    Q_vw = torch.einsum("atb,ts->asb", P_vw, mats["W_wl"])
    S_vw = lam * torch.where(tok[:, :, None], M * Q_vw, zero).sum(dim=1)

    # 3. sentence-frame: N[a, b, u], softmax over u, W_wfl's row index is u
    N = torch.einsum("ad,abud->abu", s_hat, g_hat)
    P_sf = torch.softmax((N / T).masked_fill(~tok[:, None, :], neg_inf), dim=2)
    Q_sf = torch.einsum("abu,us->abs", P_sf, mats["W_wfl"])
    S_sf = lam * torch.where(tok[:, None, :], N * Q_sf, zero).sum(dim=2)

    # 4. frame-word: F[a, t, b, u] (no renormalisation after W_loc)
    w_loc = torch.einsum("atd,de->ate", w_hat, mats["W_loc"])  # w_hat @ W_loc
    F = torch.einsum("atd,abud->atbu", w_loc, g_hat)
    tok_t = tok[:, :, None, None]  # broadcasts over F's t axis
    tok_u = tok[:, None, None, :]  # broadcasts over F's u axis

    # per_guided_frame[a, b, u]: softmax over t, W_wm's row index is t, sum over s (a t position)
    P_t = torch.softmax((F / T).masked_fill(~tok_t, neg_inf), dim=1)
    Q_t = torch.einsum("atbu,ts->asbu", P_t, mats["W_wm"])
    per_guided_frame = torch.where(tok_t, F * Q_t, zero).sum(dim=1)  # [Bt, Bv, Nw(u)]

    # per_word[a, t, b]: softmax over u, W_wfm's row index is u, sum over s (a u position)
    P_u = torch.softmax((F / T).masked_fill(~tok_u, neg_inf), dim=3)
    Q_u = torch.einsum("atbu,us->atbs", P_u, mats["W_wfm"])
    per_word = torch.where(tok_u, F * Q_u, zero).sum(dim=3)  # [Bt, Nw(t), Bv]

    # s2f[a, b]: softmax of per_guided_frame over u, W_wfm2's row index is u
    P_s2f = torch.softmax((per_guided_frame / T).masked_fill(~tok[:, None, :], neg_inf), dim=2)
    Q_s2f = torch.einsum("abu,us->abs", P_s2f, mats["W_wfm2"])
    s2f = torch.where(tok[:, None, :], per_guided_frame * Q_s2f, zero).sum(dim=2)

    # v2w[a, b]: softmax of per_word over t, W_wm2's row index is t
    P_v2w = torch.softmax((per_word / T).masked_fill(~tok[:, :, None], neg_inf), dim=1)
    Q_v2w = torch.einsum("atb,ts->asb", P_v2w, mats["W_wm2"])
    v2w = torch.where(tok[:, :, None], per_word * Q_v2w, zero).sum(dim=1)

    S_fw = lam * (s2f + v2w) / 2

    parts = torch.stack([S_vs, S_vw, S_sf, S_fw])  # [4, Bt, Bv]
    fused = (S_vs + S_vw + S_sf + S_fw) / 4
    return fused, parts


def naive_csc_loss(parts):
    """CSC: mean diagonal variance over mean (all B^2 entries, diagonal zeroed) off-diagonal variance.

    parts [4, B, B]. For B == 1 (or any case where the off-diagonal mean is exactly 0) the ratio is undefined
    (the reference divides by zero); this returns 0.0 then, as the lead's implementation does.
    """
    B = parts.shape[-1]
    V = torch.var(parts, dim=0)  # unbiased (divides by 3), [B, B]
    d = torch.diagonal(V).mean()
    off = V * (1 - torch.eye(B, dtype=V.dtype, device=V.device))
    o = off.sum() / B**2
    if B == 1 or o.item() == 0:
        return torch.zeros((), dtype=parts.dtype, device=parts.device)
    return d / o


def naive_glccl_loss(fused, parts, csc_weight):
    """Returns (total, nce, csc): symmetric InfoNCE on fused [B, B] plus csc_weight * CSC on parts [4, B, B]."""
    B = fused.shape[0]
    assert fused.shape == (B, B), "the loss needs Bt == Bv"
    labels = torch.arange(B, device=fused.device)
    nce = (nnf.cross_entropy(fused, labels) + nnf.cross_entropy(fused.T, labels)) / 2
    csc = naive_csc_loss(parts)
    total = nce + csc_weight * csc
    return total, nce, csc
