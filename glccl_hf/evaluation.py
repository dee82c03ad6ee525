"""Text-video retrieval evaluation: encode every caption and video once, score all pairs, rank.

One entry point per level:

- features: :func:`encode_texts` / :func:`encode_videos` once, then :func:`score_features` (the [texts, videos]
  matrix of fused GLCCL logits);
- dataset: :func:`score_dataset` reads a split (:func:`retrieval_corpus`), encodes and scores it, and returns
  :class:`RetrievalScores`, whose :meth:`RetrievalScores.metrics` ranks it.

Ranking and the metrics themselves (R@K, MdR, MnR, the tie rule, the multi-caption protocol, DSL) live in
:mod:`glccl_hf.metrics`; :func:`retrieval_metrics` and its helpers are importable from here too.

What a split's evaluation leaves out is always stated: rows repeating an earlier row's video and caption exactly are
dropped by default (``duplicates="drop"``; a repeated query would weigh twice in the t2v metrics), and with
``on_error="skip"`` a video that cannot be decoded is left out with its captions (the default, ``"raise"``, stops
with an error naming the file). Both are logged and listed in :class:`RetrievalScores`.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from .data.collator import ON_ERROR_POLICIES, with_source_name
from .data.frame_cache import FRAME_CACHE_COLUMN, load_cached_video
from .data.loaders import find_duplicate_rows
from .formatting import preview
from .metrics import (
    RECALL_AT,
    caption_group_scores,
    dual_softmax,
    rank_metrics,
    retrieval_metrics,
    text_to_video_ranks,
    video_to_text_ranks,
)
from .modeling.checks import positive_int
from .modeling.modeling_glccl import GLCCLTextFeatures, GLCCLVideoFeatures
from .modeling.video_glccl import VideoDecodeError

__all__ = [
    "RECALL_AT",
    "RetrievalCorpus",
    "RetrievalScores",
    "SkippedVideo",
    "caption_group_scores",
    "dual_softmax",
    "encode_texts",
    "encode_videos",
    "evaluate_features",
    "evaluate_retrieval",
    "rank_metrics",
    "retrieval_corpus",
    "retrieval_metrics",
    "score_dataset",
    "score_features",
    "text_to_video_ranks",
    "video_to_text_ranks",
]

logger = logging.getLogger(__name__)

DUPLICATE_POLICIES: tuple[str, ...] = ("drop", "keep")
DATASET_COLUMNS: tuple[str, ...] = ("video", "caption", "video_index", "caption_index")


# -------------------------------------------------------------------------------------------------- encoding


@contextmanager
def _inference(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the duration; the model's previous mode is restored."""
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
    with _inference(model), tqdm(total=len(captions), desc="Encoding texts", unit="text", disable=not progress) as bar:
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


