"""Pictures of search hits: the frame shown at a time of an indexed video, decoded on demand by seeking (the index
stores features only), and the strip of a segment's sampled frames with their GLIM weights.

Only videos indexed from files can be shown: `playable_file` turns an index's video name into the file to open, or
None (a name from an in-memory `datasets` row, or a file gone since indexing). Nothing here takes a path from
anyone but the index.
"""

from __future__ import annotations

import base64
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import av
from PIL import Image, ImageDraw

# Longest side of a gallery thumbnail and of a strip frame, in pixels.
THUMBNAIL_SIDE = 320
STRIP_HEIGHT = 96
# Decoding goes on from the current position (instead of seeking) when the next time is at most this far ahead.
_CONTINUE_SECONDS = 2.0
# A frame stamped within this of a requested time counts as shown at it (k / fps in floats vs pts * time_base).
_TIME_TOLERANCE = 1e-6
# Thumbnails decoded at once (PyAV decodes without the GIL, so a page of them overlaps on several cores).
_DECODE_THREADS = 4
_BACKGROUND = (24, 24, 27)
_BAR = (249, 115, 22)
_TEXT = (230, 230, 230)


def playable_file(video: str) -> str | None:
    """The file behind an indexed video name when it can be shown: an absolute path to an existing regular file."""
    if not os.path.isabs(video) or not os.path.isfile(video):
        return None
    return video


def frames_at(path: str | bytes, times: Sequence[float], max_side: int = THUMBNAIL_SIDE) -> list[Image.Image]:
    """The frames shown at `times` (seconds from the stream's start; the last frame with a presentation time
    `<= t`, the index's sampling rule), scaled to at most `max_side` pixels, in the order of `times`. `path` may also
    be the encoded file's bytes.

    Seeks to the keyframe before each time and decodes forward to it; raises ValueError naming the file when it
    cannot be decoded.
    """
    order = sorted(range(len(times)), key=lambda i: times[i])
    out: list[Image.Image | None] = [None] * len(times)
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    if isinstance(path, bytes):
        path = "<bytes>"
    try:
        with av.open(source, metadata_errors="ignore") as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            reader = _FrameReader(container, stream)
            for i in order:
                try:
                    frame = reader.frame_at(max(float(times[i]), 0.0))
                except ValueError as err:
                    raise ValueError(f"{path}: {err}") from err
                out[i] = _scaled(frame.to_image(), max_side)
    except av.FFmpegError as err:
        raise ValueError(f"{path}: cannot decode a preview frame ({err})") from err
    return out  # type: ignore[return-value]


