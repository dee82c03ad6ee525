"""Tests of glccl_hf.convert_official_checkpoint on tiny random checkpoints in the official GLCCL layout.

The converted model is checked against an independent forward written here in the style of OpenAI CLIP and
CLIP4Clip (fused in_proj attention through torch's multi_head_attention_forward, QuickGELU, pre-LN residual
blocks, `x @ proj`, EOT = argmax of the ids, the "seqTransf" temporal module with a -1e6 additive mask and a
residual) and the naive GLCCL scorer of tests/naive_glccl.py.
"""

from __future__ import annotations

import argparse
import logging
import math

import pytest
import torch
import torch.nn.functional as F
from naive_glccl import naive_glccl_scores

from glccl_hf import GLCCLModel, convert_official_checkpoint

DT = torch.float64
VISION_WIDTH, PATCH, IMAGE, VISION_LAYERS = 64, 8, 16, 2
TEXT_WIDTH, VOCAB, CONTEXT, TEXT_LAYERS = 64, 100, 16, 2
EMBED_DIM, TEMPORAL_LAYERS, MAX_WORDS = 64, 2, 8
SOT, EOT = VOCAB - 2, VOCAB - 1  # OpenAI's layout: the two last ids
# OpenAI CLIP's nn.LayerNorm default; CLIP4Clip's temporal blocks use its own LayerNorm class with 1e-12.
CLIP_LAYER_NORM_EPS, TEMPORAL_LAYER_NORM_EPS = 1e-5, 1e-12
LOGIT_SCALE = math.log(20.0)
BLOCK_KEYS = (
    "attn.in_proj_weight",
    "attn.in_proj_bias",
    "attn.out_proj.weight",
    "attn.out_proj.bias",
    "ln_1.weight",
    "ln_1.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
)
# The reference's matrix names -> their symbols in docs/method.md, as naive_glccl_scores takes them.
REFERENCE_TO_METHOD = {
    "global_mat_weight": "W_g",
    "local_mat_weight": "W_loc",
    "word_logit_weight": "W_wl",
    "word_frame_logit_weight": "W_wfl",
    "word_mat_weight": "W_wm",
    "word_frame_mat_weight": "W_wfm",
    "word_mat_weight2": "W_wm2",
    "word_frame_mat_weight2": "W_wfm2",
}


# ----------------------------------------------------------------------------------------------------------------
# Tiny random checkpoints
# ----------------------------------------------------------------------------------------------------------------


