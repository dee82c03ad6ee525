"""Frames as a player shows them: the display matrix a stream carries (phone footage stored sideways or mirrored)
read as quarter turns and a mirror, and applied to decoded pictures, so a portrait clip comes out upright.

Part of the remote code a checkpoint carries with the processor (see video_glccl.py); it needs no decoder itself:
the decoder hands over the matrix's bytes.
"""

from __future__ import annotations

import numpy as np
import torch

from .video_errors_glccl import VideoDecodeError

__all__ = ["display_orientation", "orient_as_displayed"]

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


def display_orientation(matrix: bytes | None, rotation: float, name: str) -> tuple[int, bool]:
    """How to turn a decoded picture into the one a player shows.

    Args:
        matrix: the stream's display matrix side data (3 x 3 int32, row-major, 16.16 fixed point), or None.
        rotation: the angle in degrees the decoder reads from it (for the message when it is not a quarter turn).
        name: the video's name, for the message.

    Returns:
        (k, mirror): rotate the [H, W] image k quarter turns counter-clockwise, then mirror it left-right if
        ``mirror``. ``(0, False)`` without a display matrix.
    """
    if matrix is None:
        return 0, False
    entries = np.frombuffer(matrix, dtype=np.int32)
    signs = tuple(int(np.sign(entries[i])) for i in (0, 1, 3, 4))
    if signs not in _DISPLAY_ORIENTATIONS:
        raise VideoDecodeError(
            f"{name}: the display matrix turns the picture by {rotation} degrees; only multiples of 90 degrees "
            "(and mirroring) are supported"
        )
    return _DISPLAY_ORIENTATIONS[signs]


def orient_as_displayed(images: list[np.ndarray], turns: int, mirror: bool) -> torch.Tensor:
    """RGB uint8 pictures [H, W, 3] turned ``turns`` quarter turns counter-clockwise, then mirrored left-right if
    ``mirror``, stacked as a uint8 tensor [n, 3, H', W']."""
    oriented = [np.rot90(image, k=turns) for image in images]
    if mirror:
        oriented = [image[:, ::-1] for image in oriented]
    return torch.from_numpy(np.ascontiguousarray(np.stack(oriented).transpose(0, 3, 1, 2)))
