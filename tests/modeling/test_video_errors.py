"""Tests of modeling/video_errors_glccl.py through read_frames: what is not a readable video is refused with an error
that names the file and the reason (missing, a directory, empty, not a video, truncated, a still image, an MP4 without
its index, a symlink loop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from video_fixtures import write_format_videos

from glccl_hf.video import VideoDecodeError, read_frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 s, 10 fps (40 frames) of each format."""
    return write_format_videos(tmp_path_factory.mktemp("videos"))


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
