"""Tests of glccl_hf.video: the reference's frame sampling on real (generated) videos, errors, preprocessing.

Every test video encodes each frame's index in four gray blocks (base-8 digits, 32 levels apart), so the
decoded frames can be identified exactly after lossy compression; expected frames come from the known
presentation times of the encoded frames, never from the code under test.
"""

from __future__ import annotations

import gc
import importlib.util
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from glccl_hf.video import (
    CLIP_MEAN,
    CLIP_STD,
    VideoDecodeError,
    VideoFrames,
    preprocess_frames,
    read_frames,
    sample_timestamps,
    video_duration,
)

BASE, STEP, OFFSET = 8, 32, 16


# ------------------------------------------------------------------------------------------------ helpers


def index_image(index: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 [H, W, 3] gray image whose 2x2 blocks hold the base-8 digits of ``index``."""
    img = np.empty((height, width), np.uint8)
    hs, ws = height // 2, width // 2
    for k in range(4):
        digit = (index // BASE**k) % BASE
        r, c = divmod(k, 2)
        img[r * hs : (hs if r == 0 else height), c * ws : (ws if c == 0 else width)] = OFFSET + STEP * digit
    return np.repeat(img[:, :, None], 3, axis=2)


def read_index(frame: torch.Tensor) -> int:
    """Inverse of index_image for a decoded uint8 [3, H, W] frame; fails on a garbled frame."""
    arr = frame.numpy().astype(np.float64)
    _, height, width = arr.shape
    hs, ws = height // 2, width // 2
    index = 0
    for k in range(4):
        r, c = divmod(k, 2)
        y0, y1 = (0, hs) if r == 0 else (hs, height)
        x0, x1 = (0, ws) if c == 0 else (ws, width)
        my, mx = (y1 - y0) // 4, (x1 - x0) // 4
        level = (arr[:, y0 + my : y1 - my, x0 + mx : x1 - mx].mean() - OFFSET) / STEP
        digit = round(level)
        assert abs(level - digit) < 0.3, f"block {k} of the frame is not a clean level: {level:.2f}"
        index += digit * BASE**k
    return index


def encode(
    path: Path,
    container_format: str,
    codec: str,
    pix_fmt: str,
    width: int,
    height: int,
    n_frames: int,
    rate: int | Fraction = 10,
    pts_ms: list[int] | None = None,
    options: dict[str, str] | None = None,
    image=index_image,
) -> Path:
    """Write a video whose frame i shows index i; CFR at ``rate`` or, with ``pts_ms``, those times (ms)."""
    container = av.open(str(path), "w", format=container_format)
    stream = container.add_stream(codec, rate=None if pts_ms else rate)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    if pts_ms is not None:
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
    if options:
        stream.options = options
    for i in range(n_frames):
        frame = av.VideoFrame.from_ndarray(image(i, width, height), format="rgb24")
        if pts_ms is not None:
            frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def encode_silence(container: av.container.OutputContainer, stream: av.AudioStream, frames: int, samples: int) -> None:
    """Mux `frames` silent mono audio frames of `samples` samples each into `stream` (at its rate), then flush it."""
    for i in range(frames):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = stream.rate, i * samples
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def reference_times(duration: float, max_frames: int, sample_fps: float) -> list[float]:
    """The reference rule written out independently: k / fps inside the video, linspace-subsampled."""
    k = np.arange(0, math.ceil(duration * sample_fps + 1))
    k = k[k / sample_fps < duration - 1e-9]
    if len(k) > max_frames:
        k = k[np.linspace(0, len(k) - 1, max_frames).astype(int)]
    return [float(x) / sample_fps for x in k]


def shown_at(frame_times: list[float], t: float) -> int:
    """Index of the frame shown at t: the last one starting at or before t."""
    return max(i for i, start in enumerate(frame_times) if start <= t + 1e-9)


def check_picks(result: VideoFrames, frame_times: list[float], duration: float, max_frames: int, fps: float) -> None:
    expected_t = reference_times(duration, max_frames, fps)
    assert result.timestamps == pytest.approx(expected_t)
    assert result.frames.dtype == torch.uint8 and result.frames.ndim == 4 and result.frames.shape[1] == 3
    assert [read_index(f) for f in result.frames] == [shown_at(frame_times, t) for t in expected_t]


# ------------------------------------------------------------------------------------------------ fixtures

# name -> (container format, codec, pixel format, width, height)
FORMATS = {
    "mp4_h264": ("mp4", "libx264", "yuv420p", 64, 48),
    "webm_vp9": ("webm", "libvpx-vp9", "yuv420p", 64, 48),
    "avi_mjpeg": ("avi", "mjpeg", "yuvj420p", 64, 48),
    "mkv_ffv1": ("matroska", "ffv1", "yuv420p", 64, 48),
    "mp4_h264_10bit": ("mp4", "libx264", "yuv420p10le", 64, 48),
    "mkv_ffv1_gray": ("matroska", "ffv1", "gray", 32, 32),
    "mkv_ffv1_odd": ("matroska", "ffv1", "yuv420p", 33, 17),
    "mp4_h264_444_odd": ("mp4", "libx264", "yuv444p", 33, 17),
}
EXT = {"mp4": "mp4", "webm": "webm", "avi": "avi", "matroska": "mkv"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 s, 10 fps (40 frames) of each format."""
    root = tmp_path_factory.mktemp("videos")
    out = {}
    for name, (fmt, codec, pix, w, h) in FORMATS.items():
        out[name] = encode(root / f"{name}.{EXT[fmt]}", fmt, codec, pix, w, h, n_frames=40, rate=10)
    return out


# ------------------------------------------------------------------------------------------------ sampling


def test_sample_timestamps_rule() -> None:
    assert sample_timestamps(3.0) == [0.0, 1.0, 2.0]  # t = 3 is the end, not inside
    assert sample_timestamps(3.01) == [0.0, 1.0, 2.0, 3.0]
    assert sample_timestamps(0.3) == [0.0]
    assert sample_timestamps(0.0) == [0.0]
    assert sample_timestamps(2.0, sample_fps=2.0) == [0.0, 0.5, 1.0, 1.5]
    k = np.linspace(0, 29, 12).astype(int)
    assert sample_timestamps(30.0, max_frames=12) == [float(x) for x in k]
    assert sample_timestamps(100.0, max_frames=1) == [0.0]
    # 0.1 fps is exactly one candidate every 10 s, not just under it.
    assert sample_timestamps(35.0, sample_fps=0.1) == [0.0, 10.0, 20.0, 30.0]


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"max_frames": 0}, "max_frames"),
        ({"max_frames": -3}, "max_frames"),
        ({"max_frames": 2.5}, "max_frames"),
        ({"sample_fps": 0}, "sample_fps"),
        ({"sample_fps": -1.0}, "sample_fps"),
        ({"sample_fps": float("nan")}, "sample_fps"),
    ],
)
def test_bad_sampling_arguments(videos: dict[str, Path], kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        read_frames(videos["mp4_h264"], **kwargs)
    with pytest.raises(ValueError, match=word):
        sample_timestamps(10.0, **kwargs)


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


# ------------------------------------------------------------------------------------------------ rotation


def corner_image(width: int, height: int) -> np.ndarray:
    """RGB [H, W, 3] with four differently coloured quadrants: any rotation or mirroring of it looks different."""
    img = np.empty((height, width, 3), np.uint8)
    hs, ws = height // 2, width // 2
    img[:hs, :ws], img[:hs, ws:] = (220, 30, 30), (30, 220, 30)
    img[hs:, :ws], img[hs:, ws:] = (30, 30, 220), (230, 230, 40)
    return img


def as_displayed(image: np.ndarray, degrees: int, hflip: bool, vflip: bool) -> np.ndarray:
    """The picture a player shows for `image` stored with set_display_rotation(degrees, hflip, vflip): turned
    `degrees` counter-clockwise, then mirrored (PyAV's and FFmpeg's convention)."""
    shown = np.rot90(image, k=(degrees // 90) % 4)
    if hflip:
        shown = shown[:, ::-1]
    if vflip:
        shown = shown[::-1]
    return shown


ORIENTATIONS = [(90, False, False), (180, False, False), (270, False, False), (-90, False, False),
                (0, True, False), (0, False, True), (90, True, False), (-90, True, False)]  # fmt: skip


@pytest.mark.parametrize(("degrees", "hflip", "vflip"), ORIENTATIONS)
@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "libx264"), ("matroska", "libx264")])
def test_display_matrix_is_applied(
    tmp_path: Path, fmt: str, codec: str, degrees: int, hflip: bool, vflip: bool
) -> None:
    width, height = 48, 32  # not square: a quarter turn swaps the sides
    path = tmp_path / f"phone.{EXT[fmt]}"
    container = av.open(str(path), "w", format=fmt)
    stream = container.add_stream(codec, rate=10)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
    stream.options = {"crf": "0", "preset": "ultrafast"}  # lossless: the comparison below is exact up to RGB rounding
    stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
    for _ in range(5):
        for packet in stream.encode(av.VideoFrame.from_ndarray(corner_image(width, height), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    frames = read_frames(path, max_frames=2, sample_fps=2.0).frames
    expected = as_displayed(corner_image(width, height), degrees, hflip, vflip)
    assert frames.shape[2:] == expected.shape[:2]
    for frame in frames:
        assert np.abs(frame.permute(1, 2, 0).numpy().astype(int) - expected).max() <= 2


def test_no_decoder_frame_outlives_read_frames_in_a_reference_cycle(tmp_path: Path) -> None:
    # A decoder frame left to the cyclic garbage collector is freed wherever it runs next: in a forked DataLoader
    # worker that crashes the process (PyAV's frame side-data view makes such a cycle).
    path = encode(tmp_path / "phone.mp4", "mp4", "libx264", "yuv420p", 48, 32, 10)

    def decoder_frames() -> set[int]:  # frames in the decoder's pixel format, alive now
        return {id(o) for o in gc.get_objects() if type(o) is av.VideoFrame and o.format.name == "yuv420p"}

    gc.collect()
    gc.disable()  # what a cycle holds stays alive until collected
    try:
        before = decoder_frames()
        read_frames(path, max_frames=4, sample_fps=2.0)
        leaked = decoder_frames() - before
    finally:
        gc.enable()
        gc.collect()
    assert not leaked, f"{len(leaked)} decoded frames are kept alive only by reference cycles"


def test_display_matrix_at_an_odd_angle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tilted.mp4"
    container = av.open(str(path), "w", format="mp4")
    stream = container.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    half = round(65536 * math.sqrt(0.5))
    stream.set_display_matrix([half, -half, 0, half, half, 0, 0, 0, 1 << 30])  # 45 degrees
    for packet in [*stream.encode(av.VideoFrame.from_ndarray(corner_image(32, 32), format="rgb24")), *stream.encode()]:
        container.mux(packet)
    container.close()
    with pytest.raises(VideoDecodeError, match=r"tilted.mp4: the display matrix turns the picture by 45 degrees"):
        read_frames(path)


# ------------------------------------------------------------------------------------------------ errors


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_frames(missing)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match="directory"):
        read_frames(tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"just some text, not a video\n" * 20, "not a readable video"),
        (bytes(range(256)) * 40, "not a readable video"),
    ],
)
def test_not_a_video(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match=reason) as info:
        read_frames(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(VideoDecodeError, match="<bytes>"):
        read_frames(content)


@pytest.mark.parametrize("name", ["mp4_h264", "mkv_ffv1", "webm_vp9", "avi_mjpeg"])
def test_truncated(videos: dict[str, Path], tmp_path: Path, name: str) -> None:
    data = videos[name].read_bytes()
    path = tmp_path / f"cut_{videos[name].name}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError) as info:
        read_frames(path)
    assert str(path) in str(info.value)
    with pytest.raises(VideoDecodeError, match="<bytes>"):
        read_frames(data[: len(data) // 2])


def save_image(path: Path, image_format: str, frames: int = 1) -> Path:
    """An image file (PIL) of `frames` flat pictures, whatever the name's extension says."""
    from PIL import Image

    pictures = [Image.fromarray(np.full((20, 30, 3), 60 * i, np.uint8)) for i in range(frames)]
    pictures[0].save(path, format=image_format, save_all=frames > 1, append_images=pictures[1:], duration=100)
    return path


@pytest.mark.parametrize(
    ("image_format", "detected"),
    [("PNG", "png_pipe"), ("JPEG", "jpeg_pipe"), ("WEBP", "webp_pipe"), ("BMP", "bmp_pipe"), ("GIF", "gif")],
)
def test_still_image_is_not_a_video(tmp_path: Path, image_format: str, detected: str) -> None:
    path = save_image(tmp_path / "clip.mp4", image_format)  # a picture with a video's name
    with pytest.raises(VideoDecodeError, match=f"the {detected} container holds a still image") as info:
        read_frames(path)
    assert str(path) in str(info.value) and "not a video" in str(info.value)
    with pytest.raises(VideoDecodeError, match=f"<bytes>: the {detected} container holds a still image"):
        read_frames(path.read_bytes())
    # Checked before any backend decodes: torchcodec (installed or not) says the same.
    with pytest.raises(VideoDecodeError, match=f"the {detected} container holds a still image"):
        read_frames(path, backend="torchcodec")


@pytest.mark.parametrize("image_format", ["GIF", "PNG"])  # animated GIF, APNG
def test_animated_images_are_videos(tmp_path: Path, image_format: str) -> None:
    result = read_frames(save_image(tmp_path / "anim.bin", image_format, frames=3), max_frames=5, sample_fps=10.0)
    assert result.timestamps == pytest.approx([0.0, 0.1, 0.2])
    assert [round(float(frame.float().mean()) / 60) for frame in result.frames] == [0, 1, 2]


def mp4_boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Top-level MP4 boxes: type -> (start, end) byte offsets."""
    boxes, offset = {}, 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes[data[offset + 4 : offset + 8].decode()] = (offset, offset + size)
        offset += size
    return boxes


def test_mp4_without_its_index_is_reported_as_truncated(videos: dict[str, Path], tmp_path: Path) -> None:
    data = videos["mp4_h264"].read_bytes()
    moov_start, moov_end = mp4_boxes(data)["moov"]
    assert moov_start > mp4_boxes(data)["mdat"][0]  # the index comes after the frames, as a recorder writes it
    for cut, where in [(moov_start, "before"), (moov_start + 300, "inside")]:
        path = tmp_path / f"cut_{where}_moov.mp4"
        path.write_bytes(data[:cut])
        with pytest.raises(VideoDecodeError, match=r"truncated") as info:
            read_frames(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and "moov" in message and "index" in message, message
        assert "no video stream" not in message and "not a readable video" not in message, message
        with pytest.raises(VideoDecodeError, match=r"truncated.*moov"):
            read_frames(path, backend="torchcodec")


def test_symlink_loop_and_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").symlink_to(tmp_path / "b.mp4")
    (tmp_path / "b.mp4").symlink_to(tmp_path / "a.mp4")
    with pytest.raises(VideoDecodeError, match="symlink loop") as info:
        read_frames(tmp_path / "a.mp4")
    assert str(tmp_path / "a.mp4") in str(info.value) and "not found" not in str(info.value)
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    with pytest.raises(FileNotFoundError, match="dangling symlink") as info:
        read_frames(tmp_path / "dangling.mp4")
    assert "gone.mp4" in str(info.value)


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


@pytest.mark.skipif(importlib.util.find_spec("torchcodec") is not None, reason="torchcodec is installed")
def test_torchcodec_missing_is_a_clear_import_error(videos: dict[str, Path]) -> None:
    with pytest.raises(ImportError, match="torchcodec"):
        read_frames(videos["mp4_h264"], backend="torchcodec")


@pytest.mark.parametrize("name", list(FORMATS))
def test_torchcodec_backend_matches_pyav(videos: dict[str, Path], name: str) -> None:
    pytest.importorskip("torchcodec")
    for max_frames, fps in [(12, 1.0), (5, 2.0)]:
        codec = read_frames(videos[name].read_bytes(), max_frames=max_frames, sample_fps=fps, backend="torchcodec")
        check_picks(codec, [i / 10 for i in range(40)], 4.0, max_frames, fps)


def test_torchcodec_backend_errors(videos: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("torchcodec")
    data = videos["avi_mjpeg"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="cut.avi"):
        read_frames(cut, backend="torchcodec")
    text = tmp_path / "text.mp4"
    text.write_bytes(b"not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match="text.mp4"):
        read_frames(text, backend="torchcodec")


# ------------------------------------------------------------------------------------------------ preprocessing


def realistic_frames(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth colour gradients with a few flat shapes and mild noise, uint8 [n, 3, H, W]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    out = []
    for i in range(n):
        img = np.stack(
            [
                128 + 100 * np.sin(3 * xx + i),
                128 + 100 * np.cos(2 * yy + 0.5 * i),
                128 + 90 * np.sin(2 * (xx + yy) + 0.3 * i),
            ],
            axis=-1,
        )
        for _ in range(3):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.05, 0.2) * min(height, width)
            mask = (np.mgrid[0:height, 0:width][0] - cy) ** 2 + (np.mgrid[0:height, 0:width][1] - cx) ** 2 < r * r
            img[mask] = rng.uniform(0, 255, 3)
        img += rng.normal(0, 3, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize(("height", "width"), [(360, 640), (480, 360), (224, 224), (100, 150), (17, 33)])
def test_preprocess_matches_clip_image_processor(height: int, width: int) -> None:
    from transformers import CLIPImageProcessor

    frames = realistic_frames(3, height, width)
    ours = preprocess_frames(frames, image_size=224)
    assert ours.shape == (3, 3, 224, 224) and ours.dtype == torch.float32
    processor = CLIPImageProcessor()  # defaults: shortest_edge 224, crop 224, CLIP mean/std
    images = [f.permute(1, 2, 0).numpy() for f in frames]
    theirs = torch.as_tensor(np.asarray(processor(images=images, return_tensors="np")["pixel_values"]))
    assert theirs.shape == ours.shape
    assert (ours - theirs).abs().mean().item() < 0.02


def test_preprocess_flat_colour_and_sizes() -> None:
    colour = (200, 100, 30)
    frames = torch.tensor(colour, dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 50, 80).contiguous()
    out = preprocess_frames(frames, image_size=32)
    assert out.shape == (2, 3, 32, 32)
    for c in range(3):
        expected = (colour[c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c]
        assert torch.allclose(out[:, c], torch.full((2, 32, 32), expected), atol=1e-5)
    gray = preprocess_frames(frames[:, :1], image_size=32)
    assert torch.allclose(
        gray[:, 0], gray[:, 1] * CLIP_STD[1] / CLIP_STD[0] + (CLIP_MEAN[1] - CLIP_MEAN[0]) / CLIP_STD[0]
    )
    assert preprocess_frames(frames[:0], image_size=32).shape == (0, 3, 32, 32)


def test_preprocess_centre_crop_position() -> None:
    # A wide frame whose left and right thirds differ: the crop keeps the middle.
    frames = torch.zeros(1, 3, 10, 30, dtype=torch.uint8)
    frames[..., 10:20] = 255
    out = preprocess_frames(frames, image_size=10)
    white = (1 - CLIP_MEAN[0]) / CLIP_STD[0]
    assert torch.allclose(out[0, 0, :, 2:8], torch.full((10, 6), white), atol=1e-4)


@pytest.mark.parametrize(
    ("frames", "error", "word"),
    [
        (np.zeros((1, 3, 8, 8), np.uint8), TypeError, "torch.Tensor"),
        (torch.zeros(1, 3, 8, 8), ValueError, "uint8"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), ValueError, "shape"),
        (torch.zeros(1, 8, 8, 3, dtype=torch.uint8), ValueError, "shape"),
    ],
)
def test_preprocess_bad_input(frames, error: type[Exception], word: str) -> None:
    with pytest.raises(error, match=word):
        preprocess_frames(frames)


def test_preprocess_bad_image_size() -> None:
    with pytest.raises(ValueError, match="image_size"):
        preprocess_frames(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), image_size=0)
