"""`add` under a torchrun-style launch (RANK / WORLD_SIZE / MASTER_* set, 2 gloo processes on CPU): each process
encodes a share of the files, the main one commits, and the index equals a one-process run."""

from __future__ import annotations

import os
import socket

import numpy as np
import torch.multiprocessing as mp
from search_fixtures import corpus_and_tokenizer, save_checkpoint, tiny_processor, tiny_search_model
from video_fixtures import write_garbage

from glccl_hf.search import VideoIndex


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, index: str, videos: str, out: str) -> None:
    # What torchrun sets; VideoIndex.add starts the process group itself.
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    import torch

    torch.set_num_threads(1)
    report = VideoIndex.open(index).add(videos, batch_size=2, progress=False)
    with open(f"{out}.{rank}", "w") as handle:
        handle.write(f"{len(report.added)} {report.segments} {len(report.failed)}")
    torch.distributed.destroy_process_group()


def _segments(index: VideoIndex) -> dict[tuple[str, float], np.ndarray]:
    ids = index.segment_ids()
    features = index.features(ids).frame_embeds.numpy()
    return {(index.segment(i)["video"], index.segment(i)["start"]): f for i, f in zip(ids, features, strict=True)}


def test_two_process_add_equals_one_process_add(tmp_path):
    corpus, tokenizer = corpus_and_tokenizer(tmp_path / "corpus", 4, 2)
    checkpoint = save_checkpoint(tiny_search_model(tokenizer), tiny_processor(tokenizer), tmp_path / "checkpoint")
    write_garbage(corpus / "train" / "garbage.mp4")

    single = VideoIndex.create(tmp_path / "single", checkpoint, segment_seconds=2)
    single_report = single.add(corpus, batch_size=3, progress=False)
    assert len(single_report.added) == 6 and len(single_report.failed) == 1

    VideoIndex.create(tmp_path / "multi", checkpoint, segment_seconds=2)
    mp.spawn(
        _worker,
        args=(2, _free_port(), str(tmp_path / "multi"), str(corpus), str(tmp_path / "report")),
        nprocs=2,
        join=True,
    )
    # Every rank reports the whole run: 6 videos, 18 segments, the garbage file failed once.
    for rank in range(2):
        assert (tmp_path / f"report.{rank}").read_text() == "6 18 1"
    multi = VideoIndex.open(tmp_path / "multi")
    assert len(multi.manifest["shards"]) >= 2  # both ranks wrote shards
    expected, got = _segments(single), _segments(multi)
    assert got.keys() == expected.keys() and len(got) == 18
    for key, features in expected.items():
        np.testing.assert_allclose(got[key], features, rtol=2e-3, atol=1e-3, err_msg=str(key))
    assert multi.search("a red circle", k=5, exhaustive=True) != []