def _video_source(video: Any) -> Any:
    """What ``processor.load_video`` takes: a ``{"path", "bytes"}`` dict (``datasets.Video(decode=False)``) unpacked."""
    if isinstance(video, Mapping):
        # Embedded bytes win, as they are what the dataset ships.
        return video.get("bytes") or video.get("path")
    return video


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
        source = _video_source(self.videos[index])
        name = _video_name(source, index, self.names)
        try:
            if self.frame_cache is not None and isinstance(source, (str, os.PathLike, bytes, bytearray)):
                return index, load_cached_video(self.processor, source, self.frame_cache, name=name)
            return index, self.processor.load_video(source, name=name)
        except (FileNotFoundError, VideoDecodeError) as err:
            named = err if name in str(err) else with_source_name(err, name)
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
        GLCCLVideoFeatures with ``frame_embeds`` [videos, frames, D] and ``frame_mask`` [videos, frames], on `device`.
    """
    features, _ = _encode_videos(
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


def _encode_videos(
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
    """:func:`encode_videos` with an error policy: returns the features of the videos that decoded (in order;
    None when none did) and ``(index, reason)`` for each video left out."""
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
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
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
    with _inference(model), tqdm(total=len(videos), desc="Encoding videos", unit="video", disable=not progress) as bar:
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


# --------------------------------------------------------------------------------------------------- scoring


def score_features(
    model: torch.nn.Module,
    text_features: GLCCLTextFeatures,
    video_features: GLCCLVideoFeatures,
    *,
    block_size: int | None = None,
) -> torch.Tensor:
    """The fused GLCCL logits of every text against every video, in eval mode and without autograd.

    Args:
        model: a GLCCLModel.
        text_features, video_features: from :func:`encode_texts` / :func:`encode_videos` (or the model's
            ``get_text_features`` / ``get_video_features``), on the model's device.
        block_size: tile size of the exact scorer (``GLCCLModel.similarity``); None chooses it.

    Returns:
        [texts, videos] on the CPU.
    """
    with _inference(model):
        return model.similarity(text_features, video_features, block_size=block_size).cpu()


def evaluate_features(
    model: torch.nn.Module,
    text_features: GLCCLTextFeatures,
    video_features: GLCCLVideoFeatures,
    text_to_video: Any,
    *,
    dsl: bool = False,
    dsl_temperature: float = 1.0,
    block_size: int | None = None,
) -> dict[str, float]:
    """Deprecated: ``retrieval_metrics(score_features(model, text, video), text_to_video)`` (one entry point per
    level)."""
    warnings.warn(
        "evaluate_features is deprecated: use retrieval_metrics(score_features(model, text_features, video_features), "
        "text_to_video)",
        FutureWarning,
        stacklevel=2,
    )
    num_texts = text_features.sentence_embeds.shape[0]
    if len(text_to_video) != num_texts:
        raise ValueError(f"text_to_video has {len(text_to_video)} entries for {num_texts} encoded texts")
    similarity = score_features(model, text_features, video_features, block_size=block_size)
    return retrieval_metrics(similarity, text_to_video, dsl=dsl, dsl_temperature=dsl_temperature)


# --------------------------------------------------------------------------------------------------- datasets


@dataclass
class RetrievalCorpus:
    """A retrieval split laid out as a score matrix [texts, videos].

    Attributes:
        captions: every row's caption (the texts, in dataset row order).
        text_to_video: int64 [texts], the video column of each text (the dataset's ``video_index``).
        videos: the videos in column order (one per video: the rows with ``caption_index == 0`` ordered by
            ``video_index``): a ``torch.utils.data.Subset`` of the dataset's video column, read on access.
        video_ids: the id of each video column (``video_id``, or the video index as a string when absent).
        frame_cache: the frame cache folder of the dataset's ``frame_cache`` column (``glccl_hf.data.cache_frames``),
            or None.
        duplicate_rows: the dataset rows left out because they repeat an earlier row's video and caption exactly.
        duplicates: ``(video_id, caption)`` of each of those rows.
    """

    captions: list[str]
    text_to_video: torch.Tensor
    videos: Subset
    video_ids: list[str]
    frame_cache: str | None = None
    duplicate_rows: list[int] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)


def retrieval_corpus(dataset: Any, duplicates: str = "drop") -> RetrievalCorpus:
    """Read the texts, the videos and their pairing from a dataset in the ``glccl_hf.data`` schema.

    Args:
        dataset: a ``datasets.Dataset`` (or anything with ``column_names``, ``len``, row and column access) with
            columns ``video``, ``caption``, ``video_index``, ``caption_index`` (``video_id`` optional), as
            ``load_retrieval_dataset`` returns. MSR-VTT 1k-A and DiDeMo (one caption or paragraph per video) give a
            square matrix; VATEX or MSR-VTT full (several captions per video) more texts than videos.
        duplicates: "drop" (default): a row repeating an earlier row's video and caption exactly is left out (it
            would be a second, identical t2v query), with a warning; "keep": every row is a query.

    Raises:
        ValueError: a missing column, an empty dataset, indices that do not describe each video once, or an unknown
            `duplicates` policy.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates={duplicates!r}: expected one of {DUPLICATE_POLICIES}")
    columns = set(getattr(dataset, "column_names", ()))
    missing = [c for c in DATASET_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"dataset lacks column(s) {missing} (has {sorted(columns)}); see glccl_hf.data's schema")
    if len(dataset) == 0:
        raise ValueError("dataset is empty: nothing to evaluate")
    video_index = np.asarray(list(dataset["video_index"]), dtype=np.int64)
    caption_index = np.asarray(list(dataset["caption_index"]), dtype=np.int64)
    first_rows = np.flatnonzero(caption_index == 0)
    video_rows = first_rows[np.argsort(video_index[first_rows], kind="stable")]
    num_videos = len(video_rows)
    listed = video_index[video_rows]
    if not np.array_equal(listed, np.arange(num_videos)):
        raise ValueError(
            f"the {num_videos} rows with caption_index == 0 must list each video once with video_index "
            f"0 .. {num_videos - 1}, got video_index values {preview(listed.tolist())}"
        )
    out_of_range = np.flatnonzero((video_index < 0) | (video_index >= num_videos))
    if len(out_of_range):
        row = int(out_of_range[0])
        raise ValueError(
            f"row {row} has video_index {int(video_index[row])}, but only {num_videos} videos have a row with "
            f"caption_index == 0 ({len(out_of_range)} rows point to no video)"
        )
    if "video_id" in columns:
        ids = list(dataset["video_id"])
        video_ids = [str(ids[row]) for row in video_rows]
    else:
        video_ids = [str(i) for i in range(num_videos)]
    captions = list(dataset["caption"])
    # The first row of each video is never a repeat, so dropping repeats leaves every video its caption_index 0 row.
    repeats = find_duplicate_rows(video_index.tolist(), captions) if duplicates == "drop" else []
    dropped = [(video_ids[video_index[row]], captions[row]) for row in repeats]
    if repeats:
        logger.warning(
            "left out %d duplicate row(s) of %d that repeat an earlier row's video and caption exactly (pass "
            "duplicates='keep' to keep them): %s",
            len(repeats),
            len(captions),
            preview(dropped, 5),
        )
        kept = np.setdiff1d(np.arange(len(captions)), repeats)
        captions = [captions[row] for row in kept]
        video_index = video_index[kept]
    return RetrievalCorpus(
        captions=captions,
        text_to_video=torch.from_numpy(video_index),
        videos=Subset(dataset["video"], video_rows.tolist()),  # no video bytes are read up front
        video_ids=video_ids,
        frame_cache=_frame_cache_folder(dataset) if FRAME_CACHE_COLUMN in columns else None,
        duplicate_rows=repeats,
        duplicates=dropped,
    )


