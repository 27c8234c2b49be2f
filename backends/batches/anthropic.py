"""Anthropic's Message Batches through the official SDK (``client.messages.batches``).

A batch is one create call with up to 100,000 ``{"custom_id", "params"}`` requests (at
most 256 MB): ``custom_id`` is the request's cache key (64 hex digits: the longest id
the API takes, ``^[a-zA-Z0-9_-]{1,64}$``) and ``params`` is exactly the live body
(:func:`~mike_sdk.backends.anthropic.messages_body`). It is ``in_progress``, then
``canceling`` if cancelled, then ``ended``; the results (JSONL at ``results_url``, kept
for 29 days) say per request ``succeeded`` (the Message, read by
:func:`~mike_sdk.backends.anthropic.read_message` with its prefill, as live),
``errored``, ``canceled`` or ``expired``.

Message Batches take no metadata, so a batch whose id was never recorded (the process
died during the create call) is found again by listing: a batch created no earlier than
the intent (two minutes of clock skew allowed) with the intent's number of requests and
claimed by no other record is adopted when it is the only one. Adopting the wrong one
cannot put a wrong answer in the cache: results are read by ``custom_id``, a hash of the
model and the whole request, and those of other keys are ignored (missing keys are sent
again). See https://docs.anthropic.com/en/docs/build-with-claude/batch-processing and
https://docs.anthropic.com/en/api/creating-message-batches.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

from pydantic_core import to_json

from mike_sdk.backend import GenerationRequest
from mike_sdk.batch.provider import Outcome, Remote, Stub
from mike_sdk.batch.records import BatchRecord, Counts
from mike_sdk.calls.failures import classify_status
from mike_sdk.calls.retry import RetryPolicy

from ..anthropic import read_message
from .sdk import SdkBatches, refusal

if TYPE_CHECKING:
    from ..anthropic import AnthropicBackend

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
#: Clock skew allowed between the intent's time and the provider's ``created_at``.
SKEW_S = 120.0
#: The HTTP status each error type of the Messages API stands for (docs: api/errors).
STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
          "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
          "rate_limit_error": 429, "api_error": 500, "overloaded_error": 529}


class AnthropicBatches(SdkBatches):
    """Message Batches for one :class:`~mike_sdk.backends.anthropic.AnthropicBackend`."""

    name = "anthropic"
    endpoint = "/v1/messages"
    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, backend: AnthropicBackend, retry: RetryPolicy | None = None) -> None:
        super().__init__(backend, retry)
        self.backend = backend

    def line(self, key: str, request: GenerationRequest) -> bytes:
        body, _ = self.backend.payload(request)
        return to_json({"custom_id": key, "params": body}) + b"\n"

    def stub(self, request: GenerationRequest) -> Stub:
        _, started = self.backend.payload(request)
        # One shared string per prefill: a batch run keeps a stub for every key it sends.
        return sys.intern(started) if isinstance(started, str) else started

    async def submit(self, record: BatchRecord, data: Callable[[], IO[bytes]],
                     on_uploaded: Callable[[str], None]) -> Remote:
        from anthropic.types.messages import MessageBatch

        # The body streamed from the packed lines, as the SDK's create() would send it
        # (its ``requests`` parsed into objects would take several times the 256 MB a
        # batch may have); the lines' newlines are JSON whitespace.
        length = len(_OPEN) + record.bytes + max(record.requests - 1, 0) + len(_CLOSE)
        batch = await self.create_once(
            record, lambda client: client.post(
                "/v1/messages/batches", cast_to=MessageBatch, content=_body(data()),
                options={"headers": {"Content-Length": str(length)}}),
            lambda client, found: client.messages.batches.retrieve(found))
        return _remote(batch)

    async def find_with(self, client: Any, record: BatchRecord,
                        claimed: set[str]) -> str | None:
        candidates: list[str] = []
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 100}
            if after is not None:
                kwargs["after_id"] = after
            page = await client.messages.batches.list(**kwargs)
            self.http.add("list-page")
            for batch in page.data:
                if batch.created_at.timestamp() < record.created_at - SKEW_S:
                    return candidates[0] if len(candidates) == 1 else None
                if _counts(batch).total == record.requests and batch.id not in claimed:
                    candidates.append(str(batch.id))
            if not page.has_more or not page.data:
                return candidates[0] if len(candidates) == 1 else None
            after = page.last_id or page.data[-1].id

    async def status(self, provider_id: str) -> Remote:
        return _remote(await self.calls.call(
            "poll", lambda c: c.messages.batches.retrieve(provider_id)))

    async def cancel(self, provider_id: str) -> Remote:
        return _remote(await self.calls.call(
            "cancel", lambda c: c.messages.batches.cancel(provider_id)))

    async def results(self, record: BatchRecord, remote: Remote,
                      stubs: Mapping[str, Stub]) -> list[Outcome]:
        provider_id = record.provider_id or ""

        async def download(client: Any) -> list[Outcome]:
            found: list[Outcome] = []
            decoder = await client.messages.batches.results(provider_id)
            async for item in decoder:
                if item.custom_id in stubs:
                    found.append(_outcome(item.custom_id, item.result, stubs[item.custom_id]))
            return found

        return await self.calls.call("download", download)


def _outcome(key: str, result: Any, started: str) -> Outcome:
    kind = result.type
    if kind == "succeeded":
        return Outcome(key, read_message(result.message, started))
    if kind == "errored":
        error = getattr(result.error, "error", None)
        kind_name = str(getattr(error, "type", "api_error"))
        message = str(getattr(error, "message", "") or kind_name)
        return refusal(key, classify_status(STATUS.get(kind_name, 500), message))
    return Outcome(key, None, f"{kind} in batch: the request was not processed "
                   f"({'the batch expired' if kind == 'expired' else 'the batch was canceled'})",
                   kind="expired" if kind == "expired" else "canceled")


def _counts(batch: Any) -> Counts:
    c = batch.request_counts
    total = c.processing + c.succeeded + c.errored + c.canceled + c.expired
    return Counts(total=total, done=c.succeeded, errored=c.errored, expired=c.expired,
                  canceled=c.canceled)


_OPEN, _CLOSE = b'{"requests":[', b"]}"


async def _body(lines: IO[bytes]) -> AsyncIterator[bytes]:
    """``{"requests":[line,line,...]}`` from a file of JSON lines."""
    yield _OPEN
    for number, line in enumerate(lines):
        yield b"," + line if number else line
    yield _CLOSE


def _remote(batch: Any) -> Remote:
    return Remote(state=str(batch.processing_status),
                  ended=batch.processing_status == "ended", counts=_counts(batch))
