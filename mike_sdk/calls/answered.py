"""What became of one request, as the client hands it to its callers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mike_sdk.backend import Generation

__all__ = ["Answered", "OnBatch", "OnSend"]


@dataclass(frozen=True, slots=True)
class Answered:
    """What became of one generation request."""

    key: str
    """Its response-cache key."""
    generation: Generation | None
    """The answer, or None when the request was refused."""
    cached: bool
    """Whether the answer came from the cache (no call made for it now)."""
    cost_usd: float | None
    """What the call cost, or would have for a cached answer (None: no price, or refused)."""
    error: str | None = None
    """Why the request was refused (a 400 with its message), or None."""


OnBatch = Callable[[Sequence[Answered]], None]
OnSend = Callable[[Sequence[str]], None]
