"""The evaluator against a real loopback HTTP server that misbehaves on purpose.

A minimal real HTTP backend (httpx, defined here) talks to a server started in the test,
which can answer 429 (with and without a wait), 500, 503, too slowly, not at all (a
dropped connection), 400 for one prompt, or 401. These tests keep a real wire: timeouts
and dropped connections only happen on one (the mock backend covers the rest elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from rows import read_rows, results_text, write_results

from mike_sdk.backend import (
    BACKENDS,
    Abilities,
    Backend,
    Generation,
    GenerationRequest,
    Identity,
)
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.failures import classify_status
from mike_sdk.calls.limits import Limits, max_input_tokens
from mike_sdk.calls.retry import RetryPolicy
from mike_sdk.cli.main import main
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator, RunStopped
from mike_sdk.run.plan import Planner
from mike_sdk.runfolder.files import ResultRow
from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.strategy import get_strategy

# Script-based language identification: these tests are about the wire, the ledger and
# retries; lingua (the default when installed) starts a worker costing seconds per run.
CONFIG = EvalConfig(tasks=("zsre",), languages=("de",), strategy="zero-shot", limit=3,
                    language_id="script")
FAST = RetryPolicy(max_attempts=8, base_wait_s=0.01, max_wait_s=0.05, deadline_s=20)


class Server:
    """Loopback server: answers ``{"text": ...}`` with usage, or a scripted failure."""

    def __init__(self) -> None:
        self.faults: list[str] = []
        """Failures for the next requests, in order (``429``, ``429-wait``, ``500``, ...)."""
        self.bad_prompt: str | None = None
        """A prompt refused with 400."""
        self.auth_after: int | None = None
        """Answer 401 once this many requests have succeeded."""
        self.answered: Counter[str] = Counter()
        """200 responses per request-body hash."""
        self.chars_per_token = 4.0
        """How the server counts prompt tokens (non-Latin text: 1.5 or fewer)."""
        self.billed_input = 0
        """Prompt tokens of all 200 responses."""
        self.requests = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                server.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        request = json.loads(body)
        with self.lock:
            self.requests += 1
            fault = self.faults.pop(0) if self.faults else None
            fault = None if fault == "200" else fault
            if fault is None and request["prompt"] == self.bad_prompt:
                fault = "400"
            if fault is None and self.auth_after is not None \
                    and sum(self.answered.values()) >= self.auth_after:
                fault = "401"
            if fault is None:
                self.answered[hashlib.sha256(body).hexdigest()] += 1
        if fault == "drop":
            handler.close_connection = True
            return
        if fault == "slow":
            time.sleep(2.0)  # well past the client timeout, even on a loaded machine
        status, headers, payload = 200, {}, {}
        if fault in ("429", "429-wait"):
            status = 429
            headers = {"retry-after-ms": "200"} if fault == "429-wait" else {}
            payload = {"error": "slow down"}
        elif fault in ("500", "503", "400"):
            status, payload = int(fault), {"error": f"status {fault}"}
        elif fault == "401":
            status, payload = 401, {"error": "invalid key"}
        else:
            tokens = int(len(request["prompt"]) / self.chars_per_token)
            with self.lock:
                self.billed_input += tokens
            payload = {"text": 'Paris" Question', "input_tokens": tokens,
                       "output_tokens": 3, "cached_input_tokens": 8}
        raw = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            for key, value in {**headers, "content-type": "application/json",
                               "content-length": str(len(raw))}.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a slow answer

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@BACKENDS.register("loopback-test")
class LoopbackBackend(Backend):
    """A minimal real HTTP backend: one request per call, a short timeout, HTTP errors
    translated into the SDK's failure classes."""

    def __init__(self, base_url: str, timeout: float = 0.8, max_concurrency: int = 4) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._client: httpx.AsyncClient | None = None

    @property
    def identity(self) -> Identity:
        return Identity(kind="loopback-test", model="test-model")

    @property
    def abilities(self) -> Abilities:
        return Abilities(batch_size=1, max_concurrency=self.max_concurrency)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
        (request,) = requests
        body = json.dumps({"prompt": request.prompt, "max_tokens": request.max_new_tokens},
                          sort_keys=True).encode()
        response = await self._client.post("/v1/complete", content=body,
                                           headers={"content-type": "application/json"})
        if response.status_code != 200:
            raise classify_status(response.status_code, response.json()["error"],
                                  response.headers,
                                  key_hint="the MIKE_TEST_KEY environment variable")
        data = response.json()
        return [Generation(text=data["text"], input_tokens=data["input_tokens"],
                           output_tokens=data["output_tokens"],
                           cached_input_tokens=data.get("cached_input_tokens"),
                           finish_reason="stop")]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def evaluate(server: Server, benchmark: Benchmark, tmp_path: Path, run: str = "run",
             config: EvalConfig = CONFIG, **limits: Any) -> tuple[Evaluator, dict[str, Any]]:
    limits.setdefault("retry", FAST)
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(LoopbackBackend(server.url), benchmark=benchmark, cache=cache,
                              progress=False, limits=Limits(**limits))
        summary = evaluator.run(config, tmp_path / run)
    return evaluator, summary


