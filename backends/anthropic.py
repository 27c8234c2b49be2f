"""Anthropic's Claude models through the Messages API.

The strategy's system message becomes ``system=``, the other messages become turns.
Each request is built from the model's profile (:mod:`mike_sdk.providers.profiles`):

* **Prefill**, where the profile allows it (Claude 4.5 and earlier): when the last user
  turn ends with the paper's ``Answer: "``, an assistant turn holding just ``"`` is
  appended and ``"`` is the stop sequence, so that Claude continues inside the quotes.
  The returned text is the whole assistant turn, prefill included: ``"Philadelphia"``,
  which the chat extraction reads as ``Philadelphia``. Claude 4.6 and later refuse a
  prefill: they reply freely after the chat protocol's instruction.
* **Greedy decoding** (``temperature`` 0) only where the model takes it, under the API
  version the profile names (``2023-06-01``: version ``2026-10-21``, the SDK's default,
  refuses ``temperature`` altogether).
* **Thinking** only when ``reasoning_effort`` is given (Claude 4 thinks only when asked):
  a thinking budget (``budget_tokens``) or adaptive thinking with ``output_config.effort``,
  the budget added to ``max_tokens``.

The key comes from ``api_key=`` or ``ANTHROPIC_API_KEY``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr

from mike_sdk.backend import BACKENDS, FinishReason, Generation, GenerationRequest
from mike_sdk.calls.failures import BadRequest
from mike_sdk.chat import PREFILL, wants_prefill
from mike_sdk.providers.settings import DEFAULT_REASONING_BUDGET, RequestSettings

from .bodies import checked
from .remote import RemoteBackend, RemoteOptions, http_client

if TYPE_CHECKING:
    from mike_sdk.batch.provider import BatchProvider
    from mike_sdk.calls.retry import RetryPolicy

__all__ = ["AnthropicBackend", "AnthropicOptions", "messages_body", "read_message",
           "to_messages"]


class AnthropicOptions(RemoteOptions):
    """Options of :class:`AnthropicBackend`."""

    prefill: bool = Field(default=True)
    """Start the reply with ``"`` where the model's profile allows it; False never does."""


def to_messages(request: GenerationRequest) -> tuple[str | None, list[dict[str, str]]]:
    """``(system, turns)`` of a request for the Messages API."""
    if request.messages is not None:
        pairs = [(m.role, m.content) for m in request.messages]
    elif request.prompt is not None:
        pairs = [("user", request.prompt)]
    else:
        raise BadRequest("A generation request needs a prompt or messages.")
    system = [content for role, content in pairs if role == "system"]
    turns = [{"role": role, "content": content} for role, content in pairs if role != "system"]
    if not turns:
        raise BadRequest("The Messages API needs at least one user turn.")
    return ("\n\n".join(system) if system else None), turns


def messages_body(model: str, request: GenerationRequest, settings: RequestSettings,
                  reasoning: str) -> tuple[dict[str, Any], str]:
    """The Messages API body for ``request`` under ``settings``, and the text prefilled.

    ``reasoning`` is the profile's kind of thinking control. Shared by the first-party API
    and the cloud clients (Bedrock, Vertex), whose bodies are the same.
    """
    system, turns = to_messages(request)
    stop = list(request.stop)
    started = ""
    if settings.prefill and turns[-1]["role"] == "user" and wants_prefill(turns[-1]["content"]):
        started = PREFILL
        turns.append({"role": "assistant", "content": PREFILL})
        stop = [PREFILL]  # the closing quote ends the answer, as on the completion path
    body: dict[str, Any] = {"model": model, "messages": turns,
                            "max_tokens": request.max_new_tokens
                            + (settings.reasoning_budget or 0)}
    if settings.sampling == "greedy":
        body["temperature"] = 0
    if system is not None:
        body["system"] = system
    if stop and settings.stop:
        body["stop_sequences"] = stop
    effort = settings.reasoning_effort
    if effort is not None and reasoning == "anthropic-budget":
        body["thinking"] = {"type": "enabled", "budget_tokens": settings.reasoning_budget}
    elif effort is not None:
        body["thinking"] = {"type": "adaptive"}
        body["output_config"] = {"effort": effort}
    return body, started


