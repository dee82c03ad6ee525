"""Conversion of checkpoints saved by the official GLCCL implementation (and of bare OpenAI CLIP state dicts) to a
[`GLCCLModel`].

The official code (JingXiaolun/GLCCL, built on CLIP4Clip) saves `model.state_dict()`: OpenAI CLIP under `clip.`,
the "seqTransf" temporal module (`frame_position_embeddings.weight`, `transformerClip.resblocks.*`) and the eight
score matrices, optionally all under `module.` (DataParallel / DDP). OpenAI's fused attention projections
(`attn.in_proj_*`) are split into Transformers' `q_proj`, `k_proj` and `v_proj`, and the `[in, out]` projection
matrices (`visual.proj`, `text_projection`) are transposed into `nn.Linear` weights. Every size comes from the
tensor shapes; nothing is guessed except `max_frames`, which no official weight fixes (see
[`convert_official_checkpoint`]).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .formatting import preview
from .modeling.configuration_glccl import GLCCLConfig
from .modeling.modeling_glccl import GLCCLModel

logger = logging.getLogger(__name__)

DEFAULT_MAX_FRAMES = 12
"""`max_frames` of a converted model when neither `config_overrides` nor `visual_logit_weight` gives it."""

# OpenAI CLIP's BPE vocabulary: its last two ids are the start and end of text.
OPENAI_CLIP_VOCAB_SIZE = 49408
OPENAI_CLIP_SOT_ID = 49406
OPENAI_CLIP_EOT_ID = 49407
# CLIPTextModel reads `eos_token_id == 2` (its legacy value) as "the EOT is the largest id of each text", the
# reference's rule; used for any vocabulary other than OpenAI's.
_ARGMAX_EOS_TOKEN_ID = 2
_PAD_TOKEN_ID = 0  # the reference pads texts with id 0

_HEAD_WIDTH = 64  # OpenAI CLIP: heads = width // 64
_MLP_RATIO = 4
_LAYER_NORM_EPS = 1e-5
_HIDDEN_ACT = "quick_gelu"

# One residual block (OpenAI CLIP, CLIP4Clip's transformerClip): OpenAI name -> CLIPEncoderLayer name.
_BLOCK_RENAMES = {
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
}
# Fused [3 * width, ...] q/k/v projections, split in this order.
_BLOCK_FUSED = {"attn.in_proj_weight": "weight", "attn.in_proj_bias": "bias"}
_BLOCK_KEYS = (*_BLOCK_FUSED, *_BLOCK_RENAMES)

# Non-layer CLIP weights: OpenAI name -> CLIPModel name (projections are handled apart: they are transposed).
_CLIP_RENAMES = {
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "logit_scale": "logit_scale",
}
_CLIP_TRANSPOSED = {"visual.proj": "visual_projection.weight", "text_projection": "text_projection.weight"}
_VISION_BLOCKS = "visual.transformer.resblocks."
_TEXT_BLOCKS = "transformer.resblocks."

# The reference's score matrices -> GLCCLScoreMatrices (held as `score_heads`). All are used as `x @ W` (W's row index
# is the softmax axis), the orientation of GLCCLScoreMatrices, so none is transposed.
_SCORE_MATRICES = {
    "global_mat_weight": "score_heads.video_sentence_projection",  # W_g
    "local_mat_weight": "score_heads.frame_word_projection",  # W_loc
    "word_logit_weight": "score_heads.video_word_pool",  # W_wl: video-word, over words
    "word_frame_logit_weight": "score_heads.sentence_frame_pool",  # W_wfl: sentence-frame, over guided frames
    "word_mat_weight": "score_heads.frame_word_word_pool",  # W_wm: per guided frame, over words
    "word_frame_mat_weight": "score_heads.frame_word_frame_pool",  # W_wfm: per word, over guided frames
    "word_mat_weight2": "score_heads.frame_word_video_pool",  # W_wm2: video-to-word
    "word_frame_mat_weight2": "score_heads.frame_word_sentence_pool",  # W_wfm2: sentence-to-frame
}
_CLIP_PREFIX = "clip."
_TEMPORAL_BLOCKS = "transformerClip.resblocks."
_FRAME_POSITIONS = "frame_position_embeddings.weight"
# [max_frames, max_frames]; used only by the reference's non-default aggregation "softmax_linear_softmax".
_VISUAL_LOGIT_WEIGHT = "visual_logit_weight"
# Integer buffers of OpenAI's TorchScript CLIP state dicts: metadata, not weights.
_SCALAR_BUFFERS = ("input_resolution", "context_length", "vocab_size")
# Parameters of reference configurations GLCCLModel does not implement, for a clearer error.
_UNSUPPORTED_PREFIXES = {
    "cross.": "sim_header 'tightTransf' (no --loose_type)",
    "similarity_dense.": "sim_header 'tightTransf' (no --loose_type)",
    "lstm_visual.": "sim_header 'seqLSTM'",
    "mlp.": "aggregation_weights_type 'mlp_softmax'",
    "clip.visual.conv2.": "linear_patch '3d'",
}
_MAX_LISTED_KEYS = 50


def convert_official_checkpoint(
    path_or_state_dict: str | os.PathLike | Mapping[str, Any], **config_overrides: Any
) -> GLCCLModel:
    r"""
    Build a [`GLCCLModel`] from a checkpoint of the official GLCCL implementation or from a bare OpenAI CLIP
    (ViT) state dict.

    Args:
        path_or_state_dict (`str`, `os.PathLike` or `Mapping`): a file saved with `torch.save` (loaded on the CPU
            with `weights_only=True`), or the state dict itself. Accepted layouts:
            - the official GLCCL / CLIP4Clip layout (`clip.*`, `frame_position_embeddings.weight`,
              `transformerClip.resblocks.*`, the eight score matrices, optional `visual_logit_weight`);
            - a bare OpenAI CLIP state dict (`visual.*`, `token_embedding.weight`, `transformer.resblocks.*`, ...):
              the temporal layers are then initialised from CLIP's first text layers, the frame positions from
              the text position embeddings and the score matrices to the identity, as the reference does before
              training.
            Either may carry a `module.` prefix on every key (DataParallel / DDP saves).
        config_overrides: further [`GLCCLConfig`] fields. Fields that the checkpoint's shapes fix (sizes, layer
            counts, `max_words` and `max_frame_positions` of an official checkpoint) may only repeat the inferred
            value. `max_frames` is not fixed by any weight GLCCLModel uses: it is taken from `config_overrides`,
            else from the rows of `visual_logit_weight` when the checkpoint has it (the reference sizes it
            `[max_frames, max_frames]`), else it is `DEFAULT_MAX_FRAMES` (12, the MSR-VTT / VATEX setting; pass
            `max_frames=64` for DiDeMo checkpoints without that matrix). For a bare CLIP dict, `max_words` and
            `temporal_layers` keep GLCCLConfig's defaults (32 and 4) unless overridden.

    Returns:
        `GLCCLModel` in float32 (fp16 weights of the reference are upcast exactly) and in eval mode, as
        `from_pretrained` returns models; call `.train()` to fine-tune it.

    Raises:
        `ValueError`: unknown or missing keys (all listed), a ResNet CLIP, inconsistent shapes, an unreadable file,
        or overrides that contradict the checkpoint. The message names the file (or "the given state dict").
    """
    state_dict, source = _load_state_dict(path_or_state_dict)
    state_dict, stripped = _strip_module_prefix(state_dict)
    where = f"{source} (keys shown without their 'module.' prefix)" if stripped else source

    state_dict = {key: value for key, value in state_dict.items() if _bare_name(key) not in _SCALAR_BUFFERS}
    not_tensors = sorted(key for key, value in state_dict.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise ValueError(
            f"{where}: these entries are not tensors, so this is not a model state dict: {_listing(not_tensors)}"
        )

    official = any(key.startswith(_CLIP_PREFIX) for key in state_dict)
    prefix = _CLIP_PREFIX if official else ""
    if not official and "visual.conv1.weight" not in state_dict and "token_embedding.weight" not in state_dict:
        raise ValueError(
            f"{where} is neither an official GLCCL checkpoint (no 'clip.*' keys) nor an OpenAI CLIP state dict (no "
            f"'visual.conv1.weight' or 'token_embedding.weight'); its first keys are {_listing(sorted(state_dict), 10)}"
        )
    clip = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
    _check_vit(clip, prefix, where)

    sizes = _infer_clip_sizes(clip, prefix, where)
    expected = {prefix + key for key in _clip_keys(sizes["vision_layers"], sizes["text_layers"])}
    derived: dict[str, Any] = {
        "text_config": _text_config(sizes),
        "vision_config": _vision_config(sizes),
        "projection_dim": sizes["projection_dim"],
        "logit_scale_init_value": float(clip["logit_scale"]),
    }
    if official:
        temporal_layers = _count_layers(state_dict, _TEMPORAL_BLOCKS)
        expected |= _temporal_keys(temporal_layers) | set(_SCORE_MATRICES)
        problems = [] if temporal_layers else [f"no {_TEMPORAL_BLOCKS}* keys: GLCCLModel implements 'seqTransf' only"]
        _check_keys(state_dict, expected | {_VISUAL_LOGIT_WEIGHT}, expected, where, problems)
        derived.update(_infer_official_sizes(state_dict, sizes["projection_dim"], where))
    else:
        _check_keys(state_dict, expected, expected, where, [])

    max_frames = _max_frames(state_dict.pop(_VISUAL_LOGIT_WEIGHT, None), config_overrides, where)
    config = _build_config(derived, config_overrides, max_frames, where)
    if float(clip["logit_scale"].float().exp()) > config.logit_scale_max:
        logger.warning(
            "%s: exp(logit_scale) = %.2f exceeds logit_scale_max = %s; GLCCLModel clamps it to that value",
            where,
            float(clip["logit_scale"].float().exp()),
            config.logit_scale_max,
        )

    copies_text_layers = not official and sizes["text_width"] == sizes["projection_dim"]
    if copies_text_layers and config.temporal_layers > sizes["text_layers"]:
        raise ValueError(
            f"{where}: temporal_layers={config.temporal_layers} exceeds the {sizes['text_layers']} text layers the "
            f"temporal module is initialised from; pass temporal_layers <= {sizes['text_layers']}"
        )
    converted = _convert_clip(clip, prefix, sizes, where)
    if official:
        converted.update(_convert_official_extras(state_dict, where))
    model = GLCCLModel(config)
    _load_converted(model, converted, official, where)
    if not official:
        model.init_temporal_from_text_encoder()
    return model.eval()


def _load_state_dict(path_or_state_dict: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The state dict and how to name it in messages."""
    if isinstance(path_or_state_dict, Mapping):
        return dict(path_or_state_dict), "the given state dict"
    if not isinstance(path_or_state_dict, (str, os.PathLike)):
        raise TypeError(
            f"path_or_state_dict must be a file path or a state dict, got {type(path_or_state_dict).__name__}"
        )
    path = Path(path_or_state_dict)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist (path_or_state_dict)")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unsafe or foreign files
        raise ValueError(
            f"{path} cannot be loaded with torch.load(weights_only=True): {error}. OpenAI's original CLIP .pt "
            "files are TorchScript archives: if you trust the file, pass "
            "torch.jit.load(path, map_location='cpu').state_dict()"
        ) from error
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a state dict")
    return dict(loaded), str(path)


