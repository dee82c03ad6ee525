"""Which frames the decoder may skip: packets read ahead of it (demux only) show that a non-reference frame is never
the frame shown at a sampling target, because a later frame (in presentation order) is shown there instead.

Used by pyav_glccl.py for H.264/HEVC, whose decoders drop non-reference frames exactly (``skip_frame="NONREF"``);
deciding from timestamps alone keeps the picked frames bit-identical to decoding every frame. Part of the remote code
a checkpoint carries with the processor (see video_glccl.py); it needs no decoder itself.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_REORDER", "PacketLookahead"]

# Read-ahead bound for deciding a frame is unused when decode timestamps are missing (H.264 reorders <= 16).
MAX_REORDER = 32


class PacketLookahead:
    """The packets of one video stream in decode order, with those read ahead of the decoder queued.

    Attributes:
        seen: sorted presentation timestamps of every packet read so far (the decoder's and the read-ahead ones).
        max_dts: the largest decode timestamp read so far (the presentation one where a packet has none), or None.
        eof: whether the stream's last packet has been read.
    """

    def __init__(self, packets: Iterator[Any]):
        self._packets = packets
        self._queue: deque[Any] = deque()
        self.seen: list[int] = []
        self.max_dts: int | None = None
        self.eof = False

    def __iter__(self) -> Iterator[Any]:
        """Each packet once, in decode order (read-ahead ones from the queue first)."""
        while self._queue or self._pull():
            yield self._queue.popleft()

    def _pull(self) -> bool:
        """Read one more packet into the queue; False at the end of the stream."""
        packet = next(self._packets, None)
        if packet is None:
            self.eof = True
            return False
        self._queue.append(packet)
        if packet.pts is not None:
            insort(self.seen, packet.pts)
        ts = packet.dts if packet.dts is not None else packet.pts
        if ts is not None and (self.max_dts is None or ts > self.max_dts):
            self.max_dts = ts
        return True

    def never_shown(self, packet: Any, targets: list[int]) -> bool:
        """Whether the frame in ``packet`` is provably never shown at one of the sorted ``targets`` (pts units);
        reads packets ahead until that is decided."""
        if packet.pts is None or not packet.size:
            return False
        j = bisect_left(targets, packet.pts)
        if j == len(targets):
            return True  # after the last target: only needed as a reference, which NONREF keeps
        target = targets[j]
        while True:
            later = bisect_right(self.seen, packet.pts)
            if later < len(self.seen) and self.seen[later] <= target:
                return True  # a later frame is shown at the target instead
            # Nothing later can still come at or before the target once decode timestamps pass it (pts >= dts),
            # or once more packets than any reorder depth have been read after this one.
            if self.eof or (self.max_dts is not None and self.max_dts > target):
                return False
            if len(self._queue) > MAX_REORDER or not self._pull():
                return False