def rows(run_dir: Path) -> list[dict[str, Any]]:
    return read_rows(run_dir)


def prompts(benchmark: Benchmark) -> list[str]:
    planner = Planner(benchmark, CONFIG, get_strategy("zero-shot"), Abilities())
    return [w.request.prompt or "" for w in planner]


def price_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"test-model": {"input": 1000, "cached_input": 100,
                                               "output": 1000}}))
    return path


def test_transient_failures_are_retried_and_every_item_answered(
        server: Server, benchmark: Benchmark, tmp_path: Path) -> None:
    server.faults = ["429-wait", "429", "500", "503", "slow", "drop", "503"]
    started = time.perf_counter()
    _, summary = evaluate(server, benchmark, tmp_path, rpm=6000, tpm=1_000_000,
                          prices=price_file(tmp_path))
    found = rows(tmp_path / "run")
    assert len(found) == 12 and all(r["answer"] == "Paris" and r["error"] is None for r in found)
    unique = len(set(prompts(benchmark)))  # identical requests share one call
    assert all(n == 1 for n in server.answered.values()) and len(server.answered) == unique
    totals = summary.totals
    assert totals.retries == 7 and totals.rate_limited == 2 and totals.errors == 0
    # Rows that share one request share its cost: each paid request counts once.
    assert totals.paid_requests == unique and totals.cached_input_tokens == unique * 8
    once = {r["cache_key"]: r["cost_usd"] for r in found}
    assert totals.cost_usd == pytest.approx(sum(once.values()))
    assert totals.cost_usd < sum(r["cost_usd"] for r in found)
    assert time.perf_counter() - started >= 0.2  # the 429's retry-after-ms was honoured
    for row in found:
        ResultRow.model_validate(row)


def test_a_refused_request_is_an_error_row_and_the_run_goes_on(
        server: Server, benchmark: Benchmark, tmp_path: Path) -> None:
    server.bad_prompt = prompts(benchmark)[5]
    _, summary = evaluate(server, benchmark, tmp_path)
    found = rows(tmp_path / "run")
    assert len(found) == 12
    (bad,) = [r for r in found if r["error"]]
    assert read_requests(tmp_path / "run")[bad["cache_key"]].prompt == server.bad_prompt
    assert "400" in bad["error"]
    assert bad["answer"] == "" and set(bad["scores"].values()) == {0.0}
    assert summary.totals.errors == 1 and summary.totals.rows == 12
    with ResponseCache(tmp_path / "cache") as cache:
        assert bad["cache_key"] not in cache.get_many([bad["cache_key"]])


def test_refused_credentials_stop_the_run_and_keep_finished_rows(
        server: Server, benchmark: Benchmark, tmp_path: Path) -> None:
    server.auth_after = 3
    with pytest.raises(RunStopped, match="MIKE_TEST_KEY environment variable") as info:
        evaluate(server, benchmark, tmp_path, max_concurrency=1)
    assert "\n" not in str(info.value) and "invalid key" in str(info.value)
    assert len({r["cache_key"] for r in rows(tmp_path / "run")}) == 3 and server.requests == 4
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] == "error"
    server.auth_after = None
    evaluate(server, benchmark, tmp_path)
    assert len(rows(tmp_path / "run")) == 12 and all(n == 1 for n in server.answered.values())


