"""Video decoding: the frames the GLCCL / CLIP4Clip reference samples from a video.

Sampling rule (the reference's): candidate times ``t_k = k / sample_fps`` for ``k = 0, 1, ...`` while
``t_k`` lies inside the video (``t_k < duration``); when there are ``K > max_frames`` candidates, keep
``numpy.linspace(0, K - 1, max_frames).astype(int)`` of them. The frame returned for ``t`` is the one shown
at ``t``: the last frame whose presentation timestamp is ``<= t`` (times measured from the stream start).

Frames are fetched by seeking to the keyframe before each target and decoding forward to it; when the
keyframe before the next target is not past the current decoder position, decoding simply continues forward.
The decoding cost therefore grows with ``max_frames`` and the keyframe interval, not with the video length.
For H.264/HEVC, non-reference frames that cannot be shown at any target are not decoded at all (packet
timestamps are read ahead to decide), which leaves the picked frames bit-identical to a full decode.

Frames come out as a player shows them: the stream's display matrix (phone footage: quarter turns and mirroring)
is applied, so a portrait clip stored sideways is returned upright.

Preprocessing the decoded frames for CLIP is frame_processing_glccl.py's job (its names are re-exported here, where
they used to live).
"""

from __future__ import annotations

import errno
import io
import math
import os
import stat
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from .checks import positive_int
from .frame_processing_glccl import CLIP_MEAN, CLIP_STD, preprocess_frames, resize_crop_frames

try:
    import av
except ImportError as exc:  # transformers checks only the processor file's imports for remote code: say it here
    raise ImportError(
        "GLCCLProcessor decodes videos with PyAV (the `av` package), which is not installed: run `pip install av`"
    ) from exc

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "VideoDecodeError",
    "VideoFrames",
    "VideoSource",
    "preprocess_frames",
    "read_frames",
    "resize_crop_frames",
    "sample_timestamps",
    "video_duration",
]

BYTES_NAME = "<bytes>"
BACKENDS = ("pyav", "torchcodec")

VideoSource = str | os.PathLike | bytes | bytearray | memoryview

# A video stream whose header duration exceeds its data by more than max(this, 2 frames) is reported as truncated.
_TRUNCATION_TOLERANCE_S = Fraction(1, 10)
# Codecs whose decoders drop non-reference frames exactly under skip_frame=NONREF (B-frames nothing refers to).
_SKIP_NONREF_CODECS = frozenset({"h264", "hevc"})
# Read-ahead bound for deciding a frame is unused when decode timestamps are missing (H.264 reorders <= 16).
_MAX_REORDER = 32
# FFmpeg's demuxers of animated pictures: a video only when the file holds more than one frame. The other picture
# demuxers (image2, image2pipe, png_pipe, jpeg_pipe, ...) always give one still image per file.
_ANIMATED_IMAGE_DEMUXERS = frozenset({"gif", "apng", "webp"})
# Top-level box types an MP4 / QuickTime file may start with: where they do, its box structure can be checked.
_ISO_BMFF_FIRST_BOXES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"})
# Signs of FFmpeg's display matrix entries (a, b, c, d) -> (counter-clockwise quarter turns, then mirror left-right):
# the eight matrices av_display_rotation_set(90 * k) and av_display_matrix_flip(hflip) write, as players apply them.
_DISPLAY_ORIENTATIONS = {
    (1, 0, 0, 1): (0, False),
    (0, -1, 1, 0): (1, False),
    (-1, 0, 0, -1): (2, False),
    (0, 1, -1, 0): (3, False),
    (-1, 0, 0, 1): (0, True),
    (0, -1, -1, 0): (1, True),
    (1, 0, 0, -1): (2, True),
    (0, 1, 1, 0): (3, True),
}


class VideoDecodeError(ValueError):
    """A video could not be decoded: empty, truncated, damaged, not a video, or without a video stream.

    The message always starts with the file name (or ``"<bytes>"`` for in-memory input) and gives the reason.
    """


