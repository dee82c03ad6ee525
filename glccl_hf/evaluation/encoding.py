"""Encoding once: every caption and every video of a corpus through the model a single time, in batches, in eval
mode and without autograd; videos decoded in DataLoader workers (from a frame cache when there is one)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence, Sized
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.collator import ON_ERROR_POLICIES
from ..data.frame_cache import load_cached_video
from ..data.schema import video_source, with_source_name
from ..modeling.checks import positive_int
from ..modeling.modeling_glccl import GLCCLTextFeatures, GLCCLVideoFeatures
from ..modeling.video_glccl import VideoDecodeError

__all__ = ["encode_texts", "encode_videos", "inference"]


@contextmanager
def inference(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the duration; the model's previous mode is restored (so evaluating inside a
    training run leaves it training)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _resolve_device(model: torch.nn.Module, device: str | torch.device | None) -> torch.device:
    """`device`, the model moved there if needed; default: where the model's parameters are."""
    if device is None:
        return next(model.parameters()).device
    device = torch.device(device)
    model.to(device)
    return device


def _check_max_words(model: torch.nn.Module, processor: Any) -> None:
    expected = getattr(getattr(model, "config", None), "max_words", None)
    got = getattr(processor, "max_words", None)
    if expected is not None and got is not None and expected != got:
        raise ValueError(
            f"processor.max_words={got} but the model was built for max_words={expected} (its word-axis score "
            "matrices are sized by it): use a processor with the model's max_words"
        )


def _concat(parts: list[Any], cls: type) -> Any:
    """Concatenate feature outputs batch-wise, field by field."""
    return cls(**{key: torch.cat([part[key] for part in parts]) for key in parts[0].keys()})


def encode_texts(
    model: torch.nn.Module,
    processor: Any,
    captions: Sequence[str],
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> GLCCLTextFeatures:
    """Encode captions once, in batches, with the model in eval mode and without autograd.

    Args:
        model: a GLCCLModel (its training mode is restored afterwards).
        processor: has ``tokenize(texts) -> {"input_ids", "attention_mask"}`` (a GLCCLProcessor).
        captions: the texts, in score-matrix row order.
        batch_size: captions per forward pass.
        device: run on this device (the model is moved there); default: the model's device.
        progress: show a tqdm bar.

    Returns:
        GLCCLTextFeatures with ``sentence_embeds`` [texts, D], ``word_embeds`` [texts, max_words, D], ``word_mask``
        [texts, max_words], on `device`.
    """
    captions = _caption_list(captions)
    batch_size = positive_int("batch_size", batch_size)
    _check_max_words(model, processor)
    device = _resolve_device(model, device)
    parts = []
    with inference(model), tqdm(total=len(captions), desc="Encoding texts", unit="text", disable=not progress) as bar:
        for start in range(0, len(captions), batch_size):
            batch = captions[start : start + batch_size]
            tokens = processor.tokenize(batch)
            features = model.get_text_features(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))
            parts.append(features.for_scoring())  # the encoder's hidden states are not kept for a whole corpus
            bar.update(len(batch))
    return _concat(parts, GLCCLTextFeatures)


def _caption_list(captions: Any) -> list[str]:
    if isinstance(captions, str):
        raise TypeError("captions must be a sequence of strings, got a single string: wrap it in a list")
    captions = list(captions)
    if not captions:
        raise ValueError("captions is empty: give at least one caption")
    for i, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise TypeError(f"captions[{i}] must be a string, got {type(caption).__name__}")
    return captions


def _video_name(source: Any, index: int, names: Sequence[str] | None) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if names is not None:
        return f"video {names[index]!r}"
    return f"videos[{index}]"


class _DecodedVideos(Dataset):
    """Decodes and preprocesses video `i` on access, so a DataLoader's workers decode in parallel.

    Item `i` is ``(i, (pixel_values, video_mask))``; with ``on_error="skip"`` a video that is missing or cannot be
    decoded gives ``(i, reason)`` instead, so the caller can leave it out and say why. With ``frame_cache``, videos
    the cache holds are read from it (the same frames exactly).
    """

    def __init__(
        self,
        processor: Any,
        videos: Sequence[Any],
        names: Sequence[str] | None,
        on_error: str = "raise",
        frame_cache: str | None = None,
    ):
        self.processor = processor
        self.videos = videos
        self.names = names
        self.on_error = on_error
        self.frame_cache = frame_cache

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[int, tuple[torch.Tensor, torch.Tensor] | str]:
        source = video_source(self.videos[index])
        name = _video_name(source, index, self.names)
        try:
            if self.frame_cache is not None and isinstance(source, (str, os.PathLike, bytes, bytearray)):
                return index, load_cached_video(self.processor, source, self.frame_cache, name=name)
            return index, self.processor.load_video(source, name=name)
        except (FileNotFoundError, VideoDecodeError) as err:
            named = with_source_name(err, name)
            if self.on_error == "raise":
                if named is err:
                    raise
                raise named from err
            return index, f"{type(named).__name__}: {named}"


