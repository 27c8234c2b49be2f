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


def test_a_killed_sessions_calls_in_flight_are_counted_when_their_cost_is_known(
        tmp_path: Path) -> None:
    def key(n: int) -> str:
        return str(n) * 64

    answer = Generation(text="Paris", input_tokens=10, output_tokens=2)
    first = Ledger(tmp_path)
    first.sent([key(1), key(2), key(3), key(4)])
    first.record([(key(1), answer, 0.5)])
    first.sent([key(4)], refused=True)  # a 400: not billed
    # killed here: no close(); key 2 was cached before the kill, key 3 never came back
    second = Ledger(tmp_path)
    assert second.lost == {key(2), key(3)}
    second.settle(lambda keys: {k: answer.model_dump() for k in keys if k == key(2)},
                  lambda g: 0.25)
    assert second.lost == {key(3)} and second.cost_usd == 0.75
    second.record([(key(3), answer, 0.5)])  # asked again: the lost call cost the same
    assert second.cost_usd == 1.75 and second.requests == 4 and not second.lost
    second.close()
    assert not (tmp_path / "sending.jsonl").exists()
    third = Ledger(tmp_path)
    assert third.cost_usd == 1.75 and not third.lost


def test_a_session_that_ends_keeps_only_what_it_abandoned(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.sent(["a" * 64, "b" * 64])
    ledger.close(abandoned=["b" * 64])
    assert Ledger(tmp_path).lost == {"b" * 64}
