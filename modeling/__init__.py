"""The GLCCL model: exactly the files a checkpoint carries as remote code (flat, importing only torch, transformers
and each other). Installed as `glccl_hf.modeling`."""

from .configuration_glccl import GLCCLConfig
from .modeling_glccl import GLCCLModel, GLCCLOutput, GLCCLPreTrainedModel, GLCCLTextFeatures, GLCCLVideoFeatures

__all__ = [
    "GLCCLConfig",
    "GLCCLModel",
    "GLCCLOutput",
    "GLCCLPreTrainedModel",
    "GLCCLTextFeatures",
    "GLCCLVideoFeatures",
]