def _strip_module_prefix(state_dict: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Remove the `module.` prefix of DataParallel / DDP saves when every key carries it."""
    marker = "module."
    if state_dict and all(key.startswith(marker) for key in state_dict):
        return {key[len(marker) :]: value for key, value in state_dict.items()}, True
    return state_dict, False


def _bare_name(key: str) -> str:
    return key[len(_CLIP_PREFIX) :] if key.startswith(_CLIP_PREFIX) else key


def _listing(keys: list[str], limit: int = _MAX_LISTED_KEYS) -> str:
    # The project's one list preview, in brackets so a message can list keys after a colon.
    return f"[{preview(keys, limit)}]"


def _check_vit(clip: dict[str, torch.Tensor], prefix: str, where: str) -> None:
    resnet = [key for key in clip if key.startswith(("visual.layer1.", "visual.attnpool.", "visual.bn1."))]
    if resnet:
        raise ValueError(
            f"{where} holds a ResNet CLIP image encoder ({prefix}{resnet[0]}, ...): only ViT CLIP backbones (with "
            f"'{prefix}visual.proj') can be converted, since GLCCLModel uses a CLIPVisionModel"
        )


def _count_layers(state_dict: Mapping[str, Any], blocks_prefix: str) -> int:
    """Layers of a `...resblocks.<i>.` stack: highest index + 1 (gaps then show up as missing keys)."""
    indices = set()
    for key in state_dict:
        if key.startswith(blocks_prefix):
            index = key[len(blocks_prefix) :].split(".", 1)[0]
            if index.isdigit():
                indices.add(int(index))
    return max(indices) + 1 if indices else 0


def _require(state_dict: Mapping[str, torch.Tensor], keys: list[str], prefix: str, where: str, why: str) -> None:
    missing = [prefix + key for key in keys if key not in state_dict]
    if missing:
        raise ValueError(f"{where}: missing keys {_listing(missing)}, needed to infer {why}")


def _heads(width: int, what: str, where: str) -> int:
    heads = width // _HEAD_WIDTH
    if heads == 0 or width % heads:
        raise ValueError(
            f"{where}: {what} width {width} gives no valid head count (OpenAI CLIP uses width // {_HEAD_WIDTH} heads)"
        )
    return heads


def _infer_clip_sizes(clip: dict[str, torch.Tensor], prefix: str, where: str) -> dict[str, int]:
    shape_keys = [
        "visual.conv1.weight",
        "visual.positional_embedding",
        "visual.proj",
        "ln_final.weight",
        "token_embedding.weight",
        "positional_embedding",
        "text_projection",
        "logit_scale",
    ]
    _require(clip, shape_keys, prefix, where, "the CLIP sizes")
    conv = clip["visual.conv1.weight"]
    if conv.ndim != 4 or conv.shape[1] != 3 or conv.shape[2] != conv.shape[3]:
        raise ValueError(f"{where}: {prefix}visual.conv1.weight has shape {tuple(conv.shape)}, not [width, 3, p, p]")
    vision_width, patch_size = conv.shape[0], conv.shape[-1]
    positions = clip["visual.positional_embedding"].shape[0]
    grid = round((positions - 1) ** 0.5)
    if grid * grid + 1 != positions:
        raise ValueError(
            f"{where}: {prefix}visual.positional_embedding has {positions} rows, not grid^2 + 1 for a square grid"
        )
    text_width = clip["ln_final.weight"].shape[0]
    projection = clip["text_projection"]
    if projection.ndim != 2:
        raise ValueError(f"{where}: {prefix}text_projection has shape {tuple(projection.shape)}, not [width, dim]")
    return {
        "vision_width": vision_width,
        "vision_heads": _heads(vision_width, "vision", where),
        "vision_layers": _count_layers(clip, _VISION_BLOCKS),
        "patch_size": patch_size,
        "image_size": grid * patch_size,
        "text_width": text_width,
        "text_heads": _heads(text_width, "text", where),
        "text_layers": _count_layers(clip, _TEXT_BLOCKS),
        "vocab_size": clip["token_embedding.weight"].shape[0],
        "context_length": clip["positional_embedding"].shape[0],
        "projection_dim": projection.shape[1],
    }


def _clip_keys(vision_layers: int, text_layers: int) -> set[str]:
    """Every key of an OpenAI ViT CLIP state dict (integer metadata buffers excepted)."""
    keys = set(_CLIP_RENAMES) | set(_CLIP_TRANSPOSED)
    keys |= {f"{_VISION_BLOCKS}{i}.{name}" for i in range(vision_layers) for name in _BLOCK_KEYS}
    keys |= {f"{_TEXT_BLOCKS}{i}.{name}" for i in range(text_layers) for name in _BLOCK_KEYS}
    return keys


def _temporal_keys(layers: int) -> set[str]:
    keys = {f"{_TEMPORAL_BLOCKS}{i}.{name}" for i in range(layers) for name in _BLOCK_KEYS}
    return keys | {_FRAME_POSITIONS}


def _check_keys(
    state_dict: Mapping[str, Any], allowed: set[str], required: set[str], where: str, problems: list[str]
) -> None:
    """Raise a ValueError listing unknown keys (not in `allowed`), missing keys and other layout `problems`."""
    unknown = sorted(set(state_dict) - allowed)
    missing = sorted(required - set(state_dict))
    if not unknown and not missing and not problems:
        return
    message = f"{where} does not match the expected layout:"
    if unknown:
        message += f" unknown keys {_listing(unknown)};"
    if missing:
        message += f" missing keys {_listing(missing)};"
    hints = sorted({why for key in unknown for start, why in _UNSUPPORTED_PREFIXES.items() if key.startswith(start)})
    if hints:
        message += f" these come from reference options GLCCLModel does not implement: {', '.join(hints)};"
    message += "".join(f" {problem};" for problem in problems)
    raise ValueError(message.rstrip(";"))


def _infer_official_sizes(state_dict: dict[str, torch.Tensor], projection_dim: int, where: str) -> dict[str, int]:
    temporal_layers = _count_layers(state_dict, _TEMPORAL_BLOCKS)
    temporal_width = state_dict[f"{_TEMPORAL_BLOCKS}0.ln_1.weight"].shape[0]
    if temporal_width != projection_dim:
        raise ValueError(
            f"{where}: the temporal module's width {temporal_width} (transformerClip.resblocks.0.ln_1.weight) "
            f"differs from the projection dim {projection_dim} of the frame features it reads"
        )
    word_pool = state_dict["word_logit_weight"]
    if word_pool.ndim != 2 or word_pool.shape[0] != word_pool.shape[1]:
        raise ValueError(f"{where}: word_logit_weight has shape {tuple(word_pool.shape)}, not [max_words, max_words]")
    return {
        "max_words": word_pool.shape[0],
        "temporal_layers": temporal_layers,
        "temporal_attention_heads": _heads(temporal_width, "temporal", where),
        "max_frame_positions": state_dict[_FRAME_POSITIONS].shape[0],
    }


def _text_config(sizes: dict[str, int]) -> dict[str, Any]:
    if sizes["vocab_size"] == OPENAI_CLIP_VOCAB_SIZE:
        special = {"bos_token_id": OPENAI_CLIP_SOT_ID, "eos_token_id": OPENAI_CLIP_EOT_ID}
    else:
        # Another vocabulary: keep the reference's "EOT = largest id" pooling through the legacy eos id.
        special = {"bos_token_id": sizes["vocab_size"] - 2, "eos_token_id": _ARGMAX_EOS_TOKEN_ID}
    return {
        "vocab_size": sizes["vocab_size"],
        "hidden_size": sizes["text_width"],
        "intermediate_size": _MLP_RATIO * sizes["text_width"],
        "num_hidden_layers": sizes["text_layers"],
        "num_attention_heads": sizes["text_heads"],
        "max_position_embeddings": sizes["context_length"],
        "hidden_act": _HIDDEN_ACT,
        "layer_norm_eps": _LAYER_NORM_EPS,
        "projection_dim": sizes["projection_dim"],
        "pad_token_id": _PAD_TOKEN_ID,
        **special,
    }


def _vision_config(sizes: dict[str, int]) -> dict[str, Any]:
    return {
        "hidden_size": sizes["vision_width"],
        "intermediate_size": _MLP_RATIO * sizes["vision_width"],
        "num_hidden_layers": sizes["vision_layers"],
        "num_attention_heads": sizes["vision_heads"],
        "image_size": sizes["image_size"],
        "patch_size": sizes["patch_size"],
        "num_channels": 3,
        "hidden_act": _HIDDEN_ACT,
        "layer_norm_eps": _LAYER_NORM_EPS,
        "projection_dim": sizes["projection_dim"],
    }


def _max_frames(visual_logit_weight: torch.Tensor | None, overrides: dict[str, Any], where: str) -> int:
    """`max_frames`: the override, else the rows of `visual_logit_weight`, else the default; reports the matrix."""
    from_matrix = None
    if visual_logit_weight is not None:
        square = visual_logit_weight.ndim == 2 and visual_logit_weight.shape[0] == visual_logit_weight.shape[1]
        if square:
            from_matrix = visual_logit_weight.shape[0]
        identity = square and torch.equal(visual_logit_weight.float(), torch.eye(visual_logit_weight.shape[0]))
        if identity:
            logger.info(
                "%s: dropping visual_logit_weight (the identity): only the reference's non-default aggregation "
                "'softmax_linear_softmax' uses it, not the default GLIM",
                where,
            )
        else:
            logger.warning(
                "%s: visual_logit_weight (shape %s) is not the identity, so the checkpoint was probably trained with "
                "the reference's 'softmax_linear_softmax' aggregation; GLCCLModel implements the default 'softmax' "
                "GLIM and ignores this matrix, so its scores will differ from that model's",
                where,
                tuple(visual_logit_weight.shape),
            )
    if "max_frames" in overrides:
        return overrides["max_frames"]
    return from_matrix if from_matrix is not None else DEFAULT_MAX_FRAMES


def _build_config(derived: dict[str, Any], overrides: dict[str, Any], max_frames: int, where: str) -> GLCCLConfig:
    for name in ("text_config", "vision_config"):
        if name in overrides:
            raise ValueError(f"{where}: {name} cannot be overridden, it is inferred from the checkpoint's shapes")
    conflicts = [
        f"{name}={overrides[name]!r} (the checkpoint gives {value!r})"
        for name, value in derived.items()
        if name in overrides and overrides[name] != value
    ]
    if conflicts:
        raise ValueError(f"{where}: config_overrides contradict the checkpoint: {', '.join(conflicts)}")
    try:
        return GLCCLConfig(**{**overrides, **derived, "max_frames": max_frames})
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: invalid GLCCLConfig for this checkpoint: {error}") from error


def _convert_block(
    state_dict: Mapping[str, torch.Tensor], source_prefix: str, target_prefix: str, where: str
) -> dict[str, tuple[str, torch.Tensor]]:
    """One OpenAI residual block -> one CLIPEncoderLayer; values are (source key, tensor)."""
    converted = {}
    for name, kind in _BLOCK_FUSED.items():
        key = source_prefix + name
        fused = state_dict[key]
        if fused.shape[0] % 3:
            raise ValueError(f"{where}: {key} has {fused.shape[0]} rows, not 3 * width (fused q, k, v)")
        for projection, part in zip(("q_proj", "k_proj", "v_proj"), fused.chunk(3, dim=0), strict=True):
            converted[f"{target_prefix}self_attn.{projection}.{kind}"] = (key, part)
    for name, target in _BLOCK_RENAMES.items():
        converted[target_prefix + target] = (source_prefix + name, state_dict[source_prefix + name])
    return converted


def _convert_clip(
    clip: dict[str, torch.Tensor], prefix: str, sizes: dict[str, int], where: str
) -> dict[str, tuple[str, torch.Tensor]]:
    """OpenAI CLIP -> CLIPModel names; values are (source key, tensor)."""
    converted = {target: (prefix + name, clip[name]) for name, target in _CLIP_RENAMES.items()}
    for name, target in _CLIP_TRANSPOSED.items():
        converted[target] = (prefix + name, clip[name].t())
    for i in range(sizes["vision_layers"]):
        block = _convert_block(clip, f"{_VISION_BLOCKS}{i}.", f"vision_model.encoder.layers.{i}.", where)
        converted.update({target: (prefix + key, value) for target, (key, value) in block.items()})
    for i in range(sizes["text_layers"]):
        block = _convert_block(clip, f"{_TEXT_BLOCKS}{i}.", f"text_model.encoder.layers.{i}.", where)
        converted.update({target: (prefix + key, value) for target, (key, value) in block.items()})
    return converted


def _convert_official_extras(state_dict: dict[str, torch.Tensor], where: str) -> dict[str, tuple[str, torch.Tensor]]:
    """The temporal module and the score matrices of an official checkpoint."""
    converted = {"temporal_encoder.frame_position_embeddings.weight": (_FRAME_POSITIONS, state_dict[_FRAME_POSITIONS])}
    for i in range(_count_layers(state_dict, _TEMPORAL_BLOCKS)):
        converted.update(
            _convert_block(state_dict, f"{_TEMPORAL_BLOCKS}{i}.", f"temporal_encoder.encoder.layers.{i}.", where)
        )
    converted.update({target: (name, state_dict[name]) for name, target in _SCORE_MATRICES.items()})
    return converted


def _load_converted(
    model: GLCCLModel, converted: dict[str, tuple[str, torch.Tensor]], official: bool, where: str
) -> None:
    """Check names and shapes against the model, then load (strict for an official checkpoint)."""
    expected = model.state_dict()
    own = () if official else ("temporal_encoder.", "score_heads.")
    unexpected = sorted(target for target in converted if target not in expected)
    missing = sorted(target for target in expected if target not in converted and not target.startswith(own))
    if unexpected or missing:
        raise ValueError(
            f"{where}: the converted weights do not cover GLCCLModel: unexpected {_listing(unexpected)}, "
            f"missing {_listing(missing)}"
        )
    mismatched = [
        f"{source} -> {target}: {tuple(tensor.shape)} vs {tuple(expected[target].shape)}"
        for target, (source, tensor) in converted.items()
        if tensor.shape != expected[target].shape
    ]
    if mismatched:
        raise ValueError(f"{where}: shapes inconsistent with the inferred config: {_listing(mismatched)}")
    weights = {target: tensor for target, (_, tensor) in converted.items()}
    with torch.no_grad():
        model.load_state_dict(weights, strict=official)


__all__ = ["DEFAULT_MAX_FRAMES", "convert_official_checkpoint"]
