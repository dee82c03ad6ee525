"""Video decoding: the frames the GLCCL / CLIP4Clip reference samples from a video (:func:`read_frames`), and the
public import path of everything around it.

One job per file, all carried by a checkpoint with the processor as remote code:

- video_sampling_glccl.py: which times are sampled (the reference's rule) and :class:`VideoFrames`;
- pyav_glccl.py: decoding with PyAV (the default): seeking, decoding forward, the frame shown at each time;
- packet_lookahead_glccl.py: which non-reference frames PyAV need not decode (packets read ahead);
- display_matrix_glccl.py: frames turned and mirrored as a player shows them (phone footage);
- torchcodec_glccl.py: the optional torchcodec backend;
- video_errors_glccl.py: :class:`VideoDecodeError` and the checks that say why a file is not a readable video;
- frame_processing_glccl.py: CLIP preprocessing of the decoded frames (its names are re-exported here, where they
  used to live).
"""

from __future__ import annotations

from .frame_processing_glccl import CLIP_MEAN, CLIP_STD, preprocess_frames, resize_crop_frames
from .pyav_glccl import PyAVReader
from .torchcodec_glccl import read_torchcodec
from .video_errors_glccl import BYTES_NAME, VideoDecodeError, VideoSource, resolve_source
from .video_sampling_glccl import (
    VideoFrames,
    check_max_seconds,
    check_sampling_args,
    check_start_seconds,
    sample_timestamps,
)

__all__ = [
    "BACKENDS",
    "BYTES_NAME",
    "CLIP_MEAN",
    "CLIP_STD",
    "VideoDecodeError",
    "VideoFrames",
    "VideoSource",
    "check_max_seconds",
    "check_sampling_args",
    "check_start_seconds",
    "preprocess_frames",
    "read_frames",
    "resize_crop_frames",
    "sample_timestamps",
    "video_duration",
]

BACKENDS = ("pyav", "torchcodec")


def read_frames(
    source: VideoSource,
    max_frames: int = 12,
    sample_fps: float = 1.0,
    backend: str = "pyav",
    max_seconds: float | None = None,
    start_seconds: float = 0.0,
) -> VideoFrames:
    """Decode the frames the reference's sampling rule picks (see video_sampling_glccl.py for the rule).

    Args:
        source: path (str or os.PathLike) or the encoded file's bytes.
        max_frames: at most this many frames are returned (>= 1).
        sample_fps: candidate frames per second of video (> 0); the reference uses 1.
        backend: ``"pyav"`` (default, no system packages needed) or ``"torchcodec"`` (if installed).
        max_seconds: sample only the first ``max_seconds`` seconds (None: the whole video). The reference reads
            DiDeMo videos from 0 to 31 s inclusive, i.e. ``max_seconds=32`` at 1 fps.
        start_seconds: sample the window ``[start_seconds, start_seconds + max_seconds)`` instead, with candidate
            times ``start_seconds + k / sample_fps`` (a clip cut out of a longer video); it must lie inside the
            video.

    Returns:
        VideoFrames with ``frames`` uint8 [n, 3, H, W] RGB (1 <= n <= max_frames) and ``timestamps`` [n] seconds.

    Raises:
        FileNotFoundError: the path does not exist.
        VideoDecodeError: empty, truncated, damaged or non-video input, or no video stream; the message names
            the file (or ``"<bytes>"``) and the reason.
        ValueError: bad ``max_frames``, ``sample_fps`` or ``backend``.
        ImportError: ``backend="torchcodec"`` without torchcodec installed.
    """
    fps = check_sampling_args(max_frames, sample_fps)
    window = check_max_seconds(max_seconds)
    start = check_start_seconds(start_seconds)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    name, opener, raw = resolve_source(source)
    reader = PyAVReader(name, opener, raw)
    if backend == "torchcodec":
        reader.inspect()  # the same checks and messages for what is not a video, whichever backend decodes
        return read_torchcodec(raw, name, int(max_frames), fps, window, start)
    return reader.read(int(max_frames), fps, window, start)


def video_duration(source: VideoSource) -> float:
    """Length in seconds of a video's stream, as :func:`read_frames` measures it for its sampling (demux only).

    Raises the errors :func:`read_frames` raises for input that is not a complete video.
    """
    name, opener, raw = resolve_source(source)
    return float(PyAVReader(name, opener, raw).duration())
