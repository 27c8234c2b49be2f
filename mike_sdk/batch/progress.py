"""One line of batch progress on stderr: batches by state, requests by outcome, cost."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

from mike_sdk.batch.records import BatchRecord

if TYPE_CHECKING:
    from mike_sdk.batch.options import BatchReport


def describe(records: Iterable[BatchRecord], report: BatchReport | None = None) -> str:
    """``batches: 2 in_progress, 1 collected | requests: 120/300 done, 3 errored, ... |
    $0.0123 spent, $0.0456 submitted (upper bound)``."""
    records = [r for r in records if r.state != "lost"]
    states = Counter(r.state for r in records)
    total = sum(r.requests for r in records)
    done = sum(r.counts.done for r in records)
    errored = sum(r.counts.errored for r in records)
    expired = sum(r.counts.expired for r in records)
    canceled = sum(r.counts.canceled for r in records)
    spent = sum(r.cost_usd or 0.0 for r in records)
    bound = sum(r.estimate_usd or 0.0 for r in records if r.state != "collected")
    parts = [f"batches: {', '.join(f'{n} {s}' for s, n in sorted(states.items())) or 'none'}",
             f"requests: {done:,}/{total:,} done, {errored:,} errored, {expired:,} expired, "
             f"{canceled:,} canceled",
             f"${spent:.4f} spent, ${bound:.4f} in flight (upper bound)"]
    if report is not None and report.refused:
        parts.append(f"{len(report.refused):,} refused")
    return " | ".join(parts)


class BatchProgress:
    """Prints :func:`describe` when it changes (at most every ``every_s`` seconds, and
    always on a change of batch states)."""

    def __init__(self, *, enabled: bool = True, stream: IO[str] | None = None,
                 every_s: float = 2.0) -> None:
        self.enabled = enabled
        self.stream = stream
        self.every_s = every_s
        self._last = ""
        self._states = ""
        self._at = 0.0

    def show(self, records: Iterable[BatchRecord], report: BatchReport | None = None) -> None:
        if not self.enabled:
            return
        records = list(records)
        line = describe(records, report)
        states = " ".join(sorted(f"{r.local_id}:{r.state}" for r in records))
        now = time.monotonic()
        if line == self._last or (states == self._states and now - self._at < self.every_s):
            return
        self._last, self._states, self._at = line, states, now
        print(line, file=self.stream or sys.stderr, flush=True)