def _frame_cache_folder(dataset: Any) -> str | None:
    """The one frame cache folder a dataset's ``frame_cache`` column names (None if it names none)."""
    folders = {folder for folder in dataset[FRAME_CACHE_COLUMN] if folder is not None}
    if len(folders) > 1:
        raise ValueError(f"column {FRAME_CACHE_COLUMN!r} names {len(folders)} frame caches: {sorted(folders)}; use one")
    return folders.pop() if folders else None


@dataclass
class SkippedVideo:
    """A video left out of an evaluation because it could not be read (``on_error="skip"``).

    Attributes:
        video_id: its id (column ``video_id``); path: its file, or a label for embedded bytes; reason: the error.
    """

    video_id: str
    path: str
    reason: str


@dataclass
class RetrievalScores:
    """A scored retrieval split, with what was left out of it.

    Attributes:
        similarity: [texts, videos] fused GLCCL logits (CPU).
        text_to_video: int64 [texts], the true video column of each text.
        captions: the texts (rows).
        video_ids: the videos' ids (columns).
        duplicates: ``(video_id, caption)`` of the dataset rows left out as exact repeats (``duplicates="drop"``).
        skipped_videos: the videos left out because they could not be read (``on_error="skip"``).
        skipped_captions: how many captions were left out with those videos.
    """

    similarity: torch.Tensor
    text_to_video: torch.Tensor
    captions: list[str]
    video_ids: list[str]
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped_videos: list[SkippedVideo] = field(default_factory=list)
    skipped_captions: int = 0

    def metrics(self, *, dsl: bool = False, dsl_temperature: float = 1.0) -> dict[str, float]:
        """``t2v_R@1`` ... ``v2t_MnR`` of this split (and ``dsl_`` ones with `dsl`): see
        :func:`glccl_hf.metrics.retrieval_metrics`."""
        return retrieval_metrics(self.similarity, self.text_to_video, dsl=dsl, dsl_temperature=dsl_temperature)


