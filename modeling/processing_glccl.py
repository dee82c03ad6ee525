"""GLCCLProcessor: CLIP tokenizer + video decoding/preprocessing with the GLCCL reference's layout.

Part of the remote code a checkpoint carries (with video_glccl.py and the video files it lists,
frame_processing_glccl.py and checks.py):
``AutoProcessor.from_pretrained(checkpoint, trust_remote_code=True)`` gives this class without glccl_hf installed.

Text: ``[SOT] + BPE(caption)[:max_words - 2] + [EOT]`` (the tokenizer's own truncation and padding to
``max_words``), the padding then set to id 0 as the reference pads; attention_mask is 1 on SOT..EOT.

Video: frames sampled by :func:`~video_glccl.read_frames` (``sample_fps`` candidates, at most ``max_frames`` kept
by linspace), CLIP-preprocessed to ``image_size``, then padded with all-zero frames (the reference's zero-filled
array) up to ``max_frames``; video_mask is 1 on the real frames.

docs/method.md in the glccl-hf repository describes both layouts as part of the method.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .checks import positive_int
from .frame_processing_glccl import preprocess_frames, resize_crop_frames
from .video_glccl import BACKENDS, VideoFrames, check_max_seconds, check_sampling_args, read_frames

__all__ = ["GLCCLProcessor"]

_PATH_OR_BYTES = (str, os.PathLike, bytes, bytearray, memoryview)


def _is_sequence_like(value: Any) -> bool:
    """A list, tuple or other iterable of items (a datasets column, a generator), but not one string, bytes or
    mapping, which are single items."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, memoryview, Mapping))