@dataclass
class VideoFrames:
    """Frames sampled from one video.

    Attributes:
        frames: uint8 tensor [n, 3, H, W], RGB, oriented as displayed (display matrix applied).
        timestamps: the n sampling times in seconds from the stream start (``k / sample_fps``).
        frame_times: presentation time in seconds (from the stream start) of each returned frame; each is
            ``<= `` its sampling time, except at the very start of a stream whose first frame comes late.
        duration: length of the video stream in seconds, as used for the sampling.
        decoded: how many frames the decoder produced to get these (a cost diagnostic; 0 for backends that
            do not report it).
    """

    frames: torch.Tensor
    timestamps: list[float]
    frame_times: list[float] = field(default_factory=list)
    duration: float = 0.0
    decoded: int = 0

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def check_sampling_args(max_frames: int, sample_fps: float) -> Fraction:
    """Validate the sampling arguments; return sample_fps as an exact fraction."""
    positive_int("max_frames", max_frames)
    if isinstance(sample_fps, bool) or not isinstance(sample_fps, (int, float, Fraction, np.number)):
        raise ValueError(f"sample_fps must be a positive number, got {sample_fps!r}")
    if not math.isfinite(float(sample_fps)) or sample_fps <= 0:
        raise ValueError(f"sample_fps must be a positive finite number, got {sample_fps!r}")
    # limit_denominator: 0.1 means exactly 1/10, so t = 10 s lands on a frame at 10 s rather than just before it.
    return Fraction(sample_fps).limit_denominator(1_000_000)


def check_max_seconds(max_seconds: float | None) -> Fraction | None:
    """Validate a sampling window length (seconds, or None for the whole video); return it as a fraction."""
    if max_seconds is None:
        return None
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float, Fraction, np.number)):
        raise ValueError(f"max_seconds must be a positive number or None, got {max_seconds!r}")
    if not math.isfinite(float(max_seconds)) or max_seconds <= 0:
        raise ValueError(f"max_seconds must be a positive finite number or None, got {max_seconds!r}")
    return Fraction(max_seconds).limit_denominator(1_000_000)


def check_start_seconds(start_seconds: float) -> Fraction:
    """Validate where a sampling window starts (seconds from the stream start, >= 0); return it as a fraction."""
    if isinstance(start_seconds, bool) or not isinstance(start_seconds, (int, float, Fraction, np.number)):
        raise ValueError(f"start_seconds must be a number >= 0, got {start_seconds!r}")
    if not math.isfinite(float(start_seconds)) or start_seconds < 0:
        raise ValueError(f"start_seconds must be a finite number >= 0, got {start_seconds!r}")
    return Fraction(start_seconds).limit_denominator(1_000_000)


def _sample_times(
    duration: Fraction,
    max_frames: int,
    fps: Fraction,
    max_seconds: Fraction | None = None,
    start: Fraction = Fraction(0),
) -> list[Fraction]:
    """Exact sampling times (seconds) for a stream of the given duration, within `[start, start + max_seconds)`
    (to the end when `max_seconds` is None); at least one (t = start)."""
    end = duration if max_seconds is None else min(duration, start + max_seconds)
    num_candidates = max(1, math.ceil((end - start) * fps))
    if num_candidates > max_frames:
        indices = np.linspace(0, num_candidates - 1, max_frames).astype(int).tolist()
    else:
        indices = range(num_candidates)
    return [start + Fraction(int(k)) / fps for k in indices]


def sample_timestamps(
    duration: float, max_frames: int = 12, sample_fps: float = 1.0, max_seconds: float | None = None
) -> list[float]:
    """The sampling times (seconds) :func:`read_frames` uses for a video of ``duration`` seconds.

    Candidates are ``k / sample_fps`` with ``k / sample_fps < min(duration, max_seconds)`` (at least ``t = 0``);
    when there are more than ``max_frames``, ``numpy.linspace(0, K - 1, max_frames).astype(int)`` of them are kept.
    """
    fps = check_sampling_args(max_frames, sample_fps)
    window = check_max_seconds(max_seconds)
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be a finite number >= 0 seconds, got {duration!r}")
    return [float(t) for t in _sample_times(Fraction(duration), int(max_frames), fps, window)]


def _resolve_source(source: VideoSource) -> tuple[str, Callable[[], Any], Any]:
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


def _undecodable(name: str, raw: Any, reason: str) -> VideoDecodeError:
    """The error for input the decoder cannot use: what the file's structure shows when it tells more (a cut MP4
    without its index), else the decoder's reason."""
    try:
        problem = _iso_bmff_problem(raw)
    except OSError:
        problem = None
    return VideoDecodeError(f"{name}: {problem or reason}")


