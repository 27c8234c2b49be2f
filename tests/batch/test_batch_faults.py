"""Batch mode's fault cases against the loopback batch servers (tests/batch_servers.py:
stand-ins for OpenAI's Batch API and Anthropic's Message Batches, which cannot be reached
from the tests; the provider documentation of each behaviour is cited there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from batch_helpers import MODELS, batch, live, records, rows, same_rows
from batch_servers import BatchServer
from rows import results_text
from strict_api import STRICT_ANTHROPIC_KEY, STRICT_OPENAI_KEY

from mike_sdk.batch.records import BatchLog
from mike_sdk.data.benchmark import Benchmark

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from mike_sdk.backend import BACKENDS
from mike_sdk.batch.options import BatchOptions
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.batch.mode import run_batched
from mike_sdk.run.config import EvalConfig

kind, model, url, key, data, folder = sys.argv[1:]
backend = BACKENDS.create(kind, model=model, base_url=url, api_key=key)
config = EvalConfig(tasks=("zsre",), languages=("de", "zh"), strategy="one-shot", limit=3,
                    language_id="script")
with ResponseCache(folder + "/cache") as cache:
    run_batched(ModelClient(backend, cache=cache), config, folder + "/run",
                benchmark=Benchmark(data), options=BatchOptions(poll_initial_s=0.05),
                progress=False)
"""


class Crash(Exception):
    """Stands for the process dying at that point."""


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_killed_between_submit_and_collect(batch_server: BatchServer, benchmark: Benchmark,
                                           tmp_path: Path, kind: str) -> None:
    """SIGKILL once the batch is submitted; the re-run re-attaches (no second create) and
    its rows are those of an uninterrupted (live) run."""
    batch_server.knobs.in_progress_s = 1.0
    url = f"{batch_server.url}/v1" if kind == "openai" else batch_server.url
    key = STRICT_OPENAI_KEY if kind == "openai" else STRICT_ANTHROPIC_KEY
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, MODELS[kind], url, key, str(benchmark.root),
         str(tmp_path)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    log = tmp_path / "run" / "batches.jsonl"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and child.poll() is None:
        if log.exists() and '"provider_id"' in log.read_text():
            break
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    (record,) = BatchLog(tmp_path / "run").read().values()
    assert record.provider_id and not record.ended, "killed before the batch was submitted"
    batch_server.knobs.in_progress_s = 0.05
    done = batch(batch_server, kind, benchmark, tmp_path)
    assert done.report.reattached == 1 and done.report.submitted == 0
    assert batch_server.creates(kind) == 1
    live(batch_server, kind, benchmark, tmp_path / "live")
    same_rows(rows(tmp_path), rows(tmp_path / "live"))


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_died_during_create_is_found_again(batch_server: BatchServer, benchmark: Benchmark,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           kind: str) -> None:
    """The batch was created but its id never recorded: OpenAI finds it by the local id in
    its metadata, Anthropic by listing (time and size); nothing is submitted twice."""
    from mike_sdk.batch.runner import BatchRunner

    real = BatchRunner._update

    def crash(self: BatchRunner, record: object, remote: object, *, force: bool = False
              ) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(BatchRunner, "_update", crash)
        with pytest.raises(Crash):
            batch(batch_server, kind, benchmark, tmp_path)
    assert BatchRunner._update is real
    (record,) = BatchLog(tmp_path / "run").read().values()
    assert record.provider_id is None and batch_server.creates(kind) == 1
    done = batch(batch_server, kind, benchmark, tmp_path)
    assert done.report.reattached == 1 and batch_server.creates(kind) == 1
    assert batch_server.counts[f"{kind}.list"] >= 1
    assert done.summary.totals.errors == 0 and len(rows(tmp_path)) == 24


def test_intent_never_sent_is_sent_again(batch_server: BatchServer, benchmark: Benchmark,
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    from mike_sdk.backends.batches.anthropic import AnthropicBatches

    async def die(*args: object) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(AnthropicBatches, "submit", die)
        with pytest.raises(Crash):
            batch(batch_server, "anthropic", benchmark, tmp_path)
    done = batch(batch_server, "anthropic", benchmark, tmp_path)
    states = [r.state for r in BatchLog(tmp_path / "run").read().values()]
    assert states == ["lost", "collected"] and batch_server.creates("anthropic") == 1
    assert done.summary.totals.errors == 0


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_server_restart_while_polling(batch_server: BatchServer, benchmark: Benchmark,
                                      tmp_path: Path, kind: str) -> None:
    """The server goes down for a while and comes back from its state on disk; polls in
    between fail and are retried; the batch is collected once."""
    batch_server.knobs.in_progress_s = 0.6
    log = tmp_path / "run" / "batches.jsonl"

    def restart() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if log.exists() and '"provider_id"' in log.read_text():
                batch_server.restart(down_s=0.3)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=restart)
    thread.start()
    done = batch(batch_server, kind, benchmark, tmp_path)
    thread.join()
    assert batch_server.counts["restart"] == 1 and batch_server.creates(kind) == 1
    assert done.summary.totals.errors == 0 and len(rows(tmp_path)) == 24


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_output_fetched_twice(batch_server: BatchServer, benchmark: Benchmark,
                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              kind: str) -> None:
    """Dying while the downloaded answers are written to the cache (half of them in): the
    re-run downloads the results again and keeps what it lacks; rows as after one."""
    from mike_sdk.calls.cache import ResponseCache

    real = ResponseCache.put_many

    def half(self: ResponseCache, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
        entries = list(entries)
        real(self, entries[:len(entries) // 2])
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(ResponseCache, "put_many", half)
        with pytest.raises(Crash):
            batch(batch_server, kind, benchmark, tmp_path)
    assert not results_text(tmp_path / "run")  # no row of the batch yet
    assert [r["state"] for r in records(tmp_path)][-1] != "collected"
    done = batch(batch_server, kind, benchmark, tmp_path)
    assert batch_server.counts[f"{kind}.download"] == 2 and batch_server.creates(kind) == 1
    assert done.report.reattached == 1 and done.summary.totals.errors == 0
    assert [r["state"] for r in records(tmp_path)][-1] == "collected"
    live(batch_server, kind, benchmark, tmp_path / "live")
    same_rows(rows(tmp_path), rows(tmp_path / "live"))
