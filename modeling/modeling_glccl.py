"""GLCCL: text-video retrieval with global-local contrastive consistency learning, as a Transformers model.

Text and frames are encoded by CLIP; a temporal transformer contextualises the frames; GLIM aggregates them under
the guidance of the sentence and of every word; four scores (video-sentence, video-word, sentence-frame,
frame-word) are fused by their mean; training adds the CSC loss to symmetric InfoNCE. docs/method.md in the
glccl-hf repository states the method and maps each equation to the function that computes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn
from transformers import CLIPModel, CLIPTextConfig, CLIPTextModel, CLIPVisionModel, PreTrainedModel
from transformers import initialization as init
from transformers.models.clip.modeling_clip import CLIPEncoder, CLIPPreTrainedModel
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs
from transformers.utils.generic import can_return_tuple

from .configuration_glccl import GLCCLConfig
from .distributed import gather_batch, is_distributed_training
from .glim import GLCCLScoreMatrices, GLIMScorer
from .losses import csc_loss, infonce_loss

# The output types live in outputs_glccl.py; they stay importable from here, as before.
from .outputs_glccl import GLCCLOutput, GLCCLTextFeatures, GLCCLVideoFeatures

logger = logging.getLogger(__name__)

# The reference's additive attention bias on padded frames (CLIP4Clip's seqTransf).
_PADDED_FRAME_BIAS = -1e6


class GLCCLTemporalEncoder(CLIPPreTrainedModel):
    r"""
    CLIP4Clip's "seqTransf": frame position embeddings, bidirectional CLIP layers over the frames with padded-frame
    keys masked, and a residual connection around the whole stack. `[videos, frames, dim] -> [videos, frames, dim]`;
    `video_mask` `[videos, frames]` is 1 on real frames.
    """

    config: CLIPTextConfig
    main_input_name = "frame_embeds"

    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__(config)
        self.frame_position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.encoder = CLIPEncoder(config)
        self.post_init()

    def forward(self, frame_embeds: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(frame_embeds.shape[1], device=frame_embeds.device)
        hidden = frame_embeds + self.frame_position_embeddings(positions)
        # [videos, 1, query frames, key frames]: every query ignores padded keys.
        key_bias = (1.0 - video_mask.to(hidden.dtype)) * _PADDED_FRAME_BIAS
        attention_bias = key_bias[:, None, None, :].expand(-1, 1, frame_embeds.shape[1], -1)
        hidden = self.encoder(inputs_embeds=hidden, attention_mask=attention_bias).last_hidden_state
        return hidden + frame_embeds

    def initialize_weights(self) -> None:
        _initialize_weights_as_library(self)


@torch.no_grad()
def _initialize_weights_as_library(model: PreTrainedModel) -> None:
    r"""
    `PreTrainedModel.initialize_weights` without its custom-code shortcut, so a weight missing from a checkpoint is
    initialised by `from_pretrained` exactly as by `GLCCLModel(config)`.

    transformers treats any model defined outside its package as custom code that may overwrite loaded weights in
    place, and then skips every module whose own parameters are all initialised: parameter-less parents included, such
    as CLIP's attention and MLP blocks, which set their child linears' scaled std. `from_pretrained` then left those
    linears at the default N(0, 0.02). Our `_init_weights`, like CLIP's, writes only through
    `transformers.initialization`, which leaves loaded tensors alone, so the shortcut is not needed.
    """

    def apply(module: nn.Module, initialize: Callable[..., None]) -> None:
        # Children first, each sub-model with its own `_init_weights`, as transformers' `smart_apply` does.
        for child in module.children():
            apply(child, child._initialize_weights if isinstance(child, PreTrainedModel) else initialize)
        initialize(module, is_custom_code=False)

    apply(model, model._initialize_weights)


class GLCCLPreTrainedModel(PreTrainedModel):
    config: GLCCLConfig
    config_class = GLCCLConfig
    base_model_prefix = "glccl"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["CLIPTextEmbeddings", "CLIPEncoderLayer", "CLIPVisionEmbeddings"]

    def initialize_weights(self) -> None:
        _initialize_weights_as_library(self)

    def _init_weights(self, module: nn.Module) -> None:
        factor = self.config.initializer_factor
        if isinstance(module, GLCCLScoreMatrices):
            for matrix in module.parameters():
                init.eye_(matrix)
        elif isinstance(module, GLCCLModel):
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)
            init.normal_(module.text_projection.weight, std=module.text_projection.in_features**-0.5 * factor)
            init.normal_(module.visual_projection.weight, std=module.visual_projection.in_features**-0.5 * factor)


class GLCCLModel(GLCCLPreTrainedModel):
    r"""
    GLCCL for text-video retrieval.

    Attribute names follow `CLIPModel` (`text_model`, `vision_model`, `text_projection`, `visual_projection`,
    `logit_scale`), so a CLIP checkpoint's weights load without renaming; `temporal_encoder` and `score_heads` (the
    eight `GLCCLScoreMatrices`; the attribute keeps the name its checkpoints' weights are saved under) are GLCCL's
    own parameters.
    """

    def __init__(self, config: GLCCLConfig) -> None:
        super().__init__(config)
        self.text_model = CLIPTextModel._from_config(config.text_config)
        self.vision_model = CLIPVisionModel._from_config(config.vision_config)
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim, bias=False)
        self.visual_projection = nn.Linear(config.vision_config.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))
        self.temporal_encoder = GLCCLTemporalEncoder._from_config(
            config.temporal_encoder_config(), attn_implementation=config.text_config._attn_implementation
        )
        self.score_heads = GLCCLScoreMatrices(config.projection_dim, config.max_words)
        self.post_init()

    @property
    def score_matrices(self) -> GLCCLScoreMatrices:
        """The eight learnable score matrices (stored as `score_heads`, the key saved checkpoints' weights use)."""
        return self.score_heads

    @classmethod
    def from_clip_pretrained(cls, name_or_path: str, **config_overrides) -> GLCCLModel:
        r"""
        A GLCCL model whose CLIP parts come from a `CLIPModel` checkpoint (a local folder or a Hub id), with the
        temporal layers initialised from CLIP's first text layers and the frame positions from the text position
        embeddings, as the reference does. `config_overrides` set `GLCCLConfig` fields (e.g. `max_frames=64`).
        """
        clip = CLIPModel.from_pretrained(name_or_path)
        config = GLCCLConfig(
            text_config=clip.config.text_config.to_dict(),
            vision_config=clip.config.vision_config.to_dict(),
            projection_dim=clip.config.projection_dim,
            logit_scale_init_value=clip.config.logit_scale_init_value,
            **config_overrides,
        )
        model = cls(config)
        missing, unexpected = model.load_state_dict(clip.state_dict(), strict=False)
        own = ("temporal_encoder.", "score_heads.")
        missing = [key for key in missing if not key.startswith(own)]
        if missing or unexpected:
            raise ValueError(
                f"{name_or_path} does not match GLCCL's CLIP parts: missing {missing}, unexpected {unexpected}"
            )
        model.init_temporal_from_text_encoder()
        return model.eval()  # like from_pretrained; Trainer switches to train mode itself

    @torch.no_grad()
    def init_temporal_from_text_encoder(self) -> None:
        """Copy CLIP text layers 0..L-1 into the temporal layers and the text position table into the frame
        positions (the reference's initialisation); leaves them random, with a warning, when the widths differ."""
        temporal, text = self.temporal_encoder, self.text_model
        text_width = self.config.text_config.hidden_size
        if text_width != self.config.projection_dim:
            logger.warning(
                "text width %d != projection_dim %d: the temporal module keeps its random initialisation",
                text_width,
                self.config.projection_dim,
            )
            return
        if len(temporal.encoder.layers) > len(text.encoder.layers):
            raise ValueError(
                f"temporal_layers={len(temporal.encoder.layers)} exceeds the text encoder's "
                f"{len(text.encoder.layers)} layers it is initialised from"
            )
        for temporal_layer, text_layer in zip(temporal.encoder.layers, text.encoder.layers, strict=False):
            temporal_layer.load_state_dict(text_layer.state_dict())
        positions = temporal.frame_position_embeddings.weight
        text_positions = text.embeddings.position_embedding.weight
        rows = min(positions.shape[0], text_positions.shape[0])
        positions[:rows].copy_(text_positions[:rows])

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> GLCCLTextFeatures:
        r"""
        Encode texts laid out as the reference (`[SOT] tokens [EOT]` padded to `max_words`).

        Args:
            input_ids (`torch.LongTensor` of shape `[texts, max_words]`).
            attention_mask (`torch.Tensor` of shape `[texts, max_words]`, *optional*): 1 for real tokens.
            kwargs: `output_hidden_states`, `output_attentions` and `return_dict`, as every transformers model takes.

        In reference mode the text encoder runs with its causal mask only; with `mask_padded_words` the padding mask
        is applied too. Called directly (not traced), it also checks that every text has a real token.
        """
        if attention_mask is not None and not torch.compiler.is_compiling():
            _require_a_valid_position(attention_mask, "every text needs at least one token with attention_mask 1")
        return self._encode_text(input_ids, attention_mask, **kwargs)

    def _encode_text(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None, **kwargs: Unpack[TransformersKwargs]
    ) -> GLCCLTextFeatures:
        # Shape checks only: forward reads no tensor value on the host, so it exports and never syncs a device.
        if input_ids.ndim != 2 or input_ids.shape[1] != self.config.max_words:
            raise ValueError(
                f"input_ids must have shape [texts, max_words={self.config.max_words}], got {tuple(input_ids.shape)}"
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        elif attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} differs from input_ids {tuple(input_ids.shape)}"
            )
        encoder_mask = attention_mask if self.config.mask_padded_words else None
        text_outputs = self.text_model(input_ids=input_ids, attention_mask=encoder_mask, return_dict=True, **kwargs)
        return GLCCLTextFeatures(
            last_hidden_state=text_outputs.last_hidden_state,
            pooler_output=self.text_projection(text_outputs.pooler_output),
            hidden_states=text_outputs.hidden_states,
            attentions=text_outputs.attentions,
            word_embeds=self.text_projection(text_outputs.last_hidden_state),
            word_mask=attention_mask.long(),
        )

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values: torch.FloatTensor,
        video_mask: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> GLCCLVideoFeatures:
        r"""
        Encode videos: CLIP on every frame, then the temporal module.

        Args:
            pixel_values (`torch.FloatTensor` of shape `[videos, frames, 3, height, width]`): padded frames are zero
                images, as the reference feeds them.
            video_mask (`torch.Tensor` of shape `[videos, frames]`, *optional*): 1 for real frames.
            kwargs: `output_hidden_states`, `output_attentions` and `return_dict`, as every transformers model takes.

        Called directly (not traced), it also checks that every video has a real frame.
        """
        if video_mask is not None and not torch.compiler.is_compiling():
            _require_a_valid_position(video_mask, "every video needs at least one frame with video_mask 1")
        return self._encode_video(pixel_values, video_mask, **kwargs)

    def _encode_video(
        self, pixel_values: torch.FloatTensor, video_mask: torch.Tensor | None, **kwargs: Unpack[TransformersKwargs]
    ) -> GLCCLVideoFeatures:
        if pixel_values.ndim != 5:
            raise ValueError(
                f"pixel_values must have shape [videos, frames, 3, height, width], got {tuple(pixel_values.shape)}"
            )
        videos, frames = pixel_values.shape[:2]
        if frames > self.config.max_frame_positions:
            raise ValueError(f"{frames} frames exceed max_frame_positions={self.config.max_frame_positions}")
        if video_mask is None:
            video_mask = torch.ones(videos, frames, dtype=torch.long, device=pixel_values.device)
        elif tuple(video_mask.shape) != (videos, frames):
            raise ValueError(f"video_mask shape {tuple(video_mask.shape)} != [videos, frames] = {(videos, frames)}")
        vision_outputs = self.vision_model(pixel_values=pixel_values.flatten(0, 1), return_dict=True, **kwargs)
        frame_embeds = self.visual_projection(vision_outputs.pooler_output).view(videos, frames, -1)

        def per_video(tensor: torch.Tensor | None) -> torch.Tensor | None:
            # [videos * frames, ...] -> [videos, frames, ...]; a layer left out of `output_hidden_states` stays None.
            return None if tensor is None else tensor.unflatten(0, (videos, frames))

        def per_video_layers(layers: tuple | None) -> tuple | None:
            return None if layers is None else tuple(per_video(layer) for layer in layers)

        return GLCCLVideoFeatures(
            last_hidden_state=per_video(vision_outputs.last_hidden_state),
            pooler_output=self.temporal_encoder(frame_embeds, video_mask),
            hidden_states=per_video_layers(vision_outputs.hidden_states),
            attentions=per_video_layers(vision_outputs.attentions),
            video_mask=video_mask.long(),
        )

    def logit_scale_value(self) -> torch.Tensor:
        """`exp(logit_scale)` with `logit_scale` clamped to `log(config.logit_scale_max)` (CLIP's 100). Clamping in
        log space keeps the gradient at the bound, where pretrained CLIP checkpoints start (exp of the float32
        log(100) rounds above 100)."""
        return self.logit_scale.clamp(max=math.log(self.config.logit_scale_max)).exp()

    def similarity(
        self,
        text_features: GLCCLTextFeatures,
        video_features: GLCCLVideoFeatures,
        *,
        return_parts: bool = False,
        block_size: int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        r"""
        Fused GLCCL logits `[texts, videos]` (logit scale applied), and with `return_parts` also the four scores
        `[4, texts, videos]` (video-sentence, video-word, sentence-frame, frame-word).

        Exact and differentiable; computed in blocks of `block_size` texts x `block_size` videos (chosen from the
        sizes when None) so memory stays bounded for any number of texts and videos.
        """
        scorer = GLIMScorer(
            text_features.sentence_embeds,
            text_features.word_embeds,
            text_features.word_mask,
            video_features.frame_embeds,
            video_features.video_mask,
            self.score_heads,
            self.logit_scale_value(),
            glim_temperature=self.config.glim_temperature,
            interaction_temperature=self.config.interaction_temperature,
            mask_padded_words=self.config.mask_padded_words,
            mask_padded_frames=self.config.mask_padded_frames,
            text_guided=self.config.text_guided,
        )
        parts = scorer.parts(block_size)
        logits = parts.mean(0)
        return (logits, parts) if return_parts else logits

    def _check_masked_rows(self, attention_mask: torch.Tensor | None, video_mask: torch.Tensor | None) -> None:
        """With a masking switch on, an all-padding text or video would score NaN: refuse it. The reference's mode
        reads no mask value on the host (no device sync), and traced graphs skip the check."""
        if torch.compiler.is_compiling():
            return
        if self.config.mask_padded_words and attention_mask is not None:
            _require_a_valid_position(attention_mask, "every text needs at least one token with attention_mask 1")
        if self.config.mask_padded_frames and video_mask is not None:
            _require_a_valid_position(video_mask, "every video needs at least one frame with video_mask 1")

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        video_mask: torch.Tensor | None = None,
        return_loss: bool = False,
        block_size: int | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> GLCCLOutput:
        r"""
        Score every text of the batch against every video; with `return_loss`, text i and video i are the positive
        pairs and the loss is `InfoNCE + csc_loss_weight * CSC`.

        Args:
            input_ids (`torch.LongTensor` of shape `[texts, max_words]`).
            attention_mask (`torch.Tensor` of shape `[texts, max_words]`, *optional*).
            pixel_values (`torch.FloatTensor` of shape `[videos, frames, 3, height, width]`).
            video_mask (`torch.Tensor` of shape `[videos, frames]`, *optional*).
            return_loss (`bool`): compute the training loss (needs as many texts as videos).
            block_size (`int`, *optional*): texts (and videos) per block of the scorer, as in `similarity`.
            kwargs: `output_hidden_states`, `output_attentions` (the encoders', in `text_model_output` and
                `vision_model_output`) and `return_dict`.
        """
        if pixel_values is None:
            raise ValueError("pixel_values is required: GLCCL scores texts against videos")
        self._check_masked_rows(attention_mask, video_mask)
        text_outputs = self._encode_text(input_ids, attention_mask, **kwargs)
        video_outputs = self._encode_video(pixel_values, video_mask, **kwargs)
        text_features, video_features = text_outputs.for_scoring(), video_outputs.for_scoring()
        if self.training and is_distributed_training():
            text_features = GLCCLTextFeatures(**{key: gather_batch(value) for key, value in text_features.items()})
            video_features = GLCCLVideoFeatures(**{key: gather_batch(value) for key, value in video_features.items()})

        logits, parts = self.similarity(text_features, video_features, return_parts=True, block_size=block_size)
        loss = nce = csc = None
        if return_loss:
            if logits.shape[0] != logits.shape[1]:
                raise ValueError(f"return_loss needs paired texts and videos, got {tuple(logits.shape)} logits")
            nce = infonce_loss(logits)
            csc = csc_loss(parts)
            loss = nce + self.config.csc_loss_weight * csc
        return GLCCLOutput(
            loss=loss,
            logits_per_text=logits,
            logits_per_video=logits.t(),
            score_parts=parts,
            nce_loss=nce,
            csc_loss=csc,
            text_embeds=text_features,
            video_embeds=video_features,
            text_model_output=text_outputs,
            vision_model_output=video_outputs,
        )


def _require_a_valid_position(mask: torch.Tensor, message: str) -> None:
    """Raise ValueError(`message`) when a row of `mask` `[rows, positions]` has no 1. Reads the mask on the host, so
    forward runs it only where a masking switch makes an empty row NaN."""
    if not bool(mask.bool().any(dim=1).all()):
        raise ValueError(message)


# Saved checkpoints carry the modeling files and an `auto_map`, so AutoModel loads them with trust_remote_code.
GLCCLModel.register_for_auto_class("AutoModel")

__all__ = [
    "GLCCLModel",
    "GLCCLOutput",
    "GLCCLPreTrainedModel",
    "GLCCLTemporalEncoder",
    "GLCCLTextFeatures",
    "GLCCLVideoFeatures",
]
