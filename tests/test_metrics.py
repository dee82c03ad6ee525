"""Retrieval metrics (glccl_hf.metrics): ranks and metrics by hand, ties, multi-caption v2t, DSL, the metric keys and
the one metrics table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glccl_hf.metrics import (
    METRIC_KEYS,
    MetricKey,
    caption_group_scores,
    dual_softmax,
    format_metrics_table,
    logged_retrieval_metrics,
    parse_metric_key,
    parse_retrieval_metrics,
    rank_metrics,
    retrieval_metrics,
    split_metric_key,
    text_to_video_ranks,
    video_to_text_ranks,
)

KEYS = [f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MdR", "MnR")]
DSL_KEYS = [f"dsl_{key}" for key in KEYS]


# ------------------------------------------------------------------------------------------- ranks by hand

# 3 texts x 3 videos, text i belongs to video i. Row 1 ties its true video with video 0; row 2 ties with video 1;
# column 1 ties text 1 (its caption) with text 0.
SQUARE = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 0.0], [0.0, 5.0, 5.0]])


def test_square_ranks_with_ties_are_pessimistic() -> None:
    assert text_to_video_ranks(SQUARE, [0, 1, 2]).tolist() == [0, 1, 1]
    assert video_to_text_ranks(SQUARE, [0, 1, 2]).tolist() == [0, 2, 0]
    metrics = retrieval_metrics(SQUARE, [0, 1, 2])
    assert list(metrics) == KEYS
    expected = {
        "t2v_R@1": 100 / 3, "t2v_R@5": 100.0, "t2v_R@10": 100.0, "t2v_MdR": 2.0, "t2v_MnR": 5 / 3,
        "v2t_R@1": 200 / 3, "v2t_R@5": 100.0, "v2t_R@10": 100.0, "v2t_MdR": 1.0, "v2t_MnR": 5 / 3,
    }  # fmt: skip
    assert metrics == pytest.approx(expected)


def test_constant_scores_rank_last() -> None:
    # A collapsed model must not look perfect: every true item sits behind its 4 tied competitors.
    metrics = retrieval_metrics(torch.ones(5, 5), torch.arange(5))
    assert metrics["t2v_R@1"] == 0.0 and metrics["v2t_R@1"] == 0.0
    assert metrics["t2v_R@5"] == 100.0  # rank 4 < 5
    assert metrics["t2v_MdR"] == 5.0 and metrics["v2t_MnR"] == 5.0


def test_recall_at_k_and_even_median() -> None:
    ranks = [0, 3, 4, 5, 9, 12]
    metrics = rank_metrics(ranks, "t2v")
    assert metrics["t2v_R@1"] == pytest.approx(100 / 6)
    assert metrics["t2v_R@5"] == pytest.approx(300 / 6)
    assert metrics["t2v_R@10"] == pytest.approx(500 / 6)
    assert metrics["t2v_MdR"] == 5.5  # numpy's median averages the middle ranks 4 and 5, plus 1
    assert metrics["t2v_MnR"] == pytest.approx(np.mean(ranks) + 1)


# 5 captions over 2 videos: captions 0, 1 describe video 0; captions 2, 3, 4 video 1.
MULTI = np.array([[9.0, 1.0], [8.0, 2.0], [0.0, 3.0], [7.0, 6.0], [1.0, 0.0]])
MULTI_T2V = [0, 0, 1, 1, 1]


def test_multi_caption_ranks() -> None:
    assert text_to_video_ranks(MULTI, MULTI_T2V).tolist() == [0, 0, 0, 1, 1]
    groups = caption_group_scores(MULTI, MULTI_T2V)
    assert groups.tolist() == [[9.0, 2.0], [7.0, 6.0]]  # [caption group, video]: each group's best caption
    assert video_to_text_ranks(MULTI, MULTI_T2V).tolist() == [0, 0]
    metrics = retrieval_metrics(MULTI, MULTI_T2V)
    assert metrics["t2v_R@1"] == pytest.approx(60.0) and metrics["t2v_MnR"] == pytest.approx(1.4)
    assert metrics["v2t_R@1"] == 100.0 and metrics["v2t_MdR"] == 1.0


def test_v2t_counts_each_competing_video_once() -> None:
    # Video 1's only caption (text 2) is beaten by both captions of video 0: one competing video, so rank 1 (the
    # reference's max-pooled protocol), although two captions score higher.
    scores = np.array([[0.0, 5.0, 0.0], [0.0, 4.0, 0.0], [0.0, 3.0, 0.0], [0.0, 1.0, 9.0]])
    scores[0, 0] = 10.0
    assert video_to_text_ranks(scores, [0, 0, 1, 2]).tolist() == [0, 1, 0]


def test_captions_need_not_be_contiguous_and_texts_may_outnumber_videos() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(7, 3, generator=generator)
    text_to_video = torch.tensor([2, 0, 1, 0, 2, 2, 1])
    order = torch.argsort(text_to_video, stable=True)  # the same captions grouped by video
    assert retrieval_metrics(scores, text_to_video) == retrieval_metrics(scores[order], text_to_video[order])
    ranks = video_to_text_ranks(scores, text_to_video)
    for video in range(3):  # direct definition: groups whose best caption scores >= the video's own group
        best = torch.stack([scores[text_to_video == k, video].max() for k in range(3)])
        assert int(ranks[video]) == int((best >= best[video]).sum()) - 1


def reference_style_ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of the diagonal entry in each row by sorting, as CLIP4Clip's compute_metrics (tie-free input only)."""
    ordered = np.sort(-scores, axis=1)
    return np.nonzero(ordered == -np.diag(scores)[:, None])[1]


