"""Search your own videos: an on-disk GLCCL index of video segments, ranked by the exact GLCCL score through a cascade.

from glccl_hf.search import VideoIndex
index = VideoIndex.create("my_index", "path/to/checkpoint")
index.add("my_videos/")
for hit in index.search("a man is cooking"):
    print(hit.video, hit.start, hit.end, hit.best_time, hit.score)
"""

from .index import DEFAULT_CANDIDATES, DEFAULT_SEGMENT_SECONDS, AddReport, SearchHit, VideoIndex
from .storage import IndexFormatError, ModelMismatchError

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_SEGMENT_SECONDS",
    "AddReport",
    "IndexFormatError",
    "ModelMismatchError",
    "SearchHit",
    "VideoIndex",
]
