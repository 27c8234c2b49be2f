"""Anthropic's Claude models through the Messages API.

The strategy's system message becomes ``system=``, the other messages become turns.
With ``prefill`` (the default), when the last user turn ends with the paper's
``Answer: "``, an assistant turn holding just ``"`` is appended, so that Claude
continues right inside the quotes. The returned text is then the whole assistant turn,
prefill included: ``"Philadelphia"`` (or ``"Philadelphia`` when cut by the token limit),
which the chat extraction reads as ``Philadelphia``. The key comes from ``api_key=``
or ``ANTHROPIC_API_KEY``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from mike_sdk.backend import BACKENDS, FinishReason, Generation, GenerationRequest
from mike_sdk.calls.failures import BadRequest

from .remote import RemoteBackend, RemoteOptions, http_client

__all__ = ["PREFILL", "AnthropicBackend", "AnthropicOptions", "to_messages"]

#: The opening quote of the paper's answer slot.
PREFILL = '"'
ANSWER_SLOT = 'Answer: "'


class AnthropicOptions(RemoteOptions):
    """Options of :class:`AnthropicBackend`."""

    prefill: bool = Field(default=True)
    """Start the reply with ``"`` when the user turn ends with ``Answer: "``."""


def to_messages(request: GenerationRequest, prefill: bool
                ) -> tuple[str | None, list[dict[str, str]], str]:
    """``(system, turns, prefill_text)`` of a request for the Messages API."""
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
    started = ""
    last = turns[-1]
    # Anthropic refuses a final assistant turn that ends in whitespace, so the prompt's
    # trailing spaces are not part of the test.
    if prefill and last["role"] == "user" and last["content"].rstrip().endswith(ANSWER_SLOT):
        started = PREFILL
        turns.append({"role": "assistant", "content": PREFILL})
    return ("\n\n".join(system) if system else None), turns, started


@BACKENDS.register("anthropic")
class AnthropicBackend(RemoteBackend):
    """Claude through the official async SDK."""

    kind = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_host = "api.anthropic.com"
    sdk_name = "anthropic"

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 max_concurrency: int = 8, timeout: float = 60, prefill: bool = True,
                 transport: Literal["auto", "httpx", "aiohttp"] = "auto") -> None:
        options: AnthropicOptions = self._validate(
            AnthropicOptions, model=model, base_url=base_url,
            api_key=SecretStr(api_key) if api_key is not None else None,
            max_concurrency=max_concurrency, timeout=timeout, prefill=prefill,
            transport=transport)
        super().__init__(options)
        self.anthropic_options = options

    def _new_client(self, key: str) -> Any:
        import anthropic

        # anthropic 2.x sends the key as "Authorization: Bearer" only; the Messages API
        # (and llm-katan) read it from x-api-key.
        return anthropic.AsyncAnthropic(api_key=key, base_url=self._base_url,
                                        timeout=self.options.timeout, max_retries=0,
                                        default_headers={"x-api-key": key},
                                        http_client=http_client(anthropic, self.options))

    def payload(self, request: GenerationRequest) -> tuple[dict[str, Any], str]:
        """The Messages API body for ``request``, and the text prefilled in it."""
        system, turns, started = to_messages(request, self.anthropic_options.prefill)
        body: dict[str, Any] = {"model": self.options.model,
                                "max_tokens": request.max_new_tokens, "messages": turns,
                                "temperature": 0}
        if system is not None:
            body["system"] = system
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        return body, started

    async def _generate_one(self, client: Any, request: GenerationRequest) -> Generation:
        from anthropic.types import Message

        body, started = self.payload(request)
        # `post` sends the body as built (`messages.create` re-checks every typed parameter,
        # most of a request's client CPU), with the SDK's auth, errors and typed response.
        response = await client.post("/v1/messages", body=body, cast_to=Message)
        text = "".join(getattr(block, "text", "") for block in response.content
                       if getattr(block, "type", None) == "text")
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
        return Generation(text=started + text, input_tokens=input_tokens,
                          output_tokens=getattr(usage, "output_tokens", None),
                          cached_input_tokens=cached,
                          finish_reason=_finish_reason(response.stop_reason))


_FINISH: dict[str, FinishReason] = {"end_turn": "eos", "stop_sequence": "stop",
                                    "max_tokens": "length", "pause_turn": "length"}


def _finish_reason(reason: str | None) -> FinishReason:
    return _FINISH.get(reason or "", "error")
