"""glccl-hf: GLCCL text-video retrieval as a Hugging Face Transformers model.

Importing the package registers GLCCL with AutoConfig, AutoModel and AutoProcessor.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor

from .convert import convert_official_checkpoint
from .modeling.configuration_glccl import GLCCLConfig
from .modeling.modeling_glccl import GLCCLModel, GLCCLOutput, GLCCLTextFeatures, GLCCLVideoFeatures
from .modeling.processing_glccl import GLCCLProcessor

AutoConfig.register("glccl", GLCCLConfig, exist_ok=True)
AutoModel.register(GLCCLConfig, GLCCLModel, exist_ok=True)
AutoProcessor.register(GLCCLConfig, GLCCLProcessor, exist_ok=True)

__all__ = [
    "GLCCLConfig",
    "GLCCLModel",
    "GLCCLOutput",
    "GLCCLProcessor",
    "GLCCLTextFeatures",
    "GLCCLVideoFeatures",
    "convert_official_checkpoint",
]
