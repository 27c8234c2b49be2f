"""What the runner needs from a provider's batch interface, and how to reach it.

An adapter (:mod:`~mike_sdk.batch.openai_batch`, :mod:`~mike_sdk.batch.anthropic_batch`)
turns requests into the provider's batch lines (the live request body, unchanged),
submits, polls, finds a batch again by its local id, cancels, and reads results back
into :class:`~mike_sdk.backend.Generation` objects exactly as live calls are read. Every
HTTP call goes through the backend's own SDK client (key, base URL, headers, transport)
and its failures are translated and retried as live calls' are.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from mike_sdk.backend import Backend, Generation, GenerationRequest
from mike_sdk.batch.records import BatchRecord, Counts
from mike_sdk.calls.failures import CallFailed, ModelNotFound
from mike_sdk.calls.retry import RetryPolicy, call_with_retry
from mike_sdk.errors import ConfigError

T = TypeVar("T")
Stub = Any
"""What reading one request's result needs of the request (small: kept for every key in
flight instead of the request itself)."""


@dataclass(frozen=True, slots=True)
class Remote:
    """What the provider says about one batch."""

    state: str
    ended: bool
    counts: Counts
    output_file_id: str | None = None
    error_file_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one request of a batch."""

    key: str
    generation: Generation | None
    error: str | None = None
    final: bool = False
    """Refused for good (a 400: sending it again gets the same refusal)."""
    kind: str = "succeeded"
    """``succeeded``, ``errored``, ``expired`` or ``canceled``."""


@dataclass
class HttpCounts:
    """HTTP calls made to the batch interface, by kind."""

    calls: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + 1


class BatchProvider(Protocol):
    """One provider's batch interface, for one backend."""

    name: str
    endpoint: str
    max_requests: int
    max_bytes: int
    http: HttpCounts

    def line(self, key: str, request: GenerationRequest) -> bytes:
        """The batch line of one request (JSON and a newline)."""

    def stub(self, request: GenerationRequest) -> Stub:
        """What :meth:`results` needs to read this request's answer."""

    def record(self, local_id: str, keys: list[str], size: int, round: int) -> BatchRecord:
        """The intent record of a new batch."""

    async def submit(self, record: BatchRecord, data: bytes,
                     on_uploaded: Callable[[str], None]) -> Remote:
        """Create the batch (OpenAI: upload the file first, ``on_uploaded`` sees its id);
        sets ``record.provider_id``."""

    async def find(self, record: BatchRecord, claimed: set[str]) -> str | None:
        """The provider id of an intent whose id was never recorded, or None."""

    async def status(self, provider_id: str) -> Remote:
        """The batch's state and counts."""

    async def cancel(self, provider_id: str) -> Remote:
        """Ask the provider to cancel the batch."""

    async def results(self, record: BatchRecord, remote: Remote,
                      stubs: Mapping[str, Stub]) -> list[Outcome]:
        """The outcome of each request the batch's results name."""


def provider_for(backend: Backend, retry: RetryPolicy | None = None) -> BatchProvider:
    """The batch adapter of a backend: ``openai`` (OpenAI's Batch API) or ``anthropic``
    (Message Batches); other backends have no batch mode here."""
    kind = getattr(backend, "kind", None)
    if kind == "openai":
        from mike_sdk.batch.openai_batch import OpenAIBatches

        return OpenAIBatches(backend, retry)
    if kind == "anthropic":
        from mike_sdk.batch.anthropic_batch import AnthropicBatches

        return AnthropicBatches(backend, retry)
    raise ConfigError(f"Batch mode needs the 'openai' or 'anthropic' backend, not {kind!r} "
                      "(Azure OpenAI, Bedrock and Vertex batches are not supported yet): "
                      "run it live instead.")


#: Calls that reach the batch interface itself, not one batch: a 404 there means the
#: server has none (a local server, a proxy), not that a model or a batch is missing.
INTERFACE_CALLS = frozenset({"upload", "create", "list"})


class NoBatchInterface(ModelNotFound):
    """The server answered 404 on its batch endpoints: it has no batch interface."""


class SdkCalls:
    """The backend's SDK client, with failures translated and retried as live calls'."""

    def __init__(self, backend: Any, retry: RetryPolicy | None) -> None:
        self.backend = backend
        self.retry = retry or RetryPolicy()
        self.http = HttpCounts()

    def client(self) -> Any:
        """The backend's SDK client for the running event loop."""
        return self.backend._client_here()

    async def call(self, kind: str, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``await fn(sdk_client)``, counted as one ``kind`` call, under the retry policy."""
        async def attempt() -> T:
            self.http.add(kind)
            return await self._translated(kind, fn)

        return await call_with_retry(attempt, self.retry)

    async def _translated(self, kind: str, fn: Callable[[Any], Awaitable[T]]) -> T:
        translate = importlib.import_module("mike_sdk.calls.sdk_errors").translate
        backend = self.backend
        failure: CallFailed | None = None
        try:
            return await fn(self.client())
        except Exception as exc:
            sdk = importlib.import_module(backend.sdk_name)
            failure = translate(exc, sdk, key_env=backend.key_env,
                                secrets=backend._secrets())
            if failure is None:
                raise
            if isinstance(failure, ModelNotFound) and kind in INTERFACE_CALLS:
                where = base_url_of(backend) or f"the {backend.kind} API"
                failure = NoBatchInterface(
                    f"The server at {where} has no batch interface (its {kind} call was "
                    "answered 404 Not Found): run without --batch.", status=404)
        raise failure  # outside the handler: the SDK's exception may quote the key


def base_url_of(backend: Any) -> str | None:
    """The backend's base URL without a user or password part (None: the provider's)."""
    from mike_sdk.calls.sdk_errors import without_credentials

    url: str | None = backend._base_url
    return None if url is None else without_credentials(url)


def message_of(error: Any) -> str:
    """The message inside a provider's error JSON (``{"error": {"message": ...}}`` and the
    like), else the JSON itself."""
    seen: Any = error
    for _ in range(3):
        if isinstance(seen, Mapping) and isinstance(seen.get("message"), str):
            return str(seen["message"])
        if isinstance(seen, Mapping) and "error" in seen:
            seen = seen["error"]
    return str(error)


def split_counts(outcomes: Sequence[Outcome], total: int) -> Counts:
    """Counts of collected outcomes."""
    kinds = [o.kind for o in outcomes]
    return Counts(total=total, done=kinds.count("succeeded"), errored=kinds.count("errored"),
                  expired=kinds.count("expired"), canceled=kinds.count("canceled"))