def test_cli_exits_2_with_one_line_naming_the_variable(
        server: Server, benchmark: Benchmark, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    server.auth_after = 0
    code = main(["eval", "--backend", "loopback-test", "--backend-option",
                 f"base_url={server.url}", "--tasks", "zsre", "--languages", "de",
                 "--strategy", "zero-shot", "--limit", "1", "--language-id", "script", "--data-dir", str(benchmark.root),
                 "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("mike: error: Authentication failed (401)")
    assert "MIKE_TEST_KEY" in err[-1] and server.requests <= 4  # at most those in flight


def test_max_cost_stops_and_a_rerun_resumes_without_resending(
        server: Server, benchmark: Benchmark, tmp_path: Path) -> None:
    prices = price_file(tmp_path)
    # Room for one request at its upper bound (UTF-8 bytes + template tokens, 15 output
    # tokens) at the test price of $1000 per million tokens, and a little more.
    planned = Planner(benchmark, CONFIG, get_strategy("zero-shot"), Abilities())
    bound = max((max_input_tokens(w.request) + 15) * 1000 / 1e6 for w in planned)
    cap = 1.1 * bound
    _, summary = evaluate(server, benchmark, tmp_path, max_cost=cap, prices=prices,
                                  max_concurrency=1)
    assert summary.stopped == "max_cost"
    first = rows(tmp_path / "run")
    assert 0 < len(first) < 12 and summary.totals.cost_usd <= cap
    assert server.requests == len({r["cache_key"] for r in first})
    _, summary = evaluate(server, benchmark, tmp_path, prices=prices)
    assert "stopped" not in summary and len(rows(tmp_path / "run")) == 12
    assert server.requests == len(set(prompts(benchmark)))
    assert all(n == 1 for n in server.answered.values())


def test_max_cost_holds_when_the_server_counts_more_tokens_than_chars_over_4(
        server: Server, benchmark: Benchmark, tmp_path: Path) -> None:
    # Chinese prompts, billed at 1.5 characters per token (chars/4 underestimates 2.7x).
    server.chars_per_token = 1.5
    config = CONFIG.model_copy(update={"languages": ("zh",), "limit": 6})
    cap = 0.5
    _, summary = evaluate(server, benchmark, tmp_path, config=config, max_cost=cap,
                          prices=price_file(tmp_path), max_concurrency=4)
    assert summary.stopped == "max_cost"
    requests = sum(server.answered.values())
    real = (server.billed_input - 8 * requests) * 1000 / 1e6 + (8 * 100 + 3 * 1000) * requests / 1e6
    assert requests > 0 and real <= cap and summary.totals.cost_usd == pytest.approx(real)


def test_cost_paid_by_a_session_that_died_before_its_rows_counts(
        server: Server, benchmark: Benchmark, tmp_path: Path) -> None:
    prices = price_file(tmp_path)
    _, whole = evaluate(server, benchmark, tmp_path, prices=prices)
    # A session killed after its answers were cached and paid, before its rows were
    # written: the last rows are gone, their answers are in the cache.
    lines = results_text(tmp_path / "run").splitlines(keepends=True)
    write_results(tmp_path / "run", "".join(lines[:5]))
    _, resumed = evaluate(server, benchmark, tmp_path, prices=prices)
    assert resumed.totals.cache_hits == 7 and server.requests == whole.totals.paid_requests
    assert resumed.totals.cost_usd == pytest.approx(whole.totals.cost_usd)
    assert resumed.totals.paid_requests == whole.totals.paid_requests


def test_dry_run_sends_nothing(server: Server, benchmark: Benchmark, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "--backend", "loopback-test", "--backend-option", f"base_url={server.url}",
            "--tasks", "zsre", "--languages", "de", "--strategy", "zero-shot", "--limit", "3",
            "--language-id", "script",
            "--data-dir", str(benchmark.root), "--run-dir", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--prices", str(price_file(tmp_path)),
            "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    unique = len(set(prompts(benchmark)))
    assert f"Calls to send: {unique}" in out and "upper bound" in out and "$" in out
    assert server.requests == 0
    evaluate(server, benchmark, tmp_path, max_concurrency=1)
    assert main(args) == 0
    assert "Calls to send: 0" in capsys.readouterr().out and server.requests == unique


def test_retries_given_up_stop_the_run_and_a_rerun_finishes(
        server: Server, benchmark: Benchmark, tmp_path: Path) -> None:
    server.faults = ["200"] * 2 + ["503"] * 3
    policy = FAST.model_copy(update={"max_attempts": 3})
    with pytest.raises(RunStopped, match=r"Server error \(503\).*re-run the same command"):
        evaluate(server, benchmark, tmp_path, max_concurrency=1, retry=policy)
    assert len({r["cache_key"] for r in rows(tmp_path / "run")}) == 2
    evaluate(server, benchmark, tmp_path)
    assert len(rows(tmp_path / "run")) == 12 and all(n == 1 for n in server.answered.values())