def read_frames(
    source: VideoSource,
    max_frames: int = 12,
    sample_fps: float = 1.0,
    backend: str = "pyav",
    max_seconds: float | None = None,
    start_seconds: float = 0.0,
) -> VideoFrames:
    """Decode the frames the reference's sampling rule picks (see the module docstring).

    Args:
        source: path (str or os.PathLike) or the encoded file's bytes.
        max_frames: at most this many frames are returned (>= 1).
        sample_fps: candidate frames per second of video (> 0); the reference uses 1.
        backend: ``"pyav"`` (default, no system packages needed) or ``"torchcodec"`` (if installed).
        max_seconds: sample only the first ``max_seconds`` seconds (None: the whole video). The reference reads
            DiDeMo videos from 0 to 31 s inclusive, i.e. ``max_seconds=32`` at 1 fps.
        start_seconds: sample the window ``[start_seconds, start_seconds + max_seconds)`` instead, with candidate
            times ``start_seconds + k / sample_fps`` (a clip cut out of a longer video); it must lie inside the
            video.

    Returns:
        VideoFrames with ``frames`` uint8 [n, 3, H, W] RGB (1 <= n <= max_frames) and ``timestamps`` [n] seconds.

    Raises:
        FileNotFoundError: the path does not exist.
        VideoDecodeError: empty, truncated, damaged or non-video input, or no video stream; the message names
            the file (or ``"<bytes>"``) and the reason.
        ValueError: bad ``max_frames``, ``sample_fps`` or ``backend``.
        ImportError: ``backend="torchcodec"`` without torchcodec installed.
    """
    fps = check_sampling_args(max_frames, sample_fps)
    window = check_max_seconds(max_seconds)
    start = check_start_seconds(start_seconds)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    name, opener, raw = _resolve_source(source)
    reader = _PyAVReader(name, opener, raw)
    if backend == "torchcodec":
        reader.inspect()  # the same checks and messages for what is not a video, whichever backend decodes
        return _read_torchcodec(raw, name, int(max_frames), fps, window, start)
    return reader.read(int(max_frames), fps, window, start)


def video_duration(source: VideoSource) -> float:
    """Length in seconds of a video's stream, as :func:`read_frames` measures it for its sampling (demux only).

    Raises the errors :func:`read_frames` raises for input that is not a complete video.
    """
    name, opener, raw = _resolve_source(source)
    return float(_PyAVReader(name, opener, raw).duration())


def _check_window_start(name: str, start: Fraction, duration: Fraction) -> None:
    if start > 0 and start >= duration:
        raise ValueError(f"{name}: start_seconds={float(start):g} is not inside the video ({float(duration):.3f} s)")


# --------------------------------------------------------------------------------------------------- PyAV