def score_dataset(
    model: torch.nn.Module,
    processor: Any,
    dataset: Any,
    *,
    batch_size: int = 16,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    block_size: int | None = None,
    progress: bool = True,
    on_error: str = "raise",
    duplicates: str = "drop",
) -> RetrievalScores:
    """Encode every caption and every video of a split once and score all pairs.

    Args:
        model: a GLCCLModel.
        processor: a GLCCLProcessor (``tokenize`` and ``load_video``).
        dataset: a split in the ``glccl_hf.data`` schema (see :func:`retrieval_corpus`).
        batch_size: texts and videos per forward pass.
        num_workers: DataLoader workers decoding videos.
        device: run on this device (the model is moved there); default: the model's device.
        block_size: tile size of the exact scorer.
        progress: show tqdm bars.
        on_error: "raise" (default): a missing or undecodable video stops the evaluation with an error naming the
            file; "skip": such a video is left out with its captions, logged, and listed in the result.
        duplicates: "drop" (default) or "keep" rows that repeat an earlier row's video and caption exactly (see
            :func:`retrieval_corpus`).

    Returns:
        :class:`RetrievalScores` with the [texts, videos] matrix, the pairing and what was left out, for inspection;
        its ``metrics()`` ranks it.
    """
    corpus = retrieval_corpus(dataset, duplicates=duplicates)
    video, failures = _encode_videos(
        model,
        processor,
        corpus.videos,
        batch_size=batch_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
        names=corpus.video_ids,
        frame_cache=corpus.frame_cache,
        on_error=on_error,
    )
    skipped = [
        SkippedVideo(corpus.video_ids[index], _video_label(corpus.videos[index], corpus.video_ids[index]), reason)
        for index, reason in failures
    ]
    if video is None:
        raise VideoDecodeError(
            f"every video of the split failed to load ({len(skipped)}), nothing to evaluate: "
            + "; ".join(video.reason for video in skipped[:5])
        )
    kept_videos = np.setdiff1d(np.arange(len(corpus.video_ids)), [index for index, _ in failures])
    text_rows, text_to_video = _texts_of(corpus.text_to_video, kept_videos)
    if skipped:
        logger.warning(
            "left out %d of %d videos that could not be read, and their %d caption(s): %s",
            len(skipped),
            len(corpus.video_ids),
            len(corpus.captions) - len(text_rows),
            preview([f"{video.video_id} ({video.reason})" for video in skipped], 5),
        )
    captions = [corpus.captions[row] for row in text_rows]
    text = encode_texts(model, processor, captions, batch_size=batch_size, device=device, progress=progress)
    return RetrievalScores(
        similarity=score_features(model, text, video, block_size=block_size),
        text_to_video=text_to_video,
        captions=captions,
        video_ids=[corpus.video_ids[index] for index in kept_videos],
        duplicates=corpus.duplicates,
        skipped_videos=skipped,
        skipped_captions=len(corpus.captions) - len(text_rows),
    )


def _video_label(video: Any, video_id: str) -> str:
    """A row's video as a report names it: its path, or a label for embedded bytes."""
    source = _video_source(video)
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"video {video_id!r} (embedded bytes)"


def _texts_of(text_to_video: torch.Tensor, kept_videos: np.ndarray) -> tuple[list[int], torch.Tensor]:
    """The text rows whose video is kept, and their video columns renumbered among the kept videos."""
    column = torch.full((int(text_to_video.max()) + 1,), -1, dtype=torch.long)
    column[torch.from_numpy(kept_videos)] = torch.arange(len(kept_videos))
    new_index = column[text_to_video]
    rows = (new_index >= 0).nonzero().flatten()
    return rows.tolist(), new_index[rows]


def evaluate_retrieval(
    model: torch.nn.Module,
    processor: Any,
    dataset: Any,
    *,
    dsl: bool = False,
    dsl_temperature: float = 1.0,
    **options: Any,
) -> dict[str, float]:
    """Deprecated: ``score_dataset(model, processor, dataset, **options).metrics(dsl=dsl)`` (one entry point per
    level). `options` are :func:`score_dataset`'s."""
    warnings.warn(
        "evaluate_retrieval is deprecated: use score_dataset(model, processor, dataset, ...).metrics(dsl=...), "
        "which also keeps the score matrix and what was left out",
        FutureWarning,
        stacklevel=2,
    )
    return score_dataset(model, processor, dataset, **options).metrics(dsl=dsl, dsl_temperature=dsl_temperature)
