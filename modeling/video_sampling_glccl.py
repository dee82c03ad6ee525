"""Which frames of a video the GLCCL / CLIP4Clip reference samples, and what a sample holds.

Sampling rule (the reference's): candidate times ``t_k = k / sample_fps`` for ``k = 0, 1, ...`` while
``t_k`` lies inside the video (``t_k < duration``); when there are ``K > max_frames`` candidates, keep
``numpy.linspace(0, K - 1, max_frames).astype(int)`` of them. The frame a decoder returns for ``t`` is the one
shown at ``t``: the last frame whose presentation timestamp is ``<= t`` (times measured from the stream start).

Times are exact fractions, so that ``k / sample_fps`` lands on a frame's timestamp rather than just before it.
Part of the remote code a checkpoint carries with the processor (see video_glccl.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from .checks import positive_int

__all__ = [
    "VideoFrames",
    "check_max_seconds",
    "check_sampling_args",
    "check_start_seconds",
    "check_window_start",
    "sample_times",
    "sample_timestamps",
]

_NUMBER_TYPES = (int, float, Fraction, np.number)


@dataclass
class VideoFrames:
    """Frames sampled from one video.

    Attributes:
        frames: uint8 tensor [n, 3, H, W], RGB, oriented as displayed (display matrix applied).
        timestamps: the n sampling times in seconds from the stream start (``k / sample_fps``).
        frame_times: presentation time in seconds (from the stream start) of each returned frame; each is
            ``<= `` its sampling time, except at the very start of a stream whose first frame comes late.
        duration: length of the video stream in seconds, as used for the sampling.
        decoded: how many frames the decoder produced to get these (a cost diagnostic; 0 for backends that
            do not report it).
    """

    frames: torch.Tensor
    timestamps: list[float]
    frame_times: list[float] = field(default_factory=list)
    duration: float = 0.0
    decoded: int = 0

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def _exact_seconds(name: str, value: Any, positive: bool, tail: str = "") -> Fraction:
    """`value` as an exact fraction, or a ValueError naming `name` when it is not a finite number > 0 (or >= 0)."""
    number, finite = (
        ("positive number", "positive finite number") if positive else ("number >= 0", "finite number >= 0")
    )
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        raise ValueError(f"{name} must be a {number}{tail}, got {value!r}")
    if not math.isfinite(float(value)) or (value <= 0 if positive else value < 0):
        raise ValueError(f"{name} must be a {finite}{tail}, got {value!r}")
    # limit_denominator: 0.1 means exactly 1/10, so t = 10 s lands on a frame at 10 s rather than just before it.
    # .item(): Fraction takes numpy's float32 and float16 only as Python floats.
    return Fraction(value.item() if isinstance(value, np.number) else value).limit_denominator(1_000_000)


def check_sampling_args(max_frames: int, sample_fps: float) -> Fraction:
    """Validate the sampling arguments; return sample_fps as an exact fraction."""
    positive_int("max_frames", max_frames)
    return _exact_seconds("sample_fps", sample_fps, positive=True)


def check_max_seconds(max_seconds: float | None) -> Fraction | None:
    """Validate a sampling window length (seconds, or None for the whole video); return it as a fraction."""
    if max_seconds is None:
        return None
    return _exact_seconds("max_seconds", max_seconds, positive=True, tail=" or None")


def check_start_seconds(start_seconds: float) -> Fraction:
    """Validate where a sampling window starts (seconds from the stream start, >= 0); return it as a fraction."""
    return _exact_seconds("start_seconds", start_seconds, positive=False)


def check_window_start(name: str, start: Fraction, duration: Fraction) -> None:
    """Refuse a window that starts at or after the end of the video `name` (a window at 0 always fits)."""
    if start > 0 and start >= duration:
        raise ValueError(f"{name}: start_seconds={float(start):g} is not inside the video ({float(duration):.3f} s)")


def sample_times(
    duration: Fraction,
    max_frames: int,
    fps: Fraction,
    max_seconds: Fraction | None = None,
    start: Fraction = Fraction(0),
) -> list[Fraction]:
    """Exact sampling times (seconds) for a stream of the given duration, within `[start, start + max_seconds)`
    (to the end when `max_seconds` is None); at least one (t = start)."""
    end = duration if max_seconds is None else min(duration, start + max_seconds)
    num_candidates = max(1, math.ceil((end - start) * fps))
    if num_candidates > max_frames:
        indices = np.linspace(0, num_candidates - 1, max_frames).astype(int).tolist()
    else:
        indices = range(num_candidates)
    return [start + Fraction(int(k)) / fps for k in indices]


def sample_timestamps(
    duration: float, max_frames: int = 12, sample_fps: float = 1.0, max_seconds: float | None = None
) -> list[float]:
    """The sampling times (seconds) :func:`~video_glccl.read_frames` uses for a video of ``duration`` seconds.

    Candidates are ``k / sample_fps`` with ``k / sample_fps < min(duration, max_seconds)`` (at least ``t = 0``);
    when there are more than ``max_frames``, ``numpy.linspace(0, K - 1, max_frames).astype(int)`` of them are kept.
    """
    fps = check_sampling_args(max_frames, sample_fps)
    window = check_max_seconds(max_seconds)
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be a finite number >= 0 seconds, got {duration!r}")
    return [float(t) for t in sample_times(Fraction(duration), int(max_frames), fps, window)]
