"""Every current model family, evaluated on real BMIKE-53 prompts against the strict server.

The strict server (``tests/strict_api.py``) stands in for the OpenAI, Azure OpenAI,
Anthropic, Bedrock and Vertex AI APIs, which cannot be reached from the tests: it refuses
what each family refuses under each API version (sources in ``docs/backends.md``) and
answers each query with the last word of its new fact (``intended_answer``), in formats
that vary by prompt (``A``, ``"A"``, ``A`` then an explanation, a prefilled ``A"``). A run
passes when it has no error row and every answer is the one the server meant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rows import read_rows, results_text
from servers import fake_key
from strict_api import (
    STRICT_ANTHROPIC_KEY,
    STRICT_AZURE_KEY,
    STRICT_OPENAI_KEY,
    STRICT_VERTEX_TOKEN,
    StrictServer,
    intended_answer,
)

from mike_sdk.backend import BACKENDS, Backend, GenerationRequest
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.refusals import WINDOW
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import BackendError
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.files import Summary
from mike_sdk.runfolder.prompts import read_requests

CONFIG = EvalConfig(tasks=("zsre",), languages=("de", "zh"), strategy="one-shot", limit=3,
                    language_id="script")


def make(kind: str, model: str, url: str, **options: Any) -> Backend:
    where: dict[str, Any] = {
        "openai": {"base_url": f"{url}/v1", "api_key": STRICT_OPENAI_KEY},
        "anthropic": {"base_url": url, "api_key": STRICT_ANTHROPIC_KEY},
        "azure-openai": {"endpoint": url, "api_key": STRICT_AZURE_KEY,
                         "api_version": "2025-04-01-preview"},
        "anthropic-bedrock": {"base_url": url, "aws_region": "us-east-1",
                              "aws_access_key": "test-access-key-id",
                              "aws_secret_key": fake_key("aws_secret_key")},
        "anthropic-vertex": {"base_url": f"{url}/v1", "region": "us-east5",
                             "project_id": "p", "access_token": STRICT_VERTEX_TOKEN},
    }[kind]
    return BACKENDS.create(kind, model=model, **where, **options)


def run(backend: Backend, benchmark: Benchmark, tmp_path: Path,
        config: EvalConfig = CONFIG) -> tuple[Summary, list[dict[str, Any]]]:
    """Run, and return the rows with the request each one sent (``asked``)."""
    with ResponseCache(tmp_path / "cache") as cache:
        summary = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(
            config, tmp_path / "run")
    rows = read_rows(tmp_path / "run")
    requests = read_requests(tmp_path / "run")
    for row in rows:
        request = requests[row["cache_key"]]
        row["asked"] = request.prompt if request.prompt is not None \
            else request.messages[-1].content  # type: ignore[index]
    return summary, rows


def asked(row: dict[str, Any]) -> str:
    return str(row["asked"])


@pytest.mark.parametrize(("kind", "model", "options", "sampling"), [
    ("openai", "gpt-5-mini", {}, "provider-default"),
    ("openai", "gpt-4.1-mini", {}, "greedy"),
    ("openai", "o4-mini", {}, "provider-default"),
    ("openai", "gpt-5-chat-latest", {}, "greedy"),
    ("anthropic", "claude-sonnet-4-6", {}, "greedy"),
    ("anthropic", "claude-opus-4-7", {}, "provider-default"),
    ("anthropic", "claude-haiku-4-5", {}, "greedy"),
    ("anthropic", "claude-sonnet-4-6", {"reasoning_effort": "low"}, "provider-default"),
    ("azure-openai", "gpt-5-mini", {"deployment": "my-gpt5-mini"}, "provider-default"),
    ("anthropic-bedrock", "us.anthropic.claude-sonnet-4-6", {}, "greedy"),
    ("anthropic-bedrock", "anthropic.claude-opus-4-7", {}, "provider-default"),
    ("anthropic-vertex", "claude-haiku-4-5@20251001", {}, "greedy"),
])
def test_each_family_runs_clean(strict_api: StrictServer, benchmark: Benchmark,
                                tmp_path: Path, kind: str, model: str, options: dict[str, Any],
                                sampling: str) -> None:
    strict_api.reset()
    summary, rows = run(make(kind, model, strict_api.url, **options), benchmark, tmp_path)
    assert summary.totals.errors == 0 and len(rows) == 24
    assert all(r["error"] is None for r in rows)
    assert [r["answer"] for r in rows] == [intended_answer(asked(r)) for r in rows]
    assert {e["status"] for e in strict_api.log} == {200}
    assert summary.requests is not None and summary.requests.sampling == sampling
    assert summary.chat_protocol is not None  # chat runs record the protocol
    assert summary.totals.cost_usd is not None and summary.totals.cost_usd > 0


def test_reasoning_tokens_are_counted_and_priced(strict_api: StrictServer,
                                                 benchmark: Benchmark, tmp_path: Path) -> None:
    backend = make("openai", "o4-mini", strict_api.url, reasoning_effort="medium")
    summary, rows = run(backend, benchmark, tmp_path)
    # The server spends 256 hidden tokens at medium effort, billed as output.
    assert all(r["reasoning_tokens"] == 256 for r in rows)
    # Counted once per request (rows may share one).
    unique = len({r["cache_key"] for r in rows})
    assert summary.totals.reasoning_tokens == 256 * unique == 256 * summary.totals.paid_requests
    assert all(r["output_tokens"] > 256 for r in rows)
    assert summary.totals.out_of_reasoning_budget == 0


def test_a_starved_answer_is_its_own_finish_reason(strict_api: StrictServer,
                                                   benchmark: Benchmark, tmp_path: Path) -> None:
    backend = make("openai", "o4-mini", strict_api.url, reasoning_effort="high",
                   reasoning_budget=200)
    summary, rows = run(backend, benchmark, tmp_path)
    assert {r["finish_reason"] for r in rows} == {"reasoning"}
    assert {r["answer"] for r in rows} == {""} and summary.totals.errors == 0
    assert summary.totals.out_of_reasoning_budget == len(rows)


def test_a_wrong_profile_stops_within_the_refusal_window(
        strict_api: StrictServer, benchmark: Benchmark, tmp_path: Path) -> None:
    wrong = tmp_path / "profiles.json"
    wrong.write_text(json.dumps([{
        "name": "openai/wrong", "provider": "openai", "models": ["gpt-5*"], "sampling": True,
        "stop": True, "token_limit": "max_completion_tokens"}]))
    strict_api.reset()
    backend = make("openai", "gpt-5-mini", strict_api.url, profiles=str(wrong))
    with pytest.raises(BackendError) as caught:  # the run stops on a SystematicRefusal
        run(backend, benchmark, tmp_path, CONFIG.model_copy(update={"limit": 50}))
    message = str(caught.value)
    assert "Unsupported value: 'temperature' does not support 0" in message
    assert "model profile 'openai/wrong'" in message
    # WINDOW identical refusals, then nothing new is sent: at most what was in flight then.
    assert isinstance(backend, Backend)
    assert len(strict_api.log) <= WINDOW + backend.abilities.max_concurrency
    rows = results_text(tmp_path / "run").splitlines()
    assert rows == []  # nothing written: the fixed run sends them all again


def test_the_manifest_records_the_requests(strict_api: StrictServer, benchmark: Benchmark,
                                           tmp_path: Path) -> None:
    run(make("anthropic", "claude-haiku-4-5", strict_api.url), benchmark, tmp_path)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["requests"]["profile"] == "anthropic/claude-4.5-and-earlier"
    assert manifest["requests"]["prefill"] and manifest["requests"]["api_version"] == "2023-06-01"
    assert manifest["backend"]["settings"] == "greedy,prefill,stop"
    assert manifest["chat_protocol"]["answer_tokens"] == 15
    assert {e["headers"]["anthropic-version"] for e in strict_api.log} >= {"2023-06-01"}


def test_the_reasoning_budget_counts_in_the_cost_bounds(strict_api: StrictServer) -> None:
    plain = ModelClient(make("openai", "gpt-4.1-mini", strict_api.url))
    reasoning = ModelClient(make("openai", "o4-mini", strict_api.url, reasoning_budget=2000))
    assert (plain.hidden_output, reasoning.hidden_output) == (0, 2000)
    request = [GenerationRequest(prompt="x" * 400)]
    # o4-mini: at most 400 + 16 input tokens at $1.10/M, 15 + 2000 output at $4.40/M.
    assert reasoning.guard.estimated_cost(request) == pytest.approx(
        (416 * 1.1 + 2015 * 4.4) / 1e6)
