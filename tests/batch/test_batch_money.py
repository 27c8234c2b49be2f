"""Batch mode's money against the loopback batch servers' bill (tests/batch_servers.py:
stand-ins for OpenAI's Batch API and Anthropic's Message Batches, which cannot be reached
from the tests): what the summary says equals what the provider charged, after a kill,
with a live run on the same cache at the same time; and the one refusal rule."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from batch_helpers import FAST, batch, live, records, rows
from batch_servers import BatchServer

from mike_sdk.batch.records import BatchLog
from mike_sdk.batch.runner import BatchRunner
from mike_sdk.calls.pricing import PriceTable
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.evaluator import RunStopped
from mike_sdk.runfolder.files import Summary
from mike_sdk.runfolder.rundir import results_file

PRICES = PriceTable()


class Crash(Exception):
    """Stands for the process dying at that point."""


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_killed_after_collecting_the_bill_is_still_counted(
        batch_server: BatchServer, benchmark: Benchmark, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """Killed once the first of two batches is collected into the cache, before any row
    is written: every later session's summary says what the provider billed."""
    real = BatchRunner._collect

    async def collect_then_die(self: BatchRunner, record: object, remote: object) -> None:
        self.on_collected = None
        await real(self, record, remote)  # type: ignore[arg-type]
        raise Crash

    options = dataclasses.replace(FAST, max_requests=10)  # two batches at least
    with monkeypatch.context() as patch:
        patch.setattr(BatchRunner, "_collect", collect_then_die)
        with pytest.raises(Crash):
            batch(batch_server, kind, benchmark, tmp_path, options=options)
    assert not results_file(tmp_path / "run").exists() or not rows(tmp_path)
    first = batch(batch_server, kind, benchmark, tmp_path, options=options)
    again = batch(batch_server, kind, benchmark, tmp_path, options=options)
    bill = batch_server.bill_usd(PRICES)
    assert bill > 0 and len(batch_server.billed) == first.summary.totals.paid_requests
    for summary in (first.summary, again.summary):
        assert summary.totals.cost_usd == pytest.approx(bill, rel=1e-9, abs=0)
        assert summary.totals.errors == 0 and summary.totals.rows == 24
    assert sum(r.cost_usd or 0.0 for r in BatchLog(tmp_path / "run").read().values()) \
        == pytest.approx(bill, rel=1e-9, abs=0)


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_systematic_refusal_stops_a_batch_run(batch_server: BatchServer, benchmark: Benchmark,
                                              tmp_path: Path, kind: str) -> None:
    """Every request refused with the same 400: the run stops with the provider's message
    and writes no error rows; the keys are sent again once the cause is fixed."""
    batch_server.knobs.fail = {'"custom_id"': [400, -1]}
    with pytest.raises(RunStopped, match=r"all refused with the same error.*Invalid request"):
        batch(batch_server, kind, benchmark, tmp_path)
    assert not results_file(tmp_path / "run").exists() or not rows(tmp_path)
    (collected,) = records(tmp_path)[-1:]
    assert collected["state"] == "collected" and "refused" not in collected
    assert sum(map(len, collected["retry"].values())) == collected["requests"]
    batch_server.knobs.fail = {}
    done = batch(batch_server, kind, benchmark, tmp_path)
    assert done.summary.totals.errors == 0 and done.summary.totals.rows == 24


def test_isolated_refusals_are_error_rows(batch_server: BatchServer, benchmark: Benchmark,
                                          tmp_path: Path) -> None:
    """Refusals among answers are isolated: error rows, and the run goes on."""
    batch(batch_server, "openai", benchmark, tmp_path / "probe")
    keys = records(tmp_path / "probe")[0]["keys"]
    batch_server.knobs.fail = {key: [400, -1] for key in keys[:6]}
    done = batch(batch_server, "openai", benchmark, tmp_path / "run")
    errors = [r for r in rows(tmp_path / "run") if r["error"]]
    assert {r["cache_key"] for r in errors} == set(keys[:6]) and done.summary.stopped is None


