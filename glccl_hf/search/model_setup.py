"""The model, processor and device an index works with: loading them, recording them in a new manifest, and refusing
a model or processor other than the one the stored features came from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..modeling.modeling_glccl import GLCCLModel
from ..processing import GLCCLProcessor
from . import storage

PROCESSOR_DIR = "processor"


def load_model(model: GLCCLModel | str | os.PathLike) -> GLCCLModel:
    """`model` itself, or the checkpoint it names (a local folder or a Hub id), in eval mode."""
    if isinstance(model, GLCCLModel):
        return model.eval()
    if isinstance(model, (str, os.PathLike)):
        return GLCCLModel.from_pretrained(os.fspath(model)).eval()
    raise TypeError(f"model must be a GLCCLModel, a checkpoint folder or a Hub id, got {type(model).__name__}")


def model_name(model: GLCCLModel, given: Any) -> str | None:
    """How the manifest refers to the model so `open` can load it: a local folder as an absolute path, a Hub id."""
    name = os.fspath(given) if isinstance(given, (str, os.PathLike)) else getattr(model, "name_or_path", "") or None
    if name and os.path.isdir(name):
        return os.path.abspath(name)
    return name


def load_processor(processor: GLCCLProcessor | None, name: str | None) -> GLCCLProcessor:
    """`processor`, or the one saved with checkpoint `name`."""
    if processor is not None:
        return processor
    if name is None:
        raise ValueError("the model has no checkpoint to load its processor from: pass processor=")
    try:
        return GLCCLProcessor.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load the processor of {name} ({err}); pass processor=") from err


def sampling(processor: GLCCLProcessor) -> dict[str, Any]:
    """The processor's settings the stored features depend on (the manifest's "sampling")."""
    if processor.max_seconds is not None:
        raise ValueError(
            "the processor samples only the first max_seconds of a video; the index segments whole "
            "videos itself: use a processor with max_seconds=None"
        )
    return {
        "max_frames": processor.max_frames,
        "sample_fps": processor.sample_fps,
        "image_size": processor.image_size,
        "max_words": processor.max_words,
    }


def check_segment_seconds(segment_seconds: float, sample_fps: float) -> float:
    steps = segment_seconds * sample_fps
    if not (isinstance(segment_seconds, (int, float)) and segment_seconds > 0 and abs(steps - round(steps)) < 1e-9):
        raise ValueError(
            f"segment_seconds={segment_seconds!r} must be positive and hold a whole number of "
            f"1/sample_fps = {1 / sample_fps:g} s steps"
        )
    return float(segment_seconds)


def new_manifest(
    model: GLCCLModel, name: str | None, processor: GLCCLProcessor, segment_seconds: float, ann_threshold: int
) -> dict[str, Any]:
    """The manifest of an empty index for `model` (recorded as `name`) and `processor`, checking they fit."""
    settings = sampling(processor)
    if settings["max_words"] != model.config.max_words or settings["max_frames"] > model.config.max_frame_positions:
        raise ValueError(
            f"the processor (max_words={settings['max_words']}, max_frames={settings['max_frames']}) "
            f"does not fit the model (max_words={model.config.max_words})"
        )
    return {
        "format_version": storage.FORMAT_VERSION,
        "model": {"name_or_path": name, "fingerprint": storage.model_fingerprint(model)},
        "sampling": settings,
        "segment_seconds": check_segment_seconds(segment_seconds, processor.sample_fps),
        "dim": model.config.projection_dim,
        "frames": processor.max_frames,
        "ann_threshold": int(ann_threshold),
        "generation": 0,
        "next_id": 0,
        "shards": [],
        "removed": [],
        "ann": None,
    }


def check_model(root: Path, manifest: dict[str, Any], model: GLCCLModel) -> None:
    """Refuse a model whose fingerprint (configuration and weights) differs from the index's."""
    recorded = manifest["model"]
    fingerprint = storage.model_fingerprint(model)
    if fingerprint != recorded["fingerprint"]:
        raise storage.ModelMismatchError(
            f"{root} was indexed with another model ({recorded['name_or_path'] or 'in-memory'}, fingerprint "
            f"{recorded['fingerprint'][:12]}) than the one given (fingerprint {fingerprint[:12]}); its features "
            f"cannot be scored with it. Open it with the original model, or re-index the videos with this one "
            f"into a new folder: glccl-search add --index NEW_DIR --model MODEL VIDEOS..."
        )


def saved_processor(root: Path, manifest: dict[str, Any]) -> GLCCLProcessor:
    """The processor saved in the index, checked against the manifest's sampling settings."""
    try:
        processor = GLCCLProcessor.from_pretrained(root / PROCESSOR_DIR)
    except (OSError, ValueError) as err:
        raise storage.IndexFormatError(f"{root / PROCESSOR_DIR}: cannot load the index's processor ({err})") from err
    if sampling(processor) != manifest["sampling"]:
        raise storage.IndexFormatError(f"{root / PROCESSOR_DIR}: sampling settings differ from the manifest's")
    return processor


def process_device(device: str | torch.device | None, model: GLCCLModel) -> torch.device:
    """`device`, or the model's; under a launcher a bare "cuda" means this process's GPU (LOCAL_RANK)."""
    if device is None:
        return next(model.parameters()).device
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device
