"""Video files for the tests: index-coded clips in every container the reader supports (with the reference's sampling
rule written out independently to check what is picked), lossless flat-colour clips, files that do not decode, and
the processor of a synthetic corpus (not collected by pytest: no test_ functions; tests import it as `video_fixtures`).

Every index-coded video encodes each frame's index in four gray blocks (base-8 digits, 32 levels apart), so the
decoded frames can be identified exactly after lossy compression; expected frames come from the known
presentation times of the encoded frames, never from the code under test.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from glccl_hf.data import encode_video, load_synthetic_tokenizer
from glccl_hf.processing import GLCCLProcessor
from glccl_hf.video import VideoFrames

BASE, STEP, OFFSET = 8, 32, 16


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


def write_format_videos(folder: Path) -> dict[str, Path]:
    """4 s, 10 fps (40 frames) of each of FORMATS, index-coded, in `folder`: name -> path."""
    out = {}
    for name, (fmt, codec, pix, w, h) in FORMATS.items():
        out[name] = encode(folder / f"{name}.{EXT[fmt]}", fmt, codec, pix, w, h, n_frames=40, rate=10)
    return out


def write_flat_video(
    path: Path, colours: list[tuple[int, int, int]], rate: int = 10, size: tuple[int, int] = (64, 48)
) -> Path:
    """Lossless RGB (FFV1, bgr0) video: frame i is the flat colour colours[i]."""
    width, height = size

    def frames():
        for colour in colours:
            image = np.empty((height, width, 3), np.uint8)
            image[:] = colour
            yield image

    return encode_video(path, frames(), fps=rate, codec="ffv1", pix_fmt="bgr0", container_format="matroska")


def write_garbage(path: Path, repeats: int = 50) -> Path:
    """A file that is no video at all."""
    path.write_bytes(b"not a video at all" * repeats)
    return path


def write_truncated(source: Path, path: Path) -> Path:
    """The first half of the video `source`: its header is intact, its frames are cut off."""
    whole = source.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def synthetic_processor(corpus: Path, *, max_words: int, max_frames: int, image_size: int) -> GLCCLProcessor:
    """A GLCCLProcessor with the tokenizer that `make_synthetic_corpus` saved in `corpus`."""
    return GLCCLProcessor(
        load_synthetic_tokenizer(corpus), max_words=max_words, max_frames=max_frames, image_size=image_size
    )


def encode_silence(container: av.container.OutputContainer, stream: av.AudioStream, frames: int, samples: int) -> None:
    """Mux `frames` silent mono audio frames of `samples` samples each into `stream` (at its rate), then flush it."""
    for i in range(frames):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, samples), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = stream.rate, i * samples
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
