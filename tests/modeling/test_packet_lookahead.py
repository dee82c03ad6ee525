"""Tests of modeling/packet_lookahead_glccl.py: which frames the PyAV reader may leave undecoded, decided from packet
timestamps read ahead (the end-to-end check that skipping is exact is test_video.py's B-frame test)."""

from __future__ import annotations

from typing import NamedTuple

from glccl_hf.modeling.packet_lookahead_glccl import PacketLookahead


class Packet(NamedTuple):
    pts: int | None
    dts: int | None
    size: int = 10


def b_frame_stream() -> list[Packet]:
    """Decode order of I0 P3 B1 B2 P6 B4 B5 (presentation times in frame units): references come before the
    bidirectional frames shown ahead of them."""
    return [Packet(0, -1), Packet(3, 0), Packet(1, 1), Packet(2, 2), Packet(6, 3), Packet(4, 4), Packet(5, 5)]


def test_every_packet_comes_once_in_decode_order_despite_the_read_ahead() -> None:
    packets = b_frame_stream()
    lookahead = PacketLookahead(iter(packets))
    out = []
    for packet in lookahead:
        lookahead.never_shown(packet, [2, 5])  # reads ahead
        out.append(packet)
    assert out == packets
    assert lookahead.seen == sorted(packet.pts for packet in packets) and lookahead.eof and lookahead.max_dts == 5


def test_only_frames_a_later_frame_replaces_at_their_target_are_never_shown() -> None:
    lookahead = PacketLookahead(iter(b_frame_stream()))
    verdicts = {packet.pts: lookahead.never_shown(packet, [2, 5]) for packet in lookahead}
    # Shown at 2 and 5: the frames with pts 2 and 5; 6 lies after the last target.
    assert verdicts == {0: True, 3: True, 1: True, 2: False, 6: True, 4: True, 5: False}


def test_a_packet_without_a_time_or_without_data_is_always_decoded() -> None:
    lookahead = PacketLookahead(iter([Packet(None, 0), Packet(1, 1, size=0), Packet(2, 2)]))
    verdicts = [lookahead.never_shown(packet, [5]) for packet in lookahead]
    assert verdicts == [False, False, False]
