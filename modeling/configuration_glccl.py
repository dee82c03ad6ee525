"""GLCCL model configuration."""

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import CLIPTextConfig, CLIPVisionConfig, PreTrainedConfig


@strict
class GLCCLConfig(PreTrainedConfig):
    r"""
    Configuration of a [`GLCCLModel`]: a CLIP text and vision backbone, the temporal transformer over frames, the
    parameter-free Global-Local Interaction Module (GLIM) and the Contrastive Score Consistency (CSC) loss.
    docs/method.md in the glccl-hf repository states where each field enters the method.

    The defaults reproduce the reference implementation (CLIP ViT-B/32, MSR-VTT settings). The two masking switches
    and `text_guided=False` are documented departures from it.

    Args:
        text_config (`dict` or `CLIPTextConfig`, *optional*): the CLIP text encoder.
        vision_config (`dict` or `CLIPVisionConfig`, *optional*): the CLIP vision encoder.
        projection_dim (`int`, defaults to 512): the joint embedding width D; also the temporal module's width.
        logit_scale_init_value (`float`, defaults to 2.6592): initial `logit_scale` (log of CLIP's 1/0.07).
        max_words (`int`, defaults to 32): text length Nw, the size of the six `[Nw, Nw]` score matrices.
        max_frames (`int`, defaults to 12): frames per video Nf.
        temporal_layers (`int`, defaults to 4): transformer layers of the temporal module ("seqTransf").
        temporal_attention_heads (`int`, *optional*): heads of the temporal layers. Defaults to the text encoder's
            head count when its width equals `projection_dim` (the layers are initialised from it), else
            `max(1, projection_dim // 64)`.
        max_frame_positions (`int`, *optional*): size of the frame position table; defaults to the text encoder's
            `max_position_embeddings` (77), from which it is initialised.
        temporal_layer_norm_eps (`float`, defaults to 1e-12): LayerNorm epsilon of the temporal layers. The
            reference's temporal blocks use CLIP4Clip's own LayerNorm (1e-12), not the CLIP towers' 1e-5 (which
            `text_config.layer_norm_eps` / `vision_config.layer_norm_eps` keep). A config saved before this field
            existed loads with 1e-12, the reference's value.
        glim_temperature (`float`, defaults to 5.0): softmax temperature tau of GLIM's text-guided frame weights.
        interaction_temperature (`float`, defaults to 0.01): temperature T of the four scores' attention pools over
            similarities (they take `softmax(similarity / T)`); the scorer uses this name too.
        csc_loss_weight (`float`, defaults to 0.5): weight of the CSC loss added to the symmetric InfoNCE loss.
        logit_scale_max (`float`, defaults to 100.0): `exp(logit_scale)` is clamped to this value.
        mask_padded_words (`bool`, defaults to `False`): when on, padding tokens take no part in GLIM or the scores
            (the reference lets them act as words).
        mask_padded_frames (`bool`, defaults to `False`): when on, padded frames get no GLIM weight (the reference
            lets their features join the softmax).
        text_guided (`bool`, defaults to `True`): when off, GLIM's softmax weights are replaced by uniform weights
            over the frames (the mean-pooling ablation; shapes unchanged). Padded frames are averaged in unless
            `mask_padded_frames` is on, as padded frames join GLIM's softmax in reference mode.
    """

    model_type = "glccl"
    sub_configs = {"text_config": CLIPTextConfig, "vision_config": CLIPVisionConfig}

    text_config: dict | CLIPTextConfig | None = None
    vision_config: dict | CLIPVisionConfig | None = None
    projection_dim: int = 512
    logit_scale_init_value: float | int = 2.6592
    max_words: int = 32
    max_frames: int = 12
    temporal_layers: int = 4
    temporal_attention_heads: int | None = None
    max_frame_positions: int | None = None
    temporal_layer_norm_eps: float = 1e-12
    glim_temperature: float | int = 5.0
    interaction_temperature: float | int = 0.01
    csc_loss_weight: float | int = 0.5
    logit_scale_max: float | int = 100.0
    mask_padded_words: bool = False
    mask_padded_frames: bool = False
    text_guided: bool = True
    initializer_factor: float | int = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        self.text_config = _as_config(self.text_config, CLIPTextConfig, "text_config")
        self.vision_config = _as_config(self.vision_config, CLIPVisionConfig, "vision_config")
        if self.temporal_attention_heads is None:
            # The temporal layers are initialised from the text encoder's when the widths match.
            same_width = self.text_config.hidden_size == self.projection_dim
            self.temporal_attention_heads = (
                self.text_config.num_attention_heads if same_width else max(1, self.projection_dim // 64)
            )
        if self.max_frame_positions is None:
            self.max_frame_positions = self.text_config.max_position_embeddings
        # Checked here as well as in `validate_architecture`, so a bad value fails at creation with a plain
        # ValueError (`@strict` wraps validator errors in its own exception type).
        self._check_sizes()
        super().__post_init__(**kwargs)

    def validate_architecture(self) -> None:
        """Part of `@strict` validation (at creation and on `validate()`): the sizes fit together."""
        super().validate_architecture()
        self._check_sizes()

    def _check_sizes(self) -> None:
        positive = (
            "max_words",
            "max_frames",
            "projection_dim",
            "glim_temperature",
            "interaction_temperature",
            "temporal_layer_norm_eps",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.temporal_layers < 0:
            raise ValueError(f"temporal_layers must be >= 0, got {self.temporal_layers}")
        if self.max_words > self.text_config.max_position_embeddings:
            raise ValueError(
                f"max_words={self.max_words} exceeds the text encoder's "
                f"max_position_embeddings={self.text_config.max_position_embeddings}"
            )
        if self.max_frames > self.max_frame_positions:
            raise ValueError(f"max_frames={self.max_frames} exceeds max_frame_positions={self.max_frame_positions}")
        if self.projection_dim % self.temporal_attention_heads:
            raise ValueError(
                f"projection_dim={self.projection_dim} is not divisible by "
                f"temporal_attention_heads={self.temporal_attention_heads}"
            )

    def temporal_encoder_config(self) -> CLIPTextConfig:
        """The CLIP layer config of the temporal module: width `projection_dim`, bidirectional, QuickGELU, LayerNorm
        epsilon `temporal_layer_norm_eps`."""
        same_width = self.text_config.hidden_size == self.projection_dim
        return CLIPTextConfig(
            hidden_size=self.projection_dim,
            intermediate_size=self.text_config.intermediate_size if same_width else 4 * self.projection_dim,
            num_hidden_layers=self.temporal_layers,
            num_attention_heads=self.temporal_attention_heads,
            hidden_act=self.text_config.hidden_act,
            layer_norm_eps=self.temporal_layer_norm_eps,
            attention_dropout=self.text_config.attention_dropout,
            max_position_embeddings=self.max_frame_positions,
        )


def _as_config(value: Any, config_class: type[PreTrainedConfig], name: str) -> PreTrainedConfig:
    if value is None:
        return config_class()
    if isinstance(value, config_class):
        return value
    if isinstance(value, dict):
        return config_class(**value)
    raise TypeError(f"{name} must be a dict or {config_class.__name__}, got {type(value).__name__}")


__all__ = ["GLCCLConfig"]

# Saved checkpoints carry this file and an `auto_map`, so AutoConfig loads them with trust_remote_code.
GLCCLConfig.register_for_auto_class()