def _collate_decoded(
    items: list[tuple[int, Any]],
) -> tuple[list[int], torch.Tensor | None, torch.Tensor | None, list[tuple[int, str]]]:
    """(indices of the decoded videos, their pixel_values [n, F, 3, S, S], video_mask [n, F], failures)."""
    decoded = [(index, video) for index, video in items if not isinstance(video, str)]
    failures = [(index, video) for index, video in items if isinstance(video, str)]
    if not decoded:
        return [], None, None, failures
    pixel_values = torch.stack([video[0] for _, video in decoded])
    video_mask = torch.stack([video[1] for _, video in decoded])
    return [index for index, _ in decoded], pixel_values, video_mask, failures


def encode_videos(
    model: torch.nn.Module,
    processor: Any,
    videos: Sequence[Any],
    *,
    batch_size: int = 16,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    names: Sequence[str] | None = None,
    frame_cache: str | os.PathLike | None = None,
) -> GLCCLVideoFeatures:
    """Decode and encode videos once, in batches, with the model in eval mode and without autograd.

    Decoding runs in a torch DataLoader, in `num_workers` worker processes when > 0. A missing or undecodable video
    raises (FileNotFoundError / ``glccl_hf.video.VideoDecodeError``) naming the file; :func:`score_dataset` with
    ``on_error="skip"`` leaves such videos out instead, and lists them.

    Args:
        model: a GLCCLModel (its training mode is restored afterwards).
        processor: has ``load_video(source, name=...) -> (pixel_values [F, 3, S, S], video_mask [F])``.
        videos: paths, bytes, ``{"path", "bytes"}`` dicts or uint8 frames [n, 3, H, W]; any sequence with ``len``
            and integer indexing (column order of the score matrix).
        batch_size: videos per forward pass.
        num_workers: DataLoader worker processes for decoding (0: decode in this process).
        device: run on this device (the model is moved there); default: the model's device.
        progress: show a tqdm bar.
        names: optional label per video (e.g. its id), used in error messages for in-memory videos.
        frame_cache: a folder written by ``glccl_hf.data.cache_frames``: videos it holds for the processor's
            settings are read from it instead of decoded (same features; a video it lacks is decoded).

    Returns:
        GLCCLVideoFeatures with ``frame_embeds`` [videos, frames, D] and ``video_mask`` [videos, frames], on `device`.
    """
    features, _ = encode_available_videos(
        model,
        processor,
        videos,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
        names=names,
        on_error="raise",
        frame_cache=frame_cache,
    )
    return features


def encode_available_videos(
    model: torch.nn.Module,
    processor: Any,
    videos: Sequence[Any],
    *,
    batch_size: int,
    num_workers: int,
    device: str | torch.device | None,
    progress: bool,
    names: Sequence[str] | None,
    on_error: str,
    frame_cache: str | os.PathLike | None = None,
) -> tuple[GLCCLVideoFeatures | None, list[tuple[int, str]]]:
    """:func:`encode_videos` with an error policy (``on_error`` "raise" or "skip"): returns the features of the
    videos that decoded (in order; None when none did) and ``(index, reason)`` for each video left out."""
    if isinstance(videos, (str, os.PathLike, bytes, bytearray)):
        raise TypeError("videos must be a sequence of videos, got a single video: wrap it in a list")
    if not (isinstance(videos, Sized) and hasattr(videos, "__getitem__")):
        videos = list(videos)  # a lazy indexable (a dataset column, a Subset) is read one video at a time
    if len(videos) == 0:
        raise ValueError("videos is empty: give at least one video")
    if names is not None and len(names) != len(videos):
        raise ValueError(f"names has {len(names)} entries for {len(videos)} videos")
    if on_error not in ON_ERROR_POLICIES:
        raise ValueError(f"on_error={on_error!r}: expected one of {ON_ERROR_POLICIES}")
    batch_size = positive_int("batch_size", batch_size)
    num_workers = positive_int("num_workers", num_workers, minimum=0)
    device = _resolve_device(model, device)
    loader = DataLoader(
        _DecodedVideos(processor, videos, names, on_error, None if frame_cache is None else os.fspath(frame_cache)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        collate_fn=_collate_decoded,
    )
    dtype = model.dtype if hasattr(model, "dtype") else next(model.parameters()).dtype
    parts, failures = [], []
    with inference(model), tqdm(total=len(videos), desc="Encoding videos", unit="video", disable=not progress) as bar:
        for indices, pixel_values, video_mask, failed in _batches(loader):
            failures.extend(failed)
            if indices:
                pixel_values = pixel_values.to(device, dtype=dtype, non_blocking=True)
                features = model.get_video_features(pixel_values, video_mask.to(device, non_blocking=True))
                parts.append(features.for_scoring())  # per-frame patch states would take gigabytes for a corpus
            bar.update(len(indices) + len(failed))
    return (_concat(parts, GLCCLVideoFeatures) if parts else None), failures


def _batches(loader: DataLoader) -> Iterator[Any]:
    """The loader's batches; a worker's error is re-raised without the loader's frames in its traceback.

    Those frames would keep the loader's worker processes alive after the error (and copied into later forks); the
    message of a worker's error already carries the worker's own traceback.
    """
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except Exception as err:
            if loader.num_workers == 0:
                raise
            del iterator
            raise err.with_traceback(None)  # noqa: B904 (the same error, re-raised)
        yield batch