class _PyAVReader:
    """Seek-based frame picker over one PyAV container, with a second one (the probe) for demux-only look-ups."""

    def __init__(self, name: str, opener: Callable[[], Any], raw: Any):
        self.name = name
        self.opener = opener
        self.raw = raw
        self.decoded = 0
        self.main: Any = None
        self.probe: Any = None
        self.index = 0
        self.main_fresh = False  # main is freshly opened: positioned at the start, nothing read yet
        self._seen: list[int] = []

    def _open(self) -> Any:
        try:
            return av.open(self.opener(), mode="r", metadata_errors="ignore")
        except PermissionError:
            raise
        except av.FFmpegError as exc:
            raise _undecodable(self.name, self.raw, f"not a readable video file ({exc})") from exc

    def _video_stream(self, container: Any) -> Any:
        streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not streams:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise _undecodable(self.name, self.raw, f"no video stream (streams found: {', '.join(kinds)})")
        return streams[0]

    def _refuse_still_image(self, container: Any, stream: Any) -> None:
        """A picture file (PNG, JPEG, a one-frame GIF ...) is not a video, whatever its name says."""
        demuxer = container.format.name
        if demuxer in _ANIMATED_IMAGE_DEMUXERS:
            if self._count_frames(stream.index, limit=2) > 1:
                return  # an animation: a video
        elif demuxer not in ("image2", "image2pipe") and not demuxer.endswith("_pipe"):
            return
        raise VideoDecodeError(
            f"{self.name}: the {demuxer} container holds a still image ({stream.codec_context.name}), not a video"
        )

    def _count_frames(self, index: int, limit: int) -> int:
        """Frames (non-empty packets) of stream ``index``, counted up to ``limit`` on a container of its own."""
        counter = self._open()
        try:
            frames = 0
            for packet in counter.demux(counter.streams[index]):
                frames += packet.size > 0
                if frames >= limit:
                    break
            return frames
        finally:
            counter.close()

    def inspect(self) -> None:
        """Raise the errors :meth:`read` gives for input that is not a video (decoding nothing)."""
        container = self._open()
        try:
            self._refuse_still_image(container, self._video_stream(container))
        except av.FFmpegError as exc:
            raise _undecodable(self.name, self.raw, f"not a readable video file ({exc})") from exc
        finally:
            container.close()

    @property
    def stream(self) -> Any:
        return self.main.streams[self.index]

    @property
    def pstream(self) -> Any:
        return self.probe.streams[self.index]

    def _rewind_main(self) -> None:
        """Back to the very start: reopen rather than seek, as some demuxers (MPEG-TS) seek imprecisely."""
        if not self.main_fresh:
            self.main.close()
            self.main = self._open()
        self.main_fresh = False

    def _rewind_probe(self) -> None:
        self.probe.close()
        self.probe = self._open()

    def read(self, max_frames: int, fps: Fraction, window: Fraction | None, start: Fraction) -> VideoFrames:
        return self._session(lambda: self._read(max_frames, fps, window, start))

    def duration(self) -> Fraction:
        """The stream's length in seconds (the extent :meth:`read` samples), without decoding a frame."""
        return self._session(lambda: self._extent()[3])

    def _session(self, work: Callable[[], Any]) -> Any:
        """Open the main and probe containers on the checked video stream, run ``work``, close them."""
        try:
            self.main = self._open()
            self.index = self._video_stream(self.main).index
            self._refuse_still_image(self.main, self.stream)
            if self.stream.time_base is None:
                raise VideoDecodeError(f"{self.name}: video stream has no time base")
            self.main_fresh = True
            self.probe = self._open()
            try:
                return work()
            except av.FFmpegError as exc:
                raise VideoDecodeError(f"{self.name}: decoding failed ({exc})") from exc
        finally:
            for container in (self.main, self.probe):
                if container is not None:
                    container.close()

    # -- stream extent --------------------------------------------------------------------------------

    def _nominal_frame_pts(self, stream: Any) -> int:
        """One frame interval in stream time-base units (fallback for packets without a duration)."""
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            return 1
        return max(1, round(1 / (Fraction(rate) * stream.time_base)))

    def _header_end(self, stream: Any, start: int) -> int | None:
        """End of the video stream per its own header (pts units), or None when only container-wide info exists."""
        if stream.duration:
            return start + stream.duration
        tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
        if tag:
            # Matroska writes per-track DURATION tags as "HH:MM:SS.nnnnnnnnn".
            try:
                hours, minutes, seconds = tag.split(":")
                secs = Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
                return start + round(secs / stream.time_base)
            except (ValueError, ZeroDivisionError):
                pass
        return None

    def _probe_end(self, start: int, hint_end: int | None) -> tuple[int, int] | None:
        """Extent of the video data: seek a little before the end and demux (not decode) to EOF.

        Returns (end of the last frame, start of the last frame) in pts units, or None if no packet was found.
        The last frame lasts its packet's duration, except in streams with reordered frames (B-frames), where
        packet durations are decode-time steps: there it lasts the median gap between frame times.
        """
        nominal = self._nominal_frame_pts(self.pstream)
        hint = hint_end if hint_end is not None else start + 2**40
        back = 4 * _MAX_REORDER * nominal
        while True:
            seek_to = hint - back
            tail: list[tuple[int, int | None, int]] = []
            try:
                if seek_to <= start:
                    self._rewind_probe()
                else:
                    self.probe.seek(seek_to, stream=self.pstream, backward=True, any_frame=False)
                for packet in self.probe.demux(self.pstream):
                    ts = packet.pts if packet.pts is not None else packet.dts
                    if ts is not None:
                        tail.append((ts, packet.dts, packet.duration or 0))
            except av.FFmpegError:
                tail = []  # a failed seek or a damaged tail: read from further back
            # The frame with the largest pts is within the reorder depth of the end (in decode order): a tail longer
            # than that holds it, whatever the demuxer's seek precision.
            if len(tail) > _MAX_REORDER or seek_to <= start:
                break
            if tail and hint_end is None:
                hint = max(ts for ts, _, _ in tail)  # the end is known roughly now: back off from there
            back *= 4
        if not tail:
            return None
        last = max(ts for ts, _, _ in tail)
        if any(dts is not None and dts != ts for ts, dts, _ in tail):
            times = sorted({ts for ts, _, _ in tail})
            gaps = np.diff(times)
            return last + (int(np.median(gaps)) if len(gaps) else nominal), last
        return max(ts + (duration or nominal) for ts, _, duration in tail), last

    def _container_end(self, container: Any, stream: Any) -> int | None:
        """End from the container-wide duration (e.g. webm without per-stream info), in pts units."""
        if container.duration is None or container.duration <= 0:
            return None
        cstart = container.start_time or 0
        end_s = Fraction(cstart + container.duration, av.time_base)
        return round(end_s / stream.time_base)

    # -- picking ----------------------------------------------------------------------------------------

    def _decode_from(self, targets: list[int]) -> Iterator[Any]:
        """Decode forward from the main container's position, yielding frames in presentation order.

        For codecs in ``_SKIP_NONREF_CODECS``, a non-reference frame is not decoded when it cannot be the frame
        shown at any target: a later frame (in presentation order) is shown at the next target at or after it.
        Packets are read ahead (demux only) until that is decided, so results equal decoding every frame.
        """
        stream = self.stream
        ctx = stream.codec_context
        may_skip = ctx.codec.name in _SKIP_NONREF_CODECS
        packets = self.main.demux(stream)
        queue: deque[Any] = deque()
        seen: list[int] = []  # sorted pts of every packet read since the seek
        self._seen = seen
        state = {"max_dts": None, "eof": False}

        def pull() -> bool:
            packet = next(packets, None)
            if packet is None:
                state["eof"] = True
                return False
            queue.append(packet)
            if packet.pts is not None:
                insort(seen, packet.pts)
            ts = packet.dts if packet.dts is not None else packet.pts
            if ts is not None and (state["max_dts"] is None or ts > state["max_dts"]):
                state["max_dts"] = ts
            return True

        while queue or pull():
            packet = queue.popleft()
            if may_skip:
                ctx.skip_frame = "NONREF" if self._skippable(packet, targets, seen, queue, state, pull) else "DEFAULT"
            for frame in packet.decode():
                if frame.pts is None:
                    raise VideoDecodeError(f"{self.name}: decoded frame has no presentation timestamp")
                self.decoded += 1
                yield frame

    @staticmethod
    def _skippable(
        packet: Any,
        targets: list[int],
        seen: list[int],
        queue: deque[Any],
        state: dict[str, Any],
        pull: Callable[[], bool],
    ) -> bool:
        """Whether the frame in ``packet`` is provably never shown at a target (reads packets ahead to decide)."""
        if packet.pts is None or not packet.size:
            return False
        j = bisect_left(targets, packet.pts)
        if j == len(targets):
            return True  # after the last target: only needed as a reference, which NONREF keeps
        target = targets[j]
        while True:
            later = bisect_right(seen, packet.pts)
            if later < len(seen) and seen[later] <= target:
                return True  # a later frame is shown at the target instead
            # Nothing later can still come at or before the target once decode timestamps pass it (pts >= dts),
            # or once more packets than any reorder depth have been read after this one.
            if state["eof"] or (state["max_dts"] is not None and state["max_dts"] > target):
                return False
            if len(queue) > _MAX_REORDER or not pull():
                return False

    def _keyframe_before(self, target: int) -> int | None:
        """Timestamp of the keyframe a seek to ``target`` would start from (demux only, on the probe)."""
        try:
            self.probe.seek(target, stream=self.pstream, backward=True, any_frame=False)
            for packet in self.probe.demux(self.pstream):
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is not None and packet.is_keyframe:
                    return ts
        except av.FFmpegError:
            return None
        return None

    def _seek(self, target: int, start: int, targets: list[int]) -> tuple[Iterator[Any], Any]:
        """Position the main container so the first decoded frame is at or before ``target`` (or is the stream's
        first frame); return (frame iterator, first frame)."""
        back = 0
        one_second = max(1, round(1 / self.stream.time_base))
        while True:
            seek_to = target - back
            from_start = seek_to <= start
            if from_start:
                self._rewind_main()
            else:
                self.main_fresh = False
                self.main.seek(seek_to, stream=self.stream, backward=True, any_frame=False)
            frames = self._decode_from(targets)
            first = next(frames, None)
            if first is not None and (first.pts <= target or from_start):
                return frames, first
            if from_start:
                raise VideoDecodeError(f"{self.name}: no decodable video frames")
            # The demuxer landed after the target (imprecise seek): back off further.
            back = max(2 * back, one_second)

    def _extent(self) -> tuple[int, int, int | None, Fraction]:
        """(first pts, end pts, pts of the last packet or None, duration in seconds) of the video stream; raises
        when the header promises more than the data holds (a truncated file)."""
        stream = self.stream
        tb = Fraction(stream.time_base)
        start = stream.start_time
        if start is None:
            first = next((p for p in self.probe.demux(self.pstream) if p.pts is not None), None)
            start = first.pts if first is not None else 0
        header_end = self._header_end(stream, start)
        extent = self._probe_end(start, header_end)
        if extent is not None:
            end, last_packet = extent
        else:
            end = header_end if header_end is not None else self._container_end(self.main, stream)
            last_packet = None
        if end is None:
            raise VideoDecodeError(f"{self.name}: cannot determine the video duration (no packets with timestamps)")
        tolerance = max(_TRUNCATION_TOLERANCE_S / tb, 2 * self._nominal_frame_pts(stream))
        if header_end is not None and header_end - end > tolerance:
            raise VideoDecodeError(
                f"{self.name}: truncated or damaged: the header says the video lasts "
                f"{float((header_end - start) * tb):.3f} s but its data ends at {float((end - start) * tb):.3f} s"
            )
        return start, end, last_packet, max((end - start) * tb, Fraction(0))

    def _check_not_cut_short(self, last_pts: int, target: int, start: int, last_packet: int | None) -> None:
        """After the decoder ran out at the frame `last_pts` picked for `target`: raise when the stream holds a frame
        that should have been shown (the picked frame would be wrong)."""
        seen = self._seen
        after = bisect_right(seen, last_pts)
        lost = after < len(seen) and seen[after] <= target
        short = last_packet is not None and last_pts < last_packet and (not seen or seen[-1] < last_packet)
        if lost or short:
            tb = Fraction(self.stream.time_base)
            data_end = max(seen[-1] if seen else start, last_packet if last_packet is not None else start)
            raise VideoDecodeError(
                f"{self.name}: damaged: decoding stopped at {float((last_pts - start) * tb):.3f} s but the "
                f"stream has frames up to {float((data_end - start) * tb):.3f} s"
            )

    def _read(self, max_frames: int, fps: Fraction, window: Fraction | None, window_start: Fraction) -> VideoFrames:
        tb = Fraction(self.stream.time_base)
        start, end, last_packet, duration = self._extent()
        _check_window_start(self.name, window_start, duration)
        times = _sample_times(duration, max_frames, fps, window, window_start)

        # Integer pts: "pts <= start + t / tb" is exactly "pts <= floor(start + t / tb)", and ints compare fast.
        target_pts = [math.floor(start + t / tb) for t in times]
        frames_iter: Iterator[Any] | None = None
        current = None  # last frame with pts <= the current target
        ahead = None  # the next decoded frame (pts > current target), or None
        exhausted = False
        picked = []
        for target in target_pts:
            if frames_iter is not None:
                position = ahead.pts if ahead is not None else current.pts
                if not exhausted and target > position:
                    key = self._keyframe_before(target)
                    # Seek only if that skips frames: the keyframe before the target is past our position.
                    if key is not None and key > position:
                        frames_iter = None
            if frames_iter is None:
                frames_iter, ahead = self._seek(target, start, target_pts)
                current, exhausted = None, False
            while not exhausted and (ahead is None or ahead.pts <= target):
                if ahead is not None:
                    current = ahead
                ahead = next(frames_iter, None)
                exhausted = ahead is None
            if current is None:
                # Only at the stream start: the first frame comes after the target (e.g. t = 0, first pts > 0).
                current = ahead
            picked.append(current)

        if exhausted:
            self._check_not_cut_short(current.pts, target, start, last_packet)

        return VideoFrames(
            frames=_as_displayed(picked, self.name),
            timestamps=[float(t) for t in times],
            frame_times=[float((f.pts - start) * tb) for f in picked],
            duration=float(duration),
            decoded=self.decoded,
        )


