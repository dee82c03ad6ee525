"""transformers' own common model and config tests (`ModelTesterMixin`, `ConfigTester`) run against GLCCLModel.

The test files come from the sdist of the installed transformers version (see transformers_suite.py); the module is
skipped, with the reason, when they cannot be obtained. The tester is written in the style of X-CLIP's
(`tests/models/x_clip/test_modeling_x_clip.py` in transformers). The four skips written below are those CLIP and
X-CLIP make, for their reasons. The suite's other skips are its own, printed with their reason by `pytest -rs`: they
need hardware or packages absent here (an accelerator, MPS, Flash Attention, deepspeed, kernels), or test features
GLCCL does not have, as CLIP does not (embedding resizing, which CLIP also turns off; language-model heads, caches,
experts, tensor-parallel plans, fp32-pinned modules, a separate base model class), or are marked slow.
"""

from __future__ import annotations

import subprocess
import unittest

import pytest
import torch
from transformers_suite import load_common_tests

from glccl_hf import GLCCLConfig, GLCCLModel

try:
    test_modeling_common, test_configuration_common = load_common_tests()
except (RuntimeError, OSError, subprocess.SubprocessError) as error:
    pytest.skip(f"transformers' common tests unavailable: {error}", allow_module_level=True)

ModelTesterMixin = test_modeling_common.ModelTesterMixin
ConfigTester = test_configuration_common.ConfigTester
floats_tensor = test_modeling_common.floats_tensor
ids_tensor = test_modeling_common.ids_tensor


class GLCCLModelTester:
    """Tiny GLCCL configs and inputs: texts laid out `[SOT] words [EOT] padding` as the reference tokenises them,
    videos with their last frame padded in some rows."""

    def __init__(
        self,
        parent: unittest.TestCase,
        batch_size: int = 3,
        vocab_size: int = 99,
        max_words: int = 7,
        num_frames: int = 3,
        image_size: int = 16,
        patch_size: int = 8,
        hidden_size: int = 32,
        projection_dim: int = 32,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 4,
        intermediate_size: int = 37,
        temporal_layers: int = 2,
        is_training: bool = True,
    ) -> None:
        self.parent = parent
        self.batch_size = batch_size
        self.vocab_size = vocab_size
        self.max_words = max_words
        self.num_frames = num_frames
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_size = hidden_size
        self.projection_dim = projection_dim
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.temporal_layers = temporal_layers
        self.is_training = is_training
        self.sot_token_id, self.eot_token_id = vocab_size - 2, vocab_size - 1

    def get_config(self) -> GLCCLConfig:
        shared = dict(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            dropout=0.1,
            attention_dropout=0.1,
        )
        text_config = dict(
            vocab_size=self.vocab_size,
            max_position_embeddings=16,
            bos_token_id=self.sot_token_id,
            eos_token_id=self.eot_token_id,
            pad_token_id=0,
            **shared,
        )
        vision_config = dict(image_size=self.image_size, patch_size=self.patch_size, **shared)
        return GLCCLConfig(
            text_config=text_config,
            vision_config=vision_config,
            projection_dim=self.projection_dim,
            max_words=self.max_words,
            max_frames=self.num_frames,
            temporal_layers=self.temporal_layers,
        )

    def prepare_config_and_inputs(self) -> tuple[GLCCLConfig, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        input_ids = ids_tensor([self.batch_size, self.max_words], self.sot_token_id - 1) + 1
        attention_mask = torch.ones_like(input_ids)
        for row in range(self.batch_size):
            length = 1 + row % (self.max_words - 2)  # words between SOT and EOT
            input_ids[row, 0] = self.sot_token_id
            input_ids[row, length + 1] = self.eot_token_id
            input_ids[row, length + 2 :] = 0
            attention_mask[row, length + 2 :] = 0
        pixel_values = floats_tensor([self.batch_size, self.num_frames, 3, self.image_size, self.image_size])
        video_mask = torch.ones(self.batch_size, self.num_frames, dtype=torch.long)
        video_mask[1:, -1] = 0
        pixel_values[1:, -1] = 0.0  # padded frames are zero images, as the reference feeds them
        return self.get_config(), input_ids, attention_mask, pixel_values, video_mask

    def create_and_check_model(self, config, input_ids, attention_mask, pixel_values, video_mask) -> None:
        model = GLCCLModel(config).eval()
        with torch.no_grad():
            result = model(input_ids, attention_mask, pixel_values, video_mask)
        self.parent.assertEqual(result.logits_per_text.shape, (self.batch_size, self.batch_size))
        self.parent.assertEqual(result.logits_per_video.shape, (self.batch_size, self.batch_size))
        self.parent.assertEqual(result.score_parts.shape, (4, self.batch_size, self.batch_size))

    def prepare_config_and_inputs_for_common(self) -> tuple[GLCCLConfig, dict]:
        config, input_ids, attention_mask, pixel_values, video_mask = self.prepare_config_and_inputs()
        inputs_dict = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values": pixel_values,
            "video_mask": video_mask,
            "return_loss": True,
        }
        return config, inputs_dict


class GLCCLModalityTester:
    """One modality's inputs for the suite's `get_text_features` / `get_video_features` tests (the role of X-CLIP's
    text and vision testers): the GLCCL argument names, and the layer count of that modality's encoder."""

    def __init__(self, parent: GLCCLModelTester, keys: tuple[str, ...]) -> None:
        self.parent = parent
        self.keys = keys
        self.num_hidden_layers = parent.num_hidden_layers

    def prepare_config_and_inputs_for_common(self) -> tuple[GLCCLConfig, dict]:
        config, inputs_dict = self.parent.prepare_config_and_inputs_for_common()
        return config, {key: inputs_dict[key] for key in self.keys}


class GLCCLModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (GLCCLModel,)
    additional_model_inputs = ["pixel_values"]  # as CLIP: the second modality joins the main input
    test_resize_embeddings = False
    test_attention_outputs = False
    _is_composite = True
    # The suite runs this check only for models it dates from 2023 on (by a copyright line); GLCCL opts in.
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self) -> None:
        self.model_tester = GLCCLModelTester(self)
        self.model_tester.text_model_tester = GLCCLModalityTester(self.model_tester, ("input_ids", "attention_mask"))
        # Our video argument is `pixel_values` (with `video_mask`), not the suite's default `pixel_values_videos`.
        self.model_tester.video_model_tester = GLCCLModalityTester(self.model_tester, ("pixel_values", "video_mask"))
        self.config_tester = ConfigTester(
            self,
            config_class=GLCCLConfig,
            has_text_modality=False,
            common_properties=["projection_dim", "max_words", "max_frames", "temporal_layers"],
        )

    def test_config(self) -> None:
        self.config_tester.run_common_tests()

    def test_model(self) -> None:
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    # The skips below are CLIP's and X-CLIP's (tests/models/{clip,x_clip}/test_modeling_*.py), for their reasons.
    @unittest.skip(reason="No top-level hidden_states; the towers' are tested in test_modeling_glccl (as CLIP)")
    def test_hidden_states_output(self) -> None:
        pass

    @unittest.skip(reason="Takes no inputs_embeds: texts and videos enter as ids and pixels (as CLIP, X-CLIP)")
    def test_inputs_embeds(self) -> None:
        pass

    @unittest.skip(reason="No top-level hidden_states or attentions to retain grads on (as CLIP, X-CLIP)")
    def test_retain_grad_hidden_states_attentions(self) -> None:
        pass

    @unittest.skip(reason="A dual encoder has no single input/output embeddings (CLIPModel, XCLIPModel)")
    def test_model_get_set_embeddings(self) -> None:
        pass
