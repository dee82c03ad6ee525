"""Tests of modeling/video_sampling_glccl.py: the reference's sampling rule and the checks of its arguments."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from video_fixtures import encode

from glccl_hf.video import (
    check_max_seconds,
    check_sampling_args,
    check_start_seconds,
    read_frames,
    sample_timestamps,
)


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
def test_bad_sampling_arguments(tmp_path: Path, kwargs: dict, word: str) -> None:
    video = encode(tmp_path / "clip.mp4", "mp4", "libx264", "yuv420p", 64, 48, n_frames=10)
    with pytest.raises(ValueError, match=word):
        read_frames(video, **kwargs)
    with pytest.raises(ValueError, match=word):
        sample_timestamps(10.0, **kwargs)


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (lambda value: check_sampling_args(1, value), "1", "sample_fps must be a positive number, got '1'"),
        (lambda value: check_sampling_args(1, value), float("inf"), "sample_fps must be a positive finite number"),
        (check_max_seconds, True, "max_seconds must be a positive number or None, got True"),
        (check_max_seconds, 0, "max_seconds must be a positive finite number or None, got 0"),
        (check_start_seconds, "0", "start_seconds must be a number >= 0, got '0'"),
        (check_start_seconds, -0.5, "start_seconds must be a finite number >= 0, got -0.5"),
    ],
)
def test_each_check_names_its_argument_and_what_it_wants(check, value, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check(value)


def test_checks_return_exact_fractions() -> None:
    assert check_sampling_args(3, 0.1) == Fraction(1, 10)  # exactly one candidate every 10 s
    assert check_max_seconds(None) is None and check_max_seconds(32) == Fraction(32)
    assert check_start_seconds(0) == 0 and check_start_seconds(np.float32(2.5)) == Fraction(5, 2)  # numpy floats too
