"""Renamed keyword arguments keep working for a while, with a FutureWarning that names the new keyword."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .modeling.checks import accept_keyword_alias

F = TypeVar("F", bound=Callable[..., Any])


def renamed_keyword(old: str, new: str) -> Callable[[F], F]:
    """Decorate a function whose keyword `old` is now called `new`: `old=` still works and warns; both is an error."""

    def decorate(function: F) -> F:
        warning = f"{function.__qualname__}(): {old}= is renamed {new}= and will be removed"
        return accept_keyword_alias(function, old, new, warning=warning)  # type: ignore[return-value]

    return decorate