def _as_displayed(picked: list[Any], name: str) -> torch.Tensor:
    """The decoded frames as uint8 RGB `[n, 3, H, W]`, turned and mirrored as a player shows them."""
    height, width = picked[0].height, picked[0].width
    # Packed rgb24, not planar gbrp: FFmpeg 8's swscale leaves the right-most columns of a 4:2:0 -> gbrp
    # conversion unwritten (stale memory) when the width is not a multiple of 16.
    # A resolution change mid-stream is scaled to the first picked frame's size.
    rgb = [frame.reformat(width=width, height=height, format="rgb24") for frame in picked]
    # The stream's display matrix (phone footage), which the decoder attaches to every frame; read from a
    # converted frame (see _display_orientation), even where the decoder's frames are rgb24 already.
    carrier = rgb[0] if rgb[0] is not picked[0] else picked[0].reformat(format="bgr24")
    turns, mirror = _display_orientation(carrier, name)
    images = [np.rot90(frame.to_ndarray(), k=turns) for frame in rgb]
    if mirror:
        images = [image[:, ::-1] for image in images]
    return torch.from_numpy(np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2)))


def _display_orientation(frame: Any, name: str) -> tuple[int, bool]:
    """How to turn a decoded frame into the picture a player shows, from its display matrix side data.

    Give it a converted frame (``frame.reformat(...)``), never one straight from the decoder: PyAV's side-data view
    makes a reference cycle with its frame, and a decoder frame freed late by the garbage collector (in a forked
    DataLoader worker) crashes the process.

    Returns:
        (k, mirror): rotate the [H, W] image k quarter turns counter-clockwise, then mirror it left-right if
        ``mirror``. ``(0, False)`` without a display matrix.
    """
    side_data = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    if side_data is None:
        return 0, False
    matrix = np.frombuffer(bytes(side_data), dtype=np.int32)  # 3 x 3, row-major, 16.16 fixed point
    signs = tuple(int(np.sign(matrix[i])) for i in (0, 1, 3, 4))
    if signs not in _DISPLAY_ORIENTATIONS:
        raise VideoDecodeError(
            f"{name}: the display matrix turns the picture by {frame.rotation} degrees; only multiples of 90 degrees "
            "(and mirroring) are supported"
        )
    return _DISPLAY_ORIENTATIONS[signs]


