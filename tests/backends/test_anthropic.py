"""The Anthropic backend against llm-katan's Anthropic wire and our fault server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from servers import KATAN_ANTHROPIC_KEY, SLOW_SECONDS, Katan, fake_key

from mike_sdk.backend import BACKENDS, ChatMessage, Generation, GenerationRequest
from mike_sdk.backends.anthropic import AnthropicBackend, messages_body, to_messages
from mike_sdk.calls.failures import (
    AuthFailed,
    BadRequest,
    CallFailed,
    ModelNotFound,
    RateLimited,
    Transient,
)
from mike_sdk.chat import SYSTEM_INSTRUCTION, chat_messages, extract_chat_answer
from mike_sdk.errors import ConfigError
from mike_sdk.prompts.mike import query_text

QUERY = query_text("The capital of France is Lyon.", "What is the capital of France?")


def generate(backend: AnthropicBackend, requests: Sequence[GenerationRequest]) -> list[Generation]:
    async def go() -> list[Generation]:
        try:
            return await backend.generate(requests)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def echo_user(text: str) -> str:
    """The echoed user turn (the echo's first line has a timestamp)."""
    return text.split("\nUser: ", 1)[1]


def test_construction_is_cheap_and_keyless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    backend = BACKENDS.create("anthropic", model="claude-sonnet-4-5")
    assert isinstance(backend, AnthropicBackend)
    assert backend.identity.model == "claude-sonnet-4-5"
    assert backend.abilities.chat and not backend.abilities.completion
    with pytest.raises(AuthFailed, match="ANTHROPIC_API_KEY"):
        generate(backend, [GenerationRequest(prompt="hi")])


def test_prefill_only_after_the_answer_slot_and_where_the_profile_allows() -> None:
    older = AnthropicBackend("claude-haiku-4-5", api_key="k").settings
    assert older.prefill and older.sampling == "greedy" and older.api_version == "2023-06-01"
    request = GenerationRequest(messages=chat_messages(QUERY))
    body, started = messages_body("m", request, older, "anthropic-budget")
    assert body["system"] == SYSTEM_INSTRUCTION and started == '"'
    assert body["messages"] == [{"role": "user", "content": QUERY},
                                {"role": "assistant", "content": '"'}]
    assert body["stop_sequences"] == ['"'] and body["temperature"] == 0
    body, started = messages_body("m", GenerationRequest(prompt="Tell me a joke."), older,
                                  "anthropic-budget")
    assert started == "" and body["messages"] == [{"role": "user",
                                                   "content": "Tell me a joke."}]
    # Claude 4.6 refuses prefill; Opus 4.7 refuses temperature too.
    newer = AnthropicBackend("claude-sonnet-4-6", api_key="k").settings
    body, started = messages_body("m", request, newer, "anthropic-adaptive")
    assert started == "" and len(body["messages"]) == 1 and "stop_sequences" not in body
    latest = AnthropicBackend("claude-opus-4-7", api_key="k").settings
    body, _ = messages_body("m", request, latest, "anthropic-adaptive")
    assert "temperature" not in body and latest.sampling == "provider-default"
    assert latest.api_version is None  # the SDK's 2026-10-21
    with pytest.raises(BadRequest):
        to_messages(GenerationRequest(messages=(ChatMessage(role="system", content="x"),)))


def test_thinking_only_when_asked_with_its_budget_added() -> None:
    plain = AnthropicBackend("claude-sonnet-4-6", api_key="k")
    assert plain.settings.reasoning_effort is None
    assert "thinking" not in plain.payload(GenerationRequest(prompt="q"))[0]
    adaptive = AnthropicBackend("claude-sonnet-4-6", api_key="k", reasoning_effort="low",
                                reasoning_budget=2000)
    body, _ = adaptive.payload(GenerationRequest(messages=chat_messages(QUERY)))
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {
        "effort": "low"}
    # Thinking excludes temperature and prefill; its budget comes on top of the answer's.
    assert "temperature" not in body and len(body["messages"]) == 1
    assert body["max_tokens"] == 15 + 2000
    budget = AnthropicBackend("claude-haiku-4-5", api_key="k", reasoning_effort="on",
                              reasoning_budget=100)
    body, _ = budget.payload(GenerationRequest(prompt="q"))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}  # Anthropic's least
    with pytest.raises(ConfigError, match="valid: low, medium, high, max"):
        AnthropicBackend("claude-sonnet-4-6", api_key="k", reasoning_effort="minimal")


