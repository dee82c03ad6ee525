"""Tests of modeling/torchcodec_glccl.py: the optional torchcodec backend picks the frames PyAV picks, says clearly
when it is not installed, and reports broken files by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from video_fixtures import FORMATS, check_picks, write_format_videos

from glccl_hf.video import VideoDecodeError, read_frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """4 s, 10 fps (40 frames) of each format."""
    return write_format_videos(tmp_path_factory.mktemp("videos"))


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
