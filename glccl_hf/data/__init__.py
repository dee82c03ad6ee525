"""Datasets for GLCCL text-video retrieval: loaders in one schema, a synthetic corpus, and a decoding collator."""

from .collator import GLCCLDataCollator
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
    "GLCCLDataCollator",
    "LAYOUTS",
    "RETRIEVAL_FEATURES_BYTES",
    "RETRIEVAL_FEATURES_PATH",
    "VIDEO_EXTENSIONS",
    "LoadReport",
    "Scene",
    "check_metadata_paths",
    "detect_layout",
    "encode_video",
    "find_duplicate_rows",
    "grammar_words",
    "load_retrieval_dataset",
    "load_synthetic_tokenizer",
    "make_synthetic_corpus",
    "write_clip_tokenizer",
    "write_synthetic_tokenizer",
]
