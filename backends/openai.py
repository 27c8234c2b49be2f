"""OpenAI models, and any OpenAI-compatible server (vLLM, llama.cpp, ...).

``mode="chat"`` sends the strategy's chat messages to ``/v1/chat/completions``;
``mode="completions"`` sends the raw completion prompt to ``/v1/completions``, which is
the paper's protocol (use it for base models behind vLLM or llama.cpp). Each request is
built from the model's profile (:mod:`mike_sdk.providers.profiles`): greedy
(temperature 0) and the stop string where the model accepts them, the token-limit field
it wants, and for reasoning models ``reasoning_effort`` (lowest by default) with a
reasoning budget added to the answer's. The key comes from ``api_key=`` or
``OPENAI_API_KEY``; ``preset=`` (``deepseek``, ``gemini``, ``vllm``, ...: see
:mod:`mike_sdk.providers.presets`) sets another provider's base URL and key variable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr

from mike_sdk.backend import (
    BACKENDS,
    Abilities,
    FinishReason,
    Generation,
    GenerationRequest,
    Likelihood,
    LikelihoodRequest,
)
from mike_sdk.calls.failures import BadRequest, Transient
from mike_sdk.errors import ConfigError
from mike_sdk.providers.presets import get_preset
from mike_sdk.providers.settings import DEFAULT_REASONING_BUDGET

from .bodies import checked
from .prompt_logprobs import LikelihoodSource, PromptScorer
from .remote import RemoteBackend, RemoteOptions, http_client

if TYPE_CHECKING:
    from mike_sdk.batch.provider import BatchProvider
    from mike_sdk.calls.retry import RetryPolicy

__all__ = ["OpenAIBackend", "OpenAIOptions",
           "read_chat_completion", "read_completion"]

DEFAULT_HOST = "api.openai.com"


class OpenAIOptions(RemoteOptions):
    """Options of :class:`OpenAIBackend`."""

    organization: str | None = None
    """OpenAI organization id (sent as a header; not a secret, not part of the identity)."""
    project: str | None = None
    """OpenAI project id."""
    mode: Literal["chat", "completions"] = "chat"
    """Which endpoint: chat messages, or raw completion prompts (the paper's protocol)."""
    logprobs: bool = Field(default=False)
    """Ask for generated-token log-probabilities on every request."""
    likelihood: LikelihoodSource = "off"
    """The likelihood check through the server's prompt log-probabilities (completions
    mode): ``echo`` (``echo`` with ``logprobs``) or ``prompt_logprobs`` (vLLM's
    parameter); each server is checked first (:mod:`.prompt_logprobs`)."""


@BACKENDS.register("openai")
class OpenAIBackend(RemoteBackend):
    """OpenAI's API or an OpenAI-compatible server, through the official async SDK.

    Several base URLs (or ``fleet=FILE``) make a fleet of servers of the same model,
    used as one: each request goes to the least-loaded healthy server, and the cache
    identity is ``model@fleet-name`` (:mod:`mike_sdk.calls.fleet`).
    """

    kind = "openai"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_host = DEFAULT_HOST
    sdk_name = "openai"
    needs: ClassVar[tuple[str, ...]] = ("openai",)
    needs_extra = "api"
    fleets = True
    #: A local server's preset: it may run without a key.
    _key_optional = False

    def __init__(self, model: str, *, base_url: str | Sequence[str] | None = None,
                 fleet: str | None = None, api_key: str | None = None,
                 organization: str | None = None, project: str | None = None,
                 mode: Literal["chat", "completions"] = "chat", max_concurrency: int = 8,
                 timeout: float = 60, logprobs: bool = False,
                 transport: Literal["auto", "httpx", "aiohttp"] = "auto",
                 profile: str | None = None, profiles: str | None = None,
                 reasoning_effort: str | None = None,
                 reasoning_budget: int = DEFAULT_REASONING_BUDGET,
                 preset: str | None = None, likelihood: LikelihoodSource = "off") -> None:
        chosen = get_preset(preset) if preset is not None else None
        if chosen is not None:
            # Before the base class reads the key variable or the base URL.
            self.key_env, self._key_optional = chosen.key_env, chosen.key_optional
            base_url = base_url or (None if fleet else chosen.base_url)
        options: OpenAIOptions = self._validate(
            OpenAIOptions, model=model, base_url=base_url, fleet=fleet,
            api_key=SecretStr(api_key) if api_key is not None else None,
            organization=organization, project=project, mode=mode,
            max_concurrency=max_concurrency, timeout=timeout, logprobs=logprobs,
            transport=transport, profile=profile, profiles=profiles,
            reasoning_effort=reasoning_effort, reasoning_budget=reasoning_budget,
            likelihood=likelihood)
        if options.likelihood != "off" and options.mode != "completions":
            raise ConfigError("likelihood=... scores completion prompts: it needs "
                              "mode=completions (the paper's protocol).")
        super().__init__(options)
        self.openai_options = options
        self._scorer = (PromptScorer(options.model, options.likelihood)
                        if options.likelihood != "off" else None)

    def _key(self) -> str:
        if self._key_optional and self.options.api_key is None \
                and not os.environ.get(self.key_env):
            return "EMPTY"  # a local server started without --api-key takes any key
        return super()._key()

    @property
    def abilities(self) -> Abilities:
        """Completion prompts in completions mode, chat messages in chat mode."""
        chat = self.openai_options.mode == "chat"
        return Abilities(completion=not chat, chat=chat, tokenizer=False,
                         loglikelihood=self._scorer is not None,
                         batch_size=1, max_concurrency=self.max_concurrency())

    def _new_client(self, key: str) -> Any:
        import openai

        opts = self.openai_options
        return openai.AsyncOpenAI(api_key=key, base_url=self._base_url,
                                  organization=opts.organization, project=opts.project,
                                  timeout=opts.timeout, max_retries=0,
                                  http_client=http_client(openai, opts))

    def batches(self, retry: RetryPolicy | None = None) -> BatchProvider | None:
        """OpenAI's Batch API (not on Azure here)."""
        if self.kind != "openai":
            return None
        from .batches.openai import OpenAIBatches

        return OpenAIBatches(self, retry)

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The JSON body for ``request`` (what goes on the wire), built from the profile."""
        settings = self.settings
        want_logprobs = request.logprobs or self.openai_options.logprobs
        body: dict[str, Any] = {"model": self.options.model}
        # Reasoning tokens come out of the same limit as the answer's.
        limit = request.max_new_tokens + (settings.reasoning_budget or 0)
        if self.openai_options.mode == "completions":
            if request.prompt is None:
                raise BadRequest("Completions mode needs a completion prompt; this request "
                                 "has chat messages only (use mode='chat').")
            body.update(prompt=request.prompt, max_tokens=limit)
            if want_logprobs:
                body["logprobs"] = 1
        else:
            if request.messages is not None:
                body["messages"] = [{"role": m.role, "content": m.content}
                                    for m in request.messages]
            elif request.prompt is not None:
                body["messages"] = [{"role": "user", "content": request.prompt}]
            else:
                raise BadRequest("A generation request needs a prompt or messages.")
            if want_logprobs:
                # top_logprobs too: llama.cpp returns nothing without it.
                body.update(logprobs=True, top_logprobs=1)
            body[settings.token_limit] = limit
        if settings.sampling == "greedy":
            body["temperature"] = 0
        if settings.reasoning_effort is not None:
            body["reasoning_effort"] = settings.reasoning_effort
        if request.stop and settings.stop:  # else the answer is cut from the text anyway
            body["stop"] = list(request.stop)
        return body

    async def _generate_one(self, client: Any, request: GenerationRequest) -> Generation:
        from openai.types import Completion
        from openai.types.chat import ChatCompletion

        body = self.payload(request)
        want_logprobs = self.wants_logprobs(request)
        # The SDK's own `create` spends most of a request's client CPU re-checking typed
        # parameters that `payload` already built; `post` sends the body as it is, with
        # the SDK's auth, base URL, timeouts, errors and typed response.
        if self.openai_options.mode == "completions":
            response = await client.post("/completions", body=body, cast_to=Completion)
            return read_completion(checked(response, self.where(), "choices"), request,
                                   want_logprobs)
        response = await client.post("/chat/completions", body=body, cast_to=ChatCompletion)
        return read_chat_completion(checked(response, self.where(), "choices"), request,
                                    want_logprobs)

    async def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[Likelihood]:
        """Continuation scores from the server's prompt log-probabilities (the paper's
        way: :mod:`.prompt_logprobs`), with ``likelihood=echo|prompt_logprobs``."""
        scorer = self._scorer
        if scorer is None:
            return await super().loglikelihood(requests)
        return await self._each([
            functools.partial(self.on_server, functools.partial(scorer.score, request=r))
            for r in requests])

    def wants_logprobs(self, request: GenerationRequest) -> bool:
        """Whether ``request`` asks for generated-token log-probabilities (it or the option)."""
        return request.logprobs or self.openai_options.logprobs


def read_chat_completion(response: Any, request: GenerationRequest,
                         want_logprobs: bool) -> Generation:
    """The :class:`Generation` of a chat completion (an ``openai.types.chat.ChatCompletion``):
    what a live call and a batch result both become."""
    choice = _first_choice(response)
    text = choice.message.content or ""
    logprobs = _chat_logprobs(choice) if want_logprobs else None
    return _generation(response, choice, text, logprobs, request)


def read_completion(response: Any, request: GenerationRequest,
                    want_logprobs: bool) -> Generation:
    """The :class:`Generation` of a legacy completion (an ``openai.types.Completion``)."""
    choice = _first_choice(response)
    text = choice.text or ""
    logprobs = _completion_logprobs(choice) if want_logprobs else None
    return _generation(response, choice, text, logprobs, request)


def _generation(response: Any, choice: Any, text: str, logprobs: tuple[float, ...] | None,
                request: GenerationRequest) -> Generation:
    usage = response.usage
    reasoning = _reasoning_tokens(usage)
    reason = finish_reason(choice.finish_reason, request)
    if reason == "length" and not text and reasoning:
        reason = "reasoning"
    return Generation(
        text=text,
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        cached_input_tokens=_cached_tokens(usage), reasoning_tokens=reasoning,
        finish_reason=reason, logprobs=logprobs)


def _first_choice(response: Any) -> Any:
    # Some compatible servers answer an overloaded or filtered call with no choice at all.
    if not getattr(response, "choices", None):
        raise Transient("The server answered with no choices; retrying.")
    return response.choices[0]


def finish_reason(reason: str | None, request: GenerationRequest) -> FinishReason:
    """The SDK's reason for the protocol. OpenAI says ``stop`` both for a stop string and
    for the end of the model's turn: with no stop strings asked for it can only be the end."""
    if reason == "length":
        return "length"
    if reason == "stop":
        return "stop" if request.stop else "eos"
    if reason in ("tool_calls", "function_call"):
        return "eos"
    return "error"  # content_filter, or nothing said


def _cached_tokens(usage: Any) -> int | None:
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None)
    return int(cached) if cached is not None else None


def _reasoning_tokens(usage: Any) -> int | None:
    details = getattr(usage, "completion_tokens_details", None)
    reasoning = getattr(details, "reasoning_tokens", None)
    return int(reasoning) if reasoning is not None else None


def _completion_logprobs(choice: Any) -> tuple[float, ...] | None:
    values = getattr(getattr(choice, "logprobs", None), "token_logprobs", None)
    return tuple(float(v) for v in values if v is not None) if values else None


def _chat_logprobs(choice: Any) -> tuple[float, ...] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    return tuple(float(t.logprob) for t in content) if content else None
