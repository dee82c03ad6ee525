"""Tests of glccl_hf.video's read_frames with PyAV (modeling/video_glccl.py, pyav_glccl.py, packet_lookahead_glccl.py):
the reference's frames picked on real (generated) videos in every container, variable frame rates, seeking, windows.

The videos are index-coded (see video_fixtures.py): expected frames come from the known presentation times of the
encoded frames, never from the code under test. Sampling, orientation, errors, torchcodec and preprocessing have
their own test files, one per module.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from video_fixtures import (
    EXT,
    FORMATS,
    check_picks,
    encode,
    encode_silence,
    index_image,
    read_index,
    shown_at,
    write_format_videos,
)

from glccl_hf.video import VideoDecodeError, read_frames, video_duration

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 s, 10 fps (40 frames) of each format."""
    return write_format_videos(tmp_path_factory.mktemp("videos"))


# ------------------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize("name", list(FORMATS))
@pytest.mark.parametrize(("max_frames", "fps"), [(12, 1.0), (5, 2.0), (7, 10.0), (40, 25.0)])
def test_formats_pick_the_frames_the_rule_says(videos: dict[str, Path], name: str, max_frames: int, fps: float) -> None:
    result = read_frames(videos[name], max_frames=max_frames, sample_fps=fps)
    frame_times = [i / 10 for i in range(40)]
    check_picks(result, frame_times, 4.0, max_frames, fps)
    _, _, _, width, height = FORMATS[name]
    assert result.frames.shape[2:] == (height, width)
    assert result.duration == pytest.approx(4.0)
    assert all(ft <= t + 1e-9 for ft, t in zip(result.frame_times, result.timestamps, strict=True))


@pytest.mark.parametrize("name", ["mp4_h264_10bit", "mkv_ffv1_gray", "avi_mjpeg"])
def test_gray_content_comes_out_gray_rgb(videos: dict[str, Path], name: str) -> None:
    frames = read_frames(videos[name], max_frames=3).frames.to(torch.int16)
    # Converted to RGB (3 equal channels for gray content) whatever the source pixel format.
    assert (frames[:, 0] - frames[:, 1]).abs().max() <= 2
    assert (frames[:, 2] - frames[:, 1]).abs().max() <= 2


def test_bytes_input_equals_path_input(videos: dict[str, Path]) -> None:
    for name in ("mp4_h264", "webm_vp9"):
        path = videos[name]
        from_path = read_frames(path, max_frames=6, sample_fps=2.0)
        from_bytes = read_frames(path.read_bytes(), max_frames=6, sample_fps=2.0)
        from_bytearray = read_frames(bytearray(path.read_bytes()), max_frames=6, sample_fps=2.0)
        assert torch.equal(from_path.frames, from_bytes.frames)
        assert torch.equal(from_path.frames, from_bytearray.frames)
        assert from_path.timestamps == from_bytes.timestamps
        assert read_frames(str(path)).frames.shape == read_frames(path).frames.shape


@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "libx264"), ("webm", "libvpx-vp9")])
def test_variable_frame_rate(tmp_path: Path, fmt: str, codec: str) -> None:
    pts_ms = [0, 100, 350, 1200, 1300, 1900, 2050, 2500]
    path = encode(tmp_path / f"vfr.{EXT[fmt]}", fmt, codec, "yuv420p", 64, 48, len(pts_ms), pts_ms=pts_ms)
    frame_times = [p / 1000 for p in pts_ms]
    for max_frames, fps in [(12, 2.0), (4, 2.0), (30, 10.0)]:
        result = read_frames(path, max_frames=max_frames, sample_fps=fps)
        # The last frame starts at 2.5 s and lasts under 0.5 s: candidates at 2 fps stop at 2.5.
        assert 2.5 < result.duration <= 3.0
        check_picks(result, frame_times, result.duration, max_frames, fps)
        assert result.frame_times == pytest.approx([frame_times[read_index(f)] for f in result.frames])


def test_mpeg_ts_start_offset_and_imprecise_seeks(tmp_path: Path) -> None:
    # MPEG-TS: the stream starts at a non-zero time and seeks land near, not on, keyframes.
    path = encode(tmp_path / "clip.ts", "mpegts", "libx264", "yuv420p", 64, 48, 200, rate=10, options={"g": "20"})
    with av.open(str(path)) as container:
        assert container.streams.video[0].start_time > 0
    for max_frames, fps in [(12, 1.0), (30, 3.0)]:
        check_picks(
            read_frames(path, max_frames=max_frames, sample_fps=fps),
            [i / 10 for i in range(200)],
            20.0,
            max_frames,
            fps,
        )