def _block(gen: torch.Generator, prefix: str, width: int) -> dict[str, torch.Tensor]:
    def randn(*shape: int, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std

    return {
        f"{prefix}attn.in_proj_weight": randn(3 * width, width, std=width**-0.5),
        f"{prefix}attn.in_proj_bias": randn(3 * width, std=0.1),
        f"{prefix}attn.out_proj.weight": randn(width, width, std=width**-0.5),
        f"{prefix}attn.out_proj.bias": randn(width, std=0.1),
        f"{prefix}ln_1.weight": 1 + randn(width, std=0.1),
        f"{prefix}ln_1.bias": randn(width, std=0.1),
        f"{prefix}mlp.c_fc.weight": randn(4 * width, width, std=width**-0.5),
        f"{prefix}mlp.c_fc.bias": randn(4 * width, std=0.1),
        f"{prefix}mlp.c_proj.weight": randn(width, 4 * width, std=(4 * width) ** -0.5),
        f"{prefix}mlp.c_proj.bias": randn(width, std=0.1),
        f"{prefix}ln_2.weight": 1 + randn(width, std=0.1),
        f"{prefix}ln_2.bias": randn(width, std=0.1),
    }


def openai_clip_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random ViT CLIP state dict with OpenAI's key names."""
    gen = torch.Generator().manual_seed(seed)
    grid = IMAGE // PATCH
    sd = {
        "visual.class_embedding": torch.randn(VISION_WIDTH, generator=gen) * 0.5,
        "visual.conv1.weight": torch.randn(VISION_WIDTH, 3, PATCH, PATCH, generator=gen) * (3 * PATCH * PATCH) ** -0.5,
        "visual.positional_embedding": torch.randn(grid * grid + 1, VISION_WIDTH, generator=gen) * 0.5,
        "visual.ln_pre.weight": 1 + 0.1 * torch.randn(VISION_WIDTH, generator=gen),
        "visual.ln_pre.bias": 0.1 * torch.randn(VISION_WIDTH, generator=gen),
        "visual.ln_post.weight": 1 + 0.1 * torch.randn(VISION_WIDTH, generator=gen),
        "visual.ln_post.bias": 0.1 * torch.randn(VISION_WIDTH, generator=gen),
        "visual.proj": torch.randn(VISION_WIDTH, EMBED_DIM, generator=gen) * VISION_WIDTH**-0.5,
        "token_embedding.weight": torch.randn(VOCAB, TEXT_WIDTH, generator=gen) * 0.5,
        "positional_embedding": torch.randn(CONTEXT, TEXT_WIDTH, generator=gen) * 0.5,
        "ln_final.weight": 1 + 0.1 * torch.randn(TEXT_WIDTH, generator=gen),
        "ln_final.bias": 0.1 * torch.randn(TEXT_WIDTH, generator=gen),
        "text_projection": torch.randn(TEXT_WIDTH, EMBED_DIM, generator=gen) * TEXT_WIDTH**-0.5,
        "logit_scale": torch.tensor(LOGIT_SCALE),
    }
    for i in range(VISION_LAYERS):
        sd.update(_block(gen, f"visual.transformer.resblocks.{i}.", VISION_WIDTH))
    for i in range(TEXT_LAYERS):
        sd.update(_block(gen, f"transformer.resblocks.{i}.", TEXT_WIDTH))
    return sd


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random checkpoint in the official GLCCL (CLIP4Clip) layout, with non-identity score matrices."""
    sd = {f"clip.{key}": value for key, value in openai_clip_state_dict(seed).items()}
    gen = torch.Generator().manual_seed(seed + 1000)
    sd["frame_position_embeddings.weight"] = torch.randn(CONTEXT, EMBED_DIM, generator=gen) * 0.5
    for i in range(TEMPORAL_LAYERS):
        sd.update(_block(gen, f"transformerClip.resblocks.{i}.", EMBED_DIM))
    for name in REFERENCE_TO_METHOD:
        n = EMBED_DIM if name in ("global_mat_weight", "local_mat_weight") else MAX_WORDS
        # Non-symmetric and far from the identity: a swapped or transposed matrix changes the scores.
        sd[name] = torch.eye(n) + 0.3 * torch.randn(n, n, generator=gen)
    return sd


def _inputs(seed: int = 0, vocab: int = VOCAB) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """4 texts `[SOT] tokens [EOT] 0...` of different lengths and 3 videos of 4 frames, one with 2 padded frames."""
    gen = torch.Generator().manual_seed(seed)
    sot, eot = vocab - 2, vocab - 1
    input_ids = torch.zeros(4, MAX_WORDS, dtype=torch.long)
    attention_mask = torch.zeros(4, MAX_WORDS, dtype=torch.long)
    for row, length in enumerate((3, 5, MAX_WORDS - 2, 1)):
        tokens = torch.randint(1, sot, (length,), generator=gen)
        text = torch.cat([torch.tensor([sot]), tokens, torch.tensor([eot])])
        input_ids[row, : len(text)] = text
        attention_mask[row, : len(text)] = 1
    pixel_values = torch.randn(3, 4, 3, IMAGE, IMAGE, generator=gen)
    video_mask = torch.ones(3, 4, dtype=torch.long)
    video_mask[1, 2:] = 0
    pixel_values[1, 2:] = 0.0  # padded frames are zero images, as the reference feeds them
    return input_ids, attention_mask, pixel_values, video_mask


# ----------------------------------------------------------------------------------------------------------------
# Independent OpenAI CLIP / CLIP4Clip forward (float64, sequence-first attention as nn.MultiheadAttention)
# ----------------------------------------------------------------------------------------------------------------


def _layer_norm(
    sd: dict[str, torch.Tensor], prefix: str, x: torch.Tensor, eps: float = CLIP_LAYER_NORM_EPS
) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], eps=eps)


def _residual_block(
    sd: dict[str, torch.Tensor],
    prefix: str,
    x: torch.Tensor,
    attn_mask: torch.Tensor | None,
    eps: float = CLIP_LAYER_NORM_EPS,
):
    """OpenAI's ResidualAttentionBlock on x [L, N, width] (sequence first), LayerNorm epsilon `eps`."""
    width = x.shape[-1]
    h = _layer_norm(sd, f"{prefix}ln_1", x, eps)
    attended, _ = F.multi_head_attention_forward(
        h,
        h,
        h,
        width,
        width // 64,
        sd[f"{prefix}attn.in_proj_weight"],
        sd[f"{prefix}attn.in_proj_bias"],
        None,
        None,
        False,
        0.0,
        sd[f"{prefix}attn.out_proj.weight"],
        sd[f"{prefix}attn.out_proj.bias"],
        training=False,
        need_weights=False,
        attn_mask=attn_mask,
    )
    x = x + attended
    h = _layer_norm(sd, f"{prefix}ln_2", x, eps)
    h = h @ sd[f"{prefix}mlp.c_fc.weight"].t() + sd[f"{prefix}mlp.c_fc.bias"]
    h = h * torch.sigmoid(1.702 * h)  # QuickGELU
    return x + h @ sd[f"{prefix}mlp.c_proj.weight"].t() + sd[f"{prefix}mlp.c_proj.bias"]


def reference_encode_text(clip: dict[str, torch.Tensor], input_ids: torch.Tensor):
    """CLIP4Clip's encode_text(return_hidden=True): (sentence [N, D], every token [N, L, D])."""
    length = input_ids.shape[1]
    x = clip["token_embedding.weight"][input_ids] + clip["positional_embedding"][:length]
    causal = torch.full((length, length), float("-inf"), dtype=x.dtype).triu(1)
    x = x.permute(1, 0, 2)
    for i in range(TEXT_LAYERS):
        x = _residual_block(clip, f"transformer.resblocks.{i}.", x, causal)
    hidden = _layer_norm(clip, "ln_final", x.permute(1, 0, 2)) @ clip["text_projection"]
    return hidden[torch.arange(hidden.shape[0]), input_ids.argmax(dim=-1)], hidden


def reference_encode_image(clip: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """OpenAI's VisionTransformer: images [N, 3, H, W] -> [N, D]."""
    x = F.conv2d(images, clip["visual.conv1.weight"], stride=PATCH).flatten(2).transpose(1, 2)
    cls = clip["visual.class_embedding"] + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1) + clip["visual.positional_embedding"]
    x = _layer_norm(clip, "visual.ln_pre", x).permute(1, 0, 2)
    for i in range(VISION_LAYERS):
        x = _residual_block(clip, f"visual.transformer.resblocks.{i}.", x, None)
    return _layer_norm(clip, "visual.ln_post", x.permute(1, 0, 2)[:, 0]) @ clip["visual.proj"]


def reference_temporal(sd: dict[str, torch.Tensor], frames: torch.Tensor, video_mask: torch.Tensor, layers: int):
    """CLIP4Clip's seqTransf: frames [B, F, D] + positions, masked bidirectional blocks (LayerNorm epsilon 1e-12),
    residual."""
    x = frames + sd["frame_position_embeddings.weight"][: frames.shape[1]]
    bias = (1.0 - video_mask.to(frames.dtype)[:, None, :]) * -1000000.0  # [B, 1, F]
    bias = bias.expand(-1, frames.shape[1], -1).repeat_interleave(frames.shape[-1] // 64, dim=0)
    x = x.permute(1, 0, 2)
    for i in range(layers):
        x = _residual_block(sd, f"transformerClip.resblocks.{i}.", x, bias, TEMPORAL_LAYER_NORM_EPS)
    return x.permute(1, 0, 2) + frames


def reference_features(sd: dict[str, torch.Tensor], input_ids, pixel_values, video_mask):
    """(sentence, words, frames after the temporal module) of the reference, in float64."""
    sd = {key: value.to(DT) for key, value in sd.items()}
    clip = {key[len("clip.") :]: value for key, value in sd.items() if key.startswith("clip.")}
    sentence, words = reference_encode_text(clip, input_ids)
    videos, frames = pixel_values.shape[:2]
    raw = reference_encode_image(clip, pixel_values.flatten(0, 1).to(DT)).view(videos, frames, -1)
    return sentence, words, reference_temporal(sd, raw, video_mask, TEMPORAL_LAYERS)


def _assert_same_weights(first: GLCCLModel, second: GLCCLModel) -> None:
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


# ----------------------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def official() -> dict[str, torch.Tensor]:
    return official_state_dict()


@pytest.fixture(scope="module")
def converted(official) -> GLCCLModel:
    return convert_official_checkpoint(official)


def test_config_inferred_from_shapes(converted):
    config = converted.config
    text, vision = config.text_config, config.vision_config
    assert (vision.hidden_size, vision.patch_size, vision.image_size, vision.num_hidden_layers) == (64, 8, 16, 2)
    assert (vision.num_attention_heads, vision.intermediate_size, vision.hidden_act) == (1, 256, "quick_gelu")
    assert (text.hidden_size, text.vocab_size, text.max_position_embeddings, text.num_hidden_layers) == (64, 100, 16, 2)
    assert (text.num_attention_heads, text.hidden_act, text.layer_norm_eps, vision.layer_norm_eps) == (
        1,
        "quick_gelu",
        1e-5,
        1e-5,
    )
    assert (text.eos_token_id, text.pad_token_id) == (2, 0)  # 2: CLIPTextModel pools the argmax id
    assert (config.projection_dim, config.max_words, config.temporal_layers, config.max_frame_positions) == (
        64,
        8,
        2,
        16,
    )
    assert config.max_frames == 12  # no visual_logit_weight: the documented default
    # CLIP4Clip's temporal blocks use its own LayerNorm (1e-12); the CLIP towers keep 1e-5 (checked above).
    assert config.temporal_layer_norm_eps == 1e-12
    assert converted.temporal_encoder.encoder.layers[0].layer_norm1.eps == 1e-12
    assert config.logit_scale_init_value == pytest.approx(LOGIT_SCALE)
    assert converted.logit_scale.item() == pytest.approx(LOGIT_SCALE)


def test_scores_match_independent_reference(official):
    model = convert_official_checkpoint(official)
    assert not model.training
    input_ids, attention_mask, pixel_values, video_mask = _inputs()
    sentence, words, frames = reference_features(official, input_ids, pixel_values, video_mask)
    mats = {method: official[name].to(DT) for name, method in REFERENCE_TO_METHOD.items()}
    fused, parts = naive_glccl_scores(sentence, words, attention_mask, frames, video_mask, mats, math.exp(LOGIT_SCALE))
    assert parts.abs().amax() > 10.0  # the scores are not trivially small

    # As converted (float32 throughout): float32 round-off only. Frames agree to 3e-6; with the temporal LayerNorm
    # epsilon of CLIP's towers (1e-5) instead of the reference's 1e-12 they differ by 1.5e-5 and this check fails.
    # The scores' float32 round-off, amplified by the temperature-0.01 softmaxes (up to 7e-5 on scores up to 32),
    # is as large as that epsilon's effect on them: the float64 checks below are the ones that separate the two.
    with torch.no_grad():
        out = model(input_ids, attention_mask, pixel_values, video_mask)
    torch.testing.assert_close(out.video_embeds.frame_embeds.double(), frames, rtol=1e-6, atol=5e-6)
    torch.testing.assert_close(out.score_parts.double(), parts, rtol=1e-5, atol=2e-4)
    torch.testing.assert_close(out.logits_per_text.double(), fused, rtol=1e-5, atol=2e-4)

    # Encoders and scorer in float64 match to float64 round-off; the scores keep the relative 3e-8 of the
    # checkpoint's float32 logit scale (log 20 rounded), which the reference forward takes exactly.
    with torch.no_grad():
        out = model.double()(input_ids, attention_mask, pixel_values.to(DT), video_mask)
    tight = {"rtol": 1e-9, "atol": 1e-9}
    torch.testing.assert_close(out.text_embeds.sentence_embeds, sentence, **tight)
    torch.testing.assert_close(out.text_embeds.word_embeds, words, **tight)
    torch.testing.assert_close(out.video_embeds.frame_embeds, frames, **tight)
    torch.testing.assert_close(out.score_parts, parts, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(out.logits_per_text, fused, rtol=1e-7, atol=1e-7)


def test_score_matrices_keep_their_orientation(official, converted):
    heads = converted.score_heads
    torch.testing.assert_close(heads.video_sentence_projection.data, official["global_mat_weight"], rtol=0, atol=0)
    torch.testing.assert_close(heads.frame_word_video_pool.data, official["word_mat_weight2"], rtol=0, atol=0)
    torch.testing.assert_close(heads.frame_word_sentence_pool.data, official["word_frame_mat_weight2"], rtol=0, atol=0)
    layer = converted.text_model.encoder.layers[1].self_attn
    fused = official["clip.transformer.resblocks.1.attn.in_proj_weight"]
    torch.testing.assert_close(layer.k_proj.weight.data, fused[TEXT_WIDTH : 2 * TEXT_WIDTH], rtol=0, atol=0)
    torch.testing.assert_close(converted.visual_projection.weight.data, official["clip.visual.proj"].t())


def test_module_prefix(official, converted):
    prefixed = {f"module.{key}": value for key, value in official.items()}
    _assert_same_weights(convert_official_checkpoint(prefixed), converted)


def test_bare_openai_clip(official):
    clip = {key[len("clip.") :]: value for key, value in official.items() if key.startswith("clip.")}
    # OpenAI's TorchScript state dicts also hold these integer buffers.
    bare = {**clip, "input_resolution": torch.tensor(IMAGE), "context_length": torch.tensor(CONTEXT)}
    bare["vocab_size"] = torch.tensor(VOCAB)
    model = convert_official_checkpoint(bare, temporal_layers=2, max_words=MAX_WORDS)

    for temporal_layer, text_layer in zip(
        model.temporal_encoder.encoder.layers, model.text_model.encoder.layers, strict=True
    ):
        for (name, a), (_, b) in zip(temporal_layer.state_dict().items(), text_layer.state_dict().items(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    torch.testing.assert_close(
        model.temporal_encoder.frame_position_embeddings.weight.data, clip["positional_embedding"], rtol=0, atol=0
    )
    for name, matrix in model.score_heads.named_parameters():
        torch.testing.assert_close(matrix.data, torch.eye(matrix.shape[0]), rtol=0, atol=0, msg=name)

    # The temporal module now is CLIP4Clip's seqTransf initialised from the text layers.
    as_official = dict(official)
    as_official["frame_position_embeddings.weight"] = clip["positional_embedding"]
    for i in range(TEMPORAL_LAYERS):
        for name in BLOCK_KEYS:
            as_official[f"transformerClip.resblocks.{i}.{name}"] = clip[f"transformer.resblocks.{i}.{name}"]
    input_ids, attention_mask, pixel_values, video_mask = _inputs(seed=1)
    sentence, words, frames = reference_features(as_official, input_ids, pixel_values, video_mask)
    model.double()
    with torch.no_grad():
        text = model.get_text_features(input_ids, attention_mask)
        video = model.get_video_features(pixel_values.to(DT), video_mask)
    torch.testing.assert_close(text.sentence_embeds, sentence, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(text.word_embeds, words, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(video.frame_embeds, frames, rtol=1e-9, atol=1e-9)

    # GLCCLConfig's default max_words (32) does not fit this tiny context length (16): a clear error.
    with pytest.raises(ValueError, match="max_words=32"):
        convert_official_checkpoint(bare, temporal_layers=2)
    with pytest.raises(ValueError, match="the given state dict: temporal_layers=4 exceeds the 2 text layers"):
        convert_official_checkpoint(bare, max_words=MAX_WORDS)


def test_openai_vocabulary_uses_real_eot_id(official):
    """With OpenAI's 49408-token vocabulary, EOT 49407 (the largest id) is the configured eos."""
    sd = dict(official)
    sd["clip.token_embedding.weight"] = torch.randn(49408, TEXT_WIDTH, generator=torch.Generator().manual_seed(3))
    model = convert_official_checkpoint(sd)
    assert (model.config.text_config.eos_token_id, model.config.text_config.bos_token_id) == (49407, 49406)
    input_ids, attention_mask, _, _ = _inputs(seed=2, vocab=49408)
    clip = {key[len("clip.") :]: value.to(DT) for key, value in sd.items() if key.startswith("clip.")}
    sentence, _ = reference_encode_text(clip, input_ids)
    with torch.no_grad():
        features = model.double().get_text_features(input_ids, attention_mask)
    torch.testing.assert_close(features.sentence_embeds, sentence, rtol=1e-9, atol=1e-9)


def test_file_path_with_fp16_weights(official, converted, tmp_path):
    # The reference casts CLIP's linear / conv / attention weights to fp16 (CLIP4Clip's convert_weights).
    half = {
        key: value.half() if key.startswith("clip.") and value.ndim >= 2 else value for key, value in official.items()
    }
    path = tmp_path / "pytorch_model_best.bin"
    torch.save(half, path)
    from_path = convert_official_checkpoint(path)
    _assert_same_weights(convert_official_checkpoint(str(path)), from_path)
    _assert_same_weights(convert_official_checkpoint(half), from_path)
    assert all(p.dtype == torch.float32 for p in from_path.parameters())
    q_proj = from_path.vision_model.encoder.layers[0].self_attn.q_proj.weight
    fused = half["clip.visual.transformer.resblocks.0.attn.in_proj_weight"]
    torch.testing.assert_close(q_proj.data, fused[:VISION_WIDTH].float(), rtol=0, atol=0)
    # fp32 weights (the matrices) are untouched.
    torch.testing.assert_close(
        from_path.score_heads.frame_word_word_pool.data, converted.score_heads.frame_word_word_pool.data
    )

    # Loading uses weights_only=True: a pickled non-tensor object is refused, and the error names the file.
    unsafe = tmp_path / "with_args.bin"
    torch.save({**official, "args": argparse.Namespace(max_frames=12)}, unsafe)
    with pytest.raises(ValueError, match="with_args.bin.*weights_only"):
        convert_official_checkpoint(unsafe)
    with pytest.raises(FileNotFoundError, match="nowhere.bin"):
        convert_official_checkpoint(tmp_path / "nowhere.bin")


def test_unknown_and_missing_keys_are_listed(official):
    sd = dict(official)
    sd["clip.visual.extra_thing"] = torch.zeros(1)
    sd["cross.embeddings.word_embeddings.weight"] = torch.zeros(1)
    del sd["word_mat_weight2"]
    del sd["clip.transformer.resblocks.1.ln_2.bias"]
    with pytest.raises(ValueError) as error:
        convert_official_checkpoint(sd)
    message = str(error.value)
    assert "the given state dict" in message
    for key in ("clip.visual.extra_thing", "cross.embeddings.word_embeddings.weight"):
        assert key in message.split("missing keys")[0]
    for key in ("word_mat_weight2", "clip.transformer.resblocks.1.ln_2.bias"):
        assert key in message.split("missing keys")[1]
    assert "tightTransf" in message  # the hint for the reference's cross-encoder option

    prefixed = {f"module.{key}": value for key, value in sd.items()}
    with pytest.raises(ValueError, match="'module.' prefix.*clip.visual.extra_thing"):
        convert_official_checkpoint(prefixed)

    no_temporal = {key: value for key, value in official.items() if not key.startswith("transformerClip.")}
    with pytest.raises(ValueError, match="seqTransf"):
        convert_official_checkpoint(no_temporal)

    with pytest.raises(ValueError, match="not tensors.*some_setting"):
        convert_official_checkpoint({**official, "some_setting": 3})


def test_inconsistent_shapes_name_the_key(official):
    sd = dict(official)
    sd["word_frame_mat_weight"] = torch.eye(MAX_WORDS + 1)
    with pytest.raises(ValueError, match="word_frame_mat_weight -> score_heads.frame_word_frame_pool"):
        convert_official_checkpoint(sd)


def test_resnet_clip_is_refused(official):
    bare = {key[len("clip.") :]: value for key, value in official.items() if key.startswith("clip.")}
    resnet = {key: value for key, value in bare.items() if not key.startswith("visual.")}
    resnet["visual.conv1.weight"] = torch.zeros(32, 3, 3, 3)
    resnet["visual.layer1.0.conv1.weight"] = torch.zeros(64, 32, 1, 1)
    resnet["visual.attnpool.positional_embedding"] = torch.zeros(50, 2048)
    with pytest.raises(ValueError, match="ResNet CLIP"):
        convert_official_checkpoint(resnet)
    with pytest.raises(ValueError, match="ResNet CLIP"):
        convert_official_checkpoint({f"clip.{key}": value for key, value in resnet.items()})

    no_proj = {key: value for key, value in official.items() if key != "clip.visual.proj"}
    with pytest.raises(ValueError, match=r"missing keys \['clip.visual.proj'\]"):
        convert_official_checkpoint(no_proj)


def test_max_frames(official, caplog):
    caplog.set_level(logging.INFO, logger="glccl_hf.convert")
    assert convert_official_checkpoint(official, max_frames=5).config.max_frames == 5

    # The reference sizes visual_logit_weight [max_frames, max_frames]; at the identity it is dropped with a note.
    with_matrix = {**official, "visual_logit_weight": torch.eye(6)}
    assert convert_official_checkpoint(with_matrix).config.max_frames == 6
    assert any(r.levelno == logging.INFO and "visual_logit_weight" in r.getMessage() for r in caplog.records)
    assert convert_official_checkpoint(with_matrix, max_frames=7).config.max_frames == 7

    caplog.clear()
    trained = {**official, "visual_logit_weight": torch.eye(6) + 0.1}
    convert_official_checkpoint(trained)
    assert any(r.levelno == logging.WARNING and "not the identity" in r.getMessage() for r in caplog.records)

    with pytest.raises(ValueError, match="max_frames=20 exceeds max_frame_positions=16"):
        convert_official_checkpoint(official, max_frames=20)


def test_overrides_that_contradict_the_checkpoint(official):
    with pytest.raises(ValueError, match="max_words=16 .*checkpoint gives 8"):
        convert_official_checkpoint(official, max_words=16)
    with pytest.raises(ValueError, match="text_config cannot be overridden"):
        convert_official_checkpoint(official, text_config={"hidden_size": 32})
    model = convert_official_checkpoint(official, max_words=MAX_WORDS, mask_padded_frames=True, csc_loss_weight=0.1)
    assert model.config.mask_padded_frames and model.config.csc_loss_weight == 0.1
