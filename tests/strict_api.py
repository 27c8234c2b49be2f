"""A strict loopback stand-in for the OpenAI and Anthropic APIs, with their late-2026 rules.

The real APIs cannot be reached from the test machines, so this server stands in for them: it
refuses what they refuse, with their HTTP statuses and error JSON shapes, and answers BMIKE-53
style prompts deterministically (``intended_answer``). The rules are collected in
/work/shared/docs/provider-rules-2026.md (re-check them against the live docs); their sources:

* OpenAI reasoning models (temperature/top_p only 1; no stop, max_tokens or logprobs;
  reasoning_effort; hidden reasoning tokens) -- https://platform.openai.com/docs/guides/reasoning
* OpenAI requests and errors -- https://platform.openai.com/docs/api-reference/chat,
  https://platform.openai.com/docs/guides/error-codes; Azure OpenAI (deployments, api-version,
  api-key) -- https://learn.microsoft.com/azure/ai-services/openai/reference
* ``anthropic-version`` (``2026-10-21`` refuses temperature/top_p/top_k), errors, thinking --
  https://docs.anthropic.com/en/api/versioning, https://docs.anthropic.com/en/api/errors,
  https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking; no prefill on Claude
  4.6+, temperature deprecated on Opus 4.7 (the migration guide) --
  https://docs.anthropic.com/en/docs/about-claude/models/migrating-to-claude-4
* Bedrock -- https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html
* Vertex AI -- https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/use-claude
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from servers import fake_key, free_port

STRICT_OPENAI_KEY = fake_key("strict_openai_key")
STRICT_ANTHROPIC_KEY = fake_key("strict_anthropic_key")
STRICT_AZURE_KEY = fake_key("strict_azure_key")
STRICT_VERTEX_TOKEN = fake_key("strict_vertex_token")
REASONING_TOKENS = {"minimal": 0, "low": 64, "medium": 256, "high": 1024}  # by reasoning_effort
THINKING_TOKENS = {"low": 128, "medium": 512, "high": 2048, "max": 4096}  # by output_config.effort
AZURE_DEPLOYMENTS = {"my-gpt5-mini": "gpt-5-mini", "my-gpt41-mini": "gpt-4.1-mini"}
ANTHROPIC_VERSIONS = {"2023-06-01", "2026-10-21"}
CLAUDE_NO_PREFILL = ("claude-sonnet-4-6", "claude-opus-4-6", "claude-opus-4-7")  # the 4.6+ models
CLAUDE_FAMILIES = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1", *CLAUDE_NO_PREFILL)
CLAUDE_NO_TEMPERATURE = ("claude-opus-4-7",)
CLOUD_VERSIONS = {"bedrock": "bedrock-2023-05-31", "vertex": "vertex-2023-10-16"}
_COMMON = {"model", "temperature", "top_p", "stop", "max_tokens", "logprobs", "n", "seed", "user",
           "stream"}
CHAT_FIELDS = _COMMON | {"messages", "max_completion_tokens", "reasoning_effort", "top_logprobs"}
COMPLETION_FIELDS = _COMMON | {"prompt"}
MESSAGES_FIELDS = {"model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k",
                   "stop_sequences", "thinking", "output_config", "metadata", "stream"}
_ids = itertools.count(1)


class Refusal(Exception):
    """An error reply; ``args``: the HTTP status, the JSON payload, extra headers."""

def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))

def intended_answer(text: str) -> str:
    """The last word of the last ``New Fact: "..."`` of a prompt ('unknown' without one)."""
    start = text.rfind('New Fact: "')
    words = text[start + len('New Fact: "'):].split('"', 1)[0].split() if start >= 0 else []
    return words[-1].strip(".,;:!?") if words else "unknown"

def _spent(text: str) -> int:
    return tokens(text) if text else 0

def _pick(text: str, n: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % n

def _cut_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    at, stop = min(((text.find(s), s) for s in stops if s and s in text), default=(None, None))
    return text[:at], stop

def _text(content: Any) -> str:  # a string, or the text of a list of content blocks
    return content if isinstance(content, str) else "".join(
        p.get("text", "") for p in content or [] if isinstance(p, dict))


# ---------------------------------------------------------------------------- OpenAI

def _oai(status: int, message: str, param: str | None = None, code: str | None = None) -> Refusal:
    return Refusal(status, {"error": {"message": message, "type": "invalid_request_error",
                                      "param": param, "code": code}}, {})

def openai_family(model: str) -> str | None:
    if model == "gpt-3.5-turbo-instruct":
        return "instruct"
    if model.startswith(("o1", "o3", "o4")) or (model.startswith("gpt-5") and "-chat" not in model):
        return "reasoning"
    return "chat" if model.startswith(("gpt-4.1", "gpt-4o", "gpt-5")) else None

def _check_openai(body: dict[str, Any], chat: bool, model: str) -> str:
    """Refuse what the endpoint and ``model`` do not take; return the model's family."""
    family = openai_family(model)
    for name in body:  # reasoning_effort is unknown to the models that do not reason
        if name not in (CHAT_FIELDS if chat else COMPLETION_FIELDS) or (
                name == "reasoning_effort" and family == "chat"):
            raise _oai(400, f"Unrecognized request argument supplied: {name}", name)
    if body.get("stream"):
        raise _oai(400, "This stand-in does not stream: send stream false.", "stream")
    if family is None:
        raise _oai(404, f"The model `{model}` does not exist or you do not have access to it.",
                   None, "model_not_found")
    if chat == (family == "instruct"):
        raise _oai(404, "This is not a chat model and thus not supported in the v1/chat/completions"
                   " endpoint. Did you mean to use v1/completions?" if chat else "This is a chat "
                   "model and not supported in the v1/completions endpoint. Did you mean to use "
                   "v1/chat/completions?", "model")
    key = "messages" if chat else "prompt"
    if not body.get(key):
        raise _oai(400, f"Missing required parameter: '{key}'.", key, "missing_required_parameter")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        if not isinstance(body.get(name, 1), int) or body.get(name, 1) < 1:
            raise _oai(400, f"Invalid '{name}': expected an integer >= 1.", name, "invalid_value")
    if family != "reasoning":
        if {"max_tokens", "max_completion_tokens"} <= body.keys():
            raise _oai(400, "Use max_tokens or max_completion_tokens, not both.", "max_tokens")
        if isinstance(body.get("stop"), list) and len(body["stop"]) > 4:
            raise _oai(400, "Invalid 'stop': at most 4 strings.", "stop", "array_above_max_length")
        return family
    for name in ("temperature", "top_p"):
        if body.get(name) not in (None, 1):
            raise _oai(400, f"Unsupported value: '{name}' does not support {body[name]} with "
                       "this model. Only the default (1) value is supported.", name,
                       "unsupported_value")
    for name, hint in (("stop", ""), ("max_tokens", " Use 'max_completion_tokens' instead."),
                       ("logprobs", ""), ("top_logprobs", "")):
        if body.get(name) not in (None, False):
            raise _oai(400, f"Unsupported parameter: '{name}' is not supported with this model."
                       f"{hint}", name, "unsupported_parameter")
    effort = body.get("reasoning_effort")
    allowed = ["minimal"] * model.startswith("gpt-5") + ["low", "medium", "high"]
    if effort is not None and effort not in allowed:
        raise _oai(400, f"Unsupported value: 'reasoning_effort' does not support {effort!r} with "
                   f"this model. Supported values are: {', '.join(allowed)}.",
                   "reasoning_effort", "unsupported_value")
    return family

