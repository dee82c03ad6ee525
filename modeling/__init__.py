"""The GLCCL model and processor: exactly the files a checkpoint carries as remote code (flat, importing only
third-party packages and each other). Installed as `glccl_hf.modeling`."""

from .configuration_glccl import GLCCLConfig
from .glim import GLCCLScoreMatrices
from .modeling_glccl import GLCCLModel, GLCCLPreTrainedModel
from .outputs_glccl import GLCCLOutput, GLCCLTextFeatures, GLCCLVideoFeatures
from .processing_glccl import GLCCLProcessor

__all__ = [
    "GLCCLConfig",
    "GLCCLModel",
    "GLCCLOutput",
    "GLCCLPreTrainedModel",
    "GLCCLProcessor",
    "GLCCLScoreMatrices",
    "GLCCLTextFeatures",
    "GLCCLVideoFeatures",
]