def test_plain_case_matches_a_direct_numpy_computation() -> None:
    scores = np.random.default_rng(0).normal(size=(40, 40))
    metrics = retrieval_metrics(scores, np.arange(40))
    for direction, matrix in (("t2v", scores), ("v2t", scores.T)):
        ranks = reference_style_ranks(matrix)
        assert len(ranks) == 40
        assert metrics[f"{direction}_R@1"] == pytest.approx(100 * np.mean(ranks == 0))
        assert metrics[f"{direction}_R@5"] == pytest.approx(100 * np.mean(ranks < 5))
        assert metrics[f"{direction}_R@10"] == pytest.approx(100 * np.mean(ranks < 10))
        assert metrics[f"{direction}_MdR"] == pytest.approx(np.median(ranks) + 1)
        assert metrics[f"{direction}_MnR"] == pytest.approx(np.mean(ranks) + 1)
    # One caption per video in any order is the plain case with the rows permuted.
    perm = np.random.default_rng(1).permutation(40)
    assert retrieval_metrics(scores[perm], perm) == pytest.approx(metrics)


def test_numpy_and_torch_inputs_agree() -> None:
    scores = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    index = [0, 1, 2, 3, 0, 2]
    expected = retrieval_metrics(scores, index)
    assert retrieval_metrics(torch.from_numpy(scores), torch.tensor(index)) == expected
    assert list(retrieval_metrics(torch.from_numpy(scores).bfloat16(), np.array(index))) == KEYS  # widened to float32


@pytest.mark.parametrize(
    ("scores", "index", "error", "message"),
    [
        (np.zeros(3), [0, 1, 2], ValueError, "2-D"),
        (np.zeros((0, 3)), [], ValueError, "non-empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), [0, 1], ValueError, "NaN"),
        (np.eye(3), [0, 1], ValueError, "one video index per text"),
        (np.eye(3), [0, 1, 3], ValueError, "text_to_video\\[2\\] = 3"),
        (np.eye(3), [0, -1, 2], ValueError, "text_to_video\\[1\\] = -1"),
        (np.eye(3), [0.0, 1.0, 2.0], TypeError, "integer"),
        (np.ones((2, 3)), [0, 1], ValueError, "video columns 2"),
    ],
)
def test_bad_inputs_are_named(scores, index, error, message) -> None:
    with pytest.raises(error, match=message):
        retrieval_metrics(scores, index)


def test_distractor_videos_allow_text_to_video_alone() -> None:
    scores = np.array([[2.0, 1.0, 3.0], [0.0, 4.0, 1.0]])  # video 2 has no caption
    with pytest.raises(ValueError, match="distractor"):
        retrieval_metrics(scores, [0, 1])
    assert text_to_video_ranks(scores, [0, 1]).tolist() == [1, 0]


# ---------------------------------------------------------------------------------------------------- DSL

# Video 0 is a hub: it outscores text 1's true video 1. Its prior over texts favours text 0, so DSL fixes text 1.
HUB = np.array([[10.0, 0.0], [9.0, 8.0]])


def test_dual_softmax_definition() -> None:
    scores = torch.randn(5, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    t = 0.7
    expected_t2v = scores * torch.exp(scores / t) / torch.exp(scores / t).sum(0, keepdim=True) * 5
    expected_v2t = scores * torch.exp(scores / t) / torch.exp(scores / t).sum(1, keepdim=True) * 3
    torch.testing.assert_close(dual_softmax(scores, t, dim=0), expected_t2v)
    torch.testing.assert_close(dual_softmax(scores, t, dim=1), expected_v2t)
    with pytest.raises(ValueError, match="temperature"):
        dual_softmax(scores, 0.0)
    with pytest.raises(ValueError, match="dim"):
        dual_softmax(scores, 1.0, dim=2)


def test_dsl_is_off_by_default_and_reported_separately() -> None:
    plain = retrieval_metrics(HUB, [0, 1])
    assert list(plain) == KEYS
    assert plain["t2v_R@1"] == 50.0
    both = retrieval_metrics(HUB, [0, 1], dsl=True)
    assert list(both) == KEYS + DSL_KEYS
    assert {key: both[key] for key in KEYS} == plain
    assert both["dsl_t2v_R@1"] == 100.0 and both["dsl_t2v_MnR"] == 1.0
    assert both["dsl_v2t_R@1"] == 100.0
    # The DSL keys are the plain metrics of the re-scored matrices: the t2v prior over texts, the v2t one over videos.
    t2v = retrieval_metrics(dual_softmax(HUB, dim=0), [0, 1])
    v2t = retrieval_metrics(dual_softmax(HUB, dim=1), [0, 1])
    assert both["dsl_t2v_MnR"] == t2v["t2v_MnR"] and both["dsl_v2t_MnR"] == v2t["v2t_MnR"]


# ------------------------------------------------------------------------------------------- the metric keys


def test_metric_keys_are_what_retrieval_metrics_reports() -> None:
    assert list(METRIC_KEYS) == KEYS
    assert list(retrieval_metrics(np.eye(3), [0, 1, 2], dsl=True)) == KEYS + DSL_KEYS


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("t2v_R@1", MetricKey(False, "t2v", "R@1")),
        ("dsl_v2t_R@50", MetricKey(True, "v2t", "R@50")),
        ("v2t_MnR", MetricKey(False, "v2t", "MnR")),
        ("t2v_R@0", None),
        ("t2v_R@05", None),
        ("t2v_R@", None),
        ("t2v_R@١", None),  # a non-ASCII digit
        ("t2t_R@1", None),
        ("t2v_MeanR", None),
        ("loss", None),
        ("eval_t2v_R@1", None),  # log prefixes are stripped by the callers that expect them
    ],
)
def test_parse_metric_key(key, expected) -> None:
    assert parse_metric_key(key) == expected
    if expected is not None:
        assert str(expected) == key


