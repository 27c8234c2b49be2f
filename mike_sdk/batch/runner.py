"""Packing, submitting, polling, collecting and retrying provider batches for one run.

:class:`BatchRunner` takes the requests a run needs (cache key and request, in plan
order), leaves out what the response cache holds, re-attaches to the batches of the run
folder still in flight (``batches.jsonl``, see :mod:`~mike_sdk.batch.records`), packs
the rest into batches within the provider's limits and ``max_cost``, polls with
backoff, and collects each ended batch into the response cache under the live keys.
Requests that come back errored (a 429 or 5xx), expired, canceled or missing are sent
again in a later batch, at most ``max_rounds`` times in all; refused ones (a 400) and
those out of rounds become refusals with the provider's message.

Batches are a transport of the client: what a collected batch answered enters through
:meth:`ModelClient.take_batch` (ledger, cache, batch prices, counters, budget), refusals
pass the client's one rule for systematic ones, and each request is submitted under its
lease in the cache folder, so that a live run on the same cache at the same time pays
once for each request: keys the live run is sending are not submitted but waited for,
and the live run waits for the keys in this run's batches. Only keys are held for the
plan; the requests are rendered again from the source when a batch is packed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.batch.options import BatchOptions, BatchReport
from mike_sdk.batch.packing import PackedBatch
from mike_sdk.batch.progress import BatchProgress
from mike_sdk.batch.provider import BatchProvider, Outcome, Remote, Stub, split_counts
from mike_sdk.batch.records import BatchLog, BatchRecord, new_local_id
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.failures import BadRequest
from mike_sdk.calls.leases import LEASE_S, Claim
from mike_sdk.runfolder.ledger import Ledger

Source = Callable[[], Iterable[tuple[str, GenerationRequest]]]
"""The run's requests by cache key, in plan order (called again for each packing)."""
OnCollected = Callable[[BatchRecord], Awaitable[None]]
#: Keys per response-cache look-up while planning.
LOOKUP = 2000
#: Seconds between renewals of the leases of the keys in flight (a quarter of a lease).
RENEW_S = LEASE_S / 4

