"""Packing, submitting, polling, collecting and retrying provider batches for one run.

:class:`BatchRunner` takes the requests a run needs (cache key and request, in plan
order), leaves out what the response cache holds, re-attaches to the batches of the run
folder still in flight (``batches.jsonl``, see :mod:`~mike_sdk.batch.records`), packs
the rest into batches within the provider's limits and ``max_cost``, polls with
backoff, and collects each ended batch into the response cache under the live keys.
Requests that come back errored (a 429 or 5xx), expired, canceled or missing are sent
again in a later batch, at most ``max_rounds`` times in all; refused ones (a 400) and
those out of rounds become refusals with the provider's message.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.batch.progress import BatchProgress
from mike_sdk.batch.provider import BatchProvider, Outcome, Remote, Stub, split_counts
from mike_sdk.batch.records import BatchLog, BatchRecord, new_local_id
from mike_sdk.calls.cache import cacheable
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.failures import BadRequest, CallFailed
from mike_sdk.calls.limits import max_input_tokens
from mike_sdk.calls.refusals import WINDOW, SystematicRefusal

Source = Callable[[], Iterable[tuple[str, GenerationRequest]]]
"""The run's requests by cache key, in plan order (called once per session)."""
OnCollected = Callable[[BatchRecord, dict[str, Generation]], Awaitable[None]]
#: Keys per response-cache look-up while planning.
LOOKUP = 2000

@dataclass(frozen=True)
class BatchOptions:
    """How batches are sized, polled and retried."""

    poll_initial_s: float = 5.0
    """First wait between two polls; it grows by ``poll_factor`` up to ``poll_max_s``."""
    poll_max_s: float = 60.0
    poll_factor: float = 1.5
    max_rounds: int = 3
    """Batches a request may be sent in, in all (errored, expired, canceled: sent again)."""
    fallback: Literal["error", "live"] = "error"
    """What becomes of a request still unanswered after ``max_rounds`` batches: an error
    row carrying the provider's message, or a live call (``--batch-fallback live``)."""
    max_requests: int | None = None
    """Requests per batch (default and ceiling: the provider's limit)."""
    max_bytes: int | None = None
    """Bytes of request lines per batch (default and ceiling: the provider's limit)."""


@dataclass
class BatchReport:
    """What one session of batch mode did."""

    submitted: int = 0
    """Batches created in this session."""
    reattached: int = 0
    """Batches of earlier sessions found in flight (or ended, not yet collected)."""
    collected: int = 0
    """Requests answered by batches collected in this session."""
    refused: dict[str, str] = field(default_factory=dict)
    """Requests refused for good (or out of rounds), by key, with the message."""
    stopped: str | None = None
    """``max_cost`` (nothing more could be submitted) or ``canceled`` (someone cancelled
    a batch of this run: nothing more submitted this session); None otherwise."""
    cost_usd: float = 0.0
    """What the batches collected in this session cost, at batch prices."""


