"""Datasets for GLCCL text-video retrieval: loaders in one schema, a synthetic corpus, and a decoding collator."""

from .collator import GLCCLDataCollator
from .loaders import (
    LAYOUTS,
    RETRIEVAL_FEATURES_BYTES,
    RETRIEVAL_FEATURES_PATH,
    VIDEO_EXTENSIONS,
    check_metadata_paths,
    detect_layout,
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
    "GLCCLDataCollator",
    "LAYOUTS",
    "RETRIEVAL_FEATURES_BYTES",
    "RETRIEVAL_FEATURES_PATH",
    "VIDEO_EXTENSIONS",
    "Scene",
    "check_metadata_paths",
    "detect_layout",
    "encode_video",
    "grammar_words",
    "load_retrieval_dataset",
    "load_synthetic_tokenizer",
    "make_synthetic_corpus",
    "write_clip_tokenizer",
    "write_synthetic_tokenizer",
]
