"""Retrieval evaluation: ranks and metrics by hand, ties, multi-caption v2t, DSL, encoding once, the example script."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from modeling_fixtures import IMAGE, MAX_FRAMES, MAX_WORDS, tiny_config
from video_fixtures import synthetic_processor, write_garbage

from glccl_hf import GLCCLModel
from glccl_hf.data import load_retrieval_dataset, make_synthetic_corpus
from glccl_hf.evaluation import (
    caption_group_scores,
    dual_softmax,
    encode_texts,
    encode_videos,
    evaluate_features,
    evaluate_retrieval,
    rank_metrics,
    retrieval_corpus,
    retrieval_metrics,
    score_dataset,
    text_to_video_ranks,
    video_to_text_ranks,
)
from glccl_hf.processing import GLCCLProcessor
from glccl_hf.video import VideoDecodeError

REPO = Path(__file__).resolve().parents[1]
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


# ------------------------------------------------------------------------------------------- datasets schema


def schema_dataset(video_index: list[int], caption_index: list[int]) -> datasets.Dataset:
    n = len(video_index)
    return datasets.Dataset.from_dict(
        {
            "video": [f"/videos/v{v}.mp4" for v in video_index],
            "video_id": [f"v{v}" for v in video_index],
            "caption": [f"caption {i}" for i in range(n)],
            "video_index": video_index,
            "caption_index": caption_index,
        }
    )


def test_retrieval_corpus_orders_videos_by_index() -> None:
    # VATEX-like: several captions per video, first-caption rows out of video order.
    corpus = retrieval_corpus(schema_dataset([1, 0, 1, 2, 0, 2], [0, 0, 1, 0, 1, 1]))
    assert corpus.captions == [f"caption {i}" for i in range(6)]
    assert corpus.text_to_video.tolist() == [1, 0, 1, 2, 0, 2]
    assert corpus.video_ids == ["v0", "v1", "v2"]
    assert list(corpus.videos) == ["/videos/v0.mp4", "/videos/v1.mp4", "/videos/v2.mp4"]


@pytest.mark.parametrize(
    ("video_index", "caption_index", "message"),
    [
        ([0, 0, 1], [0, 0, 0], "list each video once"),  # video 0 listed twice
        ([0, 2, 1], [0, 0, 1], "list each video once"),  # video 1 has no caption_index 0 row
        ([0, 1, 2], [0, 0, 1], "row 2 has video_index 2"),
    ],
)
def test_retrieval_corpus_rejects_inconsistent_indices(video_index, caption_index, message) -> None:
    with pytest.raises(ValueError, match=message):
        retrieval_corpus(schema_dataset(video_index, caption_index))


def test_retrieval_corpus_names_missing_columns() -> None:
    with pytest.raises(ValueError, match="caption_index"):
        retrieval_corpus(schema_dataset([0], [0]).remove_columns("caption_index"))


# ------------------------------------------------------------------------------------ end to end, synthetic


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_synthetic_corpus(tmp_path_factory.mktemp("synthetic"), n_train=2, n_test=4, seed=0)
    write_garbage(root / "garbage.mp4")
    return root


@pytest.fixture(scope="module")
def processor(corpus: Path) -> GLCCLProcessor:
    return synthetic_processor(corpus, max_words=MAX_WORDS, max_frames=MAX_FRAMES, image_size=IMAGE)


@pytest.fixture(scope="module")
def model(processor: GLCCLProcessor) -> GLCCLModel:
    """The tiny model with the synthetic tokenizer's vocabulary and special tokens."""
    config = tiny_config()
    tokenizer = processor.tokenizer
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(0)
    model = GLCCLModel(config).eval()
    with torch.no_grad():  # non-identity heads, so their orientation matters
        for matrix in model.score_heads.parameters():
            matrix.add_(0.3 * torch.randn_like(matrix))
    return model


def forward_logits(model: GLCCLModel, processor: GLCCLProcessor, captions: list[str], videos: list[str]):
    with torch.no_grad():
        return model(**processor(text=captions, videos=videos, return_tensors="pt")).logits_per_text