def test_system_messages_and_prefill_reach_the_server(katan: Katan) -> None:
    backend = AnthropicBackend("echo", base_url=katan.url, api_key=KATAN_ANTHROPIC_KEY,
                               profile="anthropic/claude-4.5-and-earlier")
    request = GenerationRequest(messages=chat_messages(QUERY), max_new_tokens=30)
    (reply,) = generate(backend, [request])
    header = reply.text.split("\n", 1)[0]
    # system + user + the assistant prefill, and the profile's temperature 0.
    assert "messages=3" in header and "max_tokens=30" in header and "temperature=0.0" in header
    assert reply.text.startswith('"[echo]')  # the prefill opens the returned text
    assert echo_user(reply.text) == QUERY
    words = len(SYSTEM_INSTRUCTION.split()) + len(QUERY.split()) + 1
    assert reply.input_tokens == words and reply.output_tokens and reply.output_tokens > 5
    assert reply.cached_input_tokens is None and reply.finish_reason == "eos"


def test_without_prefill(katan: Katan) -> None:
    backend = AnthropicBackend("echo", base_url=katan.url, api_key=KATAN_ANTHROPIC_KEY,
                               prefill=False)
    (reply,) = generate(backend, [GenerationRequest(messages=chat_messages(QUERY))])
    assert "messages=2" in reply.text.split("\n", 1)[0] and reply.text.startswith("[echo]")


def test_prefilled_text_extracts_the_answer() -> None:
    # What Claude returns after the prefill, as the backend hands it to the strategy.
    assert extract_chat_answer('"' + 'Lyon"') == "Lyon"
    assert extract_chat_answer('"' + "Lyon") == "Lyon"


def test_wrong_key_is_auth_failed(katan: Katan) -> None:
    wrong = fake_key("wrong_anthropic_key")
    backend = AnthropicBackend("echo", base_url=katan.url, api_key=wrong)
    with pytest.raises(AuthFailed, match="ANTHROPIC_API_KEY") as caught:
        generate(backend, [GenerationRequest(prompt="hi")])
    assert caught.value.status == 401 and wrong not in str(caught.value)


def test_katan_faults(katan: Katan) -> None:
    backend = AnthropicBackend("echo", base_url=katan.url, api_key=KATAN_ANTHROPIC_KEY)
    request = GenerationRequest(prompt="hi")
    generate(backend, [request])
    reset = (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat()
    with katan.knobs(rate_limit_after=1):
        katan.headers_on_error["anthropic-ratelimit-requests-reset"] = reset
        with pytest.raises(RateLimited) as limited:
            generate(backend, [request])
    assert limited.value.retry_after is not None and 25 < limited.value.retry_after <= 30
    with katan.knobs(error_rate=1.0), pytest.raises(Transient) as broken:
        generate(backend, [request])
    assert broken.value.status == 500
    with katan.knobs(max_inflight=1, latency_ms=300), pytest.raises(Transient) as busy:
        generate(backend, [request, request])
    assert busy.value.status == 503


@pytest.mark.parametrize(("model", "failure", "status", "wait"), [
    ("unauthorized", AuthFailed, 401, None),
    ("forbidden", AuthFailed, 403, None),
    ("missing", ModelNotFound, 404, None),
    ("bad", BadRequest, 400, None),
    ("limited", RateLimited, 429, 2.0),
    ("limited-ms", RateLimited, 429, 1.5),
    ("broken", Transient, 500, None),
    ("overloaded", Transient, 503, 3.0),
    ("anthropic-overloaded", Transient, 529, None),
])
def test_status_mapping(faults: str, model: str, failure: type[CallFailed], status: int,
                        wait: float | None) -> None:
    key = fake_key("fault_anthropic_key")
    backend = AnthropicBackend(model, base_url=faults, api_key=key)
    with pytest.raises(failure) as caught:
        generate(backend, [GenerationRequest(prompt="hi")])
    assert type(caught.value) is failure and caught.value.status == status
    assert caught.value.retry_after == wait
    assert key not in str(caught.value) and "***" in str(caught.value)


def test_anthropic_reset_header_is_the_longest_wait(faults: str) -> None:
    backend = AnthropicBackend("limited-anthropic", base_url=faults, api_key="k")
    with pytest.raises(RateLimited) as caught:
        generate(backend, [GenerationRequest(prompt="hi")])
    assert caught.value.retry_after is not None and caught.value.retry_after > 1e9


def test_timeout_and_dropped_connection_are_transient(faults: str) -> None:
    started = time.monotonic()
    with pytest.raises(Transient, match="timed out"):
        generate(AnthropicBackend("slow", base_url=faults, api_key="k", timeout=0.3),
                 [GenerationRequest(prompt="hi")])
    assert time.monotonic() - started < SLOW_SECONDS
    with pytest.raises(Transient, match="Could not reach"):
        generate(AnthropicBackend("drop", base_url=faults, api_key="k"),
                 [GenerationRequest(prompt="hi")])
