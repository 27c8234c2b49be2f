"""Batch mode end to end, through the official SDKs, against the loopback batch servers
(tests/batch_servers.py: they stand in for OpenAI's Batch API and Anthropic's Message
Batches, which cannot be reached from the tests; sources cited there)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from batch_helpers import CONFIG, FAST, RETRY, backend, batch, live, records, rows, same_rows
from batch_servers import BatchServer
from strict_api import STRICT_OPENAI_KEY

from mike_sdk.batch.records import BatchLog
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.pricing import PriceTable
from mike_sdk.cli.batches import add_parser, batch_table
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.evaluator import Evaluator


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_batch_run_equals_live_run(batch_server: BatchServer, benchmark: Benchmark,
                                   tmp_path: Path, kind: str) -> None:
    """Same rows, same cache keys, same request bodies as a live run; half the price; and
    a later live run is answered from the cache the batch filled."""
    live(batch_server, kind, benchmark, tmp_path / "live")
    live_bodies = list(batch_server.live_bodies)
    done = batch(batch_server, kind, benchmark, tmp_path / "batch")
    same_rows(rows(tmp_path / "batch"), rows(tmp_path / "live"))
    assert batch_server.creates(kind) == 1 and done.report.submitted == 1
    # The batch body of each request is the live body, byte for byte once parsed.
    key = lambda b: repr(sorted(b.items()))  # noqa: E731
    assert sorted(map(key, batch_server.submitted_bodies())) == \
        sorted(map(key, {key(b): b for b in live_bodies}.values()))
    summary = done.summary
    assert summary.totals.errors == 0 and summary.stopped is None
    assert summary.totals.backend_calls_this_session == done.report.collected
    # The record: an intent line (keys, no provider id) before anything else.
    lines = records(tmp_path / "batch")
    assert lines[0]["state"] == "intent" and "provider_id" not in lines[0]
    assert len(lines[0]["keys"]) == done.report.collected
    assert all(len(k) == 64 for k in lines[0]["keys"])
    assert lines[-1]["state"] == "collected" and lines[-1]["cost_usd"] > 0
    # A live run on the batch's cache sends nothing.
    batch_server.live_bodies.clear()
    with ResponseCache(tmp_path / "batch" / "cache") as cache:
        again = Evaluator(backend(batch_server, kind), benchmark=benchmark, cache=cache,
                          progress=False).run(CONFIG, tmp_path / "again")
    assert again.totals.backend_calls_this_session == 0 and not batch_server.live_bodies
    assert again.totals.cache_hits == again.totals.rows


def test_rerun_is_answered_from_cache_and_folder(batch_server: BatchServer,
                                                 benchmark: Benchmark, tmp_path: Path) -> None:
    batch(batch_server, "openai", benchmark, tmp_path)
    before = rows(tmp_path)
    again = batch(batch_server, "openai", benchmark, tmp_path)
    assert batch_server.creates("openai") == 1 and again.report.submitted == 0
    assert rows(tmp_path) == before


def test_expired_batch_keeps_done_part(batch_server: BatchServer, benchmark: Benchmark,
                                       tmp_path: Path) -> None:
    """OpenAI: a batch that expires with 4 requests done; the rest go in a second batch."""
    batch_server.knobs.expire_next = 4
    done = batch(batch_server, "openai", benchmark, tmp_path)
    assert batch_server.creates("openai") == 2
    first, second = (r for r in BatchLog(tmp_path / "run").read().values())
    assert first.state == "collected" and first.counts.done == 4
    assert first.retry and sum(len(k) for k in first.retry.values()) == first.requests - 4
    assert "expired" in next(iter(first.retry))
    assert second.round == 2 and set(second.keys or ()) == \
        {k for keys in first.retry.values() for k in keys}
    assert done.summary.totals.errors == 0
    live(batch_server, "openai", benchmark, tmp_path / "live")
    same_rows(rows(tmp_path), rows(tmp_path / "live"))


def test_anthropic_expired_batch(batch_server: BatchServer, benchmark: Benchmark,
                                 tmp_path: Path) -> None:
    batch_server.knobs.expire_next = 2
    done = batch(batch_server, "anthropic", benchmark, tmp_path)
    assert batch_server.creates("anthropic") == 2 and done.summary.totals.errors == 0
    first = next(iter(BatchLog(tmp_path / "run").read().values()))
    assert first.counts.done == 2 and first.counts.expired == first.requests - 2


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_per_request_errors_are_bounded(batch_server: BatchServer, benchmark: Benchmark,
                                        tmp_path: Path, kind: str) -> None:
    """A request failing with a 500 every time is sent in 3 batches, then is an error row
    with the provider's message; one refused (400) is an error row at once."""
    keys = records(_first_run(batch_server, kind, benchmark, tmp_path / "probe"))[0]["keys"]
    batch_server.knobs.fail = {keys[0]: [500, -1], keys[1]: [400, -1], keys[2]: [500, 1]}
    done = batch(batch_server, kind, benchmark, tmp_path / "run")
    assert batch_server.creates(kind) == 1 + 3  # the probe, then three rounds
    by_key = {r["cache_key"]: r for r in rows(tmp_path / "run")}
    assert "(sent in 3 batches)" in by_key[keys[0]]["error"]
    assert "Server error (500)" in by_key[keys[0]]["error"]
    assert by_key[keys[1]]["error"].startswith("Request refused (400): Invalid request")
    assert by_key[keys[2]]["error"] is None and by_key[keys[2]]["output"]  # 2nd try worked
    assert done.summary.totals.errors == sum(r["error"] is not None for r in by_key.values())
    assert set(done.report.refused) == {keys[0], keys[1]}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_fallback_live_answers_what_batches_could_not(batch_server: BatchServer,
                                                      benchmark: Benchmark, tmp_path: Path,
                                                      kind: str) -> None:
    """With ``fallback="live"`` a request out of batch rounds is sent live (at the live
    price); one refused with a 400 stays an error row."""
    keys = records(_first_run(batch_server, kind, benchmark, tmp_path / "probe"))[0]["keys"]
    batch_server.knobs.fail = {keys[0]: [500, -1], keys[1]: [400, -1]}
    done = batch(batch_server, kind, benchmark, tmp_path / "run",
                 options=dataclasses.replace(FAST, fallback="live"))
    by_key = {r["cache_key"]: r for r in rows(tmp_path / "run")}
    assert by_key[keys[0]]["error"] is None and by_key[keys[0]]["output"]
    assert by_key[keys[1]]["error"].startswith("Request refused (400)")
    # The live answer is priced at the live rate, the others at the batch rate (half).
    prices, model = PriceTable(), done.summary.backend.model
    for key, row in by_key.items():
        if row["error"] is None:
            usage = (row["input_tokens"], row["output_tokens"], row["cached_input_tokens"])
            assert row["cost_usd"] == pytest.approx(
                prices.cost(model, *usage, batch=key != keys[0]))
    assert done.summary.totals.errors == 1