@pytest.mark.parametrize("split", ["test", "train"])  # one caption per video (1k-A / DiDeMo shape); 3 per video
def test_evaluate_retrieval_matches_the_forward_pass(corpus, processor, model, split) -> None:
    dataset = load_retrieval_dataset(corpus, split)
    first = dataset.filter(lambda row: row["caption_index"] == 0)
    logits = forward_logits(model, processor, list(dataset["caption"]), list(first["video"]))
    assert logits.shape == (len(dataset), len(first))

    model.train()  # evaluation switches to eval mode and back
    scores = score_dataset(model, processor, dataset, batch_size=3, progress=False)
    assert model.training
    model.eval()
    torch.testing.assert_close(scores.similarity, logits, rtol=1e-4, atol=1e-4)
    assert scores.text_to_video.tolist() == list(dataset["video_index"])
    assert scores.video_ids == list(first["video_id"])

    expected = retrieval_metrics(logits, list(dataset["video_index"]), dsl=True)
    metrics = evaluate_retrieval(model, processor, dataset, batch_size=3, dsl=True, progress=False)
    assert metrics == pytest.approx(expected)
    assert list(metrics) == KEYS + DSL_KEYS


def test_encode_once_then_evaluate_features(corpus, processor, model) -> None:
    dataset = load_retrieval_dataset(corpus, "train")
    corpus_split = retrieval_corpus(dataset)
    text = encode_texts(model, processor, corpus_split.captions, batch_size=4, progress=False)
    assert text.sentence_embeds.shape == (6, 32) and text.word_embeds.shape == (6, MAX_WORDS, 32)
    video = encode_videos(model, processor, corpus_split.videos, batch_size=1, num_workers=0, progress=False)
    assert video.frame_embeds.shape == (2, MAX_FRAMES, 32) and video.frame_mask.shape == (2, MAX_FRAMES)
    # Decoding in a worker process gives the same features.
    parallel = encode_videos(model, processor, corpus_split.videos, batch_size=2, num_workers=1, progress=False)
    torch.testing.assert_close(parallel.frame_embeds, video.frame_embeds, rtol=1e-5, atol=1e-5)
    metrics = evaluate_features(model, text, video, corpus_split.text_to_video)
    assert metrics == pytest.approx(evaluate_retrieval(model, processor, dataset, progress=False))
    with pytest.raises(ValueError, match="6 encoded texts"):
        evaluate_features(model, text, video, [0, 1])


@pytest.mark.parametrize("num_workers", [0, 1])
def test_bad_videos_raise_naming_the_file(corpus, processor, model, num_workers) -> None:
    good = str(corpus / "test" / "video00002.mp4")
    garbage = str(corpus / "garbage.mp4")
    with pytest.raises(VideoDecodeError, match="garbage.mp4"):
        encode_videos(model, processor, [good, garbage], num_workers=num_workers, progress=False)
    missing = str(corpus / "absent.mp4")
    with pytest.raises(FileNotFoundError, match="absent.mp4"):
        encode_videos(model, processor, [missing], num_workers=num_workers, progress=False)


def test_in_memory_video_errors_use_the_given_name(processor, model) -> None:
    with pytest.raises(VideoDecodeError, match="clip-42"):
        encode_videos(model, processor, [b"garbage bytes" * 20], names=["clip-42"], progress=False)


