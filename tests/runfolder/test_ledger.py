"""spend.jsonl: what a run paid for, once per request, across sessions."""

from __future__ import annotations

from pathlib import Path

from mike_sdk.backend import Generation
from mike_sdk.runfolder.ledger import Ledger


def answer(tokens: int) -> Generation:
    return Generation(text="x", input_tokens=tokens, output_tokens=2, cached_input_tokens=1,
                      reasoning_tokens=None)


def test_each_request_counts_once_across_sessions(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    assert ledger.record([("a" * 64, answer(10), 0.5), ("b" * 64, answer(20), 0.25)]) == 0.75
    assert ledger.record([("a" * 64, answer(10), 0.5)]) == 0.0  # already paid
    ledger.close()
    later = Ledger(tmp_path)  # the next session reads what the first one paid
    assert later.cost_usd == 0.75 and later.requests == 2 and "a" * 64 in later
    assert later.tokens() == (30, 4, 2, None)
    assert later.record([("c" * 64, answer(5), None)]) is None  # a price unknown
    assert later.cost_usd is None


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.record([("a" * 64, answer(10), 0.5)])
    ledger.close()
    with (tmp_path / "spend.jsonl").open("a") as fh:
        fh.write('["bbbb", 0.2')  # killed mid-write
    assert Ledger(tmp_path).requests == 1
