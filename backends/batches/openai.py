"""OpenAI's Batch API through the official SDK (``client.files``, ``client.batches``).

A batch is a JSONL file of ``{"custom_id", "method": "POST", "url", "body"}`` lines
uploaded with ``purpose="batch"`` (at most 50,000 lines and 200 MB), then a batch made
of it with a 24-hour completion window. The ``custom_id`` is the request's cache key and
the ``body`` is exactly what a live call sends (:meth:`OpenAIBackend.payload`). Results
come back as an output file (answers) and an error file (refusals, and the requests
that were not run before the batch expired or was cancelled), read with the same
functions live calls use (:func:`~mike_sdk.backends.openai.read_chat_completion`).
The local batch id is in the batch's ``metadata`` (``mike_batch``), so a batch whose id
was never recorded (the process died during the create call) is found again by listing.
See https://platform.openai.com/docs/guides/batch and
https://platform.openai.com/docs/api-reference/batch.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import IO, TYPE_CHECKING, Any

from pydantic_core import to_json

from mike_sdk.backend import GenerationRequest
from mike_sdk.batch.provider import Outcome, Remote, Stub
from mike_sdk.batch.records import ENDED_STATES, BatchRecord, Counts
from mike_sdk.calls.failures import CallFailed, classify_status
from mike_sdk.calls.retry import RetryPolicy

from ..openai import read_chat_completion, read_completion
from .sdk import SdkBatches, message_of, refusal

if TYPE_CHECKING:
    from ..openai import OpenAIBackend

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
METADATA_KEY = "mike_batch"
#: How far back (seconds) listing looks for a batch whose id was not recorded.
FIND_WINDOW_S = 6 * 3600


class OpenAIBatches(SdkBatches):
    """The Batch API for one :class:`~mike_sdk.backends.openai.OpenAIBackend`."""

    name = "openai"
    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES

    def __init__(self, backend: OpenAIBackend, retry: RetryPolicy | None = None) -> None:
        super().__init__(backend, retry)
        self.backend = backend
        chat = backend.openai_options.mode == "chat"
        self.endpoint = "/v1/chat/completions" if chat else "/v1/completions"

    def line(self, key: str, request: GenerationRequest) -> bytes:
        return to_json({"custom_id": key, "method": "POST", "url": self.endpoint,
                        "body": self.backend.payload(request)}) + b"\n"

    def stub(self, request: GenerationRequest) -> Stub:
        return _stub(tuple(request.stop), self.backend.wants_logprobs(request))

    async def submit(self, record: BatchRecord, data: Callable[[], IO[bytes]],
                     on_uploaded: Callable[[str], None]) -> Remote:
        if record.input_file_id is None:
            # The file object itself: the upload streams it (each attempt from the start).
            uploaded = await self.calls.call("upload", lambda c: c.files.create(
                file=(f"{record.local_id}.jsonl", data(), "application/jsonl"),
                purpose="batch"))
            record.input_file_id = str(uploaded.id)
            on_uploaded(record.input_file_id)
        batch = await self.create_once(
            record, lambda client: client.batches.create(
                input_file_id=record.input_file_id, endpoint=self.endpoint,
                completion_window="24h",
                metadata={METADATA_KEY: record.local_id, "mike_requests": str(record.requests)}),
            lambda client, found: client.batches.retrieve(found))
        return _remote(batch)

    async def find_with(self, client: Any, record: BatchRecord,
                        claimed: set[str]) -> str | None:
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": 100}
            if after is not None:
                kwargs["after"] = after
            page = await client.batches.list(**kwargs)
            self.http.add("list-page")
            for batch in page.data:
                if (batch.metadata or {}).get(METADATA_KEY) == record.local_id \
                        and batch.id not in claimed:
                    return str(batch.id)
                if batch.created_at < record.created_at - FIND_WINDOW_S:
                    return None  # newest first: older ones cannot be it
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id

    async def status(self, provider_id: str) -> Remote:
        return _remote(await self.calls.call(
            "poll", lambda c: c.batches.retrieve(provider_id)))

    async def cancel(self, provider_id: str) -> Remote:
        return _remote(await self.calls.call("cancel", lambda c: c.batches.cancel(provider_id)))

    async def results(self, record: BatchRecord, remote: Remote,
                      stubs: Mapping[str, Stub]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for file_id in (remote.output_file_id, remote.error_file_id):
            if not file_id:
                continue
            content = await self.calls.call("download", _content(file_id))
            for raw in content.content.splitlines():
                if raw.strip():
                    line = json.loads(raw)
                    key = line.get("custom_id")
                    if key in stubs:
                        outcomes.append(self._outcome(key, line, stubs[key]))
        return outcomes

    def _outcome(self, key: str, line: dict[str, Any], stub: Stub) -> Outcome:
        from openai.types import Completion
        from openai.types.chat import ChatCompletion

        response, error = line.get("response"), line.get("error")
        if response is not None and response.get("status_code") == 200:
            stop, want_logprobs = stub
            request = GenerationRequest.model_construct(stop=stop, logprobs=want_logprobs)
            try:
                if self.endpoint == "/v1/chat/completions":
                    generation = read_chat_completion(
                        ChatCompletion.model_validate(response["body"]), request, want_logprobs)
                else:
                    generation = read_completion(
                        Completion.model_validate(response["body"]), request, want_logprobs)
            except CallFailed as exc:  # no choices: sent again, as a live call would be
                return Outcome(key, None, " ".join(str(exc).split()), kind="errored")
            return Outcome(key, generation)
        if response is not None:
            failure = classify_status(int(response.get("status_code") or 500),
                                      message_of(response.get("body")))
            return refusal(key, failure)
        code = str((error or {}).get("code"))
        kind = {"batch_expired": "expired", "batch_cancelled": "canceled"}.get(code, "errored")
        message = message_of(error) if error else "no response"
        return Outcome(key, None, f"{kind} in batch: {message}", kind=kind)


def _content(file_id: str) -> Callable[[Any], Awaitable[Any]]:
    async def download(client: Any) -> Any:
        return await client.files.content(file_id)

    return download


def _remote(batch: Any) -> Remote:
    counts = batch.request_counts
    total = getattr(counts, "total", 0) or 0
    done = getattr(counts, "completed", 0) or 0
    failed = getattr(counts, "failed", 0) or 0
    expired = total - done - failed if batch.status == "expired" else 0
    canceled = total - done - failed if batch.status == "cancelled" else 0
    return Remote(state=str(batch.status), ended=batch.status in ENDED_STATES,
                  counts=Counts(total=total, done=done, errored=failed, expired=expired,
                                canceled=canceled),
                  output_file_id=batch.output_file_id, error_file_id=batch.error_file_id)


@lru_cache(maxsize=256)
def _stub(stop: tuple[str, ...], logprobs: bool) -> Stub:
    """One shared stub per kind of request: a batch run keeps one for every key it sends
    (half a million in a full configuration)."""
    return stop, logprobs
