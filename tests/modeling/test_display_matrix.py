"""Tests of modeling/display_matrix_glccl.py through read_frames: frames come out as a player shows them (the stream's
display matrix applied), and reading it leaves no decoder frame to the garbage collector."""

from __future__ import annotations

import gc
import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from glccl_hf.modeling.display_matrix_glccl import display_orientation, orient_as_displayed
from video_fixtures import EXT, encode

from glccl_hf.video import VideoDecodeError, read_frames


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


def display_matrix(a: int, b: int, c: int, d: int) -> bytes:
    """FFmpeg's 3 x 3 display matrix (16.16 fixed point) with the given signs in its 2 x 2 rotation part."""
    return np.array([a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30], np.int32).tobytes()


def test_display_orientation_reads_quarter_turns_and_mirrors() -> None:
    assert display_orientation(None, 0, "clip.mp4") == (0, False)
    assert display_orientation(display_matrix(0, -1, 1, 0), 90, "clip.mp4") == (1, False)
    assert display_orientation(display_matrix(-1, 0, 0, 1), 0, "clip.mp4") == (0, True)
    with pytest.raises(VideoDecodeError, match="clip.mp4: the display matrix turns the picture by 45 degrees"):
        display_orientation(display_matrix(1, -1, 1, 1), 45, "clip.mp4")


def test_orient_as_displayed_turns_then_mirrors() -> None:
    image = corner_image(6, 4)
    shown = orient_as_displayed([image, image], turns=1, mirror=True)
    assert shown.dtype == torch.uint8 and shown.shape == (2, 3, 6, 4)
    expected = np.rot90(image)[:, ::-1]
    assert np.array_equal(shown[1].permute(1, 2, 0).numpy(), expected)
