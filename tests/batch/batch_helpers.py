"""Shared set-up of the batch-mode tests.

The loopback server of tests/batch_servers.py stands in for OpenAI's Batch API and
Anthropic's Message Batches (the real services cannot be reached from the tests; the
documentation behind each behaviour is cited there) and serves the strict live APIs on the
same base URL, so that live and batch runs share backend identities and cache keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from batch_servers import BatchServer
from strict_api import STRICT_ANTHROPIC_KEY, STRICT_OPENAI_KEY

from mike_sdk.backend import BACKENDS, Backend
from mike_sdk.batch.mode import BatchRun, run_batched
from mike_sdk.batch.options import BatchOptions
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.retry import RetryPolicy
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.files import Summary
from mike_sdk.runfolder.rundir import iter_result_rows

CONFIG = EvalConfig(tasks=("zsre",), languages=("de", "zh"), strategy="one-shot", limit=3,
                    language_id="script")
FAST = BatchOptions(poll_initial_s=0.02, poll_max_s=0.1)
RETRY = RetryPolicy(base_wait_s=0.02, max_wait_s=0.2, max_attempts=20, deadline_s=30)
MODELS = {"openai": "gpt-5-mini", "anthropic": "claude-haiku-4-5"}


def backend(server: BatchServer, kind: str, model: str | None = None) -> Backend:
    where: dict[str, Any] = {
        "openai": {"base_url": f"{server.url}/v1", "api_key": STRICT_OPENAI_KEY},
        "anthropic": {"base_url": server.url, "api_key": STRICT_ANTHROPIC_KEY}}[kind]
    return BACKENDS.create(kind, model=model or MODELS[kind], **where)


def batch(server: BatchServer, kind: str, benchmark: Benchmark, folder: Path, *,
          config: EvalConfig = CONFIG, options: BatchOptions = FAST,
          limits: Limits | None = None, cache: str = "cache") -> BatchRun:
    with ResponseCache(folder / cache) as responses:
        client = ModelClient(backend(server, kind), cache=responses,
                             limits=limits or Limits(retry=RETRY))
        return run_batched(client, config, folder / "run", benchmark=benchmark,
                           options=options, progress=False)


def live(server: BatchServer, kind: str, benchmark: Benchmark, folder: Path, *,
         config: EvalConfig = CONFIG, cache: str = "cache") -> Summary:
    with ResponseCache(folder / cache) as responses:
        return Evaluator(backend(server, kind), benchmark=benchmark, cache=responses,
                         progress=False).run(config, folder / "run")


def rows(folder: Path) -> list[dict[str, Any]]:
    """The run's rows, read as the SDK reads them, by id."""
    found = [row.model_dump(mode="json") for row in iter_result_rows(folder / "run")]
    return sorted(found, key=lambda r: r["id"])


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "run" / "batches.jsonl").open()]


def same_rows(batched: list[dict[str, Any]], direct: list[dict[str, Any]]) -> None:
    """Identical rows but for what batch mode changes on purpose: the price (half) and
    ``cached`` (a key asked twice in a live run is a cache hit the second time)."""
    assert [r["id"] for r in batched] == [r["id"] for r in direct]
    for b, d in zip(batched, direct, strict=True):
        assert {k: v for k, v in b.items() if k not in ("cost_usd", "cached")} == \
            {k: v for k, v in d.items() if k not in ("cost_usd", "cached")}
        assert b["cost_usd"] is not None and d["cost_usd"] is not None
        assert abs(b["cost_usd"] - d["cost_usd"] / 2) < 1e-12
