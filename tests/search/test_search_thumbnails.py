"""Hit pictures: the frame shown at a time, decoded by seeking, and the GLIM-weight strip of a segment."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from glccl_hf.data import encode_video
from glccl_hf.search.thumbnails import ThumbnailCache, frame_strip, frames_at, playable_file

FPS, FRAMES = 10, 60


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory: pytest.TempPathFactory):
    """H.264 at 10 fps with a keyframe every 20 frames; frame i is flat grey 4 * i (so its time can be read back)."""
    path = tmp_path_factory.mktemp("thumbs") / "ramp.mp4"
    frames = (np.full((48, 64, 3), 4 * i, np.uint8) for i in range(FRAMES))
    options = {"preset": "ultrafast", "crf": "0", "x264-params": "keyint=20:min-keyint=20:scenecut=0"}
    return encode_video(path, frames, fps=FPS, options=options)


def frame_number(image: Image.Image) -> int:
    return round(float(np.asarray(image.convert("L")).mean()) / 4)


@pytest.mark.parametrize(
    "times, expected",
    [
        ([0.0, 0.05, 1.26, 1.3, 2.99], [0, 0, 12, 13, 29]),  # forward, within and across keyframe intervals
        ([5.0, 0.2, 4.31, 1.0], [50, 2, 43, 10]),  # out of order: results follow the request order
        ([9.0, 5.95], [59, 59]),  # past the end: the last frame stays on screen
    ],
)
def test_frames_at_gives_the_frame_shown_at_each_time(gop_video, times, expected):
    images = frames_at(str(gop_video), times)
    assert [frame_number(image) for image in images] == expected
    assert all(image.size == (64, 48) for image in images)


def test_frames_at_scales_to_the_longest_side_and_names_a_bad_file(gop_video, tmp_path):
    assert frames_at(str(gop_video), [1.0], max_side=32)[0].size == (32, 24)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 20)
    with pytest.raises(ValueError, match="bad.mp4"):
        frames_at(str(bad), [0.0])


def test_only_absolute_existing_files_are_playable(gop_video, tmp_path):
    assert playable_file(str(gop_video)) == str(gop_video)
    assert playable_file("ramp.mp4") is None  # a relative name (a datasets row) is never opened from the cwd
    assert playable_file(str(tmp_path / "gone.mp4")) is None
    assert playable_file(str(tmp_path)) is None


def test_thumbnail_cache_decodes_once_and_shows_a_placeholder_for_missing_videos(gop_video, tmp_path):
    cache = ThumbnailCache(capacity=2)
    first = cache.get(str(gop_video), 2.0)
    assert frame_number(first) == 20
    assert cache.get(str(gop_video), 2.0) is first
    missing = cache.get(str(tmp_path / "gone.mp4"), 1.0)
    assert missing.size[0] > 0 and frame_number(missing) != 20
    cache.get(str(gop_video), 3.0)
    cache.get(str(gop_video), 4.0)
    assert cache.get(str(gop_video), 2.0) is not first  # evicted beyond capacity


def test_get_many_keeps_the_request_order(gop_video, tmp_path):
    cache = ThumbnailCache()
    requests = [(str(gop_video), t) for t in (4.0, 0.0, 2.5, 1.0, 5.5)] + [(str(tmp_path / "gone.mp4"), 1.0)]
    images = cache.get_many(requests)
    assert [frame_number(image) for image in images[:5]] == [40, 0, 25, 10, 55]
    assert images[5].size == cache.get(str(tmp_path / "gone.mp4"), 1.0).size


def test_frame_strip_outlines_the_most_weighted_frame(gop_video):
    images = frames_at(str(gop_video), [0.0, 1.0, 2.0])
    strip = frame_strip(images, [0.0, 1.0, 2.0], [0.2, 0.7, 0.1], height=48)
    assert strip.height > 48 and strip.width >= 3 * 64
    pixels = np.asarray(strip)
    orange = np.all(pixels == (249, 115, 22), axis=-1)
    # Bars are proportional to the weights: the middle frame's bar is the tallest.
    columns = [orange[:, 6 + 64 * i + 6 * i + 32].sum() for i in range(3)]
    assert columns[1] > columns[0] > columns[2]
    with pytest.raises(ValueError, match="as many"):
        frame_strip(images, [0.0], [1.0])
