"""GLCCLModel against the naive, materialising formulation, and its Transformers behaviour."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
import torch
from glccl_hf.modeling.glim import GLCCLScoreMatrices, GLIMScorer
from glccl_hf.modeling.losses import csc_loss, infonce_loss
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError
from modeling_fixtures import (
    EOT,
    IMAGE,
    MAX_FRAMES,
    MAX_WORDS,
    naive_matrices,
    run_without_packages,
    text_batch,
    tiny_config,
    tiny_model,
    video_batch,
)
from naive_glccl import naive_glccl_loss, naive_glccl_scores
from transformers import AutoConfig, AutoModel, CLIPConfig, CLIPModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

from glccl_hf import GLCCLConfig, GLCCLModel, GLCCLTextFeatures, GLCCLVideoFeatures

MODES = [
    pytest.param(dict(), id="reference"),
    pytest.param(dict(mask_padded_words=True, mask_padded_frames=True), id="masked"),
    pytest.param(dict(mask_padded_words=True), id="masked-words"),
    pytest.param(dict(text_guided=False), id="mean-pooling"),
    pytest.param(dict(text_guided=False, mask_padded_frames=True), id="mean-pooling-masked"),
]


def _features(model, text_lengths, frame_counts):
    input_ids, attention_mask = text_batch(text_lengths)
    pixel_values, video_mask = video_batch(frame_counts)
    with torch.no_grad():
        text = model.get_text_features(input_ids, attention_mask)
        video = model.get_video_features(pixel_values.to(model.dtype), video_mask)
    return text, video


def _naive(model, text, video):
    config = model.config
    return naive_glccl_scores(
        text.sentence_embeds,
        text.word_embeds,
        text.word_mask,
        video.frame_embeds,
        video.video_mask,
        naive_matrices(model),
        model.logit_scale_value(),
        mask_padded_words=config.mask_padded_words,
        mask_padded_frames=config.mask_padded_frames,
        text_guided=config.text_guided,
        glim_temperature=config.glim_temperature,
        interaction_temperature=config.interaction_temperature,
    )


# A CPU cache budget of 384 elements splits the frame-word score of a 5 x 3 block into chunks of 2, 2 and 1 texts.
FRAME_WORD_CHUNKS = [pytest.param(None, id="one-chunk"), pytest.param(384, id="chunked")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("block_size", [None, 2])
@pytest.mark.parametrize("cache_budget", FRAME_WORD_CHUNKS)
def test_similarity_matches_naive_formulation(mode, block_size, cache_budget, monkeypatch):
    if cache_budget is not None:
        monkeypatch.setattr(GLIMScorer, "cpu_cache_budget", cache_budget)
    # Five texts against three videos, padded words and frames, non-identity heads, in float64 for a tight check.
    model = tiny_model(**mode).double()
    text, video = _features(model, [6, 2, 4, 1, 5], [4, 2, 1])
    logits, parts = model.similarity(text, video, return_parts=True, block_size=block_size)
    expected_logits, expected_parts = _naive(model, text, video)
    assert logits.shape == (5, 3) and parts.shape == (4, 5, 3)
    torch.testing.assert_close(parts, expected_parts, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(logits, expected_logits, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(model.similarity(text, video, block_size=block_size), logits)


def test_similarity_float32_matches_naive_float64():
    model = tiny_model()
    text, video = _features(model, [6, 2, 4, 1, 5], [4, 2, 1])
    logits = model.similarity(text, video)
    expected, _ = _naive(
        model.double(),
        GLCCLTextFeatures(**{k: v.double() if v.is_floating_point() else v for k, v in text.items()}),
        GLCCLVideoFeatures(**{k: v.double() if v.is_floating_point() else v for k, v in video.items()}),
    )
    torch.testing.assert_close(logits.double(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES[:2])
@pytest.mark.parametrize("cache_budget", FRAME_WORD_CHUNKS)
def test_loss_and_gradients_match_naive_formulation(mode, cache_budget, monkeypatch):
    if cache_budget is not None:
        monkeypatch.setattr(GLIMScorer, "cpu_cache_budget", cache_budget)  # 3-text blocks in chunks of 2 and 1
    model = tiny_model(**mode).double()
    text, video = _features(model, [6, 2, 4, 1], [4, 2, 1, 3])
    leaves = {
        "sentence": text.sentence_embeds.clone().requires_grad_(),
        "words": text.word_embeds.clone().requires_grad_(),
        "frames": video.frame_embeds.clone().requires_grad_(),
    }
    text = GLCCLTextFeatures(pooler_output=leaves["sentence"], word_embeds=leaves["words"], word_mask=text.word_mask)
    video = GLCCLVideoFeatures(pooler_output=leaves["frames"], video_mask=video.video_mask)
    weight = model.config.csc_loss_weight
    params = [
        leaves["sentence"],
        leaves["words"],
        leaves["frames"],
        *model.score_matrices.parameters(),
        model.logit_scale,
    ]

    logits, parts = model.similarity(text, video, return_parts=True, block_size=3)
    loss = infonce_loss(logits) + weight * csc_loss(parts)
    grads = torch.autograd.grad(loss, params)

    expected_loss, _, _ = naive_glccl_loss(*_naive(model, text, video), weight)
    expected_grads = torch.autograd.grad(expected_loss, params)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-9, atol=1e-9)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-7, atol=1e-9)


def test_forward_returns_scores_losses_and_features():
    model = tiny_model().double()
    input_ids, attention_mask = text_batch([6, 2, 4])
    pixel_values, video_mask = video_batch([4, 2, 1])
    out = model(input_ids, attention_mask, pixel_values.double(), video_mask, return_loss=True)
    expected_logits, expected_parts = _naive(model, out.text_embeds, out.video_embeds)
    expected_loss, expected_nce, expected_csc = naive_glccl_loss(expected_logits, expected_parts, 0.5)
    torch.testing.assert_close(out.logits_per_text, expected_logits)
    torch.testing.assert_close(out.logits_per_video, expected_logits.t())
    torch.testing.assert_close(out.score_parts, expected_parts)
    torch.testing.assert_close(out.nce_loss, expected_nce)
    torch.testing.assert_close(out.csc_loss, expected_csc)
    torch.testing.assert_close(out.loss, expected_loss)
    assert out.text_embeds.word_embeds.shape == (3, MAX_WORDS, 32)
    assert out.video_embeds.frame_embeds.shape == (3, MAX_FRAMES, 32)
    assert model(input_ids, attention_mask, pixel_values.double(), video_mask).loss is None


def test_loss_backward_reaches_every_parameter():
    model = tiny_model().train()
    input_ids, attention_mask = text_batch([6, 2, 4])
    pixel_values, video_mask = video_batch([4, 2, 1])
    model(input_ids, attention_mask, pixel_values, video_mask, return_loss=True).loss.backward()
    without_grad = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # The text encoder's unused position rows and token rows of absent ids legitimately get no gradient.
    assert [name for name in without_grad if "embedding" not in name] == []


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_inference_and_training_step(dtype, tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    input_ids, attention_mask = text_batch([6, 2, 4])
    pixel_values, video_mask = video_batch([4, 2, 1])
    with torch.no_grad():
        expected = model(input_ids, attention_mask, pixel_values, video_mask, return_loss=True)
    # Features carry the dtype's rounding through the encoders (measured: about 1.4 eps relative for both dtypes);
    # the scorer works in float32 and maps a feature error to a logit error of at most about the logit scale times
    # it (measured: 0.9 to 1.6 eps times the scale). 4 eps leaves room for other seeds and kernels.
    eps = torch.finfo(dtype).eps
    logit_tolerance = {"rtol": 0.0, "atol": 4 * eps * model.logit_scale_value().item()}

    loaded = GLCCLModel.from_pretrained(tmp_path, dtype=dtype)
    assert {p.dtype for p in loaded.parameters()} == {dtype}
    with torch.no_grad():
        text = loaded.get_text_features(input_ids, attention_mask)
        video = loaded.get_video_features(pixel_values.to(dtype), video_mask)
        logits = loaded.similarity(text, video)
        out = loaded(input_ids, attention_mask, pixel_values.to(dtype), video_mask, return_loss=True)
    assert text.word_embeds.dtype == video.frame_embeds.dtype == dtype
    for name, value, reference in (
        ("sentence", text.sentence_embeds, expected.text_embeds.sentence_embeds),
        ("words", text.word_embeds, expected.text_embeds.word_embeds),
        ("frames", video.frame_embeds, expected.video_embeds.frame_embeds),
    ):
        feature_tolerance = 4 * eps * reference.abs().max().item()
        torch.testing.assert_close(value.float(), reference, rtol=0.0, atol=feature_tolerance, msg=name)
    # The scores are float32 whatever the model's dtype: sums of softmaxes at temperature 0.01.
    assert logits.dtype == out.logits_per_text.dtype == out.loss.dtype == torch.float32
    torch.testing.assert_close(logits, expected.logits_per_text, **logit_tolerance)
    torch.testing.assert_close(out.logits_per_text, expected.logits_per_text, **logit_tolerance)
    torch.testing.assert_close(out.loss, expected.loss, **logit_tolerance)
    # A float32 model cast afterwards holds the same half-precision weights and gives the same result.
    with torch.no_grad():
        cast = tiny_model().to(dtype)(input_ids, attention_mask, pixel_values.to(dtype), video_mask)
    torch.testing.assert_close(cast.logits_per_text, out.logits_per_text, rtol=0.0, atol=0.0)

    # A training step: the gradient reaches the parameters in their dtype, and the step keeps them finite.
    loaded.train()
    optimizer = torch.optim.AdamW(loaded.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
    before = {name: p.detach().clone() for name, p in loaded.named_parameters()}
    loaded(input_ids, attention_mask, pixel_values.to(dtype), video_mask, return_loss=True).loss.backward()
    grads = {name: p.grad for name, p in loaded.named_parameters() if p.grad is not None}
    assert {g.dtype for g in grads.values()} == {dtype}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert grads["score_heads.frame_word_word_pool"].abs().sum() > 0 and grads["logit_scale"] != 0
    optimizer.step()
    changed = [name for name, p in loaded.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert {"score_heads.frame_word_sentence_pool", "temporal_encoder.encoder.layers.0.mlp.fc1.weight"} <= set(changed)
    assert all(torch.isfinite(p).all() for p in loaded.parameters())


def test_batch_of_one_gives_finite_loss_and_zero_csc():
    model = tiny_model()
    input_ids, attention_mask = text_batch([3])
    pixel_values, video_mask = video_batch([2])
    out = model(input_ids, attention_mask, pixel_values, video_mask, return_loss=True)
    assert torch.isfinite(out.loss) and out.csc_loss.item() == 0.0
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_csc_is_zero_without_off_diagonal_variance_and_scale_invariant():
    same = torch.randn(1, 3, 3).expand(4, 3, 3).clone().requires_grad_()
    loss = csc_loss(same)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(same.grad).all()
    parts = torch.randn(4, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(csc_loss(parts), csc_loss(37.0 * parts))


def test_logit_scale_is_clamped():
    model = tiny_model()
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.logit_scale_value().item() == pytest.approx(model.config.logit_scale_max)


def test_logit_scale_keeps_its_gradient_at_clips_value():
    # Pretrained CLIP stores log(100) exactly at the bound: the scale must still be trainable there.
    model = tiny_model()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    inputs = (*text_batch([6, 2, 3]), *video_batch([4, 1, 2]))
    model(*inputs, return_loss=True).loss.backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.abs().item() > 0
    assert model.logit_scale_value().item() == pytest.approx(100.0)


def test_reference_mode_text_features_ignore_attention_mask():
    # The reference runs CLIP's text encoder with the causal mask only: the padding mask changes nothing.
    model = tiny_model()
    input_ids, attention_mask = text_batch([2, 5])
    with torch.no_grad():
        with_mask = model.get_text_features(input_ids, attention_mask)
        all_ones = model.get_text_features(input_ids, torch.ones_like(attention_mask))
        reference = model.text_model(input_ids=input_ids)
    torch.testing.assert_close(with_mask.word_embeds, all_ones.word_embeds)
    torch.testing.assert_close(with_mask.word_embeds, model.text_projection(reference.last_hidden_state))
    eot = (input_ids == EOT).int().argmax(-1)
    torch.testing.assert_close(with_mask.sentence_embeds, with_mask.word_embeds[torch.arange(2), eot])


@pytest.mark.parametrize("mask_words", [False, True])
def test_masked_mode_ignores_padding(mask_words):
    # With both masks on, changing padded frames' pixels or padded tokens' ids changes no score.
    model = tiny_model(mask_padded_words=mask_words, mask_padded_frames=True)
    input_ids, attention_mask = text_batch([3, 5])
    pixel_values, video_mask = video_batch([2, 4])
    with torch.no_grad():
        base = model(input_ids, attention_mask, pixel_values, video_mask).score_parts
        noisy_pixels = pixel_values + torch.randn_like(pixel_values) * (1 - video_mask)[:, :, None, None, None]
        other_pad = input_ids.masked_fill(attention_mask == 0, 7)
        frames_changed = model(input_ids, attention_mask, noisy_pixels, video_mask).score_parts
        words_changed = model(other_pad, attention_mask, pixel_values, video_mask).score_parts
    torch.testing.assert_close(frames_changed, base)
    if mask_words:
        torch.testing.assert_close(words_changed, base)
    else:
        assert not torch.allclose(words_changed, base)


def test_temporal_module_masks_padded_frame_keys():
    model = tiny_model()
    frames = torch.randn(2, MAX_FRAMES, 32)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    with torch.no_grad():
        base = model.temporal_encoder(frames, mask)
        changed = frames.clone()
        changed[0, 2:] = torch.randn(2, 32)
        after = model.temporal_encoder(changed, mask)
    torch.testing.assert_close(after[0, :2], base[0, :2])
    torch.testing.assert_close(after[1], base[1])


def test_sdpa_and_eager_attention_agree():
    sdpa = tiny_model()
    eager = GLCCLModel._from_config(tiny_config(), attn_implementation="eager").eval()
    eager.load_state_dict(sdpa.state_dict())
    assert eager.temporal_encoder.config._attn_implementation == "eager"
    assert sdpa.temporal_encoder.config._attn_implementation == "sdpa"
    inputs = (*text_batch([6, 2]), *video_batch([4, 1]))
    with torch.no_grad():
        torch.testing.assert_close(sdpa(*inputs).logits_per_text, eager(*inputs).logits_per_text)


def test_gradient_checkpointing_gives_the_same_gradients():
    inputs = (*text_batch([6, 2, 3]), *video_batch([4, 1, 2]))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model().train()
        if checkpointing:
            if hasattr(model, "activation_checkpointing_enable"):  # the name README recommends
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:  # transformers before it: the former name
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            assert model.temporal_encoder.encoder.layers[0].gradient_checkpointing
        model(*inputs, return_loss=True).loss.backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], msg=name)


def test_bad_inputs_are_rejected_with_clear_errors():
    model = tiny_model()
    input_ids, attention_mask = text_batch([2])
    pixel_values, video_mask = video_batch([2])
    with pytest.raises(ValueError, match="max_words=8"):
        model.get_text_features(input_ids[:, :5], attention_mask[:, :5])
    with pytest.raises(ValueError, match="at least one token"):
        model.get_text_features(input_ids, torch.zeros_like(attention_mask))
    with pytest.raises(ValueError, match=r"\[videos, frames, 3, height, width\]"):
        model.get_video_features(pixel_values[0], video_mask)
    with pytest.raises(ValueError, match="at least one frame"):
        model.get_video_features(pixel_values, torch.zeros_like(video_mask))
    with pytest.raises(ValueError, match="paired"):
        model(*text_batch([2, 3]), pixel_values, video_mask, return_loss=True)
    with pytest.raises(ValueError, match="block_size"):
        model.similarity(model.get_text_features(input_ids), model.get_video_features(pixel_values), block_size=0)
    with pytest.raises(ValueError, match="max_frames=99"):
        tiny_config(max_frames=99)


def test_temporal_layer_norm_eps_is_the_references_and_leaves_clip_towers_alone(tmp_path):
    model = tiny_model()
    # CLIP4Clip's temporal blocks use its own LayerNorm with epsilon 1e-12; CLIP's towers keep their 1e-5.
    assert model.config.temporal_layer_norm_eps == 1e-12
    temporal_norms = [m for m in model.temporal_encoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert temporal_norms and all(norm.eps == 1e-12 for norm in temporal_norms)
    for tower in (model.text_model, model.vision_model):
        assert all(m.eps == 1e-5 for m in tower.modules() if isinstance(m, torch.nn.LayerNorm))

    # A config saved before the field existed loads with the reference's value; an explicit value is kept.
    model.save_pretrained(tmp_path / "old")
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    assert saved.pop("temporal_layer_norm_eps") == 1e-12
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    assert GLCCLModel.from_pretrained(tmp_path / "old").temporal_encoder.encoder.layers[0].layer_norm2.eps == 1e-12
    explicit = GLCCLModel(tiny_config(temporal_layer_norm_eps=1e-5))
    explicit.save_pretrained(tmp_path / "explicit")
    reloaded = GLCCLModel.from_pretrained(tmp_path / "explicit")
    assert reloaded.config.temporal_layer_norm_eps == 1e-5
    assert reloaded.temporal_encoder.encoder.layers[1].layer_norm1.eps == 1e-5
    with pytest.raises(ValueError, match="temporal_layer_norm_eps must be positive"):
        tiny_config(temporal_layer_norm_eps=0.0)


def test_save_and_load_round_trip(tmp_path):
    model = tiny_model(mask_padded_frames=True)
    inputs = (*text_batch([6, 2]), *video_batch([4, 1]))
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"] == {
        "AutoConfig": "configuration_glccl.GLCCLConfig",
        "AutoModel": "modeling_glccl.GLCCLModel",
    }
    assert (tmp_path / "model.safetensors").is_file()
    model_code = ("modeling_glccl.py", "configuration_glccl.py", "outputs_glccl.py", "glim.py", "losses.py")
    for name in (*model_code, "distributed.py", "checks.py"):
        assert (tmp_path / name).is_file(), name
    assert isinstance(AutoConfig.from_pretrained(tmp_path), GLCCLConfig)
    for loaded in (GLCCLModel.from_pretrained(tmp_path), AutoModel.from_pretrained(tmp_path)):
        assert isinstance(loaded, GLCCLModel) and loaded.config.mask_padded_frames
        with torch.no_grad():
            torch.testing.assert_close(loaded(*inputs).logits_per_text, model(*inputs).logits_per_text)


def test_remote_code_loads_without_glccl_hf(tmp_path):
    model = tiny_model()
    inputs = (*text_batch([6, 2]), *video_batch([4, 1]))
    model.save_pretrained(tmp_path / "ckpt")
    torch.save(inputs, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = model(*inputs).logits_per_text
    script = textwrap.dedent(
        f"""
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        inputs = torch.load({str(tmp_path / "inputs.pt")!r})
        with torch.no_grad():
            torch.save(model(*inputs).logits_per_text, {str(tmp_path / "logits.pt")!r})
        model.save_pretrained({str(tmp_path / "resaved")!r})
        """
    )
    result = run_without_packages(script, tmp_path)  # only the checkpoint's code is importable
    assert result.returncode == 0, result.stderr[-3000:]
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), expected)
    # Re-saving a remote-code model keeps the code (transformers #22698).
    assert (tmp_path / "resaved" / "glim.py").is_file()


def _tiny_clip(tmp_path):
    config = tiny_config()
    clip_config = CLIPConfig(
        text_config=config.text_config.to_dict(), vision_config=config.vision_config.to_dict(), projection_dim=32
    )
    torch.manual_seed(1)
    clip = CLIPModel(clip_config)
    clip.save_pretrained(tmp_path / "clip")
    return clip


def test_from_clip_pretrained_copies_clip_weights(tmp_path):
    clip = _tiny_clip(tmp_path)
    model = GLCCLModel.from_clip_pretrained(str(tmp_path / "clip"), max_words=MAX_WORDS, temporal_layers=2)
    assert model.config.max_words == MAX_WORDS and model.config.projection_dim == 32
    clip_state = clip.state_dict()
    copied = [key for key in model.state_dict() if key in clip_state]
    assert len(copied) == len(clip_state)
    for key in copied:
        torch.testing.assert_close(model.state_dict()[key], clip_state[key], msg=key)
    # The temporal layers are copies of text layers: a CLIP with 2 text layers cannot seed 3.
    with pytest.raises(ValueError, match="temporal_layers=3"):
        GLCCLModel.from_clip_pretrained(str(tmp_path / "clip"), max_words=MAX_WORDS, temporal_layers=3)


def test_from_clip_pretrained_temporal_layers_equal_text_layers(tmp_path):
    clip = _tiny_clip(tmp_path)
    model = GLCCLModel.from_clip_pretrained(str(tmp_path / "clip"), max_words=MAX_WORDS, temporal_layers=2)
    layer_pairs = zip(model.temporal_encoder.encoder.layers, clip.text_model.encoder.layers, strict=False)
    for index, (temporal_layer, text_layer) in enumerate(layer_pairs):
        text_state = text_layer.state_dict()
        assert temporal_layer.state_dict().keys() == text_state.keys()
        for name, value in temporal_layer.state_dict().items():
            torch.testing.assert_close(value, text_state[name], msg=f"layer {index} {name}")
    torch.testing.assert_close(
        model.temporal_encoder.frame_position_embeddings.weight, clip.text_model.embeddings.position_embedding.weight
    )
    for matrix in model.score_matrices.parameters():
        torch.testing.assert_close(matrix, torch.eye(matrix.shape[0]))
    # The copied layers take the reference's temporal LayerNorm epsilon, not the text layers' 1e-5.
    assert model.temporal_encoder.encoder.layers[0].layer_norm1.eps == 1e-12
    assert clip.text_model.encoder.layers[0].layer_norm1.eps == model.text_model.encoder.layers[0].layer_norm1.eps
    # A CLIPModel checkpoint also loads straight into GLCCLModel.from_pretrained with a GLCCL config.
    direct = GLCCLModel.from_pretrained(tmp_path / "clip", config=tiny_config())
    torch.testing.assert_close(direct.text_projection.weight, clip.text_projection.weight)


def test_features_follow_base_model_output_with_pooling_and_keep_their_names():
    model = tiny_model()
    input_ids, attention_mask = text_batch([6, 2])
    pixel_values, video_mask = video_batch([4, 1])
    layers = model.config.text_config.num_hidden_layers

    text = model.get_text_features(input_ids, attention_mask, output_hidden_states=True)
    assert isinstance(text, BaseModelOutputWithPooling)
    assert text.last_hidden_state.shape == (2, MAX_WORDS, model.config.text_config.hidden_size)
    assert text.sentence_embeds is text.pooler_output and text.pooler_output.shape == (2, 32)
    assert text.word_embeds.shape == (2, MAX_WORDS, 32) and text.word_mask.tolist() == attention_mask.tolist()
    assert len(text.hidden_states) == layers + 1

    video = model.get_video_features(pixel_values, video_mask, output_hidden_states=True)
    patches = (IMAGE // model.config.vision_config.patch_size) ** 2 + 1
    assert isinstance(video, BaseModelOutputWithPooling)
    assert video.frame_embeds is video.pooler_output and video.pooler_output.shape == (2, MAX_FRAMES, 32)
    assert video.last_hidden_state.shape == (2, MAX_FRAMES, patches, model.config.vision_config.hidden_size)
    assert len(video.hidden_states) == model.config.vision_config.num_hidden_layers + 1
    assert video.hidden_states[-1].shape == video.last_hidden_state.shape

    as_tuple = model.get_text_features(input_ids, attention_mask, return_dict=False)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[1], text.pooler_output)

    out = model(input_ids, attention_mask, pixel_values, video_mask, output_hidden_states=True)
    assert len(out.text_model_output.hidden_states) == layers + 1
    assert len(out.vision_model_output.hidden_states) == model.config.vision_config.num_hidden_layers + 1
    torch.testing.assert_close(out.text_embeds.sentence_embeds, text.sentence_embeds)
    torch.testing.assert_close(out.video_embeds.frame_embeds, video.frame_embeds)
    assert isinstance(model(input_ids, attention_mask, pixel_values, video_mask, return_dict=False), tuple)


def test_forward_exports_with_torch_export():
    model = tiny_model()
    input_ids, attention_mask = text_batch([6, 2, 3])
    pixel_values, video_mask = video_batch([4, 1, 2])
    inputs = dict(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values, video_mask=video_mask)
    with torch.no_grad():
        program = torch.export.export(model, args=(), kwargs=inputs, strict=False)
        torch.testing.assert_close(program.module()(**inputs).logits_per_text, model(**inputs).logits_per_text)


def test_from_pretrained_initialises_missing_weights_as_the_constructor():
    config = tiny_config(temporal_layers=2)
    built = GLCCLModel(config).state_dict()
    loaded = GLCCLModel.from_pretrained(None, config=config, state_dict={}).state_dict()
    assert built.keys() == loaded.keys()
    for name, value in built.items():
        if torch.equal(value, loaded[name]):
            continue  # constants: identity heads, LayerNorm ones, zero biases, position ids, logit scale
        # Random tensors differ draw by draw; their scheme shows in the spread (CLIP's attention linears use
        # width^-0.5 * (2 * layers)^-0.5, 0.088 here, where the library default gives 0.02). Small tensors get a
        # wider band for the sampling error of their std.
        low, high = (0.8, 1.25) if value.numel() >= 256 else (0.5, 2.0)
        ratio = float(loaded[name].float().std() / value.float().std())
        assert low < ratio < high, f"{name}: std {loaded[name].std():.4f} via from_pretrained, {value.std():.4f} built"


def test_config_fields_are_typed_and_validated():
    with pytest.raises(StrictDataclassFieldValidationError, match="max_words"):
        GLCCLConfig(max_words="8")
    with pytest.raises(StrictDataclassFieldValidationError, match="text_guided"):
        GLCCLConfig(text_guided="yes")
    config = GLCCLConfig()
    config.max_words = 100
    with pytest.raises(StrictDataclassClassValidationError, match="max_words=100"):
        config.validate()


@pytest.mark.skipif(not hasattr(GLCCLModel, "activation_checkpointing_enable"), reason="this transformers predates it")
def test_activation_checkpointing_reaches_every_encoder():
    model = tiny_model().train()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    for encoder in (model.text_model, model.vision_model, model.temporal_encoder):
        assert encoder.encoder.layers[0].gradient_checkpointing
    model(*text_batch([6, 2]), *video_batch([4, 1]), return_loss=True).loss.backward()


@pytest.mark.parametrize("switch", ["mask_padded_words", "mask_padded_frames"])
def test_forward_refuses_an_empty_row_when_masking_would_make_it_nan(switch):
    # With a masking switch on, a text without tokens or a video without frames has nothing to attend to: its
    # scores would be NaN. forward says so instead (eagerly; traced graphs skip the host read).
    model = tiny_model(**{switch: True})
    input_ids, attention_mask = text_batch([3, 5])
    pixel_values, video_mask = video_batch([2, 4])
    if switch == "mask_padded_words":
        attention_mask[1] = 0
        match = "every text needs at least one token"
    else:
        video_mask[1] = 0
        match = "every video needs at least one frame"
    with torch.no_grad(), pytest.raises(ValueError, match=match):
        model(input_ids, attention_mask, pixel_values, video_mask)


def test_features_are_built_from_stored_tensors_under_their_paper_names():
    # Features kept apart from the model (an index, a cache) are rebuilt with the names the paper and README use.
    model = tiny_model()
    input_ids, attention_mask = text_batch([3, 5])
    pixel_values, video_mask = video_batch([2, 4])
    with torch.no_grad():
        text = model.get_text_features(input_ids, attention_mask)
        video = model.get_video_features(pixel_values, video_mask)
        rebuilt_text = GLCCLTextFeatures(
            sentence_embeds=text.sentence_embeds, word_embeds=text.word_embeds, word_mask=text.word_mask
        )
        rebuilt_video = GLCCLVideoFeatures(frame_embeds=video.frame_embeds, video_mask=video.video_mask)
        torch.testing.assert_close(
            model.similarity(rebuilt_text, rebuilt_video), model.similarity(text, video), rtol=0, atol=0
        )
    with pytest.raises(TypeError, match="same field"):
        GLCCLVideoFeatures(frame_embeds=video.frame_embeds, pooler_output=video.frame_embeds)


def test_former_names_still_work_and_warn():
    # The mask of real frames has one name, the model's `video_mask` input; `frame_mask` was the features' name.
    model = tiny_model()
    pixel_values, video_mask = video_batch([2, 4])
    with torch.no_grad():
        video = model.get_video_features(pixel_values, video_mask)
    assert video.video_mask.tolist() == video_mask.tolist()
    with pytest.warns(FutureWarning, match="video_mask"):
        assert video.frame_mask is video.video_mask
    with pytest.warns(FutureWarning, match="video_mask"):
        rebuilt = GLCCLVideoFeatures(frame_embeds=video.frame_embeds, frame_mask=video.video_mask)
    assert rebuilt.video_mask is video.video_mask
    with pytest.raises(TypeError, match="same field"), pytest.warns(FutureWarning):
        GLCCLVideoFeatures(frame_embeds=video.frame_embeds, frame_mask=video_mask, video_mask=video_mask)
    # The eight score matrices are not heads: the class's former name warns and gives the same class.
    with pytest.warns(FutureWarning, match="GLCCLScoreMatrices"):
        from glccl_hf.modeling.glim import GLCCLScoreHeads
    assert GLCCLScoreHeads is GLCCLScoreMatrices and isinstance(model.score_heads, GLCCLScoreMatrices)