class BatchRunner:
    """Runs the batches of one run folder for one client (cache, prices, ``max_cost``)."""

    def __init__(self, client: ModelClient, provider: BatchProvider, run_dir: str | Path,
                 options: BatchOptions | None = None, *, progress: BatchProgress | None = None,
                 on_collected: OnCollected | None = None, ledger: Ledger | None = None) -> None:
        self.client = client
        self.provider = provider
        self.log = BatchLog(run_dir)
        self.options = options or BatchOptions()
        self.progress = progress or BatchProgress(enabled=False)
        self.on_collected = on_collected
        """Awaited when a round ends with requests to send again: the run writes its rows.
        Not after each batch, nor after the last round (the run's last pass follows): each
        pass reads the whole configuration."""
        self.ledger = ledger
        """The run's ``spend.jsonl``: collected answers are paid for there, then cached."""
        self.report = BatchReport()
        self.refused = self.report.refused
        self.live: dict[str, GenerationRequest] = {}
        """Requests out of batch rounds, to be sent live (``fallback="live"``)."""
        self._records: dict[str, BatchRecord] = {}
        self._inflight: dict[str, BatchRecord] = {}
        self._pending: dict[str, None] = {}
        """Keys the cache lacks, in plan order (the requests stay in the source)."""
        self._stubs: dict[str, Stub] = {}
        self._source: Source = lambda: ()
        self._tries: Counter[str] = Counter()
        self._reasons: dict[str, str] = {}
        self._committed = 0.0
        self._delay = self.options.poll_initial_s
        self._cancelled: set[str] = set()
        """Batches cancelled before this session (their state is no reason to stop)."""
        leases = client.leases
        self._claim = Claim(leases, client.lookup, self._found) if leases is not None else None
        """The leases of the keys in this run's batches; keys another client sends wait."""

    # -- the session ---------------------------------------------------------------------

    async def run(self, source: Source) -> BatchReport:
        """Answer every request of ``source`` that the cache lacks, by batches."""
        self._source = source
        with self.log.locked():
            try:
                self._records = self.log.read()
                self._settled_before()
                self.plan(source)
                await self._attach()
                while True:
                    todo = self._todo()
                    if todo and not self.report.stopped:
                        await self._submit(todo)
                    if self._inflight:
                        for record, remote in await self._poll():
                            await self._collect(record, remote)
                            del self._inflight[record.local_id]
                    elif not await self._wait_for_others():
                        break
                if self.client.fatal is None:  # all collected: held refusals were isolated
                    self.client.refusals.flush()
            finally:
                if self._claim is not None:
                    self._claim.close()
            self._show()
        return self.report

    def _settled_before(self) -> None:
        for record in self._records.values():
            if record.state != "collected":
                continue
            for key, message in (record.refused or {}).items():
                self._refuse(key, message, mark=False)
            for reason, keys in (record.retry or {}).items():
                for key in keys:
                    self._tries[key] += 1
                    self._reasons[key] = reason

    def plan(self, source: Source) -> int:
        """Note the keys of ``source`` the cache lacks (and what reading their answers
        needs); returns how many."""
        chunk: dict[str, GenerationRequest] = {}

        def look_up() -> None:
            held = self.client.lookup(chunk)
            for key, request in chunk.items():
                if key not in held:
                    self._pending[key] = None
                    self._stubs[key] = self.provider.stub(request)
            chunk.clear()

        for key, request in source():
            if key not in self._stubs and key not in chunk:
                chunk[key] = request
                if len(chunk) >= LOOKUP:
                    look_up()
        look_up()
        for key in self.refused:
            self._pending.pop(key, None)
        return len(self._pending)

    def _requests(self, keys: Iterable[str]) -> Iterator[tuple[str, GenerationRequest]]:
        """The requests of ``keys``, rendered again from the source, in plan order (under
        the caller's own key strings: batch records keep hundreds of thousands)."""
        wanted = {key: key for key in keys}
        for key, request in self._source():
            if key in wanted:
                yield wanted.pop(key), request
                if not wanted:
                    return

    def _found(self, stored: Mapping[str, object]) -> None:
        """Keys another client answered meanwhile: cached, nothing to submit."""
        for key in stored:
            self._pending.pop(key, None)

    async def _wait_for_others(self) -> bool:
        """Wait while another client sends keys of this run; True when there is news."""
        claim = self._claim
        while claim is not None and claim.waiting and not self.report.stopped:
            await asyncio.sleep(claim.pause())
            before = len(self._pending)
            news = claim.look(self._refused_elsewhere)
            if news or len(self._pending) < before:
                return True
        return False

    def _refused_elsewhere(self, key: str, message: str) -> None:
        self._refuse(key, message, mark=False)

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
            if self._claim is not None:  # this run's batch: its keys are sent by it
                self._claim.held.update(self._claim.leases.acquire(record.keys or ()))
            self._committed += record.estimate_usd or 0.0
            self.report.reattached += 1
            if record.canceled_by_user:  # cancelled before this session: not a stop signal
                self._cancelled.add(record.local_id)

    def _todo(self) -> list[str]:
        """Keys to submit now; keys out of rounds become refusals (or live calls)."""
        covered = {k for r in self._inflight.values() for k in (r.keys or ())}
        waiting = self._claim.waiting if self._claim is not None else {}
        todo: list[str] = []
        out: list[str] = []
        for key in self._pending:
            if key in covered or key in waiting:
                continue
            (out if self._tries[key] >= self.options.max_rounds else todo).append(key)
        if out and self.options.fallback == "live":
            self.live.update(self._requests(out))
        for key in out:
            if self.options.fallback == "live":
                self._pending.pop(key, None)
            else:
                self._refuse(key, f"{self._reasons.get(key, 'no answer')} (sent in "
                             f"{self._tries[key]} batches)")
        return todo

    # -- submitting ----------------------------------------------------------------------

    async def _submit(self, todo: list[str]) -> None:
        provider, options = self.provider, self.options
        most = min(options.max_requests or provider.max_requests, provider.max_requests)
        size_cap = min(options.max_bytes or provider.max_bytes, provider.max_bytes)
        if self._claim is not None:  # keys another client is sending are waited for
            todo = [k for k in todo if k in self._claim.held] + self._claim.take(
                [k for k in todo if k not in self._claim.held])
        packed = PackedBatch()
        try:
            for key, request in self._requests(todo):
                try:
                    line = provider.line(key, request)
                except BadRequest as exc:  # the request cannot be sent at all (live: a 400)
                    self._refuse(key, " ".join(str(exc).split()))
                    continue
                if packed and (len(packed) >= most or packed.size + len(line) > size_cap):
                    if not await self._send(packed):
                        return
                    packed.close()
                    packed = PackedBatch()
                packed.add(key, line, self.client.upper_bound([request], batch=True))
            if packed:
                await self._send(packed)
        finally:
            packed.close()

    def _refuse(self, key: str, message: str, *, mark: bool = True) -> None:
        """A request refused for good: who waits for it (the client's caller, a live run
        on the same cache unless it told us: ``mark``) records the error."""
        self.refused[key] = message
        self._pending.pop(key, None)
        self.client.take_batch({}, {key: message})
        if mark and self._claim is not None:
            self._claim.refused(key, message)

    async def _send(self, packed: PackedBatch) -> bool:
        """Submit one batch (cut to what ``max_cost`` leaves); False once nothing more may
        be submitted."""
        estimates = packed.estimates
        known = None not in estimates
        limit = self.client.limits.max_cost
        if limit is not None and known:
            total, fits = self._committed, 0
            for usd in estimates:
                if total + (usd or 0.0) > limit:
                    break
                total += usd or 0.0
                fits += 1
            if fits < len(packed):
                self.report.stopped = "max_cost"
                packed.cut(fits)
                if not packed:
                    return False
        keys = packed.keys
        round_ = 1 + max(self._tries[k] for k in keys)
        record = self.provider.record(new_local_id(), keys, packed.size, round_)
        record.estimate_usd = sum(u or 0.0 for u in estimates) if known else None
        self.log.write(record, with_keys=True)  # before anything is sent

        def uploaded(file_id: str) -> None:
            record.state = "uploaded"
            self.log.write(record)

        remote = await self.provider.submit(record, packed.data, uploaded)
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
            until = time.monotonic() + self._delay
            while (left := until - time.monotonic()) > 0:
                await asyncio.sleep(min(left, RENEW_S))
                if self._claim is not None:  # renews this run's leases; news of others'
                    self._claim.look(self._refused_elsewhere)
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
        # The client's one rule: the same refusal on the first requests stops the run.
        # Refusals it holds (no answer yet) are not sent again: passed on at the first
        # answer or at the end, they become error rows then.
        watch = self.client.refusals
        delivered: dict[str, str] = {}

        def deliver(key: str, message: str) -> None:
            delivered[key] = message
            self._refuse(key, message)

        if answers:
            watch.answer()
        for key, message in refused.items():
            watch.refused(key, message, deliver)
        # A collected batch has nothing left in flight: the watch can give its verdict now.
        stop = watch.verdict()
        if stop is not None:  # sent again by the next run, not error rows
            retry.setdefault(next(iter(refused.values())), []).extend(
                k for k in refused if k not in delivered)
        for key in refused:
            self._pending.pop(key, None)
        refused = {k: m for k, m in delivered.items() if k in refused}
        cost = self.client.take_batch(answers, {}, ledger=self.ledger)
        record.state = "collected"
        record.counts = split_counts(list(found.values()), record.requests)
        record.cost_usd, record.refused, record.retry = cost, refused or None, retry or None
        self.log.write(record)
        for reason, keys in retry.items():
            for key in keys:
                self._tries[key] += 1
                self._reasons[key] = reason
        for key in answers:  # settled: a stub is kept only for what may be sent again
            self._pending.pop(key, None)
            self._stubs.pop(key, None)
        if self._claim is not None:
            self._claim.release(answers)
        self.report.collected += len(answers)
        self.report.cost_usd += cost or 0.0
        self._committed += (cost or 0.0) - (record.estimate_usd or 0.0)
        self._show()
        if stop is not None:
            raise stop
        if self.on_collected and list(self._inflight) == [record.local_id] and self._pending:
            del outcomes, found, answers  # a batch's answers are in the cache by now
            await self.on_collected(record)

    def _show(self) -> None:
        self.progress.show(self._records.values(), self.report)