def _logprobs(text: str, top: int, chat: bool) -> dict[str, Any]:
    bits = [text[i:i + 4] for i in range(0, len(text), 4)]
    entries = [{"token": b, "logprob": -0.01, "bytes": list(b.encode())} for b in bits]
    if chat:
        return {"refusal": None, "content": [{**e, "top_logprobs": [e][:top]} for e in entries]}
    return {"tokens": bits, "token_logprobs": [-0.01] * len(bits),
            "text_offset": list(itertools.accumulate([0] + [len(b) for b in bits[:-1]])),
            "top_logprobs": [{b: -0.01} if top else {} for b in bits]}

def openai_reply(body: dict[str, Any], chat: bool, model: str) -> dict[str, Any]:
    """Validate an OpenAI (or Azure) body for ``model``; return the response object."""
    family = _check_openai(body, chat, model)
    if chat:
        turns = [(m.get("role") == "user", _text(m.get("content"))) for m in body["messages"]]
        everything, asked = "".join(t for _, t in turns), "".join(t for user, t in turns if user)
        answer = intended_answer(asked)
        text = [answer, f'"{answer}"', f"{answer}\n\nThe new fact says so."][_pick(asked, 3)]
    else:
        everything = asked = body["prompt"] if isinstance(body["prompt"], str) else ""
        text = f'{intended_answer(asked)}" and more text'
    text = _cut_stop(text, [stop] if isinstance(stop := body.get("stop"), str) else stop or [])[0]
    finish, reasoning = "stop", 0
    if family == "reasoning":
        reasoning = REASONING_TOKENS[body.get("reasoning_effort") or "medium"]
        budget = body.get("max_completion_tokens") or math.inf
    else:  # the legacy completions endpoint defaults to 16 tokens
        budget = body.get("max_tokens") or body.get("max_completion_tokens") or (
            math.inf if chat else 16)
    if budget <= reasoning:
        text, reasoning, finish = "", int(budget), "length"
    elif _spent(text) > budget - reasoning:
        text, finish = text[:int(budget - reasoning) * 4], "length"
    n, want = body.get("n") or 1, body.get("logprobs")
    lp = _logprobs(text, (body.get("top_logprobs") or 0) if chat else want, chat) if want else None
    usage: dict[str, Any] = {
        "prompt_tokens": tokens(everything), "completion_tokens": n * (reasoning + _spent(text)),
        "completion_tokens_details": {"reasoning_tokens": n * reasoning},
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    out: dict[str, Any] = {"text": text} if not chat else {"message": {
        "role": "assistant", "content": text, "refusal": None, "annotations": []}}
    return {"id": f"{'chatcmpl' if chat else 'cmpl'}-strict{next(_ids)}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": model, "usage": usage,
            "choices": [{"index": i, **out, "logprobs": lp, "finish_reason": finish}
                        for i in range(n)], "system_fingerprint": "fp_strict"}


# ---------------------------------------------------------------------------- Anthropic

def _ant(status: int, message: str, kind: str = "invalid_request_error") -> Refusal:
    return Refusal(status, {"type": "error", "error": {"type": kind, "message": message},
                            "request_id": f"req_strict{next(_ids)}"}, {})

def claude_family(model: str) -> str | None:
    return next((f for f in CLAUDE_FAMILIES if model.startswith(f)), None)

def _thinking(body: dict[str, Any], family: str) -> int | None:
    """Validate ``thinking``/``output_config``; return the thinking tokens spent (or None)."""
    config, thinking = body.get("output_config") or {}, body.get("thinking")
    limit = body["max_tokens"]
    effort = config.get("effort", "medium")
    if set(config) - {"effort"} or effort not in THINKING_TOKENS or (
            effort == "max" and "opus" not in family):
        raise _ant(400, "output_config.effort: Input should be 'low', 'medium', 'high' or 'max'")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if thinking is None or kind == "disabled":
        return None
    budget = thinking.get("budget_tokens") if kind == "enabled" else limit
    if kind == "enabled" and not (isinstance(budget, int) and 1024 <= budget < limit):
        raise _ant(400, "thinking.enabled.budget_tokens: Input should be at least 1024, and "
                   "`max_tokens` must be greater than `thinking.budget_tokens`.")
    if kind != "enabled" and (kind != "adaptive" or family not in CLAUDE_NO_PREFILL):
        raise _ant(400, f"thinking.type: {kind!r} is not supported on {family}; expected "
                   "'enabled', 'disabled' or 'adaptive' (4.6 models and later)")
    return int(min(budget, THINKING_TOKENS[effort], limit))

def messages_reply(body: dict[str, Any], model: str, version: str,
                   cloud: str | None = None) -> dict[str, Any]:
    """Validate a Messages body (``model`` from the body, or the cloud's path); answer it."""
    fields = (MESSAGES_FIELDS - {"model"}) | {"anthropic_version"} if cloud else MESSAGES_FIELDS
    if cloud:  # the version is in the body; 2026-10-21 only on the newest models (SDK default)
        version = str(body.get("anthropic_version"))
        if version not in (CLOUD_VERSIONS[cloud], "2026-10-21") or (
                version == "2026-10-21" and claude_family(model) not in CLAUDE_NO_TEMPERATURE):
            raise _ant(400, f"anthropic_version: {version!r} is not supported for {model} on "
                       f"{cloud}; use {CLOUD_VERSIONS[cloud]!r}")
    for name in body:
        if name not in fields or (version == "2026-10-21" and name in ("temperature", "top_p",
                                                                       "top_k")):
            raise _ant(400, f"{name}: Extra inputs are not permitted")
    if body.get("stream"):
        raise _ant(400, "stream: this stand-in does not stream; send false")
    if (family := claude_family(model)) is None:
        raise _ant(404, f"model: {model}", "not_found_error")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise _ant(400, "max_tokens: Field required (an integer >= 1)")
    if family in CLAUDE_NO_TEMPERATURE and "temperature" in body:
        raise _ant(400, "temperature is deprecated for this model.")
    if not isinstance(messages := body.get("messages"), list) or not messages:
        raise _ant(400, "messages: Field required (at least one message)")
    prefill, last = messages[-1].get("role") == "assistant", _text(messages[-1].get("content"))
    if prefill and family in CLAUDE_NO_PREFILL:
        raise _ant(400, "This model does not support assistant message prefill. The "
                   "conversation must end with a user message.")
    if prefill and last != last.rstrip():
        raise _ant(400, "messages: final assistant content cannot end with trailing whitespace")
    thought = _thinking(body, family)
    asked = "".join(_text(m.get("content")) for m in messages if m.get("role") == "user")
    answer = intended_answer(asked)
    text, hit = _cut_stop(f'{answer}"' if prefill else [answer, f'"{answer}"'][_pick(asked, 2)],
                          body.get("stop_sequences") or [])
    reason, left = "stop_sequence" if hit else "end_turn", body["max_tokens"] - (thought or 0)
    if _spent(text) > left:
        text, hit, reason = text[:left * 4], None, "max_tokens"
    content: list[dict[str, Any]] = [] if thought is None else [
        {"type": "thinking", "thinking": "The new fact gives the answer.", "signature": "sig"}]
    content += [{"type": "text", "text": text, "citations": None}] if text else []
    seen = _text(body.get("system")) + "".join(_text(m.get("content")) for m in messages)
    return {"id": f"msg_strict{next(_ids)}", "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": reason, "stop_sequence": hit,
            "usage": {"input_tokens": tokens(seen), "output_tokens": (thought or 0) + _spent(text),
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}


# ---------------------------------------------------------------------------- HTTP routes

def _openai_route(h: _Handler, body: dict[str, Any], chat: str | None) -> dict[str, Any]:
    if (key := h.headers.get("authorization", "").removeprefix("Bearer ")) != STRICT_OPENAI_KEY:
        shown = f"{key[:3]}{'*' * 8}{key[-2:]}" if len(key) > 12 else "*" * 8
        raise _oai(401, f"Incorrect API key provided: {shown}. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.", None, "invalid_api_key")
    return openai_reply(body, bool(chat), str(body.get("model", "")))

def _azure_route(h: _Handler, body: dict[str, Any], deployment: str, chat: str | None) -> Any:
    def error(status: int, code: str, message: str) -> Refusal:
        return Refusal(status, {"error": {"code": code, "message": message}}, {})
    if h.headers.get("api-key") != STRICT_AZURE_KEY:
        raise error(401, "401", "Access denied due to invalid subscription key.")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", h.query.get("api-version", "")):
        raise error(404, "404", "Resource not found")
    if deployment not in AZURE_DEPLOYMENTS:
        raise error(404, "DeploymentNotFound",
                    "The API deployment for this resource does not exist.")
    return openai_reply(body, bool(chat), AZURE_DEPLOYMENTS[deployment])

def _anthropic_route(h: _Handler, body: dict[str, Any]) -> dict[str, Any]:
    auth = h.headers.get("authorization", "")  # x-api-key wins where both are sent
    if (h.headers.get("x-api-key") or auth.removeprefix("Bearer ")) != STRICT_ANTHROPIC_KEY:
        raise _ant(401, "invalid x-api-key", "authentication_error")
    if (version := h.headers.get("anthropic-version")) is None:
        raise _ant(400, "anthropic-version: header is required")
    if version not in ANTHROPIC_VERSIONS:
        raise _ant(400, f"anthropic-version: {version!r} is not a valid version; use one of "
                   f"{', '.join(sorted(ANTHROPIC_VERSIONS))}")
    return messages_reply(body, str(body.get("model", "")), version)

def _bedrock_route(h: _Handler, body: dict[str, Any], model_id: str) -> dict[str, Any]:
    def error(status: int, kind: str, message: str) -> Refusal:
        return Refusal(status, {"message": message}, {"x-amzn-ErrorType": kind})
    if not h.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
        raise error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    model = re.sub(r"-v\d+(:\d+)?$", "", model_id.split("anthropic.", 1)[-1])
    if "anthropic." not in model_id or claude_family(model) is None:
        raise error(400, "ValidationException", "The provided model identifier is invalid.")
    try:
        return messages_reply(body, model, "bedrock", cloud="bedrock")
    except Refusal as refusal:  # Bedrock reports the model's refusals as ValidationException
        raise error(refusal.args[0], "ValidationException",
                    refusal.args[1]["error"]["message"]) from None

def _vertex_route(h: _Handler, body: dict[str, Any], where: str, model: str) -> dict[str, Any]:
    def error(status: int, state: str, message: str) -> Refusal:
        return Refusal(status, {"error": {"code": status, "message": message, "status": state}}, {})
    if h.headers.get("authorization") != f"Bearer {STRICT_VERTEX_TOKEN}":
        raise error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    if claude_family(model.split("@", 1)[0]) is None:
        raise error(404, "NOT_FOUND", f"Publisher Model `{where}/models/{model}` not found.")
    return messages_reply(body, model, "vertex", cloud="vertex")

ROUTES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"/v1/(chat/)?completions"), _openai_route),
    (re.compile(r"/openai/deployments/([^/]+)/(chat/)?completions"), _azure_route),
    (re.compile(r"/v1/messages"), _anthropic_route),
    (re.compile(r"/model/([^/]+)/invoke"), _bedrock_route),
    (re.compile(r"/v1/(projects/[^/]+/locations/[^/]+/publishers/anthropic)/models/([^/:]+)"
                r":rawPredict"), _vertex_route),
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _auth_scheme(self) -> str | None:  # which credential came, never its value
        auth = self.headers.get("authorization", "")
        return next((h for h in ("x-api-key", "api-key") if self.headers.get(h)), None) or (
            "aws-sigv4" if auth.startswith("AWS4-") else auth.split(" ", 1)[0].lower() or None)

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path, self.query = urllib.parse.unquote(url.path), dict(urllib.parse.parse_qsl(url.query))
        body: Any = None
        with contextlib.suppress(ValueError):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        try:
            if not isinstance(body, dict):
                raise _oai(400, "We could not parse the JSON body of your request.")
            route = next(((r, m) for p, r in ROUTES if (m := p.fullmatch(path))), None)
            if route is None:
                raise _oai(404, f"Invalid URL (POST {path})")
            status, payload, headers = 200, route[0](self, body, *route[1].groups()), {}
        except Refusal as refusal:
            status, payload, headers = refusal.args
        seen = {"anthropic-version": self.headers.get("anthropic-version"),
                "content-type": self.headers.get("content-type"), "auth": self._auth_scheme()}
        self.server.log.append(  # type: ignore[attr-defined]
            {"method": "POST", "path": path, "query": self.query, "headers": seen, "body": body,
             "status": status})
        data = json.dumps(payload).encode()
        with contextlib.suppress(OSError):  # a client that timed out has gone already
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)


class StrictServer:
    """The strict stand-in, serving from a daemon thread; ``log`` lists the handled requests."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
        self._server.log = self.log  # type: ignore[attr-defined]  # the handlers append to it
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.log.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="session")
def strict_api() -> Iterator[StrictServer]:
    """A started strict stand-in for the OpenAI/Azure/Anthropic/Bedrock/Vertex APIs."""
    server = StrictServer()
    yield server
    server.close()
