"""Datasets for GLCCL text-video retrieval: loaders in one schema, a synthetic corpus, a decoding collator and a frame
cache."""

from .collator import GLCCLDataCollator
from .frame_cache import (
    CACHE_FORMATS,
    FRAME_CACHE_COLUMN,
    FrameCache,
    cache_frames,
    load_cached_video,
    sampling_settings,
)
from .loaders import (
    LAYOUTS,
    RETRIEVAL_FEATURES_BYTES,
    RETRIEVAL_FEATURES_PATH,
    VIDEO_EXTENSIONS,
    LoadReport,
    check_metadata_paths,
    detect_layout,
    find_duplicate_rows,
    load_retrieval_dataset,
)
from .synthetic import (
    Scene,
    encode_video,
    grammar_words,
    load_synthetic_tokenizer,
    make_synthetic_corpus,
    write_clip_tokenizer,
    write_synthetic_tokenizer,
)

__all__ = [
    "CACHE_FORMATS",
    "FRAME_CACHE_COLUMN",
    "FrameCache",
    "GLCCLDataCollator",
    "LAYOUTS",
    "RETRIEVAL_FEATURES_BYTES",
    "RETRIEVAL_FEATURES_PATH",
    "VIDEO_EXTENSIONS",
    "LoadReport",
    "Scene",
    "cache_frames",
    "check_metadata_paths",
    "detect_layout",
    "encode_video",
    "find_duplicate_rows",
    "grammar_words",
    "load_cached_video",
    "load_retrieval_dataset",
    "load_synthetic_tokenizer",
    "make_synthetic_corpus",
    "sampling_settings",
    "write_clip_tokenizer",
    "write_synthetic_tokenizer",
]