def test_audio_track_longer_than_video(tmp_path: Path) -> None:
    # The container duration covers the 6 s audio; sampling must follow the 3 s video stream.
    path = tmp_path / "with_audio.webm"
    container = av.open(str(path), "w", format="webm")
    video = container.add_stream("libvpx-vp9", rate=10)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    audio = container.add_stream("libopus", rate=48000)
    for i in range(30):
        for packet in video.encode(av.VideoFrame.from_ndarray(index_image(i, 64, 48), format="rgb24")):
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    encode_silence(container, audio, frames=6 * 50, samples=960)  # 6 s at 48 kHz
    container.close()
    with av.open(str(path)) as check:
        assert check.duration > 5_000_000  # microseconds
    result = read_frames(path, max_frames=12, sample_fps=2.0)
    assert result.duration == pytest.approx(3.0)
    check_picks(result, [i / 10 for i in range(30)], 3.0, 12, 2.0)


def test_one_frame_and_short_videos(tmp_path: Path) -> None:
    one = encode(tmp_path / "one.mp4", "mp4", "libx264", "yuv420p", 32, 32, n_frames=1)
    result = read_frames(one)
    assert result.timestamps == [0.0] and [read_index(f) for f in result.frames] == [0]
    short = encode(tmp_path / "short.mkv", "matroska", "ffv1", "yuv420p", 32, 32, n_frames=3)  # 0.3 s
    result = read_frames(short, max_frames=12)
    assert result.timestamps == [0.0] and len(result) == 1 and read_index(result.frames[0]) == 0


def test_hour_long_video_decodes_only_near_the_targets(tmp_path: Path) -> None:
    # 16x16 at 1 fps for an hour, a keyframe every 30 s: cheap to make, long to decode fully.
    path = encode(
        tmp_path / "hour.mp4", "mp4", "libx264", "yuv420p", 16, 16, n_frames=3600, rate=1,
        options={"g": "30", "preset": "ultrafast"},
    )  # fmt: skip
    result = read_frames(path, max_frames=12)
    check_picks(result, [float(i) for i in range(3600)], 3600.0, 12, 1.0)
    # Seeking: at most one keyframe interval (30 frames) per target, never the 3600 frames.
    assert result.decoded <= 12 * 30


def textured_image(index: int, width: int, height: int) -> np.ndarray:
    """A moving texture: inter-frame prediction matters, so a wrongly skipped reference frame shows."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([(xx * 7 + 5 * index) % 256, (yy * 9 + 3 * index) % 256, (xx * yy + 11 * index) % 256], -1)
    return img.astype(np.uint8)


def test_skipping_unused_b_frames_is_exact(tmp_path: Path) -> None:
    path = encode(
        tmp_path / "bframes.mp4", "mp4", "libx264", "yuv420p", 64, 48, n_frames=120, rate=10,
        options={"g": "60", "bf": "3"}, image=textured_image,
    )  # fmt: skip
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.has_b_frames
        # Brute force: decode every frame, then pick the one shown at each time.
        every = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    result = read_frames(path, max_frames=12, sample_fps=3.0)
    for t, frame in zip(result.timestamps, result.frames, strict=True):
        expected = every[shown_at([ft for ft, _ in every], t)][1]
        diff = np.abs(frame.permute(1, 2, 0).numpy().astype(int) - expected.astype(int)).max()
        assert diff <= 1, f"frame at t={t} differs from a full decode by {diff}"
    assert result.decoded < 120


# -------------------------------------------------------------------------------- exact-second boundaries

# Constant-frame-rate containers whose time bases differ (AVI: 1 / rate, MP4: a multiple of the rate, Matroska /
# WebM: milliseconds), at 98 x 54: a width that is no multiple of 16, like much real footage.
CFR_FORMATS = {
    "avi_mjpeg": ("avi", "mjpeg", "yuvj420p", {}),
    "mp4_h264": ("mp4", "libx264", "yuv420p", {"preset": "ultrafast"}),
    "mkv_h264": ("matroska", "libx264", "yuv420p", {"preset": "ultrafast", "bf": "2"}),
    "webm_vp9": ("webm", "libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8"}),
}
CFR_RATES = {"10": Fraction(10), "25": Fraction(25), "29.97": Fraction(30000, 1001)}


def full_decode(path: Path) -> list[tuple[float, np.ndarray]]:
    """What a player shows: every frame, decoded in order, with its time from the stream start, as RGB [H, W, 3]."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in container.decode(stream)]
        start = stream.start_time or 0
        return [(float((pts - start) * stream.time_base), image) for pts, image in frames]


