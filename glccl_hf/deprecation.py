"""Renamed keyword arguments keep working for a while, with a FutureWarning that names the new keyword."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def renamed_keyword(old: str, new: str) -> Callable[[F], F]:
    """Decorate a function whose keyword `old` is now called `new`: `old=` still works and warns; both is an error."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if old in kwargs:
                if new in kwargs:
                    raise TypeError(
                        f"{function.__qualname__}() got both {old}= and {new}=, which are the same argument"
                    )
                warnings.warn(
                    f"{function.__qualname__}(): {old}= is renamed {new}= and will be removed",
                    FutureWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
