"""What is wrong with a video that cannot be read, said clearly: the error type and the checks that name the reason.

Each message starts with the file name (or ``"<bytes>"`` for in-memory input): a missing file or dangling symlink,
a symlink loop (ELOOP), a directory, an empty file, a still image under a video's name, an MP4 cut before its index,
or the decoder's own reason when the file's structure tells nothing more. Part of the remote code a checkpoint
carries with the processor (see video_glccl.py); it needs no decoder itself.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Callable
from typing import Any

__all__ = ["BYTES_NAME", "VideoDecodeError", "VideoSource", "resolve_source", "still_image_error", "undecodable"]

BYTES_NAME = "<bytes>"

VideoSource = str | os.PathLike | bytes | bytearray | memoryview

# FFmpeg's demuxers of animated pictures: a video only when the file holds more than one frame. The other picture
# demuxers (image2, image2pipe, png_pipe, jpeg_pipe, ...) always give one still image per file.
_ANIMATED_IMAGE_DEMUXERS = frozenset({"gif", "apng", "webp"})
# Top-level box types an MP4 / QuickTime file may start with: where they do, its box structure can be checked.
_ISO_BMFF_FIRST_BOXES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})


class VideoDecodeError(ValueError):
    """A video could not be decoded: empty, truncated, damaged, not a video, or without a video stream.

    The message always starts with the file name (or ``"<bytes>"`` for in-memory input) and gives the reason.
    """


def resolve_source(source: VideoSource) -> tuple[str, Callable[[], Any], Any]:
    """Check the source; return (name for messages, opener giving a fresh path/file object, raw source)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise VideoDecodeError(f"{BYTES_NAME}: empty file (0 bytes), not a video")
        return BYTES_NAME, lambda: io.BytesIO(data), data
    if isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(source))
        try:
            info = os.stat(path)
        except OSError as exc:
            raise _path_error(path, exc) from exc
        if stat.S_ISDIR(info.st_mode):
            raise VideoDecodeError(f"{path}: is a directory, not a video file")
        if info.st_size == 0:
            raise VideoDecodeError(f"{path}: empty file (0 bytes), not a video")
        return path, lambda: path, path
    raise TypeError(f"source must be a file path (str or os.PathLike) or bytes, got {type(source).__name__}")


def _path_error(path: str, exc: OSError) -> Exception:
    """The error for a path the operating system cannot resolve to a file, chosen by its errno."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        reason = "video file not found"
        if os.path.islink(path):  # the link itself exists: what it points to does not
            reason += f" (dangling symlink to {os.readlink(path)})"
        return FileNotFoundError(errno.ENOENT, reason, path)
    if exc.errno == errno.ELOOP:
        return VideoDecodeError(f"{path}: symlink loop (ELOOP): its symbolic links lead back to each other, no file")
    if isinstance(exc, PermissionError):
        return exc
    return VideoDecodeError(f"{path}: cannot be opened ({os.strerror(exc.errno)})" if exc.errno else f"{path}: {exc}")


def _read_at(raw: Any) -> tuple[Callable[[int, int], bytes], int]:
    """(read(offset, count) -> bytes, size) over a path or the bytes of a file."""
    if isinstance(raw, bytes):
        return (lambda offset, count: raw[offset : offset + count]), len(raw)

    def read(offset: int, count: int) -> bytes:
        with open(raw, "rb") as file:
            file.seek(offset)
            return file.read(count)

    return read, os.path.getsize(raw)


def _iso_bmff_problem(raw: Any) -> str | None:
    """What is wrong with the top-level boxes of an MP4 / QuickTime file (a cut file, a missing index), or None.

    The ``moov`` box is the index that locates every frame; recorders write it last, so a cut file loses it.
    """
    read, size = _read_at(raw)
    if read(4, 4) not in _ISO_BMFF_FIRST_BOXES:
        return None  # another container: nothing to say beyond the decoder's own message
    offset, complete = 0, set()
    while offset < size:
        header = read(offset, 16)
        box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
        if box_size == 1 and len(header) == 16:
            box_size = int.from_bytes(header[8:16], "big")  # 64-bit size
        elif box_size == 0:
            box_size = size - offset  # the last box runs to the end of the file
        name = box_type.decode("latin-1")
        if len(header) < 8 or box_size < 8:
            return None if len(header) >= 8 else f"truncated: the file ends inside a box header at byte {offset}"
        if offset + box_size > size:
            index = (
                "its index (the 'moov' box, which locates every frame) is cut off"
                if box_type == b"moov"
                else "its index (the 'moov' box, which locates every frame) is missing"
            )
            if b"moov" in complete:
                index = "its index ('moov') is complete, but frames are missing"
            return (
                f"truncated: the file ends at byte {size} inside its '{name}' box, which runs to byte "
                f"{offset + box_size}; {index}"
            )
        complete.add(box_type)
        offset += box_size
    if b"moov" not in complete:
        return (
            "truncated or unfinished MP4: it has no 'moov' box, the index that locates every frame (the file was cut "
            "before it, or the recording was never finalised)"
        )
    return None


def undecodable(name: str, raw: Any, reason: str) -> VideoDecodeError:
    """The error for input the decoder cannot use: what the file's structure shows when it tells more (a cut MP4
    without its index), else the decoder's reason."""
    try:
        problem = _iso_bmff_problem(raw)
    except OSError:
        problem = None
    return VideoDecodeError(f"{name}: {problem or reason}")


def still_image_error(
    name: str, demuxer: str, codec: str, count_frames: Callable[[int], int]
) -> VideoDecodeError | None:
    """The error for a picture file (PNG, JPEG, a one-frame GIF ...) opened as a video, whatever its name says, or
    None for a video. ``count_frames(limit)`` counts the file's frames up to ``limit`` (asked only for animations)."""
    if demuxer in _ANIMATED_IMAGE_DEMUXERS:
        if count_frames(2) > 1:
            return None  # an animation: a video
    elif demuxer not in ("image2", "image2pipe") and not demuxer.endswith("_pipe"):
        return None
    return VideoDecodeError(f"{name}: the {demuxer} container holds a still image ({codec}), not a video")