# --------------------------------------------------------------------------------------------- torchcodec


def _read_torchcodec(
    raw: Any, name: str, max_frames: int, fps: Fraction, window: Fraction | None, start: Fraction
) -> VideoFrames:
    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError as exc:
        raise ImportError(
            "read_frames(backend='torchcodec') needs the torchcodec package, which is not installed "
            "(for CPU torch 2.13 use torchcodec 0.12 or 0.13 plus the FFmpeg shared libraries); "
            "or use backend='pyav' (the default)"
        ) from exc
    try:
        # "exact" scans the packet index (demux only): "approximate" assumes a constant frame rate and picks wrong
        # frames (or fails) on variable-frame-rate videos.
        decoder = VideoDecoder(raw, seek_mode="exact", dimension_order="NCHW")
        meta = decoder.metadata
        header_frames, content_frames = meta.num_frames_from_header, meta.num_frames_from_content
        if header_frames and content_frames is not None and content_frames < header_frames:
            # Only containers with a frame count in the header (mp4, avi) allow this check with torchcodec.
            raise VideoDecodeError(
                f"{name}: truncated or damaged: the header lists {header_frames} frames but the data holds "
                f"{content_frames}"
            )
        begin = meta.begin_stream_seconds or 0.0
        duration = meta.duration_seconds
        if duration is None and meta.end_stream_seconds is not None:
            duration = meta.end_stream_seconds - begin
        if duration is None:
            raise VideoDecodeError(f"{name}: cannot determine the video duration")
        _check_window_start(name, start, Fraction(duration))
        times = _sample_times(Fraction(duration), max_frames, fps, window, start)
        batch = decoder.get_frames_played_at(seconds=[begin + float(t) for t in times])
    except VideoDecodeError:
        raise
    except (RuntimeError, ValueError, IndexError) as exc:
        raise _undecodable(name, raw, f"torchcodec could not decode the video ({exc})") from exc
    frames = batch.data
    if frames.shape[1] != 3:
        raise VideoDecodeError(f"{name}: torchcodec returned {frames.shape[1]} channels, expected 3 (RGB)")
    return VideoFrames(
        frames=frames.contiguous(),
        timestamps=[float(t) for t in times],
        frame_times=[float(p) - begin for p in batch.pts_seconds.tolist()],
        duration=float(duration),
        decoded=0,
    )