class BatchRunner:
    """Runs the batches of one run folder for one client (cache, prices, ``max_cost``)."""

    def __init__(self, client: ModelClient, provider: BatchProvider, run_dir: str | Path,
                 options: BatchOptions | None = None, *, progress: BatchProgress | None = None,
                 on_collected: OnCollected | None = None) -> None:
        self.client = client
        self.provider = provider
        self.log = BatchLog(run_dir)
        self.options = options or BatchOptions()
        self.progress = progress or BatchProgress(enabled=False)
        self.on_collected = on_collected
        self.answers: dict[str, Generation] = {}
        """Answers collected in this session that the cache does not keep (empty failures)."""
        self.fresh: set[str] = set()
        """Keys answered by batches collected in this session."""
        self.report = BatchReport()
        self.refused = self.report.refused
        self.live: dict[str, GenerationRequest] = {}
        """Requests out of batch rounds, to be sent live (``fallback="live"``)."""
        self._records: dict[str, BatchRecord] = {}
        self._inflight: dict[str, BatchRecord] = {}
        self._pending: dict[str, GenerationRequest] = {}
        self._stubs: dict[str, Stub] = {}
        self._tries: Counter[str] = Counter()
        self._reasons: dict[str, str] = {}
        self._committed = 0.0
        self._delay = self.options.poll_initial_s
        self._cancelled: set[str] = set()
        """Batches cancelled before this session (their state is no reason to stop)."""

    # -- the session ---------------------------------------------------------------------

    async def run(self, source: Source) -> BatchReport:
        """Answer every request of ``source`` that the cache lacks, by batches."""
        with self.log.locked():
            self._records = self.log.read()
            self._settled_before()
            self._plan(source)
            await self._attach()
            while True:
                todo = self._todo()
                if todo and not self.report.stopped:
                    await self._submit(todo)
                if not self._inflight:
                    break
                for record, remote in await self._poll():
                    await self._collect(record, remote)
                    del self._inflight[record.local_id]
            self._show()
        return self.report

    def _settled_before(self) -> None:
        for record in self._records.values():
            if record.state != "collected":
                continue
            self.refused.update(record.refused or {})
            for reason, keys in (record.retry or {}).items():
                for key in keys:
                    self._tries[key] += 1
                    self._reasons[key] = reason

    def _plan(self, source: Source) -> None:
        """The requests the cache lacks, and what reading their answers needs."""
        chunk: dict[str, GenerationRequest] = {}

        def look_up() -> None:
            held = self.client.lookup(chunk)
            for key, request in chunk.items():
                if key not in held:
                    self._pending[key] = request
                    self._stubs[key] = self.provider.stub(request)
            chunk.clear()

        for key, request in source():
            if key not in self._pending and key not in self._stubs:
                chunk[key] = request
                if len(chunk) >= LOOKUP:
                    look_up()
        look_up()
        for key in list(self._pending):
            if key in self.refused:
                del self._pending[key]

    async def _attach(self) -> None:
        """Re-attach to the batches of earlier sessions that are not collected."""
        claimed = {r.provider_id for r in self._records.values() if r.provider_id}
        for record in self._records.values():
            if record.settled:
                continue
            if record.provider_id is None:
                found = await self.provider.find(record, claimed)
                if found is None:  # never created: its keys are sent again
                    record.state = "lost"
                    self.log.write(record)
                    continue
                record.provider_id = found
                claimed.add(found)
                record.state = "attached"
                self.log.write(record)
            self._inflight[record.local_id] = record
            self._committed += record.estimate_usd or 0.0
            self.report.reattached += 1
            if record.canceled_by_user:  # cancelled before this session: not a stop signal
                self._cancelled.add(record.local_id)

    def _todo(self) -> list[str]:
        """Keys to submit now; keys out of rounds become refusals."""
        covered = {k for r in self._inflight.values() for k in (r.keys or ())}
        todo = []
        for key in self._pending:
            if key in covered:
                continue
            if self._tries[key] >= self.options.max_rounds:
                if self.options.fallback == "live":
                    self.live[key] = self._pending[key]
                else:
                    self.refused[key] = (f"{self._reasons.get(key, 'no answer')} (sent in "
                                         f"{self._tries[key]} batches)")
            else:
                todo.append(key)
        for key in (*self.refused, *self.live):
            self._pending.pop(key, None)
        return todo

    # -- submitting ----------------------------------------------------------------------

    async def _submit(self, todo: list[str]) -> None:
        provider, options = self.provider, self.options
        most = min(options.max_requests or provider.max_requests, provider.max_requests)
        size_cap = min(options.max_bytes or provider.max_bytes, provider.max_bytes)
        keys: list[str] = []
        lines: list[bytes] = []
        size = 0
        for key in todo:
            try:
                line = provider.line(key, self._pending[key])
            except BadRequest as exc:  # the request cannot be sent at all (live: a 400)
                self.refused[key] = " ".join(str(exc).split())
                del self._pending[key]
                continue
            if keys and (len(keys) >= most or size + len(line) > size_cap):
                if not await self._send(keys, lines):
                    return
                keys, lines, size = [], [], 0
            keys.append(key)
            lines.append(line)
            size += len(line)
        if keys:
            await self._send(keys, lines)

    def estimate(self, request: GenerationRequest) -> float | None:
        """Upper-bound USD of one request at batch prices (None: no price)."""
        client = self.client
        return client.guard.prices.cost(
            client.identity.model, max_input_tokens(request),
            request.max_new_tokens + client.hidden_output, batch=True)

    async def _send(self, keys: list[str], lines: list[bytes]) -> bool:
        """Submit one batch (cut to what ``max_cost`` leaves); False once nothing more may
        be submitted."""
        estimates = [self.estimate(self._pending[k]) for k in keys]
        known = None not in estimates
        limit = self.client.limits.max_cost
        if limit is not None and known:
            total, fits = self._committed, 0
            for usd in estimates:
                if total + (usd or 0.0) > limit:
                    break
                total += usd or 0.0
                fits += 1
            if fits < len(keys):
                self.report.stopped = "max_cost"
                keys, lines, estimates = keys[:fits], lines[:fits], estimates[:fits]
                if not keys:
                    return False
        data = b"".join(lines)
        round_ = 1 + max(self._tries[k] for k in keys)
        record = self.provider.record(new_local_id(), keys, len(data), round_)
        record.estimate_usd = sum(u or 0.0 for u in estimates) if known else None
        self.log.write(record, with_keys=True)  # before anything is sent

        def uploaded(file_id: str) -> None:
            record.state = "uploaded"
            self.log.write(record)

        remote = await self.provider.submit(record, data, uploaded)
        self._update(record, remote, force=True)
        self._inflight[record.local_id] = record
        self._records[record.local_id] = record
        self._committed += record.estimate_usd or 0.0
        self.report.submitted += 1
        self._delay = self.options.poll_initial_s
        self._show()
        return self.report.stopped is None

    # -- polling and collecting ----------------------------------------------------------

    def _update(self, record: BatchRecord, remote: Remote, *, force: bool = False) -> None:
        changed = (remote.state, remote.counts, remote.output_file_id, remote.error_file_id) \
            != (record.state, record.counts, record.output_file_id, record.error_file_id)
        if changed or force:
            record.state, record.counts = remote.state, remote.counts
            record.output_file_id = remote.output_file_id or record.output_file_id
            record.error_file_id = remote.error_file_id or record.error_file_id
            self.log.write(record)

    async def _poll(self) -> list[tuple[BatchRecord, Remote]]:
        """Poll the batches in flight, with backoff, until at least one has ended."""
        while True:
            records = list(self._inflight.values())
            remotes = await asyncio.gather(
                *(self.provider.status(r.provider_id or "") for r in records))
            ended = []
            for record, remote in zip(records, remotes, strict=True):
                self._update(record, remote)
                if remote.state in ("cancelling", "cancelled", "canceling") \
                        and record.local_id not in self._cancelled:
                    self.report.stopped = self.report.stopped or "canceled"
                if remote.ended:
                    ended.append((record, remote))
            self._show()
            if ended:
                return ended
            await asyncio.sleep(self._delay)
            self._delay = min(self.options.poll_max_s, self._delay * self.options.poll_factor)

    async def _collect(self, record: BatchRecord, remote: Remote) -> None:
        """Read an ended batch's results into the cache and record what became of each."""
        wanted = {k: self._stubs[k] for k in record.keys or () if k in self._stubs}
        outcomes = await self.provider.results(record, remote, wanted) if wanted else []
        found: dict[str, Outcome] = {}
        for outcome in outcomes:  # a key twice (never seen): an answer wins
            if outcome.key not in found or outcome.generation is not None:
                found[outcome.key] = outcome
        answers: dict[str, Generation] = {}
        refused: dict[str, str] = {}
        retry: dict[str, list[str]] = {}
        for key in wanted:
            got = found.get(key)
            if got is None:
                retry.setdefault("missing: the batch's results had no line for this "
                                 "request", []).append(key)
            elif got.generation is not None:
                answers[key] = got.generation
            elif got.final:
                refused[key] = got.error or "refused"
            else:
                retry.setdefault(got.error or "errored", []).append(key)
        systematic = (not answers and len(refused) >= WINDOW
                      and len(set(refused.values())) == 1)
        if systematic:
            retry.setdefault(next(iter(refused.values())), []).extend(refused)
            refused = {}
        cache = self.client.cache
        if cache is not None:
            cache.put_many((k, g.model_dump()) for k, g in answers.items() if cacheable(g))
        self.answers.update((k, g) for k, g in answers.items() if not cacheable(g))
        costs = [self.client.guard.prices.generation_cost(self.client.identity.model, g,
                                                          batch=True) for g in answers.values()]
        cost = None if None in costs else sum(c or 0.0 for c in costs)
        record.state = "collected"
        record.counts = split_counts(list(found.values()), record.requests)
        record.cost_usd, record.refused, record.retry = cost, refused or None, retry or None
        self.log.write(record)
        for reason, keys in retry.items():
            for key in keys:
                self._tries[key] += 1
                self._reasons[key] = reason
        self.refused.update(refused)
        for key in [*answers, *refused]:
            self._pending.pop(key, None)
        self.fresh.update(answers)
        self.client.calls += len(answers)
        self.client.errors += len(refused)
        self.report.collected += len(answers)
        self.report.cost_usd += cost or 0.0
        self.client.guard.charge(cost or 0.0)
        self._committed += (cost or 0.0) - (record.estimate_usd or 0.0)
        self._show()
        if systematic:
            message = next(iter(retry))
            hint = self.client.refusals.hint
            raise SystematicRefusal(
                f"Stopped: all {len(retry[message])} requests of batch {record.local_id} were "
                f"refused with the same error, so every request would be: {message}"
                + (f" {hint}" if hint else ""), status=400)
        if self.on_collected is not None:
            await self.on_collected(record, answers)

    def _show(self) -> None:
        self.progress.show(self._records.values(), self.report)


async def cancel_batches(provider: BatchProvider, run_dir: str | Path) -> list[BatchRecord]:
    """Cancel the run's batches in flight and record it; returns the records cancelled.

    Needs no lock: a process running the batches sees the cancellation at its next poll,
    collects what was answered and submits nothing more in that session."""
    log = BatchLog(run_dir)
    done: list[BatchRecord] = []
    records = log.read()
    claimed = {r.provider_id for r in records.values() if r.provider_id}
    for record in records.values():
        if record.ended:
            continue
        if record.provider_id is None:
            found = await provider.find(record, claimed)
            if found is None:
                continue
            record.provider_id = found
        try:
            remote = await provider.cancel(record.provider_id)
        except CallFailed:
            remote = await provider.status(record.provider_id)
            if remote.ended:
                continue
            raise
        record.state, record.counts = remote.state, remote.counts
        record.canceled_by_user = True
        log.write(record)
        done.append(record)
    return done
