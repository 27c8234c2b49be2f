"""The strict stand-in server (tests/strict_api.py), driven through the official SDKs.

The real OpenAI, Azure OpenAI, Anthropic, Bedrock and Vertex AI endpoints cannot be reached from
the test machines; the strict server stands in for them with their late-2026 rules. These tests
check that it refuses and answers as the providers do, through the very clients that talk to them.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anthropic
import openai
import pytest
from anthropic.types import Message
from openai.types import Completion
from openai.types.chat import ChatCompletion
from servers import fake_key
from strict_api import (
    REASONING_TOKENS,
    STRICT_ANTHROPIC_KEY,
    STRICT_AZURE_KEY,
    STRICT_OPENAI_KEY,
    STRICT_VERTEX_TOKEN,
    StrictServer,
    intended_answer,
    tokens,
)

T = TypeVar("T")
STRICT: dict[str, Any] = {"max_retries": 0, "_strict_response_validation": True}
PROMPT = ('New Fact: "The capital of France is Rome."\n'
          'Question: "What is the capital of France?" Answer: "')
USER = [{"role": "user", "content": PROMPT}]
PREFILLED = [*USER, {"role": "assistant", "content": '"'}]


def run(call: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(call())


def oai(server: StrictServer, key: str = STRICT_OPENAI_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, **STRICT)


def ant(server: StrictServer, version: str | None = None) -> anthropic.AsyncAnthropic:
    headers = {"anthropic-version": version} if version else None
    return anthropic.AsyncAnthropic(base_url=server.url, api_key=STRICT_ANTHROPIC_KEY,
                                    **STRICT, default_headers=headers)


def chat(server: StrictServer, **body: Any) -> ChatCompletion:
    async def go() -> ChatCompletion:
        async with oai(server) as client:
            return await client.post("/chat/completions", body={"messages": USER, **body},
                                     cast_to=ChatCompletion)
    return run(go)


def claude(server: StrictServer, version: str | None = None, **body: Any) -> Message:
    async def go() -> Message:
        async with ant(server, version) as client:
            return await client.post("/v1/messages", body={"max_tokens": 64, **body},
                                     cast_to=Message)
    return run(go)


def refused(error: type[Exception], call: Callable[[], Any]) -> Any:
    with pytest.raises(error) as caught:
        call()
    return caught.value


def test_intended_answer_and_tokens() -> None:
    assert intended_answer(PROMPT) == "Rome"
    assert intended_answer('New Fact: "a b"\nNew Fact: "x is Oslo!"') == "Oslo"
    assert intended_answer("no fact here") == "unknown"
    assert (tokens(""), tokens("abcd"), tokens("abcde")) == (1, 1, 2)


# ---------------------------------------------------------------------------- OpenAI

@pytest.mark.parametrize(("extra", "param", "words"), [
    ({"temperature": 0}, "temperature", "'temperature' does not support 0 with this model"),
    ({"stop": ['"']}, "stop", "Unsupported parameter: 'stop' is not supported"),
    ({"max_tokens": 50}, "max_tokens", "Use 'max_completion_tokens' instead"),
    ({"reasoning_effort": "minimal"}, "reasoning_effort", "does not support 'minimal'"),
])
def test_reasoning_model_refusals(strict_api: StrictServer, extra: dict[str, Any], param: str,
                                  words: str) -> None:
    model = "o4-mini" if param == "reasoning_effort" else "gpt-5-mini"
    error = refused(openai.BadRequestError, lambda: chat(strict_api, model=model, **extra))
    assert error.status_code == 400 and error.param == param
    assert words in error.message


def test_reasoning_model_budget(strict_api: StrictServer) -> None:
    reply = chat(strict_api, model="gpt-5-mini", max_completion_tokens=64,
                 reasoning_effort="minimal")
    assert reply.choices[0].finish_reason == "stop"
    assert "Rome" in (reply.choices[0].message.content or "")
    assert reply.usage and reply.usage.completion_tokens_details
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0
    small = chat(strict_api, model="o3", max_completion_tokens=100)  # medium effort: 256
    assert small.choices[0].message.content == ""
    assert small.choices[0].finish_reason == "length"
    assert small.usage and small.usage.completion_tokens == 100
    assert small.usage.completion_tokens_details.reasoning_tokens == 100  # type: ignore[union-attr]
    high = chat(strict_api, model="gpt-5", reasoning_effort="high", temperature=1)
    assert high.usage and high.usage.completion_tokens_details
    assert high.usage.completion_tokens_details.reasoning_tokens == REASONING_TOKENS["high"]


def test_chat_model_accepts_greedy_and_stop(strict_api: StrictServer) -> None:
    reply = chat(strict_api, model="gpt-4.1-mini", temperature=0, stop=['"', "\n"], max_tokens=8)
    assert reply.choices[0].message.content in ("Rome", "")  # "" where the reply was '"Rome"'
    assert reply.usage and reply.usage.completion_tokens_details
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0
    assert reply.usage.prompt_tokens == tokens(PROMPT)
    error = refused(openai.BadRequestError, lambda: chat(
        strict_api, model="gpt-5-chat-latest", reasoning_effort="low"))
    assert "Unrecognized request argument supplied: reasoning_effort" in error.message
    error = refused(openai.BadRequestError, lambda: chat(strict_api, model="gpt-4o", seeds=1))
    assert "Unrecognized request argument supplied: seeds" in error.message


def test_completions_endpoint(strict_api: StrictServer) -> None:
    async def complete(model: str) -> Completion:
        async with oai(strict_api) as client:
            return await client.post("/completions", cast_to=Completion, body={
                "model": model, "prompt": PROMPT, "stop": ['"'], "max_tokens": 5,
                "temperature": 0, "logprobs": 1})
    reply = run(lambda: complete("gpt-3.5-turbo-instruct"))
    assert reply.choices[0].text == "Rome" and reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].logprobs and reply.choices[0].logprobs.tokens == ["Rome"]
    error = refused(openai.NotFoundError, lambda: run(lambda: complete("gpt-4.1-mini")))
    assert "This is a chat model and not supported in the v1/completions endpoint" in error.message
    error = refused(openai.NotFoundError, lambda: run(lambda: complete("davinci-002")))
    assert error.code == "model_not_found"


def test_bad_key_is_refused_without_echo(strict_api: StrictServer) -> None:
    wrong = fake_key("wrong_openai_key")

    async def go() -> ChatCompletion:
        async with oai(strict_api, wrong) as client:
            return await client.post("/chat/completions", cast_to=ChatCompletion,
                                     body={"model": "gpt-4o", "messages": USER})
    error = refused(openai.AuthenticationError, lambda: run(go))
    assert error.status_code == 401 and error.code == "invalid_api_key"
    assert wrong not in str(error.body) and "SECRET" not in str(error.body)


def test_azure(strict_api: StrictServer) -> None:
    strict_api.reset()

    async def go(deployment: str, **body: Any) -> ChatCompletion:
        async with openai.AsyncAzureOpenAI(azure_endpoint=strict_api.url, api_key=STRICT_AZURE_KEY,
                                           api_version="2024-10-21", **STRICT) as client:
            return await client.post("/chat/completions", cast_to=ChatCompletion,
                                     body={"model": deployment, "messages": USER, **body})
    reply = run(lambda: go("my-gpt5-mini", max_completion_tokens=2000))
    assert reply.model == "gpt-5-mini" and "Rome" in (reply.choices[0].message.content or "")
    entry = strict_api.log[-1]
    assert entry["path"] == "/openai/deployments/my-gpt5-mini/chat/completions"
    assert entry["query"] == {"api-version": "2024-10-21"} and entry["headers"]["auth"] == "api-key"
    assert STRICT_AZURE_KEY not in repr(strict_api.log)
    error = refused(openai.BadRequestError, lambda: run(lambda: go("my-gpt5-mini", temperature=0)))
    assert error.param == "temperature"
    assert run(lambda: go("my-gpt41-mini", temperature=0)).model == "gpt-4.1-mini"
    refused(openai.NotFoundError, lambda: run(lambda: go("nobody")))


def test_chat_logprobs_and_raw_wire(strict_api: StrictServer) -> None:
    reply = chat(strict_api, model="gpt-4o-mini", logprobs=True, top_logprobs=1, n=2)
    assert len(reply.choices) == 2 and reply.choices[0].logprobs
    assert "".join(t.token for t in reply.choices[0].logprobs.content or []) == \
        reply.choices[0].message.content

    def post(path: str, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"{strict_api.url}{path}", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
    body = json.dumps({"model": "gpt-4.1-mini", "messages": USER}).encode()
    assert post("/openai/deployments/my-gpt41-mini/chat/completions", body,
                **{"api-key": STRICT_AZURE_KEY}) == (
        404, {"error": {"code": "404", "message": "Resource not found"}})
    bearer = {"Authorization": f"Bearer {STRICT_OPENAI_KEY}"}
    status, payload = post("/v1/chat/completions", body[:-1] + b', "stream": true}', **bearer)
    assert (status, payload["error"]["param"]) == (400, "stream")
    assert post("/v1/chat/completions", b"{not json", **bearer)[0] == 400
    assert post("/v1/embeddings", body, **bearer)[0] == 404
    assert "SECRET" not in repr(strict_api.log)


# ---------------------------------------------------------------------------- Anthropic

def test_anthropic_versions_and_temperature(strict_api: StrictServer) -> None:
    strict_api.reset()
    error = refused(anthropic.BadRequestError, lambda: claude(
        strict_api, model="claude-haiku-4-5", messages=USER, temperature=0))
    assert error.body["error"]["message"] == "temperature: Extra inputs are not permitted"
    assert error.body["error"]["type"] == "invalid_request_error"
    assert strict_api.log[-1]["headers"]["anthropic-version"] == "2026-10-21"
    assert strict_api.log[-1]["headers"]["auth"] == "bearer"
    reply = claude(strict_api, "2023-06-01", model="claude-haiku-4-5", messages=USER,
                   temperature=0)
    assert reply.content[0].text in ("Rome", '"Rome"')  # type: ignore[union-attr]
    assert reply.stop_reason == "end_turn" and reply.usage.input_tokens == tokens(PROMPT)
    for version in (None, "2023-06-01"):
        error = refused(anthropic.BadRequestError, lambda v=version: claude(  # type: ignore[misc]
            strict_api, v, model="claude-opus-4-7", messages=USER, temperature=0))
        assert "temperature" in error.message
    assert "temperature is deprecated for this model" in error.message
    error = refused(anthropic.BadRequestError, lambda: claude(
        strict_api, "2024-01-01", model="claude-haiku-4-5", messages=USER))
    assert "anthropic-version" in error.message
    error = refused(anthropic.NotFoundError, lambda: claude(
        strict_api, model="claude-3-opus", messages=USER))
    assert error.body["error"]["type"] == "not_found_error"


def test_anthropic_prefill(strict_api: StrictServer) -> None:
    reply = claude(strict_api, model="claude-haiku-4-5-20251001", messages=PREFILLED,
                   stop_sequences=['"'])
    assert reply.content[0].text == "Rome"  # type: ignore[union-attr]
    assert (reply.stop_reason, reply.stop_sequence) == ("stop_sequence", '"')
    error = refused(anthropic.BadRequestError, lambda: claude(
        strict_api, model="claude-sonnet-4-6", messages=PREFILLED))
    assert "does not support assistant message prefill" in error.message
    error = refused(anthropic.BadRequestError, lambda: claude(
        strict_api, model="claude-haiku-4-5", messages=[*USER, {"role": "assistant",
                                                                "content": '" '}]))
    assert "trailing whitespace" in error.message


def test_anthropic_thinking(strict_api: StrictServer) -> None:
    reply = claude(strict_api, model="claude-sonnet-4-6", messages=USER, max_tokens=4000,
                   thinking={"type": "adaptive"}, output_config={"effort": "low"})
    assert [block.type for block in reply.content] == ["thinking", "text"]
    text = reply.content[1].text  # type: ignore[union-attr]
    assert reply.usage.output_tokens == 128 + tokens(text)
    cut = claude(strict_api, model="claude-haiku-4-5", messages=USER, max_tokens=1025,
                 thinking={"type": "enabled", "budget_tokens": 1024},
                 output_config={"effort": "high"})
    assert [block.type for block in cut.content] == ["thinking", "text"]
    assert cut.usage.output_tokens == 1024 + tokens(cut.content[1].text)  # type: ignore[union-attr]
    cut = claude(strict_api, model="claude-haiku-4-5", messages=PREFILLED, max_tokens=1)
    assert cut.stop_reason == "max_tokens"
    assert cut.content[0].text == "Rome"  # type: ignore[union-attr]
    for thinking in ({"type": "enabled", "budget_tokens": 512}, {"type": "adaptive"}):
        refused(anthropic.BadRequestError, lambda t=thinking: claude(  # type: ignore[misc]
            strict_api, model="claude-haiku-4-5", messages=USER, max_tokens=4000, thinking=t))


def test_anthropic_bad_key(strict_api: StrictServer) -> None:
    async def go() -> Message:
        async with anthropic.AsyncAnthropic(base_url=strict_api.url, api_key=fake_key("bad_anthropic_key"),
                                            **STRICT) as client:
            return await client.messages.create(model="claude-haiku-4-5", max_tokens=8,
                                                messages=USER)  # type: ignore[arg-type]
    error = refused(anthropic.AuthenticationError, lambda: run(go))
    assert error.status_code == 401 and "SECRET" not in str(error.body)


def test_bedrock(strict_api: StrictServer) -> None:
    strict_api.reset()

    async def go(model: str, **body: Any) -> Message:
        async with anthropic.AsyncAnthropicBedrock(
                aws_region="us-east-1", aws_access_key="test-access-key-id",
                aws_secret_key="strict-aws-SECRET", base_url=strict_api.url,
                **STRICT) as client:
            return await client.post("/v1/messages", cast_to=Message, body={
                "model": model, "max_tokens": 32, "anthropic_version": "bedrock-2023-05-31",
                **body})
    reply = run(lambda: go("us.anthropic.claude-opus-4-7-v1:0", messages=USER))
    assert "Rome" in reply.content[0].text  # type: ignore[union-attr]
    entry = strict_api.log[-1]
    assert entry["path"] == "/model/us.anthropic.claude-opus-4-7-v1:0/invoke"
    assert entry["headers"]["auth"] == "aws-sigv4" and "model" not in entry["body"]
    error = refused(anthropic.BadRequestError, lambda: run(lambda: go(
        "anthropic.claude-sonnet-4-6", messages=PREFILLED)))
    assert "does not support assistant message prefill" in error.message
    error = refused(anthropic.BadRequestError, lambda: run(lambda: go(
        "anthropic.claude-opus-4-7", messages=USER, temperature=0.0)))
    assert "temperature is deprecated" in error.message
    assert run(lambda: go("anthropic.claude-haiku-4-5", messages=USER, temperature=0.0))
    error = refused(anthropic.BadRequestError, lambda: run(lambda: go(
        "anthropic.claude-haiku-4-5", messages=USER, anthropic_version="2026-10-21")))
    assert "bedrock-2023-05-31" in error.message
    assert "SECRET" not in repr(strict_api.log)


def test_vertex(strict_api: StrictServer) -> None:
    strict_api.reset()

    async def go(model: str, **body: Any) -> Message:
        async with anthropic.AsyncAnthropicVertex(
                region="us-east5", project_id="p", access_token=STRICT_VERTEX_TOKEN,
                base_url=f"{strict_api.url}/v1", **STRICT) as client:
            return await client.post("/v1/messages", cast_to=Message, body={
                "model": model, "max_tokens": 32, "anthropic_version": "vertex-2023-10-16",
                **body})
    reply = run(lambda: go("claude-sonnet-4-6@20260101", messages=USER))
    assert "Rome" in reply.content[0].text  # type: ignore[union-attr]
    entry = strict_api.log[-1]
    assert entry["path"] == ("/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
                             "claude-sonnet-4-6@20260101:rawPredict")
    assert entry["headers"]["auth"] == "bearer" and "SECRET" not in repr(strict_api.log)
    error = refused(anthropic.BadRequestError, lambda: run(lambda: go(
        "claude-opus-4-6", messages=PREFILLED)))
    assert "prefill" in error.message
    refused(anthropic.NotFoundError, lambda: run(lambda: go("gemini-2.5", messages=USER)))
