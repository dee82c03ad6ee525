"""VideoIndex.videos: the names of the videos whose segments are live (what the app may serve)."""

from __future__ import annotations

import torch
from search_fixtures import MAX_FRAMES, corpus_and_tokenizer, tiny_processor, tiny_search_model

from glccl_hf.search import VideoIndex


def test_videos_lists_each_live_video_once_sorted(tmp_path):
    tokenizer = corpus_and_tokenizer(tmp_path / "corpus", 1, 1)[1]
    index = VideoIndex.create(tmp_path / "index", tiny_search_model(tokenizer), tiny_processor(tokenizer))
    assert index.videos() == []
    names = ["/v/b.mp4", "/v/a.mp4", "/v/b.mp4", "/w/c.mp4"]
    frame_embeds = torch.randn(len(names), MAX_FRAMES, 32)
    video_mask = torch.ones(len(names), MAX_FRAMES, dtype=torch.long)
    index.add_features(frame_embeds, video_mask, names, [0.0, 0.0, 15.0, 0.0], [15.0, 15.0, 30.0, 15.0])
    assert index.videos() == ["/v/a.mp4", "/v/b.mp4", "/w/c.mp4"]
    index.remove("/w")
    assert index.videos() == ["/v/a.mp4", "/v/b.mp4"]
    assert VideoIndex.open(index.root, model=index.model).videos() == ["/v/a.mp4", "/v/b.mp4"]
