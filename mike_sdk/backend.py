"""The backend protocol: requests in, generations out, plus what a backend can do.

A backend is anything that turns a batch of :class:`GenerationRequest` into
:class:`Generation` objects. Caching, batching, retries and rate limits live in
the one call path, :class:`~mike_sdk.calls.client.ModelClient`, never in a backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from mike_sdk.registry import Registry

if TYPE_CHECKING:
    from mike_sdk.batch.provider import BatchProvider
    from mike_sdk.calls.retry import RetryPolicy
    from mike_sdk.providers.settings import RequestSettings


class Abilities(BaseModel):
    """What a backend can do; strategies and the evaluator read it to choose what to send."""

    model_config = ConfigDict(frozen=True)

    completion: bool = True
    """Accepts raw completion prompts (the paper's protocol)."""
    chat: bool = False
    """Accepts chat messages."""
    tokenizer: bool = False
    """Exposes its tokenizer (needed for the paper's F1)."""
    loglikelihood: bool = False
    """Scores the log-probability of a continuation (the new-vs-old check)."""
    batch_size: int = Field(default=1, ge=1)
    """Preferred number of requests per :meth:`Backend.generate` call."""
    max_concurrency: int = Field(default=1, ge=1)
    """How many batches may be in flight at once."""


class Identity(BaseModel):
    """What makes two backends give the same answers: part of every cache key. No secrets."""

    model_config = ConfigDict(frozen=True)

    kind: str
    """Backend kind as registered (``hf``, ``openai``, ...)."""
    model: str
    """Model name, hub id or resolved local path."""
    revision: str | None = None
    """Model revision or content fingerprint, where known."""
    precision: str | None = None
    """Numeric precision of local weights (``float32``, ``bfloat16``, ...), where it matters."""
    settings: str | None = None
    """What every request asks beyond the model, where that changes answers (a hosted
    model's sampling, prefill, reasoning effort: :meth:`RequestSettings.tag`)."""


class ChatMessage(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    """Who speaks."""
    content: str
    """What is said."""


class GenerationRequest(BaseModel):
    """One greedy generation: a completion prompt, chat messages, or both (backend picks)."""

    model_config = ConfigDict(frozen=True)

    prompt: str | None = None
    """The raw completion prompt."""
    messages: tuple[ChatMessage, ...] | None = None
    """The chat rendering of the same request."""
    stop: tuple[str, ...] = ()
    """Generation may stop once any of these strings appears (the answer is cut there)."""
    max_new_tokens: int = Field(default=15, ge=1)
    """Upper bound on generated tokens."""
    logprobs: bool = False
    """Ask for per-token log-probabilities of the generated tokens."""


FinishReason = Literal["stop", "length", "eos", "reasoning", "error"]
"""``reasoning``: the token limit ran out while the model was still reasoning, so the
answer is empty (raise the reasoning budget or lower the effort)."""


class Generation(BaseModel):
    """A backend's answer to one :class:`GenerationRequest`."""

    model_config = ConfigDict(frozen=True)

    text: str
    """The generated text (stop strings included when the backend produced them)."""
    input_tokens: int | None = None
    """Prompt tokens billed or processed."""
    output_tokens: int | None = None
    """Generated tokens."""
    cached_input_tokens: int | None = None
    """Prompt tokens the provider served from its prompt cache (billed at a discount)."""
    reasoning_tokens: int | None = None
    """Hidden reasoning (thinking) tokens, already counted in ``output_tokens`` and billed
    as output."""
    finish_reason: FinishReason = "length"
    """Why generation ended."""
    logprobs: tuple[float, ...] | None = None
    """Log-probability of each generated token, where asked for and available."""


class LikelihoodRequest(BaseModel):
    """Score ``continuation`` after ``context``."""

    model_config = ConfigDict(frozen=True)

    context: str
    """The prompt."""
    continuation: str
    """The text whose log-probability is wanted."""


class Likelihood(BaseModel):
    """Summed log-probability of a continuation and its token count."""

    model_config = ConfigDict(frozen=True)

    logprob: float
    """Sum of the continuation tokens' log-probabilities."""
    tokens: int
    """Number of continuation tokens."""

    @property
    def mean(self) -> float:
        """Mean log-probability per token (the paper compares perplexities, i.e. this)."""
        return self.logprob / self.tokens if self.tokens else float("-inf")


@runtime_checkable
class Tokenizer(Protocol):
    """The part of a tokenizer the paper's F1 needs."""

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        ...


class Backend(ABC):
    """A model to evaluate: subclass it and implement :attr:`identity` and :meth:`generate`.

    Everything else has a default: completion prompts one at a time, no log-likelihood,
    no tokenizer, nothing to close. Construction must be cheap: load weights or open
    connections on first use only, so that a fully cached run never touches the model.

    >>> class Echo(Backend):
    ...     @property
    ...     def identity(self) -> Identity:
    ...         return Identity(kind="echo", model="echo")
    ...     async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
    ...         return [Generation(text=r.prompt or "", finish_reason="stop") for r in requests]
    >>> Echo().abilities.batch_size
    1
    """

    #: Optional packages the backend imports, checked when it is built (see
    #: :func:`~mike_sdk.extras.require_extra`) and shown by ``mike backends`` when missing.
    needs: ClassVar[tuple[str, ...]] = ()
    #: The ``mike-sdk`` extra that installs :attr:`needs`.
    needs_extra: ClassVar[str] = ""
    #: Whether its transport calls :func:`body_sent` once a request's body is written to
    #: the socket (the client then journals a request in flight only from that moment).
    reports_sending: ClassVar[bool] = False

    @property
    @abstractmethod
    def identity(self) -> Identity:
        """Cache identity of the model behind this backend (never a secret)."""

    @property
    def abilities(self) -> Abilities:
        """What this backend can do (default: completion prompts, one at a time)."""
        return Abilities()

    @abstractmethod
    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Greedy generations for a batch of requests, in order."""

    async def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[Likelihood]:
        """Scores for a batch of continuations (default: unsupported).

        Override it together with ``Abilities(loglikelihood=True)``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not score continuations (no loglikelihood); "
            "run without the new-vs-old check (--no-likelihood) or implement it.")

    def request_settings(self) -> RequestSettings | None:
        """How a hosted model's requests are built (recorded in the run), or ``None``
        (the default: the request is sent as the strategy rendered it)."""
        return None

    def batches(self, retry: RetryPolicy | None = None) -> BatchProvider | None:
        """The provider's batch interface for this model (``--batch``: half the price,
        answers within a day), its HTTP calls under ``retry``; ``None`` (the default):
        none."""
        return None

    def get_tokenizer(self) -> Tokenizer | None:
        """The model's tokenizer (without loading the model), or ``None`` (the default)."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release here
        """Release connections and memory (default: nothing to release)."""

    async def release_connections(self) -> None:  # noqa: B027 - optional hook
        """Close what belongs to the running event loop (HTTP connections), keeping the
        model loaded: synchronous entry points call it before their loop ends."""


#: Backends by name. Register a new one with ``@BACKENDS.register("name")``.
BACKENDS: Registry[Backend] = Registry("backend", "mike_sdk.backends", "mike_sdk.backends")


#: What to do once the current call's request body has left the process (see
#: :attr:`Backend.reports_sending`); a context variable, so each sending task sees its own.
_SENT: ContextVar[Callable[[], None] | None] = ContextVar("mike_body_sent", default=None)


def body_sent() -> None:
    """A transport's signal: the current request's body is written to its socket (from
    here on the provider may bill it even if this process dies)."""
    hook = _SENT.get()
    if hook is not None:
        hook()


@contextmanager
def on_body_sent(hook: Callable[[], None]) -> Iterator[None]:
    """Run ``hook`` at each :func:`body_sent` of the calls made inside this block."""
    token = _SENT.set(hook)
    try:
        yield
    finally:
        _SENT.reset(token)
