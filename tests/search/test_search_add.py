"""VideoIndex.add on video files: segment sampling, incremental updates, bad input, datasets corpora, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from search_fixtures import (
    corpus_and_tokenizer,
    save_checkpoint,
    tiny_processor,
    tiny_search_model,
    write_audio_only,
    write_zero_length_video,
)
from video_fixtures import write_flat_video, write_garbage, write_truncated

from glccl_hf.data import load_retrieval_dataset
from glccl_hf.search import VideoIndex
from glccl_hf.search.segments import discover, iter_segments, segment_bounds
from glccl_hf.search.storage import MANIFEST, read_manifest
from glccl_hf.video import read_frames

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return corpus_and_tokenizer(tmp_path_factory.mktemp("corpus"), 4, 2)


@pytest.fixture(scope="module")
def model(corpus_tokenizer):
    return tiny_search_model(corpus_tokenizer[1])


@pytest.fixture
def videos(tmp_path, corpus_tokenizer) -> Path:
    """A folder with the corpus's six 6 s videos, one in a subfolder, and a file that is not a video by extension."""
    corpus = corpus_tokenizer[0]
    folder = tmp_path / "videos"
    (folder / "more").mkdir(parents=True)
    for i, path in enumerate(sorted(corpus.glob("*/*.mp4"))):
        (folder / ("more" if i == 0 else "") / path.name).write_bytes(path.read_bytes())
    (folder / "notes.txt").write_text("not a video")
    return folder


def stored_features(index: VideoIndex) -> dict[tuple[str, float], np.ndarray]:
    """Every live segment's stored features by (video, start)."""
    ids = index.segment_ids()
    features = index.features(ids).frame_embeds.numpy()
    keys = [(index.segment(i)["video"], index.segment(i)["start"]) for i in ids]
    assert len(set(keys)) == len(keys), "a segment is stored twice"
    return dict(zip(keys, features, strict=True))


def test_segments_are_cut_consecutively_with_a_short_tail_merged():
    assert segment_bounds(6.0, 15.0) == [(0.0, 6.0)]
    assert segment_bounds(30.0, 15.0) == [(0.0, 15.0), (15.0, 30.0)]
    assert segment_bounds(37.0, 15.0) == [(0.0, 15.0), (15.0, 37.0)]  # a 7 s tail joins the last segment
    assert segment_bounds(38.0, 15.0) == [(0.0, 15.0), (15.0, 30.0), (30.0, 38.0)]


def test_each_segment_is_sampled_like_a_clip_of_its_own(tmp_path):
    # Frame i (2 fps) has red value i: the colour of a sampled frame tells which frame was picked.
    rate, seconds = 2, 43
    path = write_flat_video(tmp_path / "long.mkv", [(i, 0, 0) for i in range(rate * seconds)], rate=rate)
    (video,), failed = discover(path)
    assert not failed
    segments = list(iter_segments(video, 10.0, 1.0, max_frames=4))
    assert [(s.start, s.end) for s in segments] == [(0, 10), (10, 20), (20, 30), (30, 43)]
    for segment in segments:
        frames, times = segment.frames, segment.times
        # 10 (13 for the merged tail) candidates at 1 fps, 4 kept by linspace, as the processor samples a clip.
        candidates = int(segment.end - segment.start)
        expected = [segment.start + k for k in np.linspace(0, candidates - 1, 4).astype(int)]
        assert times == expected
        assert frames[:, 0, 0, 0].tolist() == [int(t * rate) for t in expected]  # the frame shown at each time


def test_a_video_shorter_than_a_segment_gets_exactly_the_processors_frames(corpus_tokenizer):
    corpus, tokenizer = corpus_tokenizer
    processor = tiny_processor(tokenizer)
    path = sorted(corpus.glob("train/*.mp4"))[0]
    (video,), _ = discover(path)
    (segment,) = iter_segments(video, 15.0, processor.sample_fps, processor.max_frames)
    ours = processor.load_video(segment.frames)
    theirs = processor.load_video(str(path))
    torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=0)
    assert torch.equal(ours[1], theirs[1])