class _FrameReader:
    """Forward decoder over one stream that seeks when the next requested time is far ahead or behind."""

    def __init__(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> None:
        self.container = container
        self.stream = stream
        self.time_base = float(stream.time_base)
        self.start = stream.start_time
        self.frames = None  # the decode iterator, None until the first seek
        self.current = None  # the last decoded frame at or before the previous target
        self.pending = None  # a decoded frame past the previous target, not yet shown

    def _time(self, frame: av.VideoFrame) -> float:
        start = self.start if self.start is not None else 0
        return (frame.pts - start) * self.time_base

    def _seek(self, time: float) -> None:
        start = self.start if self.start is not None else 0
        self.container.seek(int(start + time / self.time_base), stream=self.stream, backward=True)
        self.frames = (f for f in self.container.decode(self.stream) if f.pts is not None)
        self.current, self.pending = None, None

    def frame_at(self, time: float) -> av.VideoFrame:
        behind = self.current is not None and self._time(self.current) > time + _TIME_TOLERANCE
        far = self.current is None or time - self._time(self.current) > _CONTINUE_SECONDS
        if self.frames is None or behind or far:
            self._seek(time)
        if self.pending is not None:
            if self._time(self.pending) > time + _TIME_TOLERANCE:
                return self.current if self.current is not None else self.pending
            self.current, self.pending = self.pending, None
        for frame in self.frames:
            if self._time(frame) > time + _TIME_TOLERANCE:
                self.pending = frame
                break
            self.current = frame
        if self.current is None:  # the stream's first frame comes after `time`: show it
            if self.pending is None:
                raise ValueError(f"no decodable frame at {time:.2f} s")
            return self.pending
        return self.current


def _scaled(image: Image.Image, max_side: int) -> Image.Image:
    scale = max_side / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    return image


def placeholder(text: str, size: tuple[int, int] = (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 9 // 16)) -> Image.Image:
    """A dark picture saying why there is no frame to show."""
    image = Image.new("RGB", size, _BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.multiline_text((10, size[1] // 2 - 10), text, fill=_TEXT)
    return image


class ThumbnailCache:
    """The frame at a hit's time of an indexed video, decoded once and kept (least recently used dropped first).
    The key includes the file's size and modification time, so a replaced file is decoded again."""

    def __init__(self, capacity: int = 512, max_side: int = THUMBNAIL_SIDE) -> None:
        self.capacity = capacity
        self.max_side = max_side
        self._images: OrderedDict[tuple, Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, video: str, time: float) -> Image.Image:
        path = playable_file(video)
        if path is None:
            return placeholder("no preview:\nthe video is not a file here")
        info = os.stat(path)
        key = (path, info.st_size, info.st_mtime_ns, round(time, 3))
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        try:
            image = frames_at(path, [time], self.max_side)[0]
        except ValueError:
            return placeholder("no preview:\nthe video does not decode")
        with self._lock:
            self._images[key] = image
            while len(self._images) > self.capacity:
                self._images.popitem(last=False)
        return image


    def get_many(self, requests: Sequence[tuple[str, float]]) -> list[Image.Image]:
        """`get(video, time)` for each request, decoded concurrently, in the order of `requests`."""
        if len(requests) <= 1:
            return [self.get(video, time) for video, time in requests]
        with ThreadPoolExecutor(min(_DECODE_THREADS, len(requests))) as pool:
            return list(pool.map(lambda request: self.get(*request), requests))


def frame_strip(
    images: Sequence[Image.Image], times: Sequence[float], weights: Sequence[float], height: int = STRIP_HEIGHT
) -> Image.Image:
    """The segment's sampled frames side by side, each above a bar as tall as its GLIM weight for the query and
    its time and weight written out; the most weighted frame is outlined."""
    if not (len(images) == len(times) == len(weights)) or not images:
        raise ValueError(f"frame_strip needs as many images, times and weights (>0), got {len(images)}, "
                         f"{len(times)}, {len(weights)}")
    tiles = [image.resize((max(1, round(image.width * height / image.height)), height)) for image in images]
    gap, bar, label = 6, 40, 26
    width = sum(tile.width for tile in tiles) + gap * (len(tiles) + 1)
    strip = Image.new("RGB", (width, height + bar + label + 2 * gap), _BACKGROUND)
    draw = ImageDraw.Draw(strip)
    best = max(range(len(weights)), key=lambda i: weights[i])
    top = max(max(weights), 1e-12)
    x = gap
    for i, (tile, time, weight) in enumerate(zip(tiles, times, weights, strict=True)):
        strip.paste(tile, (x, gap))
        if i == best:
            draw.rectangle((x - 3, gap - 3, x + tile.width + 2, gap + height + 2), outline=_BAR, width=3)
        filled = round(bar * weight / top)
        base = gap + height + bar + 2
        draw.rectangle((x, base - filled, x + tile.width - 1, base), fill=_BAR)
        draw.text((x, base + 3), f"{time:.1f}s", fill=_TEXT)
        draw.text((x, base + 14), f"w={weight:.2f}", fill=_TEXT)
        x += tile.width + gap
    return strip


def data_uri(image: Image.Image, quality: int = 80) -> str:
    """The image as an inline JPEG `data:` URI (for self-contained HTML pages)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