def test_encode_argument_errors(processor, model) -> None:
    with pytest.raises(TypeError, match="single string"):
        encode_texts(model, processor, "a caption")
    with pytest.raises(TypeError, match=r"captions\[1\]"):
        encode_texts(model, processor, ["a caption", 3])
    with pytest.raises(ValueError, match="batch_size"):
        encode_texts(model, processor, ["a caption"], batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        encode_videos(model, processor, [b"x"], num_workers=-1)
    with pytest.raises(ValueError, match="names has 2 entries"):
        encode_videos(model, processor, [b"x"], names=["a", "b"])
    wrong = GLCCLProcessor(processor.tokenizer, max_words=MAX_WORDS + 2, max_frames=MAX_FRAMES, image_size=IMAGE)
    with pytest.raises(ValueError, match="max_words"):
        encode_texts(model, wrong, ["a caption"], progress=False)


# ---------------------------------------------------------------------------------------------- the script


def test_example_script_writes_metrics(corpus, processor, model, tmp_path) -> None:
    checkpoint = tmp_path / "checkpoint"
    model.save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    output = tmp_path / "out" / "metrics.json"
    command = [
        sys.executable,
        str(REPO / "examples" / "evaluate_glccl.py"),
        str(checkpoint),
        str(corpus),
        "--split", "test",
        "--batch_size", "2",
        "--device", "cpu",
        "--dsl",
        "--no_progress",
        "--output", str(output),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ), cwd=REPO)
    assert result.returncode == 0, result.stderr
    written = json.loads(output.read_text())
    assert list(written["metrics"]) == KEYS + DSL_KEYS
    expected = evaluate_retrieval(model, processor, load_retrieval_dataset(corpus, "test"), dsl=True, progress=False)
    assert written["metrics"] == pytest.approx(expected)
    assert written["evaluated"] == {"texts": 4, "videos": 4}
    assert {key: value["count"] for key, value in written["dropped"].items()} == {
        "missing_videos": 0,
        "undecodable_videos": 0,
        "duplicate_rows": 0,
    }
    header, *rows = result.stdout.strip().splitlines()
    assert header.split() == ["R@1", "R@5", "R@10", "MdR", "MnR"]
    assert [row.split()[0] for row in rows[:4]] == ["t2v", "v2t", "dsl_t2v", "dsl_v2t"]
    assert rows[4:] == [
        "evaluated: 4 captions x 4 videos",
        "missing videos dropped: 0",
        "undecodable videos skipped: 0",
        "duplicate rows dropped: 0",
    ]


# ------------------------------------------------------------------------------- dropped rows are reported


