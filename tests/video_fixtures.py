"""Video files for the tests: lossless flat-colour clips, files that do not decode, and the processor of a synthetic
corpus (not collected by pytest: no test_ functions; tests import it as `video_fixtures`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glccl_hf.data import encode_video, load_synthetic_tokenizer
from glccl_hf.processing import GLCCLProcessor


def write_flat_video(
    path: Path, colours: list[tuple[int, int, int]], rate: int = 10, size: tuple[int, int] = (64, 48)
) -> Path:
    """Lossless RGB (FFV1, bgr0) video: frame i is the flat colour colours[i]."""
    width, height = size

    def frames():
        for colour in colours:
            image = np.empty((height, width, 3), np.uint8)
            image[:] = colour
            yield image

    return encode_video(path, frames(), fps=rate, codec="ffv1", pix_fmt="bgr0", container_format="matroska")


def write_garbage(path: Path, repeats: int = 50) -> Path:
    """A file that is no video at all."""
    path.write_bytes(b"not a video at all" * repeats)
    return path


def write_truncated(source: Path, path: Path) -> Path:
    """The first half of the video `source`: its header is intact, its frames are cut off."""
    whole = source.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def synthetic_processor(corpus: Path, *, max_words: int, max_frames: int, image_size: int) -> GLCCLProcessor:
    """A GLCCLProcessor with the tokenizer that `make_synthetic_corpus` saved in `corpus`."""
    return GLCCLProcessor(
        load_synthetic_tokenizer(corpus), max_words=max_words, max_frames=max_frames, image_size=image_size
    )
