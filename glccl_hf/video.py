"""Video decoding and CLIP frame preprocessing (public import path).

The code lives in ``modeling/video_glccl.py`` (installed as ``glccl_hf.modeling.video_glccl``), so that a checkpoint
carries it with the processor as remote code; see that module for the sampling rule.
"""

from .modeling.video_glccl import (
    BACKENDS,
    CLIP_MEAN,
    CLIP_STD,
    VideoDecodeError,
    VideoFrames,
    VideoSource,
    check_max_seconds,
    check_sampling_args,
    check_start_seconds,
    preprocess_frames,
    read_frames,
    resize_crop_frames,
    sample_timestamps,
    video_duration,
)

__all__ = [
    "BACKENDS",
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
