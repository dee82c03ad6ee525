"""Text shown to users in errors and logs (one definition each)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def preview(items: Sequence[Any], n: int = 10, render: Callable[[Any], str] = repr) -> str:
    """The first `n` items, rendered (repr by default) and comma-separated, with how many more there are: for
    messages that name what went wrong without printing a whole corpus."""
    shown = ", ".join(render(x) for x in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")
