"""What the runner needs from a provider's batch interface, and how to reach it.

A backend's adapter (:meth:`~mike_sdk.backend.Backend.batches`: in ``backends/batches/``)
turns requests into the provider's batch lines (the live request body, unchanged),
submits, polls, finds a batch again by its local id, cancels, and reads results back
into :class:`~mike_sdk.backend.Generation` objects exactly as live calls are read. Every
HTTP call goes through the backend's own SDK client (key, base URL, headers, transport)
and its failures are translated and retried as live calls' are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, TypeVar

from mike_sdk.backend import Backend, Generation, GenerationRequest
from mike_sdk.batch.records import BatchRecord, Counts
from mike_sdk.calls.failures import ModelNotFound
from mike_sdk.calls.retry import RetryPolicy
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

    @property
    def name(self) -> str:
        """``openai`` or ``anthropic``."""

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

    async def submit(self, record: BatchRecord, data: Callable[[], IO[bytes]],
                     on_uploaded: Callable[[str], None]) -> Remote:
        """Create the batch from its lines (``data()``: a file, read from the start at
        each call; OpenAI: upload it first, ``on_uploaded`` sees its id); sets
        ``record.provider_id``."""

    async def find(self, record: BatchRecord, claimed: set[str]) -> str | None:
        """The provider id of an intent whose id was never recorded, or None."""

    async def status(self, provider_id: str) -> Remote:
        """The batch's state and counts."""

    async def cancel(self, provider_id: str) -> Remote:
        """Ask the provider to cancel the batch."""

    async def results(self, record: BatchRecord, remote: Remote,
                      stubs: Mapping[str, Stub]) -> list[Outcome]:
        """The outcome of each request the batch's results name."""


#: Calls that reach the batch interface itself, not one batch: a 404 there means the
#: server has none (a local server, a proxy), not that a model or a batch is missing.
INTERFACE_CALLS = frozenset({"upload", "create", "list"})


class NoBatchInterface(ModelNotFound):
    """The server answered 404 on its batch endpoints: it has no batch interface."""


def provider_for(backend: Backend, retry: RetryPolicy | None = None) -> BatchProvider:
    """The backend's batch interface (:meth:`Backend.batches`): ``openai`` (OpenAI's Batch
    API) and ``anthropic`` (Message Batches) have one; other backends have no batch mode."""
    provider = backend.batches(retry)
    if provider is None:
        kind = getattr(backend, "kind", type(backend).__name__)
        raise ConfigError(f"Batch mode needs the 'openai' or 'anthropic' backend, not "
                          f"{kind!r} (Azure OpenAI, Bedrock and Vertex batches are not "
                          "supported yet): run it live instead.")
    return provider


def split_counts(outcomes: Sequence[Outcome], total: int) -> Counts:
    """Counts of collected outcomes."""
    kinds = [o.kind for o in outcomes]
    return Counts(total=total, done=kinds.count("succeeded"), errored=kinds.count("errored"),
                  expired=kinds.count("expired"), canceled=kinds.count("canceled"))