def test_metric_order_and_labels() -> None:
    keys = ["dsl_t2v_R@1", "v2t_MnR", "t2v_MdR", "t2v_R@50", "t2v_R@5", "v2t_R@1"]
    ordered = sorted(keys, key=lambda key: parse_metric_key(key).order)
    assert ordered == ["t2v_R@5", "t2v_R@50", "t2v_MdR", "v2t_R@1", "v2t_MnR", "dsl_t2v_R@1"]
    assert parse_metric_key("dsl_v2t_MdR").label == "v2t MdR"
    assert parse_metric_key("t2v_R@5").is_recall and not parse_metric_key("t2v_MdR").is_recall


def test_parse_retrieval_metrics_uses_the_one_key_definition() -> None:
    parsed = parse_retrieval_metrics({"eval_v2t_MdR": 2, "eval_t2v_R@1": np.float32(10.5), "eval_loss": 1.0})
    assert list(parsed) == ["t2v_R@1", "v2t_MdR"] and parsed["t2v_R@1"] == 10.5
    with pytest.raises(ValueError, match="unknown metric 't2v_R@0'"):
        parse_retrieval_metrics({"t2v_R@0": 1.0})


def test_logged_retrieval_metrics_selects_one_prefix() -> None:
    logs = {"eval_t2v_R@1": 1.0, "eval_loss": 3.0, "eval_vatex_t2v_R@1": 2.0, "eval_custom": 7, "test_t2v_R@1": 4.0}
    assert logged_retrieval_metrics(logs, "eval") == {"t2v_R@1": 1.0}
    assert logged_retrieval_metrics(logs, "eval_vatex") == {"t2v_R@1": 2.0}
    assert logged_retrieval_metrics(logs, "train") == {}


def test_format_metrics_table_markdown_and_text() -> None:
    rows = [(("a",), {"t2v_R@1": 12.345, "t2v_MdR": 2.0}), (("b",), {"t2v_R@1": 100.0})]
    markdown = format_metrics_table(rows, ["t2v_R@1", "t2v_MdR"], labels=("model",), headers=["R@1", "MdR"])
    lines = ["| model | R@1 | MdR |", "|---|---|---|", "| a | 12.3 | 2.0 |", "| b | 100.0 | - |"]
    assert markdown.splitlines() == lines
    text = format_metrics_table(rows, ["t2v_R@1"], markdown=False)
    assert text.splitlines() == [" " * 8 + " t2v_R@1", "a" + " " * 7 + "    12.3", "b" + " " * 7 + "   100.0"]


def test_split_metric_key_separates_the_trainer_prefix() -> None:
    # The one parser of Trainer log keys: the card callback and logged_retrieval_metrics both read prefixes with it.
    assert split_metric_key("eval_vatex_dsl_t2v_R@1") == ("eval_vatex", MetricKey(True, "t2v", "R@1"))
    assert split_metric_key("t2v_MdR") == ("", MetricKey(False, "t2v", "MdR"))
    assert split_metric_key("test_v2t_R@10") == ("test", MetricKey(False, "v2t", "R@10"))
    assert split_metric_key("eval_loss") is None and split_metric_key("eval_t2v_R@0") is None
