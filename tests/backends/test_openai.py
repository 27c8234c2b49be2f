"""The OpenAI backend against real local servers: llama.cpp (a real model) and fault wires."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from rows import read_rows
from servers import FAULTS, KATAN_OPENAI_KEY, SLOW_SECONDS, Katan, fake_key

from mike_sdk.backend import BACKENDS, ChatMessage, Generation, GenerationRequest
from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.failures import (
    AuthFailed,
    BadRequest,
    CallFailed,
    ModelNotFound,
    RateLimited,
    Transient,
)
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.prompts.mike import query_text
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.prompts import read_requests

PAPER_PROMPT = query_text("The capital of France is Lyon.", "What is the capital of France?")
QUESTION = (ChatMessage(role="user", content="What is the capital of France? One word."),)


def generate(backend: OpenAIBackend, requests: Sequence[GenerationRequest]) -> list[Generation]:
    async def go() -> list[Generation]:
        try:
            return await backend.generate(requests)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def test_construction_is_cheap_and_keyless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    backend = BACKENDS.create("openai", model="gpt-4o-mini")
    assert isinstance(backend, OpenAIBackend)
    assert backend.identity.model == "gpt-4o-mini" and backend.identity.kind == "openai"
    assert backend.abilities.chat and not backend.abilities.completion
    assert backend._client is None  # no connection (nor SDK client) before the first call
    with pytest.raises(AuthFailed, match="OPENAI_API_KEY"):
        generate(backend, [GenerationRequest(prompt="hi")])


def test_registering_and_creating_import_no_sdk() -> None:
    code = ("import sys; from mike_sdk.backend import BACKENDS, Backend; "
            "bs = [BACKENDS.create(k, model='m') for k in ('openai', 'anthropic')]; "
            "[(b.identity, b.abilities, repr(b)) for b in bs]; "
            "assert all(isinstance(b, Backend) for b in bs); "
            "print(sorted({'openai', 'anthropic', 'httpx2'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_invalid_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'openai' backend"):
        OpenAIBackend("m", mode="chatty")  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        OpenAIBackend("m", max_concurrency=0, api_key="key-do-not-show")
    assert "key-do-not-show" not in str(caught.value)


def test_identity_names_the_server() -> None:
    # Credentials in the URL are refused (tests/backends/test_secrets.py).
    backend = OpenAIBackend("m", base_url="http://127.0.0.1:8080/v1", mode="completions")
    assert backend.identity.model == "m@127.0.0.1:8080"
    assert backend.abilities.completion and not backend.abilities.chat


def test_requests_follow_the_models_profile() -> None:
    chat = GenerationRequest(messages=QUESTION, stop=('"',))
    reasoning = OpenAIBackend("gpt-5-mini", api_key="k").payload(chat)
    # Reasoning models: no temperature, no stop, the newer limit with the reasoning budget.
    assert reasoning == {"model": "gpt-5-mini", "messages": [dict(QUESTION[0])],
                         "max_completion_tokens": 15 + 1024, "reasoning_effort": "minimal"}
    assert OpenAIBackend("o4-mini", api_key="k", reasoning_effort="high",
                         reasoning_budget=4000).payload(chat)["max_completion_tokens"] == 4015
    classic = OpenAIBackend("gpt-4.1-mini", api_key="k").payload(chat)
    assert classic["temperature"] == 0 and classic["stop"] == ['"']
    assert classic["max_completion_tokens"] == 15 and "reasoning_effort" not in classic
    # An OpenAI-compatible server gets the classic field name.
    compatible = OpenAIBackend("llama", base_url="http://h:1/v1", api_key="k").payload(chat)
    assert compatible["max_tokens"] == 15 and compatible["temperature"] == 0
    # The settings are part of the cache identity.
    assert OpenAIBackend("gpt-5-mini", api_key="k").identity.settings == (
        "provider-default,effort=minimal,reasoning_budget=1024")


# ------------------------------------------------------------------- llama.cpp, SmolLM2

def test_chat_mode_real_model(llama: str) -> None:
    backend = OpenAIBackend("smollm2", base_url=llama, api_key="unused")
    request = GenerationRequest(messages=QUESTION, max_new_tokens=8)
    first, again = generate(backend, [request, request])
    assert first.text.strip() and first.text == again.text  # greedy: deterministic
    assert first.input_tokens and first.input_tokens > 5
    assert first.output_tokens and 0 < first.output_tokens <= 8
    assert first.finish_reason in ("eos", "length")
    assert first.logprobs is None


def test_chat_mode_wraps_a_completion_prompt(llama: str) -> None:
    backend = OpenAIBackend("smollm2", base_url=llama, api_key="unused")
    (reply,) = generate(backend, [GenerationRequest(prompt="Say hello.", max_new_tokens=4)])
    assert reply.text.strip() and reply.output_tokens and reply.output_tokens <= 4


def test_completions_mode_paper_protocol(llama: str) -> None:
    backend = OpenAIBackend("smollm2", base_url=llama, api_key="unused", mode="completions")
    stopped = GenerationRequest(prompt=PAPER_PROMPT, stop=('"',), max_new_tokens=15)
    capped = GenerationRequest(prompt="Once upon a time", max_new_tokens=3)
    first, cut = generate(backend, [stopped, capped])
    (again,) = generate(backend, [stopped])
    assert first.text == again.text and '"' not in first.text
    assert first.text.strip() == "Lyon"  # SmolLM2 follows the edit; greedy, so stable
    assert first.finish_reason == "stop"
    assert first.input_tokens and first.input_tokens > 10
    assert cut.finish_reason == "length" and cut.output_tokens == 3


@pytest.mark.parametrize("mode", ["chat", "completions"])
def test_logprobs_when_asked(llama: str, mode: str) -> None:
    backend = OpenAIBackend("smollm2", base_url=llama, api_key="unused", mode=mode)  # type: ignore[arg-type]
    request = GenerationRequest(prompt="The sky is", messages=QUESTION, max_new_tokens=4,
                                logprobs=True)
    (reply,) = generate(backend, [request])
    assert reply.logprobs is not None and len(reply.logprobs) == reply.output_tokens
    assert all(value <= 0 for value in reply.logprobs)


def test_completions_mode_refuses_chat_only_requests(llama: str) -> None:
    backend = OpenAIBackend("smollm2", base_url=llama, api_key="unused", mode="completions")
    with pytest.raises(BadRequest, match="completion prompt"):
        generate(backend, [GenerationRequest(messages=QUESTION)])


def test_evaluator_runs_the_paper_protocol(llama: str, benchmark: Benchmark,
                                           tmp_path: Path) -> None:
    backend = OpenAIBackend("smollm2", base_url=llama, api_key="unused", mode="completions")
    config = EvalConfig(tasks=("zsre",), languages=("de",), strategy="zero-shot", limit=2,
                        metrics=("reliability",), language_id="script")
    with ResponseCache(tmp_path / "cache") as cache:
        summary = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(
            config, tmp_path / "run")
    rows = read_rows(tmp_path / "run")
    assert summary.totals.rows == 2 and summary.totals.errors == 0
    assert summary.backend.model.startswith("smollm2@127.0.0.1:")
    requests = read_requests(tmp_path / "run")
    for row in rows:
        assert requests[row["cache_key"]].prompt.endswith('Answer: "')
        assert row["answer"] == row["output"].split('"')[0]


# ---------------------------------------------------------------------- failures

def test_wrong_key_is_auth_failed_naming_the_variable(katan: Katan) -> None:
    wrong = "fake-wrong-0123456789abcdef"
    backend = OpenAIBackend("echo", base_url=f"{katan.url}/v1", api_key=wrong)
    with pytest.raises(AuthFailed, match="OPENAI_API_KEY") as caught:
        generate(backend, [GenerationRequest(prompt="hi")])
    assert caught.value.status == 401 and wrong not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_katan_rate_limit_and_server_errors(katan: Katan) -> None:
    backend = OpenAIBackend("echo", base_url=f"{katan.url}/v1", api_key=KATAN_OPENAI_KEY)
    request = GenerationRequest(prompt="hi")
    (ok,) = generate(backend, [request])
    assert "User: hi" in ok.text and ok.finish_reason == "eos"
    with katan.knobs(rate_limit_after=1):  # llm-katan counts requests since it started
        katan.headers_on_error["retry-after"] = "4"
        with pytest.raises(RateLimited) as limited:
            generate(backend, [request])
    assert limited.value.status == 429 and limited.value.retry_after == 4.0
    with katan.knobs(error_rate=1.0), pytest.raises(Transient) as broken:
        generate(backend, [request])
    assert broken.value.status == 500
    with katan.knobs(max_inflight=1, latency_ms=300), pytest.raises(Transient) as busy:
        generate(backend, [request, request])  # the second arrives while the first sleeps
    assert busy.value.status == 503


@pytest.mark.parametrize(("model", "failure", "status", "wait"), [
    ("unauthorized", AuthFailed, 401, None),
    ("forbidden", AuthFailed, 403, None),
    ("missing", ModelNotFound, 404, None),
    ("bad", BadRequest, 400, None),
    ("unprocessable", BadRequest, 422, None),
    ("limited", RateLimited, 429, 2.0),
    ("limited-ms", RateLimited, 429, 1.5),
    ("limited-reset", RateLimited, 429, 90.0),
    ("broken", Transient, 500, None),
    ("overloaded", Transient, 503, 3.0),
])
def test_status_mapping(faults: str, model: str, failure: type[CallFailed], status: int,
                        wait: float | None) -> None:
    assert model in FAULTS
    key = fake_key("fault_openai_key")
    backend = OpenAIBackend(model, base_url=f"{faults}/v1", api_key=key)
    with pytest.raises(failure) as caught:
        generate(backend, [GenerationRequest(prompt="hi")])
    assert type(caught.value) is failure and caught.value.status == status
    assert caught.value.retry_after == wait
    assert key not in str(caught.value) and "***" in str(caught.value)


def test_slow_reply_past_the_timeout_is_transient(faults: str) -> None:
    backend = OpenAIBackend("slow", base_url=f"{faults}/v1", api_key="k", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(Transient, match="timed out"):
        generate(backend, [GenerationRequest(prompt="hi")])
    assert time.monotonic() - started < SLOW_SECONDS


def test_dropped_connection_is_transient(faults: str) -> None:
    backend = OpenAIBackend("drop", base_url=f"{faults}/v1", api_key="k")
    with pytest.raises(Transient, match="Could not reach"):
        generate(backend, [GenerationRequest(prompt="hi")])


def test_nothing_listening_is_transient() -> None:
    from servers import free_port

    backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k")
    with pytest.raises(Transient):
        generate(backend, [GenerationRequest(prompt="hi")])
