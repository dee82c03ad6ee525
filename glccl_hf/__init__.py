"""glccl-hf: GLCCL text-video retrieval as a Hugging Face Transformers model."""

from transformers import AutoConfig, AutoModel

from .modeling.configuration_glccl import GLCCLConfig
from .modeling.modeling_glccl import (
    GLCCLModel,
    GLCCLOutput,
    GLCCLTextFeatures,
    GLCCLVideoFeatures,
)

AutoConfig.register("glccl", GLCCLConfig, exist_ok=True)
AutoModel.register(GLCCLConfig, GLCCLModel, exist_ok=True)

__all__ = [
    "GLCCLConfig",
    "GLCCLModel",
    "GLCCLOutput",
    "GLCCLTextFeatures",
    "GLCCLVideoFeatures",
]
