"""Argument checks shared by the model, the processor and the toolkit around them (one definition each)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """`value` as an int, or a ValueError naming `name` when it is not an integer >= `minimum` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def accept_keyword_alias(
    function: Callable[..., Any], alias: str, name: str, *, warning: str | None = None, what: str = "argument"
) -> Callable[..., Any]:
    """`function` (a function, or a dataclass's `__init__`) that also takes `alias=` for its keyword `name`: a paper
    name kept as an alias (`warning=None`), or a former name, which warns with `warning` (FutureWarning). Giving
    both is a TypeError."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if alias in kwargs:
            if warning is not None:
                warnings.warn(warning, FutureWarning, stacklevel=2)
            if name in kwargs:
                raise TypeError(f"{function.__qualname__}() got both {alias}= and {name}=, which are the same {what}")
            kwargs[name] = kwargs.pop(alias)
        return function(*args, **kwargs)

    return wrapper
