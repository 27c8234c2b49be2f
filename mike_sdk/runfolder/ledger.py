"""What a run paid for: each unique request once, across every session of the run.

Rows cannot say it: rows that share one request would each count its cost, and an
answer paid for by a session that was killed before writing its rows comes back from
the cache on resume, looking free. So the run folder keeps ``spend.jsonl``, one line per
request the run's sessions sent and were answered, appended (and flushed) as soon as the
answer lands. The summary's totals and ``--max-cost`` read it.

A line is ``[KEY16, usd, input, output, cached_input, reasoning]``: the first 16 hex digits
of the request's cache key (64 bits: a collision among a million requests has odds of
about 1 in 30 million), then its cost and tokens. ``input`` is null when the server
reported no usage: ``usd`` is then the request's upper bound (what ``--max-cost`` charged).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, NamedTuple

from mike_sdk.backend import Generation

__all__ = ["SPEND", "Ledger"]

SPEND = "spend.jsonl"
#: Hex digits of the cache key a ledger line keeps.
KEY_DIGITS = 16

class Tokens(NamedTuple):
    """Token totals of what a run paid for."""

    input: int
    output: int
    cached_input: int
    reasoning: int | None


# (usd, input (None: no usage reported), output, cached input, reasoning) of one request.
_Entry = tuple[float | None, int | None, int, int, int | None]


class Ledger:
    """The ``spend.jsonl`` of one run folder: read at open, appended as answers land."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / SPEND
        self._paid: dict[str, _Entry] = {}
        self._file: IO[str] | None = None
        if self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    if not line.endswith("\n"):
                        break  # a torn last line: that answer is asked again (or cached)
                    try:
                        key, *entry = json.loads(line)
                    except ValueError:
                        continue  # a damaged line loses one entry, never the run
                    self._paid.setdefault(key, tuple(entry))

    def __contains__(self, key: str) -> bool:
        return key[:KEY_DIGITS] in self._paid

    def record(self, paid: Iterable[tuple[str, Generation, float | None]]) -> float | None:
        """Append what these answers cost (answers already in the ledger are left out);
        returns the USD added (None when a price is unknown)."""
        lines, added = [], 0.0
        known = True
        for full_key, generation, usd in paid:
            key = full_key[:KEY_DIGITS]
            if key in self._paid:
                continue
            reported = generation.input_tokens is not None \
                and generation.output_tokens is not None
            entry: _Entry = (usd, generation.input_tokens if reported else None,
                             generation.output_tokens or 0,
                             generation.cached_input_tokens or 0, generation.reasoning_tokens)
            self._paid[key] = entry
            lines.append(json.dumps([key, *entry], separators=(",", ":")) + "\n")
            if usd is None:
                known = False
            else:
                added += usd
        if lines:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write("".join(lines))
            self._file.flush()
        return added if known else None

    @property
    def requests(self) -> int:
        """Requests paid for."""
        return len(self._paid)

    @property
    def unreported(self) -> int:
        """Paid requests whose server reported no usage (counted at their upper bound)."""
        return sum(1 for _, inp, *_ in self._paid.values() if inp is None)

    @property
    def cost_usd(self) -> float | None:
        """USD paid, None if a price was unknown for any of them."""
        total = 0.0
        for usd, *_ in self._paid.values():
            if usd is None:
                return None
            total += usd
        return total

    def tokens(self) -> Tokens:
        """Token totals of the paid requests (``reasoning`` None if none reported)."""
        sums = [0, 0, 0]
        reasoning: int | None = None
        for _, inp, out, cached, thought in self._paid.values():
            sums[0] += inp or 0
            sums[1] += out
            sums[2] += cached
            if thought is not None:
                reasoning = (reasoning or 0) + thought
        return Tokens(sums[0], sums[1], sums[2], reasoning)

    def close(self) -> None:
        """Close the file (appends reopen it)."""
        if self._file is not None:
            self._file.close()
            self._file = None
