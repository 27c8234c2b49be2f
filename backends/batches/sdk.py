"""A batch interface's HTTP calls, on the backend's own SDK client.

Every call goes through :meth:`~mike_sdk.backends.remote.RemoteBackend.on_server` (key,
base URL, headers, transport of the live calls; the SDK's failures translated without
secrets) under the live calls' retry policy, and is counted by kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from mike_sdk.batch.provider import INTERFACE_CALLS, HttpCounts, NoBatchInterface, Outcome
from mike_sdk.batch.records import BatchRecord, Provider
from mike_sdk.calls.failures import CallFailed, ModelNotFound
from mike_sdk.calls.retry import RetryPolicy, call_with_retry
from mike_sdk.errors import ConfigError

from ..remote import RemoteBackend

T = TypeVar("T")


class SdkCalls:
    """The backend's SDK client, with failures translated and retried as live calls'."""

    def __init__(self, backend: RemoteBackend, retry: RetryPolicy | None) -> None:
        if backend.fleet is not None:
            raise ConfigError("A fleet of servers has no batch API: run it live (without "
                              "--batch).")
        self.backend = backend
        self.retry = retry or RetryPolicy()
        self.http = HttpCounts()

    async def call(self, kind: str, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``await fn(sdk_client)``, counted as one ``kind`` call, under the retry policy."""
        async def attempt() -> T:
            self.http.add(kind)
            try:
                return await self.backend.on_server(fn)
            except ModelNotFound:
                if kind not in INTERFACE_CALLS:
                    raise
                where = self.base_url() or f"the {self.backend.kind} API"
                raise NoBatchInterface(
                    f"The server at {where} has no batch interface (its {kind} call was "
                    "answered 404 Not Found): run without --batch.", status=404) from None

        return await call_with_retry(attempt, self.retry)

    def base_url(self) -> str | None:
        """Where the batches go, without a user or password part (None: the provider's)."""
        return self.backend.base_url()


class SdkBatches:
    """What both adapters share: the SDK calls, the intent record, creating a batch once
    (a retried create first looks for the batch the lost answer made), finding one again."""

    name: Provider
    endpoint: str

    def __init__(self, backend: RemoteBackend, retry: RetryPolicy | None) -> None:
        self.calls = SdkCalls(backend, retry)
        self.http: HttpCounts = self.calls.http

    def record(self, local_id: str, keys: list[str], size: int, round: int) -> BatchRecord:
        """The intent record of a new batch."""
        return BatchRecord(local_id=local_id, provider=self.name,
                           model=self.calls.backend.options.model,
                           base_url=self.calls.base_url(), endpoint=self.endpoint,
                           round=round, requests=len(keys), bytes=size, keys=keys)

    async def create_once(self, record: BatchRecord, create: Callable[[Any], Awaitable[Any]],
                          retrieve: Callable[[Any, str], Awaitable[Any]]) -> Any:
        """``create(sdk_client)`` under the retry policy, without making a second batch
        when an earlier try's answer was lost; sets ``record.provider_id``."""
        tries = 0

        async def attempt(client: Any) -> Any:
            nonlocal tries
            tries += 1
            if tries > 1:  # the last try may have created it before its answer was lost
                found = await self.find_with(client, record, set())
                if found is not None:
                    return await retrieve(client, found)
            return await create(client)

        batch = await self.calls.call("create", attempt)
        record.provider_id = str(batch.id)
        return batch

    async def find(self, record: BatchRecord, claimed: set[str]) -> str | None:
        """The provider id of an intent whose id was never recorded, or None."""
        found: str | None = await self.calls.call(
            "list", lambda c: self.find_with(c, record, claimed))
        return found

    async def find_with(self, client: Any, record: BatchRecord,
                        claimed: set[str]) -> str | None:
        """:meth:`find` on an SDK client (the provider's listing)."""
        raise NotImplementedError


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


def refusal(key: str, failure: CallFailed) -> Outcome:
    """A per-request HTTP error: final unless retrying can help (429, 5xx)."""
    return Outcome(key, None, " ".join(str(failure).split()), final=not failure.retryable,
                   kind="errored")