def write_rotated_video(path: Path, seconds: int, rate: int = 4) -> Path:
    """A video stored 48x32 with a 90 degree display matrix (shown 32x48); frame i has red value 2 i."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
    stream.set_display_rotation(90)
    for i in range(seconds * rate):
        image = np.zeros((32, 48, 3), np.uint8)
        image[:, :, 0], image[:16, :24, 1] = 2 * i, 200  # a green corner: a turned picture looks different
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def test_segments_of_a_rotated_video_are_shown_upright_like_read_frames(tmp_path, corpus_tokenizer, model):
    processor = tiny_processor(corpus_tokenizer[1])
    path = write_rotated_video(tmp_path / "phone.mp4", seconds=24)
    (video,), _ = discover(path)
    segments = list(iter_segments(video, 10.0, processor.sample_fps, processor.max_frames))
    assert [(s.start, s.end) for s in segments] == [(0, 10), (10, 24)]  # the 4 s tail joins
    for segment in segments:
        window = None if segment.end == 24 else segment.end - segment.start
        expected = read_frames(path, processor.max_frames, processor.sample_fps, max_seconds=window,
                               start_seconds=segment.start)  # fmt: skip
        assert segment.frames.shape[2:] == (48, 32)  # display orientation: portrait
        assert torch.equal(segment.frames, expected.frames) and segment.times == expected.timestamps
    # Through the add path: the stored features are those of the upright frames.
    index = VideoIndex.create(tmp_path / "index", model, processor, segment_seconds=10.0)
    report = index.add(path, progress=False)
    assert report.failed == [] and report.segments == 2
    upright = read_frames(path, processor.max_frames, processor.sample_fps, max_seconds=10.0)
    inputs = processor.load_video(upright.frames)
    with torch.no_grad():
        expected = model.get_video_features(inputs[0][None], inputs[1][None]).frame_embeds[0]
    stored = stored_features(index)[(str(path), 0.0)]
    np.testing.assert_allclose(stored, expected.half().float().numpy(), rtol=0, atol=1e-6)


def test_add_folder_encodes_each_video_once_with_the_models_features(tmp_path, videos, model, corpus_tokenizer):
    processor = tiny_processor(corpus_tokenizer[1])
    index = VideoIndex.create(tmp_path / "index", model, processor)
    report = index.add(videos, batch_size=4, progress=False)
    paths = sorted(str(p) for p in videos.rglob("*.mp4"))
    assert sorted(report.added) == paths and report.failed == [] and report.unchanged == []
    assert len(index) == report.segments == 6  # 6 s videos, 15 s segments: one segment each
    inputs = processor(videos=paths)
    with torch.no_grad():
        expected = model.get_video_features(inputs["pixel_values"], inputs["video_mask"]).frame_embeds
    stored = stored_features(index)
    for path, features in zip(paths, expected, strict=True):
        np.testing.assert_allclose(stored[(path, 0.0)], features.half().float().numpy(), rtol=0, atol=1e-6)
    hit = index.search("a red circle moves left on a blue background", k=1)[0]
    assert hit.video in paths and hit.start == 0.0 and hit.end == pytest.approx(6.0) and 0 <= hit.best_time < 6


def test_rerun_adds_only_new_or_changed_files_and_a_changed_file_replaces_its_segments(
    tmp_path, videos, model, corpus_tokenizer
):
    index = VideoIndex.create(tmp_path / "index", model, tiny_processor(corpus_tokenizer[1]), segment_seconds=2)
    first = index.add(videos, progress=False)
    assert len(first.added) == 6 and len(index) == 18  # 6 s videos, 2 s segments
    again = index.add(videos, progress=False)
    assert again.added == [] and sorted(again.unchanged) == sorted(first.added) and len(index) == 18

    changed = videos / "more" / sorted(os.listdir(videos / "more"))[0]
    write_flat_video(changed, [(200, 10, 10)] * 25, rate=10)  # 2.5 s: one segment replaces three 2 s ones
    new = write_flat_video(videos / "new.mkv", [(10, 200, 10)] * 40, rate=10)
    third = index.add(videos, progress=False)
    assert sorted(third.added) == sorted([str(changed), str(new)]) and len(third.unchanged) == 5
    segments = [h.video for h in index.search("a red circle", k=100, exhaustive=True)]
    assert len(index) == len(segments) == 15 + 1 + 2
    assert segments.count(str(changed)) == 1 and segments.count(str(new)) == 2

    assert index.remove(changed) == 1 and str(changed) not in {h.video for h in index.search("a red", k=100)}
    reopened = VideoIndex.open(index.root, model=model)
    assert len(reopened) == 17
    assert reopened.add(videos, progress=False).added == [str(changed)]  # removed, so indexed again


def test_bad_inputs_are_reported_and_everything_else_is_indexed(tmp_path, videos, model, corpus_tokenizer):
    bad = videos / "bad"
    bad.mkdir()
    write_garbage(bad / "garbage.mp4")
    (bad / "empty.mp4").write_bytes(b"")
    write_audio_only(bad / "audio.mkv")
    write_zero_length_video(bad / "zero.mkv")
    write_truncated(next(videos.glob("*.mp4")), bad / "truncated.mp4")
    os.symlink(bad / "loop_b.mp4", bad / "loop_a.mp4")
    os.symlink(bad / "loop_a.mp4", bad / "loop_b.mp4")
    os.symlink(bad, bad / "again")  # a directory loop
    (bad / "folder.mp4").mkdir()  # a directory named like a video: searched, not decoded
    index = VideoIndex.create(tmp_path / "index", model, tiny_processor(corpus_tokenizer[1]))
    report = index.add([videos, tmp_path / "missing.mp4"], progress=False)
    reasons = {Path(path).name: reason for path, reason in report.failed}
    assert len(report.added) == 6 and len(index) == 6
    assert set(reasons) == {
        "garbage.mp4",
        "empty.mp4",
        "audio.mkv",
        "zero.mkv",
        "truncated.mp4",
        "loop_a.mp4",
        "loop_b.mp4",
        "again",
        "missing.mp4",
    }
    assert "0 bytes" in reasons["empty.mp4"]
    assert "no video stream" in reasons["audio.mkv"] and "audio" in reasons["audio.mkv"]
    assert "truncated" in reasons["truncated.mp4"]
    assert "symbolic link loop" in reasons["loop_a.mp4"] and "symbolic link loop" in reasons["again"]
    assert "not found" in reasons["missing.mp4"]
    assert all(reason for reason in reasons.values())
    assert not {Path(h.video).parent.name for h in index.search("a red circle", k=100)} & {"bad", "again"}


def test_a_datasets_corpus_is_indexed_by_path_or_by_bytes(tmp_path, corpus_tokenizer, model):
    corpus, tokenizer = corpus_tokenizer
    by_path = load_retrieval_dataset(corpus, "train")  # 3 captions per video: each video indexed once
    index = VideoIndex.create(tmp_path / "paths", model, tiny_processor(tokenizer))
    report = index.add(by_path, progress=False)
    assert len(report.added) == 4 and len(index) == 4 and report.failed == []

    import datasets

    rows = load_retrieval_dataset(corpus, "test")
    by_bytes = datasets.Dataset.from_dict(
        {"video": [Path(p).read_bytes() for p in rows["video"]] + [b""], "video_id": [*rows["video_id"], "blank"]}
    )
    index = VideoIndex.create(tmp_path / "bytes", model, tiny_processor(tokenizer))
    report = index.add(by_bytes, progress=False)
    assert sorted(report.added) == sorted(rows["video_id"]) and report.failed == [
        ("blank", "empty file (0 bytes), not a video")
    ]
    assert index.add(by_bytes, progress=False).unchanged == sorted(rows["video_id"])
    directory_row = datasets.Dataset.from_dict({"video": [str(tmp_path)]})
    assert "is a directory" in index.add(directory_row, progress=False).failed[0][1]


_ADD_SCRIPT = textwrap.dedent(
    """
    import sys
    import torch
    torch.set_num_threads(1)
    from glccl_hf.search import VideoIndex
    index = VideoIndex.open(sys.argv[1])
    print("opened", flush=True)
    index.add(sys.argv[2], batch_size=1, progress=False)
    print("finished", flush=True)
    """
)


def _run_and_kill(index: Path, videos: Path, after_commits: int) -> int:
    """Start `add` in a subprocess and SIGKILL it once `after_commits` more batches are committed; returns the
    generation it was killed at."""
    start = read_manifest(index)["generation"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, "-c", _ADD_SCRIPT, str(index), str(videos)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "opened"
    deadline = time.monotonic() + 60
    while read_manifest(index)["generation"] < start + after_commits and time.monotonic() < deadline:
        assert process.poll() is None, "add finished before it could be killed"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return read_manifest(index)["generation"]


def test_sigkill_during_add_leaves_a_working_index_and_a_rerun_completes_it(tmp_path, videos, model, corpus_tokenizer):
    processor = tiny_processor(corpus_tokenizer[1])
    checkpoint = save_checkpoint(model, processor, tmp_path / "checkpoint")
    reference = VideoIndex.create(tmp_path / "reference", checkpoint, segment_seconds=2)
    reference.add(videos, progress=False)
    expected = stored_features(reference)

    index = VideoIndex.create(tmp_path / "index", checkpoint, segment_seconds=2)
    _run_and_kill(index.root, videos, after_commits=2)  # killed after two committed videos
    killed = VideoIndex.open(index.root)
    indexed = {killed.segment(i)["video"] for i in killed.segment_ids()}
    assert 2 <= len(indexed) < 6 and len(killed) == 3 * len(indexed)  # whole videos: 3 segments each, together
    assert len(killed.search("a red circle", k=3)) == 3
    report = killed.add(videos, progress=False)
    assert sorted(report.unchanged) == sorted(indexed) and len(report.added) == 6 - len(indexed)
    assert len(killed) == 18
    got = stored_features(killed)
    assert got.keys() == expected.keys()  # every segment once, none twice
    for key, features in expected.items():
        np.testing.assert_allclose(got[key], features, rtol=2e-3, atol=1e-3)
    leftovers = {p.name for p in index.root.rglob("*") if p.is_file()} - {MANIFEST, ".lock"}
    assert not [name for name in leftovers if ".tmp-" in name]
