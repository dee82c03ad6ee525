"""VideoIndex on precomputed features: storage, exact and cascade search, remove/compact, status, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from glccl_hf.modeling.modeling_glccl import GLCCLVideoFeatures
from search_fixtures import MAX_FRAMES, corpus_and_tokenizer, tiny_processor, tiny_search_model

from glccl_hf.search import IndexFormatError, ModelMismatchError, VideoIndex
from glccl_hf.search.cascade import query_vectors
from glccl_hf.search.storage import MANIFEST, SHARDS_DIR

QUERIES = ["a red circle moves left on a blue background", "a green square moves up on a black background"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return corpus_and_tokenizer(tmp_path_factory.mktemp("corpus"), 1, 1)[1]


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_search_model(tokenizer)


def random_segments(count: int, *, dim: int = 32, frames: int = MAX_FRAMES, seed: int = 0, videos: int = 10):
    """Random features with 1..frames valid frames (padding after them), spread over `videos` videos."""
    generator = torch.Generator().manual_seed(seed)
    frame_embeds = torch.randn(count, frames, dim, generator=generator)
    counts = torch.randint(1, frames + 1, (count,), generator=generator)
    video_mask = (torch.arange(frames)[None] < counts[:, None]).long()
    names = [f"/videos/clip{i % videos:03d}.mp4" for i in range(count)]
    starts = [15.0 * (i // videos) for i in range(count)]
    ends = [start + 15.0 for start in starts]
    return frame_embeds, video_mask, names, starts, ends


def brute_force(model, index: VideoIndex, queries: list[str], frame_embeds, video_mask) -> torch.Tensor:
    """`GLCCLModel.similarity` of every query against every segment, on the float16 features the index stores."""
    text = index.encode_queries(queries)
    stored = GLCCLVideoFeatures(frame_embeds=frame_embeds.half().float(), video_mask=video_mask)
    with torch.no_grad():
        return model.similarity(text, stored)


@pytest.fixture
def filled(tmp_path, model, tokenizer):
    index = VideoIndex.create(tmp_path / "index", model, tiny_processor(tokenizer))
    segments = random_segments(60)
    index.add_features(*segments)
    return index, segments


def test_exhaustive_search_equals_brute_force_similarity(filled, model):
    index, (frame_embeds, video_mask, names, starts, _) = filled
    expected = brute_force(model, index, QUERIES, frame_embeds, video_mask)
    results = index.search(QUERIES, k=7, exhaustive=True)
    assert len(results) == len(QUERIES)
    for row, hits in enumerate(results):
        top = expected[row].topk(7)
        assert [hit.segment_id for hit in hits] == top.indices.tolist()
        np.testing.assert_allclose([hit.score for hit in hits], top.values.numpy(), rtol=1e-5, atol=1e-5)
        assert [hit.video for hit in hits] == [names[i] for i in top.indices.tolist()]
        assert [hit.start for hit in hits] == [starts[i] for i in top.indices.tolist()]


def test_one_query_string_gives_one_list_of_hits(filled):
    index, _ = filled
    hits = index.search(QUERIES[0], k=3)
    assert len(hits) == 3 and all(hit.__class__.__name__ == "SearchHit" for hit in hits)
    assert set(hits[0].to_dict()) == {"video", "start", "end", "score", "segment_id", "best_time"}


def test_cascade_scores_its_candidates_exactly(filled, model):
    index, (frame_embeds, video_mask, *_) = filled
    expected = brute_force(model, index, QUERIES, frame_embeds, video_mask)
    # Candidates covering the collection: the cascade ranks everything exactly, like the exhaustive search.
    for widen in (1, 4):
        full = index.search(QUERIES, k=5, candidates=60, widen=widen)
        exhaustive = index.search(QUERIES, k=5, exhaustive=True)
        assert [[h.segment_id for h in hits] for hits in full] == [[h.segment_id for h in hits] for hits in exhaustive]
    # Fewer candidates: every hit's score is still its exact score, and hits are sorted by it.
    for hits, row in zip(index.search(QUERIES, k=5, candidates=8), expected, strict=True):
        assert len(hits) == 5
        scores = [hit.score for hit in hits]
        assert scores == sorted(scores, reverse=True)
        np.testing.assert_allclose(scores, row[[hit.segment_id for hit in hits]].numpy(), rtol=1e-5, atol=1e-5)


def test_best_time_is_the_frame_with_the_largest_sentence_guided_weight(filled):
    index, (frame_embeds, video_mask, *_) = filled
    text = index.encode_queries([QUERIES[0]])
    for hit in index.search(QUERIES[0], k=10, exhaustive=True):
        valid = int(video_mask[hit.segment_id].sum())
        dots = frame_embeds[hit.segment_id, :valid].half().float() @ text.sentence_embeds[0]
        times = index.frame_times(hit.segment_id)
        assert len(times) == valid
        assert hit.best_time == times[int(dots.argmax())]  # softmax is monotone: the argmax of <s, x_f>
        frame_times, weights = index.frame_weights(QUERIES[0], hit.segment_id)
        assert frame_times == times and int(np.argmax(weights)) == int(dots.argmax())


def test_reopened_index_gives_the_same_results(filled, model):
    index, _ = filled
    before = index.search(QUERIES, k=5)
    reopened = VideoIndex.open(index.root, model=model)
    assert len(reopened) == 60
    assert reopened.search(QUERIES, k=5) == before


def test_remove_hides_segments_at_once_and_compact_reclaims_space(filled, model):
    index, (frame_embeds, video_mask, names, *_) = filled
    removed_video = index.search(QUERIES[0], k=1, exhaustive=True)[0].video
    count = names.count(removed_video)
    assert index.remove(removed_video) == count
    assert len(index) == 60 - count
    for hits in (index.search(QUERIES[0], k=60, exhaustive=True), index.search(QUERIES[0], k=60, candidates=60)):
        assert len(hits) == 60 - count and removed_video not in {hit.video for hit in hits}
    assert removed_video not in {h.video for h in VideoIndex.open(index.root, model=model).search(QUERIES[0], k=60)}
    assert index.remove(removed_video) == 0  # already gone

    bytes_before = index.status()["bytes"]["frame_features"]
    scores_before = [(h.video, h.start, h.score) for h in index.search(QUERIES, k=8, exhaustive=True)[1]]
    index.compact()
    status = index.status()
    assert status["removed_segments"] == 0 and status["segments"] == 60 - count
    assert status["bytes"]["frame_features"] < bytes_before
    assert [(h.video, h.start, h.score) for h in index.search(QUERIES, k=8, exhaustive=True)[1]] == scores_before
    # Only the files of the new manifest remain.
    assert len(list((index.root / SHARDS_DIR).iterdir())) == 2  # one shard: metadata and frame features


def test_remove_a_folder_removes_every_video_under_it(filled):
    index, (_, _, names, *_) = filled
    assert index.remove("/videos") == 60
    assert len(index) == 0 and index.search(QUERIES[0]) == []


def test_status_and_bytes_per_segment_at_dim_512_and_12_frames(tmp_path, tokenizer):
    model = tiny_search_model(tokenizer, projection_dim=512, max_frames=12)
    index = VideoIndex.create(tmp_path / "index", model, tiny_processor(tokenizer, max_frames=12))
    index.add_features(*random_segments(500, dim=512, frames=12, videos=40))
    status = index.status()
    assert status["segments"] == 500 and status["videos"] == 40 and status["shards"] == 1
    assert status["model"]["fingerprint"] == VideoIndex.open(index.root, model=model).manifest["model"]["fingerprint"]
    assert status["first_stage"] == "exact (flat)"
    assert status["bytes_per_segment"] <= 14 * 1024, status["bytes"]


def test_large_collection_uses_an_ivf_pq_first_stage_and_searches_new_segments_exactly(tmp_path, model, tokenizer):
    index = VideoIndex.create(tmp_path / "index", model, tiny_processor(tokenizer), ann_threshold=256)
    frame_embeds, video_mask, names, starts, ends = random_segments(400, seed=1, videos=40)
    index.add_features(frame_embeds, video_mask, names, starts, ends)
    assert index.status()["first_stage"].startswith("IVF") and index.manifest["ann"]["covered"] == 400
    # Segments added after the IVF build (fewer than a quarter more) are searched exactly beside it.
    extra = random_segments(20, seed=2)
    ids = index.add_features(extra[0], extra[1], ["/new/clip.mp4"] * 20, extra[3], extra[4])
    assert index.manifest["ann"]["covered"] == 400 and ids == list(range(400, 420))
    text = index.encode_queries(QUERIES)
    query = query_vectors(text.sentence_embeds)[0]
    _, proposed = index.first_stage(query, 420, nprobe=10_000)
    assert sorted(proposed.tolist()) == list(range(420))  # every live segment is reachable, none twice
    index.remove("/new/clip.mp4")
    _, proposed = index.first_stage(query, 420, nprobe=10_000)
    assert sorted(proposed.tolist()) == list(range(400))
    reopened = VideoIndex.open(index.root, model=model)
    assert reopened.search(QUERIES, k=5, candidates=400) == index.search(QUERIES, k=5, candidates=400)
    # Half the threshold of new segments: added to the trained IVF index, not retrained.
    more = random_segments(130, seed=3)
    index.add_features(more[0], more[1], ["/more/clip.mp4"] * 130, more[3], more[4])
    assert index.manifest["ann"]["covered"] == 550 and index.manifest["ann"]["trained_on"] == 400
    _, proposed = index.first_stage(query, 550, nprobe=10_000)
    assert sorted(proposed.tolist()) == [*range(400), *range(420, 550)]


def test_another_model_is_refused_with_the_way_to_reindex(filled, tokenizer):
    index, _ = filled
    other = tiny_search_model(tokenizer, seed=1)
    with pytest.raises(ModelMismatchError, match="re-index"):
        VideoIndex.open(index.root, model=other)


def test_add_features_rejects_bad_shapes_and_masks(filled):
    index, (frame_embeds, video_mask, names, starts, ends) = filled
    with pytest.raises(ValueError, match="frame_embeds must be"):
        index.add_features(frame_embeds[:, :, :5], video_mask, names, starts, ends)
    holes = video_mask.clone()
    holes[0] = torch.tensor([1, 0, 1, 0])
    with pytest.raises(ValueError, match="real frames first"):
        index.add_features(frame_embeds, holes, names, starts, ends)
    with pytest.raises(ValueError, match="videos has 3 entries"):
        index.add_features(frame_embeds, video_mask, names[:3], starts, ends)
    assert len(index) == 60


@pytest.mark.parametrize("damage", ["truncate_frames", "truncate_metadata", "garble_manifest", "garble_metadata"])
def test_corrupt_or_truncated_files_are_named(filled, model, damage):
    index, _ = filled
    root: Path = index.root
    shard = index.manifest["shards"][0]["name"]
    if damage == "truncate_frames":
        target = root / SHARDS_DIR / f"{shard}.frames.npy"
        target.write_bytes(target.read_bytes()[:1000])
    elif damage == "truncate_metadata":
        target = root / SHARDS_DIR / f"{shard}.parquet"
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "garble_manifest":
        target = root / MANIFEST
        target.write_text(target.read_text()[:50])
    else:
        target = root / SHARDS_DIR / f"{shard}.parquet"
        data = bytearray(target.read_bytes())
        data[4:40] = b"x" * 36
        target.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match=str(target)):
        VideoIndex.open(root, model=model)


def test_create_refuses_an_existing_index_and_open_a_folder_without_one(filled, model, tmp_path):
    index, _ = filled
    with pytest.raises(FileExistsError, match="already holds a video index"):
        VideoIndex.create(index.root, model)
    with pytest.raises(FileNotFoundError, match="not a video index"):
        VideoIndex.open(tmp_path / "elsewhere", model=model)
    manifest = json.loads((index.root / MANIFEST).read_text())
    assert manifest["model"]["name_or_path"] is None  # an in-memory model: open needs model=
    with pytest.raises(ValueError, match="pass model="):
        VideoIndex.open(index.root)


def test_add_features_takes_the_old_frame_mask_keyword_with_a_warning(tmp_path, model, tokenizer):
    frame_embeds, video_mask, names, starts, ends = random_segments(6, seed=3)
    renamed = VideoIndex.create(tmp_path / "renamed", model, tiny_processor(tokenizer))
    with pytest.warns(FutureWarning, match="frame_mask= is renamed video_mask="):
        ids = renamed.add_features(frame_embeds, frame_mask=video_mask, videos=names, starts=starts, ends=ends)
    current = VideoIndex.create(tmp_path / "current", model, tiny_processor(tokenizer))
    assert ids == current.add_features(frame_embeds, video_mask=video_mask, videos=names, starts=starts, ends=ends)
    assert [hit.score for hit in renamed.search(QUERIES[0], k=3)] == [
        hit.score for hit in current.search(QUERIES[0], k=3)
    ]
    # The former name warns even when given twice, as the feature dataclasses' does, then the clash is refused.
    with pytest.raises(TypeError, match="both frame_mask= and video_mask="), pytest.warns(FutureWarning):
        renamed.add_features(
            frame_embeds, video_mask=video_mask, frame_mask=video_mask, videos=names, starts=starts, ends=ends
        )