def test_refusals_before_any_answer_are_held_not_sent_again(
        batch_server: BatchServer, benchmark: Benchmark, tmp_path: Path) -> None:
    """A first batch of three requests, all refused (fewer than make a systematic
    refusal): held until the next batch answers, then error rows; never sent again."""
    batch(batch_server, "openai", benchmark, tmp_path / "probe")
    keys = records(tmp_path / "probe")[0]["keys"]
    sent = len(batch_server.submitted_bodies())
    batch_server.knobs.fail = {key: [400, -1] for key in keys[:3]}
    done = batch(batch_server, "openai", benchmark, tmp_path / "run",
                 options=dataclasses.replace(FAST, max_requests=3))
    assert records(tmp_path / "run")[0]["keys"] == keys[:3]
    assert len(batch_server.submitted_bodies()) == 2 * sent  # each request once
    errors = {r["cache_key"] for r in rows(tmp_path / "run") if r["error"]}
    assert errors == set(keys[:3]) and done.summary.stopped is None


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_live_and_batch_runs_on_one_cache_pay_once(batch_server: BatchServer,
                                                   benchmark: Benchmark, tmp_path: Path,
                                                   kind: str) -> None:
    """A live run starts while a --batch run's batch is in flight, on the same cache: it
    waits for the batch's answers instead of buying them again; each request is billed
    once and the two runs' summaries add up to the bill."""
    batch_server.knobs.in_progress_s = 1.0
    done: dict[str, Summary] = {}

    def batch_run() -> None:
        done["batch"] = batch(batch_server, kind, benchmark, tmp_path / "b",
                              cache="../cache").summary

    worker = threading.Thread(target=batch_run)
    worker.start()
    log = tmp_path / "b" / "run" / "batches.jsonl"
    deadline = time.monotonic() + 20
    while not (log.exists() and '"provider_id"' in log.read_text()):
        assert time.monotonic() < deadline, "the batch was never submitted"
        time.sleep(0.02)
    done["live"] = live(batch_server, kind, benchmark, tmp_path / "l", cache="../cache")
    worker.join()
    bill = batch_server.bill_usd(PRICES)
    assert not batch_server.live_bodies and batch_server.creates(kind) == 1
    assert len(batch_server.billed) == done["batch"].totals.paid_requests
    assert done["live"].totals.paid_requests == 0 and done["live"].totals.errors == 0
    assert done["live"].totals.rows == done["batch"].totals.rows == 24
    total = (done["batch"].totals.cost_usd or 0.0) + (done["live"].totals.cost_usd or 0.0)
    assert total == pytest.approx(bill, rel=1e-9, abs=0)


def test_batch_run_waits_for_keys_a_live_run_sends(batch_server: BatchServer,
                                                   benchmark: Benchmark,
                                                   tmp_path: Path) -> None:
    """Both at once, from the first request: whichever leases a request pays for it, the
    other reads it from the cache; nothing is billed twice."""
    done: dict[str, Summary] = {}
    runs = [threading.Thread(target=lambda: done.__setitem__("batch", batch(
                batch_server, "openai", benchmark, tmp_path / "b", cache="../cache").summary)),
            threading.Thread(target=lambda: done.__setitem__("live", live(
                batch_server, "openai", benchmark, tmp_path / "l", cache="../cache")))]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    bill = batch_server.bill_usd(PRICES)
    keys = {r["cache_key"] for r in rows(tmp_path / "b")}
    assert len(batch_server.billed) == len(keys)
    assert done["batch"].totals.paid_requests + done["live"].totals.paid_requests == len(keys)
    total = (done["batch"].totals.cost_usd or 0.0) + (done["live"].totals.cost_usd or 0.0)
    assert total == pytest.approx(bill, rel=1e-9, abs=0)
    assert done["live"].totals.rows == done["batch"].totals.rows == 24