class GLCCLProcessor(ProcessorMixin):
    """Turns captions and videos into GLCCL model inputs.

    Args:
        tokenizer: a CLIP BPE tokenizer (``CLIPTokenizer``); its ``bos_token_id`` / ``eos_token_id`` are SOT / EOT.
        max_words: text length Nw including SOT and EOT (32 for MSR-VTT / VATEX, 64 for DiDeMo).
        max_frames: frames per video Nf (12 or 64).
        image_size: side S of the square CLIP input (224).
        sample_fps: candidate frames per second of video (the reference uses 1).
        video_backend: decoder, ``"pyav"`` (default) or ``"torchcodec"``.
        max_seconds: sample only the first ``max_seconds`` seconds of each video (None: all of it; the reference
            reads DiDeMo's first 32 s).

    Calling the processor gives a BatchFeature with ``input_ids`` / ``attention_mask`` [B, max_words] (for
    ``text``) and ``pixel_values`` [B, max_frames, 3, S, S] float32 / ``video_mask`` [B, max_frames] (for
    ``videos``). All settings are saved by ``save_pretrained`` (processor_config.json, with the tokenizer files).
    """

    def __init__(
        self,
        tokenizer: Any,
        max_words: int = 32,
        max_frames: int = 12,
        image_size: int = 224,
        sample_fps: float = 1.0,
        video_backend: str = "pyav",
        max_seconds: float | None = None,
        **kwargs: Any,
    ):
        self.max_words = positive_int("max_words", max_words, minimum=2)  # room for SOT and EOT
        self.max_frames = positive_int("max_frames", max_frames)
        self.image_size = positive_int("image_size", image_size)
        check_sampling_args(self.max_frames, sample_fps)  # the decoder's own check, so both refuse the same values
        self.sample_fps = float(sample_fps)
        if video_backend not in BACKENDS:
            raise ValueError(f"video_backend must be one of {BACKENDS}, got {video_backend!r}")
        self.video_backend = video_backend
        self.max_seconds = None if check_max_seconds(max_seconds) is None else float(max_seconds)
        super().__init__(tokenizer, **kwargs)
        for attr in ("bos_token_id", "eos_token_id"):
            if getattr(tokenizer, attr, None) is None:
                raise ValueError(f"tokenizer has no {attr}: GLCCL needs SOT/EOT tokens (<|startoftext|>/<|endoftext|>)")

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values", "video_mask"]

    # ---------------------------------------------------------------------------------------------- text

    def tokenize(self, texts: str | Sequence[str]) -> dict[str, torch.Tensor]:
        """Lay out captions as the reference does.

        Args:
            texts: a caption or a list of captions.

        Returns:
            dict with ``input_ids`` and ``attention_mask``, int64 [B, max_words]: SOT, the first max_words - 2 BPE
            tokens, EOT, then id 0 (mask 0) as padding.
        """
        # OpenAI CLIP's tokenizer unescapes HTML entities twice before BPE ("&amp;amp;" -> "&"); Transformers' does not.
        texts = [html.unescape(html.unescape(text)) for text in self._text_list(texts)]
        # The tokenizer lays out [SOT] BPE[:max_words - 2] [EOT] and pads to max_words itself.
        encoded = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=self.max_words, padding_side="right"
        )
        input_ids = torch.tensor(encoded["input_ids"], dtype=torch.long)
        attention_mask = torch.tensor(encoded["attention_mask"], dtype=torch.long)
        self._check_special_tokens(input_ids, attention_mask)
        # The reference pads with id 0, not with the tokenizer's pad token (EOT for CLIP); both are masked.
        input_ids = input_ids.masked_fill(attention_mask == 0, 0)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def _check_special_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        """The layout needs SOT first and EOT last in every row, which a CLIP tokenizer adds itself."""
        last = attention_mask.sum(1) - 1
        eot = input_ids.gather(1, last.clamp_min(0)[:, None])[:, 0]
        if not (
            bool((input_ids[:, 0] == self.tokenizer.bos_token_id).all())
            and bool((eot == self.tokenizer.eos_token_id).all())
        ):
            raise ValueError(
                f"{type(self.tokenizer).__name__} does not add SOT/EOT around the tokens: GLCCL needs a CLIP tokenizer "
                "whose special tokens frame every text"
            )

    @staticmethod
    def _text_list(texts: Any) -> list[str]:
        if isinstance(texts, str):
            return [texts]
        if _is_sequence_like(texts):
            texts = list(texts)  # e.g. a datasets column
        if isinstance(texts, list) and texts:
            for i, text in enumerate(texts):
                if not isinstance(text, str):
                    raise TypeError(f"text[{i}] must be a string, got {type(text).__name__}")
            return list(texts)
        if isinstance(texts, list):
            raise ValueError("text is an empty list: give at least one caption")
        raise TypeError(f"text must be a string or a list of strings, got {type(texts).__name__}")

    # --------------------------------------------------------------------------------------------- video

    def load_video(self, source: Any, name: str = "video") -> tuple[torch.Tensor, torch.Tensor]:
        """Decode (if needed), preprocess and pad one video.

        Args:
            source: a path, the file's bytes, a :class:`~video_glccl.VideoFrames`, or decoded uint8 frames
                [n, 3, H, W] (torch or numpy; more than max_frames are subsampled by linspace, as the reference).
            name: how error messages refer to an in-memory source.

        Returns:
            (pixel_values float32 [max_frames, 3, S, S], video_mask int64 [max_frames]); frames past the real ones
            are all zeros with mask 0.
        """
        frames = self._frames(source, name)
        count = frames.shape[0]
        size = self.image_size
        pixel_values = torch.zeros((self.max_frames, 3, size, size), dtype=torch.float32)
        pixel_values[:count] = preprocess_frames(frames, image_size=size)
        video_mask = torch.zeros(self.max_frames, dtype=torch.long)
        video_mask[:count] = 1
        return pixel_values, video_mask

    def sample_frames(self, source: Any, name: str = "video") -> torch.Tensor:
        """The frames :meth:`load_video` would use, resized and centre-cropped but not normalised (for caching).

        ``load_video`` of the result gives exactly ``load_video(source)``: frames already S x S are only normalised.

        Args:
            source: as in :meth:`load_video`.
            name: how error messages refer to an in-memory source.

        Returns:
            uint8 [n, 3, S, S] with 1 <= n <= max_frames (no padding).
        """
        return resize_crop_frames(self._frames(source, name), image_size=self.image_size)

    def _frames(self, source: Any, name: str) -> torch.Tensor:
        """uint8 [n, 3, H, W] with 1 <= n <= max_frames."""
        if isinstance(source, _PATH_OR_BYTES):
            return read_frames(
                source, self.max_frames, self.sample_fps, backend=self.video_backend, max_seconds=self.max_seconds
            ).frames
        if isinstance(source, VideoFrames):
            frames = source.frames
        elif isinstance(source, np.ndarray):
            frames = torch.from_numpy(source)
        elif isinstance(source, torch.Tensor):
            frames = source
        else:
            raise TypeError(
                f"{name} must be a path, bytes, VideoFrames or a uint8 frame tensor [n, 3, H, W], "
                f"got {type(source).__name__}"
            )
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] not in (1, 3):
            raise ValueError(
                f"{name} must be uint8 frames [n, 3, H, W], got dtype {frames.dtype} shape {list(frames.shape)}"
            )
        if frames.shape[0] == 0:
            raise ValueError(f"{name} has no frames")
        if frames.shape[0] > self.max_frames:
            # The reference keeps linspace(0, n - 1, max_frames) of the decoded frames.
            keep = np.linspace(0, frames.shape[0] - 1, self.max_frames).astype(int)
            frames = frames[torch.from_numpy(keep)]
        return frames

    @staticmethod
    def _video_list(videos: Any) -> list[Any]:
        if isinstance(videos, (*_PATH_OR_BYTES, VideoFrames)):
            return [videos]
        if isinstance(videos, (torch.Tensor, np.ndarray)):
            if videos.ndim == 4:
                return [videos]
            if videos.ndim == 5:
                return list(videos)
            raise ValueError(
                f"videos as an array must be [n, 3, H, W] (one video) or [B, n, 3, H, W], "
                f"got shape {list(videos.shape)}"
            )
        if _is_sequence_like(videos):
            videos = list(videos)  # e.g. a datasets column
            if not videos:
                raise ValueError("videos is an empty list: give at least one video")
            return list(videos)
        raise TypeError(f"videos must be a video or a list of videos, got {type(videos).__name__}")

    # ---------------------------------------------------------------------------------------------- call

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        videos: Any = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Process captions and/or videos.

        Args:
            text: a caption or a list of captions.
            videos: one video or a list; each a path, bytes, VideoFrames or uint8 frames [n, 3, H, W].
            return_tensors: ``"pt"`` (torch), ``"np"`` (numpy) or None (Python lists).

        Returns:
            BatchFeature with ``input_ids``, ``attention_mask`` [B, max_words] when text is given and
            ``pixel_values`` [B, max_frames, 3, S, S], ``video_mask`` [B, max_frames] when videos are given.
        """
        if kwargs:
            raise TypeError(f"GLCCLProcessor got unexpected arguments: {sorted(kwargs)}")
        if text is None and videos is None:
            raise ValueError("give text and/or videos")
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        data: dict[str, Any] = {}
        if text is not None:
            data.update(self.tokenize(text))
        if videos is not None:
            items = self._video_list(videos)
            loaded = [self.load_video(item, name=f"videos[{i}]") for i, item in enumerate(items)]
            data["pixel_values"] = torch.stack([pixel for pixel, _ in loaded])
            data["video_mask"] = torch.stack([mask for _, mask in loaded])
        if return_tensors == "np":
            data = {key: value.numpy() for key, value in data.items()}
        elif return_tensors is None:
            data = {key: value.tolist() for key, value in data.items()}
        return BatchFeature(data=data)


# save_pretrained then writes auto_map {"AutoProcessor": ...} and copies this file and every file it imports beside it.
GLCCLProcessor.register_for_auto_class("AutoProcessor")
