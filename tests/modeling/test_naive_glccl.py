"""Sanity tests of the naive GLCCL oracle (tests/naive_glccl.py) itself."""

import math

import pytest
import torch
from naive_glccl import MATRIX_KEYS, identity_matrices, naive_csc_loss, naive_glccl_loss, naive_glccl_scores, naive_glim

DT = torch.float64


def _inputs(Bt=3, Bv=2, Nw=5, Nf=4, D=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(Bt, D, generator=gen, dtype=DT)
    w = torch.randn(Bt, Nw, D, generator=gen, dtype=DT)
    X = torch.randn(Bv, Nf, D, generator=gen, dtype=DT)
    word_mask = torch.ones(Bt, Nw, dtype=torch.long)
    video_mask = torch.ones(Bv, Nf, dtype=torch.long)
    return s, w, word_mask, X, video_mask


def _random_mats(D, Nw, seed=1):
    """Non-symmetric matrices near the identity, so any transposed orientation gives a different answer."""
    gen = torch.Generator().manual_seed(seed)
    mats = {}
    for key in MATRIX_KEYS:
        n = D if key in ("W_g", "W_loc") else Nw
        mats[key] = torch.eye(n, dtype=DT) + 0.3 * torch.randn(n, n, generator=gen, dtype=DT)
    return mats


def _cos(a, b):
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


@pytest.mark.parametrize("text_guided", [True, False])
@pytest.mark.parametrize("masks", [False, True])
def test_shapes_and_finite(text_guided, masks):
    s, w, word_mask, X, video_mask = _inputs()
    word_mask[:, -2:] = 0
    video_mask[1, -1] = 0
    fused, parts = naive_glccl_scores(s, w, word_mask, X, video_mask, _random_mats(8, 5), 30.0,
                                      mask_padded_words=masks, mask_padded_frames=masks, text_guided=text_guided)
    assert fused.shape == (3, 2) and parts.shape == (4, 3, 2)
    assert fused.dtype == DT and parts.dtype == DT
    assert torch.isfinite(parts).all()
    torch.testing.assert_close(fused, parts.mean(dim=0))
    v_hat, g_hat = naive_glim(s, w, X, video_mask, mask_padded_frames=masks, text_guided=text_guided)
    assert v_hat.shape == (3, 2, 8) and g_hat.shape == (3, 2, 5, 8)


def test_single_frame_identity_matrices():
    """Nf = 1: every guided summary is that frame, so S_vs = S_sf = lambda * cos(s, frame) with identity matrices."""
    s, w, word_mask, X, video_mask = _inputs(Nf=1)
    lam = 17.0
    fused, parts = naive_glccl_scores(s, w, word_mask, X, video_mask, identity_matrices(8, 5), lam)
    expected = lam * _cos(s[:, None, :], X[None, :, 0, :])  # [Bt, Bv]
    torch.testing.assert_close(parts[0], expected)
    torch.testing.assert_close(parts[2], expected)  # N[a, b, u] is the same for every u; the softmax weights sum to 1
    v_hat, g_hat = naive_glim(s, w, X, video_mask)
    frame_hat = X[:, 0] / X[:, 0].norm(dim=-1, keepdim=True)
    torch.testing.assert_close(v_hat, frame_hat[None].expand(3, 2, 8))
    torch.testing.assert_close(g_hat, frame_hat[None, :, None].expand(3, 2, 5, 8))


def test_unguided_is_the_masked_mean_of_frames():
    s, w, word_mask, X, video_mask = _inputs()
    video_mask[0, 2:] = 0
    v_hat, g_hat = naive_glim(s, w, X, video_mask, mask_padded_frames=True, text_guided=False)
    means = torch.stack([X[0, :2].mean(0), X[1].mean(0)])
    means = means / means.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(v_hat, means[None].expand(3, 2, 8))
    torch.testing.assert_close(g_hat, means[None, :, None].expand(3, 2, 5, 8))


def test_padded_words_are_invisible_when_masked():
    s, w, word_mask, X, video_mask = _inputs()
    word_mask[0, 3:] = 0
    word_mask[2, 4:] = 0
    mats = _random_mats(8, 5)
    w2 = w.clone()
    w2[word_mask == 0] = 5 * torch.randn(3, 8, dtype=DT)  # alter every padded token's features
    kw = dict(mask_padded_words=True)
    fused1, parts1 = naive_glccl_scores(s, w, word_mask, X, video_mask, mats, 40.0, **kw)
    fused2, parts2 = naive_glccl_scores(s, w2, word_mask, X, video_mask, mats, 40.0, **kw)
    torch.testing.assert_close(parts1, parts2)
    # all-zero padded features (0/0 when normalised) must not leak either
    w3 = w.clone()
    w3[word_mask == 0] = 0.0
    _, parts3 = naive_glccl_scores(s, w3, word_mask, X, video_mask, mats, 40.0, **kw)
    torch.testing.assert_close(parts1, parts3)
    # the test is sensitive: without the mask the padded tokens do change the scores
    _, parts4 = naive_glccl_scores(s, w, word_mask, X, video_mask, mats, 40.0)
    _, parts5 = naive_glccl_scores(s, w2, word_mask, X, video_mask, mats, 40.0)
    assert not torch.allclose(parts4[1:], parts5[1:])
    torch.testing.assert_close(parts4[0], parts5[0])  # S_vs never looks at words


def test_masked_words_equal_truncated_text():
    """With mask_padded_words, text a with n real leading tokens scores like that text cut to n tokens (W cut too)."""
    s, w, word_mask, X, video_mask = _inputs()
    lengths = [3, 5, 2]
    for a, n in enumerate(lengths):
        word_mask[a, n:] = 0
    mats = _random_mats(8, 5)
    _, parts = naive_glccl_scores(s, w, word_mask, X, video_mask, mats, 25.0, mask_padded_words=True)
    for a, n in enumerate(lengths):
        cut = {k: (m if k in ("W_g", "W_loc") else m[:n, :n]) for k, m in mats.items()}
        _, parts_a = naive_glccl_scores(s[a:a + 1], w[a:a + 1, :n], word_mask[a:a + 1, :n], X, video_mask, cut, 25.0)
        torch.testing.assert_close(parts[:, a], parts_a[:, 0])


@pytest.mark.parametrize("text_guided", [True, False])
def test_padded_frames_are_invisible_when_masked(text_guided):
    s, w, word_mask, X, video_mask = _inputs(Nf=6)
    video_mask[0, 4:] = 0
    video_mask[1, 1:] = 0
    mats = _random_mats(8, 5)
    X2 = X.clone()
    X2[video_mask == 0] = 3 * torch.randn(int((video_mask == 0).sum()), 8, dtype=DT)
    kw = dict(mask_padded_frames=True, text_guided=text_guided)
    _, parts1 = naive_glccl_scores(s, w, word_mask, X, video_mask, mats, 40.0, **kw)
    _, parts2 = naive_glccl_scores(s, w, word_mask, X2, video_mask, mats, 40.0, **kw)
    torch.testing.assert_close(parts1, parts2)
    # truncation equivalence, video by video
    for b, n in enumerate([4, 1]):
        _, parts_b = naive_glccl_scores(s, w, word_mask, X[b:b + 1, :n], video_mask[b:b + 1, :n], mats, 40.0,
                                        text_guided=text_guided)
        torch.testing.assert_close(parts1[:, :, b], parts_b[:, :, 0])
    # sensitivity: unmasked, the padded frames matter
    _, parts3 = naive_glccl_scores(s, w, word_mask, X, video_mask, mats, 40.0, text_guided=text_guided)
    _, parts4 = naive_glccl_scores(s, w, word_mask, X2, video_mask, mats, 40.0, text_guided=text_guided)
    assert not torch.allclose(parts3, parts4)


def test_scores_scale_with_lambda_and_csc_is_invariant():
    s, w, word_mask, X, video_mask = _inputs(Bt=4, Bv=4)
    mats = _random_mats(8, 5)
    fused1, parts1 = naive_glccl_scores(s, w, word_mask, X, video_mask, mats, 1.0)
    fused2, parts2 = naive_glccl_scores(s, w, word_mask, X, video_mask, mats, torch.tensor(73.0, dtype=DT))
    torch.testing.assert_close(parts2, 73.0 * parts1)
    csc1, csc2 = naive_csc_loss(parts1), naive_csc_loss(parts2)
    assert csc1 > 0
    torch.testing.assert_close(csc1, csc2)
    _, _, csc3 = naive_glccl_loss(fused2, parts2, 0.5)
    torch.testing.assert_close(csc3, csc2)


def test_loss_by_hand():
    s, w, word_mask, X, video_mask = _inputs(Bt=3, Bv=3)
    fused, parts = naive_glccl_scores(s, w, word_mask, X, video_mask, _random_mats(8, 5), 50.0)
    total, nce, csc = naive_glccl_loss(fused, parts, 0.5)
    rows = sum(-torch.log_softmax(fused[i], 0)[i] for i in range(3)) / 3
    cols = sum(-torch.log_softmax(fused[:, i], 0)[i] for i in range(3)) / 3
    torch.testing.assert_close(nce, (rows + cols) / 2)
    var = [[torch.var(parts[:, i, j]) for j in range(3)] for i in range(3)]  # unbiased over the 4 scores
    diag = sum(var[i][i] for i in range(3)) / 3
    off = sum(var[i][j] for i in range(3) for j in range(3) if i != j) / 9
    torch.testing.assert_close(csc, diag / off)
    torch.testing.assert_close(total, nce + 0.5 * csc)


def test_batch_of_one_is_finite():
    s, w, word_mask, X, video_mask = _inputs(Bt=1, Bv=1)
    fused, parts = naive_glccl_scores(s, w, word_mask, X, video_mask, identity_matrices(8, 5), 100.0)
    total, nce, csc = naive_glccl_loss(fused, parts, 0.5)
    assert math.isfinite(total.item())
    assert nce.item() == 0.0 and csc.item() == 0.0


def _transcribed_reference(s, w, X, mats, lam):
    """The reference's layout (matmul on the softmax, permutes around it), no masks, GLIM temperature 5,
    interaction temperature 1e-2."""
    alpha = torch.softmax(torch.einsum("ad,bvd->abv", s, X) / 5, dim=-1)
    v = torch.einsum("abv,bvd->abd", alpha, X)
    v = v / v.norm(dim=-1, keepdim=True)
    per_word = []
    for i in range(w.shape[1]):
        beta = torch.softmax(torch.einsum("ad,bvd->abv", w[:, i], X) / 5, dim=-1)
        per_word.append(torch.einsum("abv,bvd->abd", beta, X).unsqueeze(-2))
    g = torch.cat(per_word, dim=-2)
    g = g / g.norm(dim=-1, keepdim=True)
    s_hat = s / s.norm(dim=-1, keepdim=True)
    w_hat = w / w.norm(dim=-1, keepdim=True)

    vs = lam * torch.einsum("ad,abd->ab", torch.matmul(s_hat, mats["W_g"]), v)

    M = torch.einsum("abd,atd->atb", v, w_hat)
    M_w = torch.matmul(torch.softmax(M / 1e-2, dim=1).permute(0, 2, 1), mats["W_wl"]).permute(0, 2, 1)
    vw = lam * torch.sum(M * M_w, dim=1)

    N = torch.einsum("ad,abtd->abt", s_hat, g)
    sf = lam * torch.sum(N * torch.matmul(torch.softmax(N / 1e-2, dim=-1), mats["W_wfl"]), dim=-1)

    F = torch.einsum("atd,abvd->atbv", torch.matmul(w_hat, mats["W_loc"]), g)
    F_t = torch.matmul(torch.softmax(F / 1e-2, dim=1).permute(0, 2, 3, 1), mats["W_wm"]).permute(0, 3, 1, 2)
    word_level = torch.sum(F_t * F, dim=1)
    frame_level = torch.sum(torch.matmul(torch.softmax(F / 1e-2, dim=-1), mats["W_wfm"]) * F, dim=-1)
    s2f = torch.sum(torch.matmul(torch.softmax(word_level / 1e-2, dim=-1), mats["W_wfm2"]) * word_level, dim=-1)
    fl_t = torch.matmul(torch.softmax(frame_level / 1e-2, dim=1).permute(0, 2, 1), mats["W_wm2"]).permute(0, 2, 1)
    v2w = torch.sum(fl_t * frame_level, dim=1)
    fw = lam * (s2f + v2w) / 2
    return torch.stack([vs, vw, sf, fw])


def test_orientation_matches_reference_transcription():
    s, w, word_mask, X, video_mask = _inputs(Bt=3, Bv=4, Nw=6, Nf=5, D=8)
    # smaller feature spread so the sharp (1/0.01) softmaxes are not one-hot and every W entry matters
    w = s[:, None, :] + 0.05 * w
    X = X.mean(dim=1, keepdim=True) + 0.05 * X
    mats = _random_mats(8, 6)
    _, parts = naive_glccl_scores(s, w, word_mask, X, video_mask, mats, 30.0)
    torch.testing.assert_close(parts, _transcribed_reference(s, w, X, mats, 30.0))
    # and the orientation is really tested: transposing the token matrices changes scores 2-4
    mats_t = {k: (m if k in ("W_g", "W_loc") else m.T) for k, m in mats.items()}
    _, parts_t = naive_glccl_scores(s, w, word_mask, X, video_mask, mats_t, 30.0)
    for i in (1, 2, 3):
        assert not torch.allclose(parts[i], parts_t[i])