@pytest.mark.parametrize("rate", list(CFR_RATES))
@pytest.mark.parametrize("name", list(CFR_FORMATS))
def test_exact_seconds_give_the_frame_a_player_shows(tmp_path: Path, name: str, rate: str) -> None:
    fmt, codec, pix, options = CFR_FORMATS[name]
    fps = CFR_RATES[rate]
    n_frames = math.ceil(3.2 * fps)
    path = encode(tmp_path / f"{name}.{EXT[fmt]}", fmt, codec, pix, 98, 54, n_frames, rate=fps, options=options)
    result = read_frames(path, max_frames=n_frames, sample_fps=1.0)
    assert result.timestamps == [0.0, 1.0, 2.0, 3.0]
    shown = full_decode(path)
    for k, frame in enumerate(result.frames):
        index = math.floor(k * fps + Fraction(1, 10**6))  # the frame on screen at k seconds
        assert read_index(frame) == index, f"t = {k} s"
        expected = shown[shown_at([t for t, _ in shown], float(k))][1]
        # Every pixel, the right edge included, is the player's.
        assert np.array_equal(frame.permute(1, 2, 0).numpy(), expected), f"t = {k} s: pixels differ from a full decode"


@pytest.mark.parametrize(
    ("start", "seconds", "fps", "times"),
    [
        (2.5, 2.0, 2.0, [2.5, 3.0, 3.5, 4.0]),  # a window inside the video
        (4.0, None, 1.0, [4.0, 5.0, 6.0]),  # to the end (the video lasts 6.3 s)
        (5.5, 30.0, 2.0, [5.5, 6.0]),  # a window longer than what is left ends with the video
    ],
)
def test_a_window_gives_the_frames_a_full_decode_shows_at_its_times(
    tmp_path: Path, start: float, seconds: float | None, fps: float, times: list[float]
) -> None:
    path = encode(tmp_path / "long.mp4", "mp4", "libx264", "yuv420p", 98, 54, 63, rate=10)
    result = read_frames(path, max_frames=20, sample_fps=fps, start_seconds=start, max_seconds=seconds)
    assert result.timestamps == times
    shown = full_decode(path)
    for t, frame in zip(times, result.frames, strict=True):
        expected = shown[shown_at([s for s, _ in shown], t)][1]
        assert np.array_equal(frame.permute(1, 2, 0).numpy(), expected), f"t = {t} s: pixels differ from a full decode"


def test_a_window_is_subsampled_by_linspace_and_must_start_inside_the_video(videos: dict[str, Path]) -> None:
    result = read_frames(videos["mp4_h264"], max_frames=3, sample_fps=10.0, start_seconds=1.0, max_seconds=1.0)
    assert result.timestamps == pytest.approx([1.0, 1.4, 1.9])  # linspace(0, 9, 3) of 1.0, 1.1, ..., 1.9
    assert video_duration(videos["mp4_h264"]) == pytest.approx(result.duration)
    with pytest.raises(ValueError, match="start_seconds=99 is not inside the video"):
        read_frames(videos["mp4_h264"], start_seconds=99)
    with pytest.raises(ValueError, match="start_seconds must be a finite number >= 0"):
        read_frames(videos["mp4_h264"], start_seconds=-1)


# ------------------------------------------------------------------------------------------------ errors


def test_audio_only(tmp_path: Path) -> None:
    path = tmp_path / "audio.m4a"
    container = av.open(str(path), "w", format="mp4")
    stream = container.add_stream("aac", rate=16000)
    encode_silence(container, stream, frames=10, samples=1024)
    container.close()
    with pytest.raises(VideoDecodeError, match="no video stream") as info:
        read_frames(path)
    assert "audio.m4a" in str(info.value)


def test_bad_source_and_backend(videos: dict[str, Path]) -> None:
    with pytest.raises(TypeError, match="source"):
        read_frames(12345)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        read_frames(videos["mp4_h264"], backend="opencv")
