"""What GLCCLModel returns: the text and video features GLIM and the scores consume, and the forward output.

The features are `BaseModelOutputWithPooling` outputs, as CLIP's `get_text_features` / `get_image_features` return,
with the paper's names as read-only views (`sentence_embeds`, `frame_embeds`) and the masks the scorer needs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .checks import accept_keyword_alias


@dataclass
class GLCCLTextFeatures(BaseModelOutputWithPooling):
    r"""
    What `get_text_features` returns: the text encoder's outputs in CLIP's layout (`pooler_output` projected), plus
    the word features GLIM and the scores consume. Features are not normalised.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `[texts, words, text_hidden]`): the text encoder's last layer.
        pooler_output (`torch.FloatTensor` of shape `[texts, dim]`): the projected EOT token, the sentence feature;
            also readable as `sentence_embeds`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the text encoder's, with `output_hidden_states`.
        attentions (`tuple(torch.FloatTensor)`, *optional*): the text encoder's, with `output_attentions`.
        word_embeds (`torch.FloatTensor` of shape `[texts, words, dim]`): every projected token position (SOT, EOT
            and padding included, as in the reference).
        word_mask (`torch.LongTensor` of shape `[texts, words]`): 1 for real tokens, 0 for padding.
    """

    word_embeds: torch.FloatTensor | None = None
    word_mask: torch.LongTensor | None = None

    @property
    def sentence_embeds(self) -> torch.FloatTensor | None:
        """The sentence feature `[texts, dim]` (`pooler_output`)."""
        return self.pooler_output

    def for_scoring(self) -> GLCCLTextFeatures:
        """Only the fields the scorer reads (sentence, words, mask): what a cache of many encoded texts keeps."""
        return GLCCLTextFeatures(
            pooler_output=self.pooler_output, word_embeds=self.word_embeds, word_mask=self.word_mask
        )


@dataclass
class GLCCLVideoFeatures(BaseModelOutputWithPooling):
    r"""
    What `get_video_features` returns: the vision encoder's outputs for every frame, and the frame features after
    the temporal module that GLIM and the scores consume. Features are not normalised.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `[videos, frames, patches + 1, vision_hidden]`): the vision
            encoder's last layer on every frame.
        pooler_output (`torch.FloatTensor` of shape `[videos, frames, dim]`): the projected frames after the temporal
            module; also readable as `frame_embeds`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the vision encoder's, each
            `[videos, frames, patches + 1, vision_hidden]`, with `output_hidden_states`.
        attentions (`tuple(torch.FloatTensor)`, *optional*): the vision encoder's, each
            `[videos, frames, heads, patches + 1, patches + 1]`, with `output_attentions`.
        video_mask (`torch.LongTensor` of shape `[videos, frames]`): 1 for real frames, 0 for padding; the model's
            `video_mask` input, under the same name. `frame_mask`, its former name, still reads and builds it, with a
            FutureWarning.
    """

    video_mask: torch.LongTensor | None = None

    @property
    def frame_embeds(self) -> torch.FloatTensor | None:
        """The frame features `[videos, frames, dim]` after the temporal module (`pooler_output`)."""
        return self.pooler_output

    @property
    def frame_mask(self) -> torch.LongTensor | None:
        """Deprecated name of `video_mask`."""
        warnings.warn(_FRAME_MASK_RENAMED, FutureWarning, stacklevel=2)
        return self.video_mask

    def for_scoring(self) -> GLCCLVideoFeatures:
        """Only the fields the scorer reads (frames, mask): what a cache of many encoded videos keeps."""
        return GLCCLVideoFeatures(pooler_output=self.pooler_output, video_mask=self.video_mask)


_FRAME_MASK_RENAMED = "GLCCLVideoFeatures.frame_mask is deprecated: the mask of real frames is called video_mask"


# Features stored apart from the model are rebuilt for scoring under the paper's names, or under a former name.
GLCCLTextFeatures.__init__ = accept_keyword_alias(
    GLCCLTextFeatures.__init__, "sentence_embeds", "pooler_output", what="field"
)
GLCCLVideoFeatures.__init__ = accept_keyword_alias(
    GLCCLVideoFeatures.__init__, "frame_embeds", "pooler_output", what="field"
)
GLCCLVideoFeatures.__init__ = accept_keyword_alias(
    GLCCLVideoFeatures.__init__, "frame_mask", "video_mask", warning=_FRAME_MASK_RENAMED, what="field"
)


@dataclass
class GLCCLOutput(ModelOutput):
    r"""
    Args:
        loss (`torch.FloatTensor` of shape `[]`, returned with `return_loss=True`): `nce_loss + csc_loss_weight *
            csc_loss`.
        logits_per_text (`torch.FloatTensor` of shape `[texts, videos]`): the fused score (mean of the four scores,
            logit scale applied).
        logits_per_video (`torch.FloatTensor` of shape `[videos, texts]`): its transpose.
        score_parts (`torch.FloatTensor` of shape `[4, texts, videos]`): video-sentence, video-word, sentence-frame
            and frame-word scores.
        nce_loss (`torch.FloatTensor` of shape `[]`): symmetric InfoNCE on `logits_per_text`.
        csc_loss (`torch.FloatTensor` of shape `[]`): Contrastive Score Consistency loss (0 for a batch of one).
        text_embeds (`GLCCLTextFeatures`): the text features that were scored (sentence, words, mask).
        video_embeds (`GLCCLVideoFeatures`): the video features that were scored (frames, mask).
        text_model_output (`GLCCLTextFeatures`): `get_text_features`' output for this batch, with the text encoder's
            hidden states and attentions when requested (as `CLIPOutput.text_model_output`).
        vision_model_output (`GLCCLVideoFeatures`): `get_video_features`' output for this batch (as
            `CLIPOutput.vision_model_output`).

    In distributed training the logits, `text_embeds` and `video_embeds` cover the global batch (gathered from every
    process); `text_model_output` and `vision_model_output` stay local.
    """

    loss: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    score_parts: torch.FloatTensor | None = None
    nce_loss: torch.FloatTensor | None = None
    csc_loss: torch.FloatTensor | None = None
    text_embeds: GLCCLTextFeatures | None = None
    video_embeds: GLCCLVideoFeatures | None = None
    text_model_output: GLCCLTextFeatures | None = None
    vision_model_output: GLCCLVideoFeatures | None = None

    def to_tuple(self) -> tuple:
        # Nested outputs become tuples too, as CLIPOutput does.
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in self.values())


__all__ = ["GLCCLOutput", "GLCCLTextFeatures", "GLCCLVideoFeatures"]
