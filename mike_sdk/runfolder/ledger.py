"""What a run paid for: each unique request once, across every session of the run.

Rows cannot say it: rows that share one request would each count its cost, and an
answer paid for by a session that was killed before writing its rows comes back from
the cache on resume, looking free. So the run folder keeps ``spend.jsonl``, one line per
request the run's sessions sent and were answered, appended (and flushed) as soon as the
answer lands. The summary's totals and ``--max-cost`` read it.

Requests in flight are journaled too (``sending.jsonl``: each key as its body reaches
the socket, see :mod:`backends.wire.clients`; requests still queued are not there). A
session killed outright (``kill -9``) leaves keys there that never landed: those calls
were most likely billed. The next session settles them: an answer the cache holds (the
kill came between the cache and the ledger) is recorded from it; a request asked again
is recorded twice, the lost call at the usage the provider reports for the same request
now. A session that ends (even stopped or interrupted) keeps only the keys it abandoned.

A line is ``[KEY16, usd, input, output, cached_input, reasoning]``: the first 16 hex digits
of the request's cache key (64 bits: a collision among a million requests has odds of
about 1 in 30 million), then its cost and tokens. ``input`` is null when the server
reported no usage: ``usd`` is then the request's upper bound (what ``--max-cost`` charged).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

from mike_sdk.backend import Generation

__all__ = ["SENDING", "SPEND", "Ledger"]

SPEND = "spend.jsonl"
SENDING = "sending.jsonl"
#: Marks the ledger entry of a call lost in flight by an earlier session.
LOST = "~lost"
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


class _Totals:
    """Sums over the ledger's entries, kept as they are added: a full configuration's
    half a million entries held one by one took about 250 bytes each, twice in batch mode."""

    def __init__(self) -> None:
        self.cost: float | None = 0.0
        self.unreported = 0
        self.sums = [0, 0, 0]
        self.reasoning: int | None = None

    def add(self, entry: Sequence[Any]) -> None:
        """Count one entry (ValueError or TypeError, counting nothing, if it is damaged)."""
        usd, inp, out, cached, thought = entry
        cost = None if usd is None or self.cost is None else self.cost + usd
        sums = [self.sums[0] + (inp or 0), self.sums[1] + out, self.sums[2] + cached]
        reasoning = self.reasoning if thought is None else (self.reasoning or 0) + thought
        self.cost, self.sums, self.reasoning = cost, sums, reasoning
        self.unreported += inp is None


class Ledger:
    """The ``spend.jsonl`` of one run folder: read at open, appended as answers land."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / SPEND
        self.sending_path = folder / SENDING
        self._paid: set[str] = set()
        self._totals = _Totals()
        self._file: IO[str] | None = None
        self._journal: IO[str] | None = None
        if self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    if not line.endswith("\n"):
                        break  # a torn last line: that answer is asked again (or cached)
                    try:
                        key, *entry = json.loads(line)
                        if key not in self._paid:
                            self._totals.add(entry)
                            self._paid.add(key)
                    except (ValueError, TypeError):
                        continue  # a damaged line loses one entry, never the run
        self.lost: set[str] = set()
        """Full keys an earlier session sent and never saw land (killed): billed, most
        likely; recorded when their answer is found or paid again."""
        if self.sending_path.exists():
            refused = set()
            for line in self.sending_path.read_text(encoding="utf-8").splitlines():
                key = line.strip()
                if key.startswith("-"):
                    refused.add(key[1:])
                elif len(key) == 64 and key[:KEY_DIGITS] not in self._paid:
                    self.lost.add(key)
            self.lost -= refused

    def sent(self, keys: Iterable[str], *, refused: bool = False) -> None:
        """Journal keys sent (once the request's body is on the socket, where the backend
        reports it; else just before it leaves), or ``refused`` ones (a 400 is not billed)."""
        lines = "".join(f"-{k}\n" if refused else f"{k}\n" for k in keys)
        if not lines:
            return
        if self._journal is None:
            self._journal = self.sending_path.open("a", encoding="utf-8")
        self._journal.write(lines)
        self._journal.flush()

    def __contains__(self, key: str) -> bool:
        return key[:KEY_DIGITS] in self._paid

    def record(self, paid: Iterable[tuple[str, Generation, float | None]]) -> float | None:
        """Append what these answers cost (answers already in the ledger are left out);
        returns the USD added (None when a price is unknown)."""
        lines, added = [], 0.0
        known = True
        for full_key, generation, usd in self._with_lost(paid):
            key = full_key[:KEY_DIGITS] + full_key[64:]  # KEY16, or KEY16~lost
            if key in self._paid:
                continue
            reported = generation.input_tokens is not None \
                and generation.output_tokens is not None
            entry: _Entry = (usd, generation.input_tokens if reported else None,
                             generation.output_tokens or 0,
                             generation.cached_input_tokens or 0, generation.reasoning_tokens)
            self._paid.add(key)
            self._totals.add(entry)
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

    def _with_lost(self, paid: Iterable[tuple[str, Generation, float | None]]
                   ) -> Iterator[tuple[str, Generation, float | None]]:
        """``paid``, with a second entry for each request an earlier session lost in flight
        (the same request, so the usage the provider reports now)."""
        for entry in paid:
            yield entry
            if entry[0] in self.lost:
                self.lost.discard(entry[0])
                yield entry[0] + LOST, entry[1], entry[2]

    def settle(self, lookup: Callable[[Iterable[str]], Mapping[str, dict[str, Any]]],
               cost: Callable[[Generation], float | None]) -> None:
        """Record the lost keys whose answers the cache holds (``lookup``), priced by
        ``cost``: they landed, then the session died before its ledger line."""
        if not self.lost:
            return
        found = {k: Generation.model_validate(v) for k, v in lookup(self.lost).items()}
        self.lost.difference_update(found)
        self.record((k, g, cost(g)) for k, g in found.items())

    @property
    def requests(self) -> int:
        """Requests paid for."""
        return len(self._paid)

    @property
    def unreported(self) -> int:
        """Paid requests whose server reported no usage (counted at their upper bound)."""
        return self._totals.unreported

    @property
    def cost_usd(self) -> float | None:
        """USD paid, None if a price was unknown for any of them."""
        return self._totals.cost

    def tokens(self) -> Tokens:
        """Token totals of the paid requests (``reasoning`` None if none reported)."""
        sums = self._totals.sums
        return Tokens(sums[0], sums[1], sums[2], self._totals.reasoning)

    def close(self, abandoned: Iterable[str] = ()) -> None:
        """Close the files (appends reopen them); the journal keeps only the keys still
        lost and those this session ``abandoned`` in flight."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        keep = sorted(self.lost | {k for k in abandoned if k[:KEY_DIGITS] not in self._paid})
        if keep:
            self.sending_path.write_text("".join(f"{k}\n" for k in keep), encoding="utf-8")
        else:
            self.sending_path.unlink(missing_ok=True)
