"""GLCCLProcessor (public import path).

The code lives in ``modeling/processing_glccl.py`` (installed as ``glccl_hf.modeling.processing_glccl``), so that a
checkpoint carries it as remote code and ``AutoProcessor.from_pretrained(..., trust_remote_code=True)`` works without
glccl_hf.
"""

from .modeling.processing_glccl import GLCCLProcessor

__all__ = ["GLCCLProcessor"]
