"""The torchcodec backend of :func:`~video_glccl.read_frames` (``backend="torchcodec"``): the same sampling rule,
decoded by torchcodec's ``VideoDecoder`` when that package is installed (it is optional; PyAV is the default).

Part of the remote code a checkpoint carries with the processor (see video_glccl.py); torchcodec is imported only
when this backend is asked for.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .video_errors_glccl import VideoDecodeError, undecodable
from .video_sampling_glccl import VideoFrames, check_window_start, sample_times

__all__ = ["read_torchcodec"]


def read_torchcodec(
    raw: Any, name: str, max_frames: int, fps: Fraction, window: Fraction | None, start: Fraction
) -> VideoFrames:
    """The frames shown at the sampling times, decoded by torchcodec.

    Args:
        raw: the video's path or bytes (already checked by :func:`~video_errors_glccl.resolve_source`).
        name: the video's name, for messages.
        max_frames, fps, window, start: the checked sampling arguments (see :func:`~video_sampling_glccl.sample_times`).
    """
    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError as exc:
        raise ImportError(
            "read_frames(backend='torchcodec') needs the torchcodec package, which is not installed "
            "(for CPU torch 2.13 use torchcodec 0.12 or 0.13 plus the FFmpeg shared libraries); "
            "or use backend='pyav' (the default)"
        ) from exc
    try:
        # "exact" scans the packet index (demux only): "approximate" assumes a constant frame rate and picks wrong
        # frames (or fails) on variable-frame-rate videos.
        decoder = VideoDecoder(raw, seek_mode="exact", dimension_order="NCHW")
        meta = decoder.metadata
        header_frames, content_frames = meta.num_frames_from_header, meta.num_frames_from_content
        if header_frames and content_frames is not None and content_frames < header_frames:
            # Only containers with a frame count in the header (mp4, avi) allow this check with torchcodec.
            raise VideoDecodeError(
                f"{name}: truncated or damaged: the header lists {header_frames} frames but the data holds "
                f"{content_frames}"
            )
        begin = meta.begin_stream_seconds or 0.0
        duration = meta.duration_seconds
        if duration is None and meta.end_stream_seconds is not None:
            duration = meta.end_stream_seconds - begin
        if duration is None:
            raise VideoDecodeError(f"{name}: cannot determine the video duration")
        check_window_start(name, start, Fraction(duration))
        times = sample_times(Fraction(duration), max_frames, fps, window, start)
        batch = decoder.get_frames_played_at(seconds=[begin + float(t) for t in times])
    except VideoDecodeError:
        raise
    except (RuntimeError, ValueError, IndexError) as exc:
        raise undecodable(name, raw, f"torchcodec could not decode the video ({exc})") from exc
    frames = batch.data
    if frames.shape[1] != 3:
        raise VideoDecodeError(f"{name}: torchcodec returned {frames.shape[1]} channels, expected 3 (RGB)")
    return VideoFrames(
        frames=frames.contiguous(),
        timestamps=[float(t) for t in times],
        frame_times=[float(p) - begin for p in batch.pts_seconds.tolist()],
        duration=float(duration),
        decoded=0,
    )
