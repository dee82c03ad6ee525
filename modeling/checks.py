"""Argument checks shared by the model, the processor and the toolkit around them (one definition each)."""

from __future__ import annotations

from typing import Any

import numpy as np


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """`value` as an int, or a ValueError naming `name` when it is not an integer >= `minimum` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)
