"""The progress of a run, told truthfully: items count when their rows are written.

An item is done when its row is in ``results.jsonl``: answered, its likelihood check
scored, scored and labelled. So the bar cannot sit at 100% while the likelihood check
runs, items sharing one request each count once, and a resumed run starts from the rows
it already has without counting them again. Between rows, the postfix shows the work
under way: requests answered in this session, cache hits, likelihood scores, cost.
Items that cannot be scored (their language is missing) leave the total as their files
are read, so a finished run ends at exactly 100%.

On a terminal it is a tqdm bar; otherwise (a log file, a CI job) a plain line at most
every :data:`PLAIN_EVERY_S` seconds, so that no escape codes end up in the log.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["PLAIN_EVERY_S", "Progress"]

#: Seconds between two plain progress lines when stderr is not a terminal.
PLAIN_EVERY_S = 30.0


class Progress:
    """Items done of the total, with what is under way; silent when disabled."""

    def __init__(self, total: int, *, enabled: bool = True, initial: int = 0,
                 stream: IO[str] | None = None) -> None:
        self.total = total
        self.done = initial
        self.answered = 0
        """Requests answered in this session (each once, however many items share it)."""
        self.cached = 0
        """Of those, answered from the cache."""
        self.scored = 0
        """Likelihood scores computed or read in this session."""
        self.cost: float | None = None
        """USD the run has paid so far, shown when known."""
        self._skipped = 0
        self._stream = stream or sys.stderr
        self._bar: Any = None
        self._plain = enabled and not self._stream.isatty()
        self._last = time.monotonic()
        self._last_line = ""
        if enabled and not self._plain:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="item", dynamic_ncols=True,
                             file=self._stream, smoothing=0.1, mininterval=0.5)

    def requests(self, n: int, *, cached: bool) -> None:
        """``n`` requests were answered (from the cache if ``cached``)."""
        self.answered += n
        if cached:
            self.cached += n
        self._show()

    def likelihoods(self, n: int) -> None:
        """``n`` likelihood scores are in."""
        self.scored += n
        self._show()

    def rows(self, n: int) -> None:
        """``n`` items were written."""
        self.done += n
        if self._bar is not None and n:
            self._bar.update(n)
        self._show()

    def skipped(self, n: int) -> None:
        """``n`` items of the total, all told so far, cannot be scored and will never be
        written (a call with a larger ``n`` takes off the difference)."""
        n, self._skipped = n - self._skipped, n
        if n:
            self.total -= n
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.refresh()

    def finish(self) -> None:
        """The run is over: whatever is done is the whole (a stopped run shows its share);
        a plain line already printed is not printed again."""
        if self._plain and self._line() != self._last_line:
            self._print()

    def _postfix(self) -> dict[str, Any]:
        postfix: dict[str, Any] = {"answered": self.answered, "cache_hits": self.cached}
        if self.scored:
            postfix["likelihood"] = self.scored
        if self.cost is not None:
            postfix["cost"] = f"${self.cost:.4f}"
        return postfix

    def _show(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix(self._postfix(), refresh=False)
        elif self._plain and time.monotonic() - self._last >= PLAIN_EVERY_S:
            self._print()

    def _line(self) -> str:
        # Items count when their rows are written, a chunk at a time, so the requests
        # answered run ahead of them: the line says both, by name.
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        postfix = self._postfix()
        answered, hits = postfix.pop("answered"), postfix.pop("cache_hits")
        extra = "".join(f", {k} {v}" for k, v in postfix.items())
        return (f"progress: {self.done}/{self.total} items written{share}, requests answered "
                f"{answered} (cache hits {hits}){extra}")

    def _print(self) -> None:
        self._last = time.monotonic()
        self._last_line = self._line()
        print(self._last_line, file=self._stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