def _first_run(server: BatchServer, kind: str, benchmark: Benchmark, folder: Path) -> Path:
    batch(server, kind, benchmark, folder)
    return folder


def test_max_cost_counts_what_is_submitted(batch_server: BatchServer, benchmark: Benchmark,
                                           tmp_path: Path) -> None:
    # gpt-5-mini: a request's upper bound is ~ (prompt + 15 + 1024 reasoning) tokens at
    # $1/M batch output: about $0.00105; $0.005 allows four requests.
    done = batch(batch_server, "openai", benchmark, tmp_path,
                 limits=Limits(max_cost=0.005, retry=RETRY))
    (record,) = BatchLog(tmp_path / "run").read().values()
    assert record.estimate_usd is not None and record.estimate_usd <= 0.005
    assert 0 < record.requests < 20
    assert done.report.stopped == "max_cost" and done.summary.stopped == "max_cost"
    assert done.summary.totals.rows < 24


class Interrupted(Exception):
    """Stands for a Ctrl-C or a crash."""


def test_batches_command_lists_and_cancels(batch_server: BatchServer, benchmark: Benchmark,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`mike batches RUN_DIR` and `mike batches cancel RUN_DIR` on a run interrupted while
    its batch is in flight; the re-run collects what was answered and sends the rest."""
    from mike_sdk.batch import runner

    batch_server.knobs.in_progress_s = 1.0

    async def interrupted(self: object) -> None:
        raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(runner.BatchRunner, "_poll", interrupted)
        with pytest.raises(Interrupted):
            batch(batch_server, "openai", benchmark, tmp_path)
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["batches", str(tmp_path / "run")])
    assert args.func(args) == 0
    (record,) = BatchLog(tmp_path / "run").read().values()
    listed = capsys.readouterr().out
    assert record.local_id in listed and str(record.provider_id) in listed
    monkeypatch.setenv("OPENAI_API_KEY", STRICT_OPENAI_KEY)
    args = parser.parse_args(["batches", "cancel", str(tmp_path / "run")])
    assert args.func(args) == 0
    assert "1 batches cancelled" in capsys.readouterr().out
    (record,) = BatchLog(tmp_path / "run").read().values()
    assert record.canceled_by_user and record.state == "cancelling"
    assert "cancelled by user" in batch_table([record])
    batch_server.knobs.in_progress_s = 0.05
    done = batch(batch_server, "openai", benchmark, tmp_path)
    assert done.report.reattached == 1 and batch_server.creates("openai") == 2
    assert done.summary.totals.errors == 0 and len(rows(tmp_path)) == 24


def test_rows_are_written_per_round_not_per_batch(batch_server: BatchServer,
                                                  benchmark: Benchmark, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pass of the evaluator reads the whole configuration: one when the run starts,
    one at the end, and one between two rounds of batches; not one per batch."""
    passes: list[Path] = []
    real = Evaluator.arun

    async def counted(self: Evaluator, config: object, run_dir: Path, **kw: object) -> object:
        passes.append(run_dir)
        return await real(self, config, run_dir, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Evaluator, "arun", counted)
    done = batch(batch_server, "openai", benchmark, tmp_path,
                 options=dataclasses.replace(FAST, max_requests=3))
    assert done.report.submitted >= 3 and len(passes) == 2
    assert done.summary.totals.errors == 0
    live(batch_server, "openai", benchmark, tmp_path / "live")
    same_rows(rows(tmp_path), rows(tmp_path / "live"))
    # A batch that expires part done: its rest goes in a second round, after a pass.
    passes.clear()
    batch_server.knobs.expire_next = 4
    batch(batch_server, "openai", benchmark, tmp_path / "rounds")
    assert batch_server.creates("openai") == 2 + done.report.submitted and len(passes) == 3
    same_rows(rows(tmp_path / "rounds"), rows(tmp_path / "live"))
