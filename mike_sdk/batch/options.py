"""How a run's batches are sized, polled and retried, and what one session did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["BatchOptions", "BatchReport"]


@dataclass(frozen=True)
class BatchOptions:
    """How batches are sized, polled and retried."""

    poll_initial_s: float = 5.0
    """First wait between two polls; it grows by ``poll_factor`` up to ``poll_max_s``."""
    poll_max_s: float = 60.0
    poll_factor: float = 1.5
    max_rounds: int = 3
    """Batches a request may be sent in, in all (errored, expired, canceled: sent again)."""
    fallback: Literal["error", "live"] = "error"
    """What becomes of a request still unanswered after ``max_rounds`` batches: an error
    row carrying the provider's message, or a live call (``--batch-fallback live``)."""
    max_requests: int | None = None
    """Requests per batch (default and ceiling: the provider's limit)."""
    max_bytes: int | None = None
    """Bytes of request lines per batch (default and ceiling: the provider's limit)."""


@dataclass
class BatchReport:
    """What one session of batch mode did."""

    submitted: int = 0
    """Batches created in this session."""
    reattached: int = 0
    """Batches of earlier sessions found in flight (or ended, not yet collected)."""
    collected: int = 0
    """Requests answered by batches collected in this session."""
    refused: dict[str, str] = field(default_factory=dict)
    """Requests refused for good (or out of rounds), by key, with the message."""
    stopped: str | None = None
    """``max_cost`` (nothing more could be submitted) or ``canceled`` (someone cancelled
    a batch of this run: nothing more submitted this session); None otherwise."""
    cost_usd: float = 0.0
    """What the batches collected in this session cost, at batch prices."""