def load_script():
    """examples/evaluate_glccl.py as a module, so its main(argv) runs in this process (no second start-up)."""
    spec = importlib.util.spec_from_file_location("evaluate_glccl", REPO / "examples" / "evaluate_glccl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def damaged_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic corpus whose test split lost one video file and has one file that is no video."""
    root = make_synthetic_corpus(tmp_path_factory.mktemp("damaged"), n_train=2, n_test=5, seed=1)
    test_videos = sorted((root / "test").glob("*.mp4"))
    test_videos[1].unlink()
    write_garbage(test_videos[3])
    return root


@pytest.fixture(scope="module")
def checkpoint(model, processor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_script_names_its_own_flags_for_a_missing_or_broken_video(damaged_corpus, checkpoint) -> None:
    script = load_script()
    base = [str(checkpoint), str(damaged_corpus), "--device", "cpu", "--no_progress"]
    with pytest.raises(SystemExit) as raised:
        script.main(base)
    message = str(raised.value)
    assert "1 of 5 videos not found" in message and "'video00003'" in message, message
    assert "--missing_videos drop" in message, message
    with pytest.raises(SystemExit) as raised:
        script.main(base + ["--missing_videos", "drop"])
    message = str(raised.value)
    assert "video00005.mp4" in message and "--on_error skip" in message, message


def test_script_drops_and_reports_missing_and_broken_videos(damaged_corpus, checkpoint, model, processor, tmp_path,
                                                            capsys) -> None:  # fmt: skip
    script = load_script()
    output = tmp_path / "metrics.json"
    argv = [str(checkpoint), str(damaged_corpus), "--device", "cpu", "--no_progress", "--output", str(output)]
    metrics = script.main(argv + ["--missing_videos", "drop", "--on_error", "skip"])
    printed = capsys.readouterr().out
    assert "missing videos dropped: 1 (video00003)" in printed, printed
    assert "undecodable videos skipped: 1 (video00005)" in printed, printed
    assert "duplicate rows dropped: 0" in printed, printed
    assert "3 captions x 3 videos" in printed, printed

    written = json.loads(output.read_text())
    assert written["metrics"] == pytest.approx(metrics)
    assert written["evaluated"] == {"texts": 3, "videos": 3}
    dropped = written["dropped"]
    assert dropped["missing_videos"] == {"count": 1, "video_ids": ["video00003"]}
    assert dropped["undecodable_videos"]["count"] == 1
    [skipped] = dropped["undecodable_videos"]["videos"]
    assert skipped["video_id"] == "video00005" and skipped["path"].endswith("video00005.mp4") and skipped["reason"]
    assert dropped["undecodable_videos"]["captions"] == 1
    assert dropped["duplicate_rows"] == {"count": 0, "rows": []}

    # The metrics are those of the three good videos evaluated on their own.
    full = load_retrieval_dataset(damaged_corpus, "test", missing_videos="drop")
    good = full.filter(lambda row: row["video_id"] != "video00005")
    good = datasets.Dataset.from_dict({**good.to_dict(), "video_index": [0, 1, 2], "caption_index": [0, 0, 0]})
    assert metrics == pytest.approx(evaluate_retrieval(model, processor, good, progress=False))


def test_score_dataset_skips_broken_videos_and_their_captions(corpus, processor, model) -> None:
    dataset = load_retrieval_dataset(corpus, "train")  # 2 videos, 3 captions each
    rows = dataset.to_dict()
    rows["video"][0:3] = [str(corpus / "garbage.mp4")] * 3
    broken = datasets.Dataset.from_dict(rows, features=dataset.features)
    with pytest.raises(VideoDecodeError, match="garbage.mp4"):
        score_dataset(model, processor, broken, progress=False)
    for num_workers in (0, 1):
        scores = score_dataset(model, processor, broken, on_error="skip", num_workers=num_workers, progress=False)
        assert scores.video_ids == [rows["video_id"][3]]
        assert scores.captions == rows["caption"][3:] and scores.text_to_video.tolist() == [0, 0, 0]
        [skipped] = scores.skipped_videos
        assert skipped.video_id == rows["video_id"][0] and skipped.path.endswith("garbage.mp4")
        assert "garbage.mp4" in skipped.reason and scores.skipped_captions == 3
    only_broken = broken.select(range(3))
    with pytest.raises(VideoDecodeError, match="every video"):
        score_dataset(model, processor, only_broken, on_error="skip", progress=False)
    with pytest.raises(ValueError, match="on_error"):
        score_dataset(model, processor, broken, on_error="ignore", progress=False)


# ------------------------------------------------------------------------------------------ duplicate rows


def test_duplicate_rows_are_dropped_from_evaluation_by_default(corpus, processor, model, caplog) -> None:
    dataset = load_retrieval_dataset(corpus, "train")  # 2 videos x 3 captions
    rows = dataset.to_dict()
    doubled = {key: values + [values[4]] for key, values in rows.items()}  # video 1's second caption again
    doubled["caption_index"][-1] = 3
    with_duplicate = datasets.Dataset.from_dict(doubled, features=dataset.features)

    corpus_split = retrieval_corpus(with_duplicate)
    assert corpus_split.captions == rows["caption"] and corpus_split.duplicate_rows == [6]
    assert len(retrieval_corpus(with_duplicate, duplicates="keep").captions) == 7
    with pytest.raises(ValueError, match="duplicates"):
        retrieval_corpus(with_duplicate, duplicates="ignore")

    with caplog.at_level("WARNING", logger="glccl_hf.evaluation"):
        scores = score_dataset(model, processor, with_duplicate, progress=False)
    assert "1 duplicate row" in caplog.text and rows["caption"][4] in caplog.text
    assert scores.duplicates == [(rows["video_id"][4], rows["caption"][4])]
    expected = evaluate_retrieval(model, processor, dataset, progress=False)
    assert evaluate_retrieval(model, processor, with_duplicate, progress=False) == pytest.approx(expected)
    kept = score_dataset(model, processor, with_duplicate, duplicates="keep", progress=False)
    assert kept.similarity.shape == (7, 2) and kept.duplicates == []
    metrics = evaluate_retrieval(model, processor, with_duplicate, duplicates="keep", progress=False)
    assert metrics == pytest.approx(retrieval_metrics(kept.similarity, kept.text_to_video))
