"""Decoding with PyAV (the default backend of :func:`~video_glccl.read_frames`): open the container, measure the video
stream, seek and decode forward to the frame shown at each sampling time.

Frames are fetched by seeking to the keyframe before each target and decoding forward to it; when the
keyframe before the next target is not past the current decoder position, decoding simply continues forward.
The decoding cost therefore grows with ``max_frames`` and the keyframe interval, not with the video length.
For H.264/HEVC, non-reference frames that cannot be shown at any target are not decoded at all (packet
timestamps are read ahead to decide), which leaves the picked frames bit-identical to a full decode.

Part of the remote code a checkpoint carries with the processor (see video_glccl.py).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from .display_matrix_glccl import display_orientation, orient_as_displayed
from .packet_lookahead_glccl import MAX_REORDER, PacketLookahead
from .video_errors_glccl import VideoDecodeError, still_image_error, undecodable
from .video_sampling_glccl import VideoFrames, check_window_start, sample_times

try:
    import av
except ImportError as exc:  # transformers checks only the processor file's imports for remote code: say it here
    raise ImportError(
        "GLCCLProcessor decodes videos with PyAV (the `av` package), which is not installed: run `pip install av`"
    ) from exc

__all__ = ["PyAVReader"]

# A video stream whose header duration exceeds its data by more than max(this, 2 frames) is reported as truncated.
_TRUNCATION_TOLERANCE_S = Fraction(1, 10)
# Codecs whose decoders drop non-reference frames exactly under skip_frame=NONREF (B-frames nothing refers to).
_SKIP_NONREF_CODECS = frozenset({"h264", "hevc"})


class PyAVReader:
    """Seek-based frame picker over one PyAV container, with a second one (the probe) for demux-only look-ups.

    Args:
        name: the video's name, for messages.
        opener: gives a fresh path or file object each call (containers are reopened to rewind).
        raw: the path or the bytes (for :func:`~video_errors_glccl.undecodable`'s look at the file's structure).
    """

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
            raise undecodable(self.name, self.raw, f"not a readable video file ({exc})") from exc

    def _video_stream(self, container: Any) -> Any:
        streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not streams:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise undecodable(self.name, self.raw, f"no video stream (streams found: {', '.join(kinds)})")
        return streams[0]

    def _refuse_still_image(self, container: Any, stream: Any) -> None:
        """A picture file (PNG, JPEG, a one-frame GIF ...) is not a video, whatever its name says."""
        error = still_image_error(
            self.name,
            container.format.name,
            stream.codec_context.name,
            lambda limit: self._count_frames(stream.index, limit),
        )
        if error is not None:
            raise error

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
            raise undecodable(self.name, self.raw, f"not a readable video file ({exc})") from exc
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
        back = 4 * MAX_REORDER * nominal
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
            if len(tail) > MAX_REORDER or seek_to <= start:
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
        ctx = self.stream.codec_context
        may_skip = ctx.codec.name in _SKIP_NONREF_CODECS
        packets = PacketLookahead(self.main.demux(self.stream))
        self._seen = packets.seen  # pts of every packet read since the seek, for _check_not_cut_short
        for packet in packets:
            if may_skip:
                ctx.skip_frame = "NONREF" if packets.never_shown(packet, targets) else "DEFAULT"
            for frame in packet.decode():
                if frame.pts is None:
                    raise VideoDecodeError(f"{self.name}: decoded frame has no presentation timestamp")
                self.decoded += 1
                yield frame

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
        check_window_start(self.name, window_start, duration)
        times = sample_times(duration, max_frames, fps, window, window_start)

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
    # The display matrix the decoder attaches to every frame, read from a converted frame, never one straight from
    # the decoder: PyAV's side-data view makes a reference cycle with its frame, and a decoder frame freed late by
    # the garbage collector (in a forked DataLoader worker) crashes the process. Converted even where the decoder's
    # frames are rgb24 already.
    carrier = rgb[0] if rgb[0] is not picked[0] else picked[0].reformat(format="bgr24")
    side_data = carrier.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    matrix = None if side_data is None else bytes(side_data)
    turns, mirror = display_orientation(matrix, carrier.rotation if matrix is not None else 0, name)
    return orient_as_displayed([frame.to_ndarray() for frame in rgb], turns, mirror)
