"""Video decoding and CLIP frame preprocessing (public import path).

The code lives in ``modeling/video_glccl.py`` and the files it imports (installed under ``glccl_hf.modeling``), so
that a checkpoint carries it with the processor as remote code; ``modeling/video_sampling_glccl.py`` states the
sampling rule. Every name of its ``__all__`` is importable from here.
"""

from .modeling.video_glccl import *  # noqa: F403  (the public names, one list: video_glccl.__all__)
from .modeling.video_glccl import __all__  # noqa: F401
