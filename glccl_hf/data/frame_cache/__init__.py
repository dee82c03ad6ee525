"""A frame cache: each video decoded once, its sampled frames stored after resize and centre crop (uint8).

Decoding an MP4 and preprocessing its frames costs far more CPU than a GPU step takes per clip. ``cache_frames``
(:mod:`.writer`) decodes every distinct video of a dataset once with the processor's own sampling
(:meth:`GLCCLProcessor.sample_frames`: the frames ``load_video`` picks, resized and centre-cropped, before
normalisation) and stores them in Arrow shards; ``GLCCLDataCollator`` and ``encode_videos`` then read those frames
(:mod:`.reader`: ``FrameCache``, ``load_cached_video``) instead of decoding, and normalise them exactly as
``load_video`` does. A raw cache gives bit-identical model inputs; a JPEG cache is smaller and lossy. The folder
layout and the entry keys are described in :mod:`.reader`.
"""

from ..schema import video_source
from .reader import (
    CACHE_FORMATS,
    CACHE_INFO,
    FRAME_CACHE_COLUMN,
    LAYOUT_VERSION,
    SHARD_SUFFIX,
    FrameCache,
    VideoIdentity,
    decode_jpeg,
    load_cached_video,
    open_frame_cache,
    sampling_settings,
)
from .writer import DEFAULT_SHARD_VIDEOS, cache_frames, encode_jpeg

__all__ = [
    "CACHE_FORMATS",
    "CACHE_INFO",
    "DEFAULT_SHARD_VIDEOS",
    "FRAME_CACHE_COLUMN",
    "LAYOUT_VERSION",
    "SHARD_SUFFIX",
    "FrameCache",
    "VideoIdentity",
    "cache_frames",
    "decode_jpeg",
    "encode_jpeg",
    "load_cached_video",
    "open_frame_cache",
    "sampling_settings",
    "video_source",
]