def read_message(response: Any, started: str) -> Generation:
    """The :class:`Generation` of a Messages API response (an ``anthropic.types.Message``)."""
    text = "".join(getattr(block, "text", "") for block in response.content
                   if getattr(block, "type", None) == "text")
    thought = any(getattr(block, "type", None) in ("thinking", "redacted_thinking")
                  for block in response.content)
    if response.stop_reason == "stop_sequence" and response.stop_sequence:
        text += response.stop_sequence  # as the protocol says: stop strings included
    usage = response.usage
    cached = getattr(usage, "cache_read_input_tokens", None)
    written = getattr(usage, "cache_creation_input_tokens", None)
    # Anthropic counts cache reads and writes apart from input_tokens; report all prompt
    # tokens as input, with the cached part inside it, as OpenAI does.
    input_tokens = getattr(usage, "input_tokens", None)
    if input_tokens is not None:
        input_tokens += (cached or 0) + (written or 0)
    reason = _finish_reason(response.stop_reason)
    if reason == "length" and not text and thought:
        reason = "reasoning"
    return Generation(text=started + text, input_tokens=input_tokens,
                      output_tokens=getattr(usage, "output_tokens", None),
                      cached_input_tokens=cached, finish_reason=reason)


@BACKENDS.register("anthropic")
class AnthropicBackend(RemoteBackend):
    """Claude through the official async SDK."""

    kind = "anthropic"
    provider = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_host = "api.anthropic.com"
    sdk_name = "anthropic"
    needs: ClassVar[tuple[str, ...]] = ("anthropic",)
    needs_extra = "api"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 max_concurrency: int = 8, timeout: float = 60, prefill: bool = True,
                 transport: Literal["auto", "httpx", "aiohttp"] = "auto",
                 profile: str | None = None, profiles: str | None = None,
                 reasoning_effort: str | None = None,
                 reasoning_budget: int = DEFAULT_REASONING_BUDGET) -> None:
        options: AnthropicOptions = self._validate(
            AnthropicOptions, model=model, base_url=base_url,
            api_key=SecretStr(api_key) if api_key is not None else None,
            max_concurrency=max_concurrency, timeout=timeout, prefill=prefill,
            transport=transport, profile=profile, profiles=profiles,
            reasoning_effort=reasoning_effort, reasoning_budget=reasoning_budget)
        super().__init__(options)
        self.anthropic_options = options
        if not prefill:
            self.settings = self.settings.model_copy(update={"prefill": False})

    def _new_client(self, key: str) -> Any:
        import anthropic

        # anthropic 2.x sends the key as "Authorization: Bearer" only; the Messages API
        # (and llm-katan) read it from x-api-key.
        headers = {"x-api-key": key}
        if self.settings.api_version is not None:
            headers["anthropic-version"] = self.settings.api_version
        return anthropic.AsyncAnthropic(api_key=key, base_url=self._base_url,
                                        timeout=self.options.timeout, max_retries=0,
                                        default_headers=headers,
                                        http_client=http_client(anthropic, self.options))

    def payload(self, request: GenerationRequest) -> tuple[dict[str, Any], str]:
        """The Messages API body for ``request``, and the text prefilled in it."""
        return messages_body(self.options.model, request, self.settings,
                             self.profile.reasoning)

    def batches(self, retry: RetryPolicy | None = None) -> BatchProvider | None:
        """Anthropic's Message Batches (not on Bedrock or Vertex here)."""
        if self.kind != "anthropic":
            return None
        from .batches.anthropic import AnthropicBatches

        return AnthropicBatches(self, retry)

    async def _generate_one(self, client: Any, request: GenerationRequest) -> Generation:
        from anthropic.types import Message

        body, started = self.payload(request)
        # `post` sends the body as built (`messages.create` re-checks every typed parameter,
        # most of a request's client CPU), with the SDK's auth, errors and typed response.
        response = await client.post("/v1/messages", body=body, cast_to=Message)
        return read_message(checked(response, self.where(), "content"), started)


_FINISH: dict[str, FinishReason] = {"end_turn": "eos", "stop_sequence": "stop",
                                    "max_tokens": "length", "pause_turn": "length"}


def _finish_reason(reason: str | None) -> FinishReason:
    return _FINISH.get(reason or "", "error")
