"""The one call path: a backend behind the response cache, the call guard and one
concurrency limit.

Every caller reaches a model through a :class:`ModelClient`: the evaluator, ``ask`` /
``ask_many``, the dry run and ``mike reproduce``. For each request it computes the
cache key once, answers from the cache where it can, and sends the rest to the backend
in length-sorted batches, at most ``concurrency`` batches in flight for the whole
client (however many callers share it), each batch under the
:class:`~mike_sdk.calls.limits.CallGuard` (budget, rate limits, retries) and cached as
soon as it returns. Cost is computed once per generation, here.

Clients that share a cache folder (in one process or several) pay once for a request:
a request is sent only under its lease (:mod:`mike_sdk.calls.leases`, taken as its
batch gets a slot); a request another client is sending is waited for, its answer read
from the cache once stored (or its refusal recorded), and sent here after all if that
client gives it back unanswered or dies.

>>> from mike_sdk.backends.mock import MockBackend
>>> client = ModelClient(MockBackend(), concurrency=4)
>>> answers = client.generate_sync([GenerationRequest(prompt="Q: 1+1?")])
>>> [(a.generation.text, a.cached) for a in answers if a.generation is not None]
[('mock answer b205a3', False)]
>>> client.calls
1
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from mike_sdk.backend import (
    Backend,
    Generation,
    GenerationRequest,
    Identity,
    Likelihood,
    LikelihoodRequest,
    on_body_sent,
)
from mike_sdk.calls.cache import ResponseCache, request_key
from mike_sdk.calls.failures import BadRequest, CallFailed
from mike_sdk.calls.inflight import InFlight
from mike_sdk.calls.intake import Answered, Intake, OnBatch, OnSend
from mike_sdk.calls.leases import Claim, Leases
from mike_sdk.calls.limits import BudgetReached, CallGuard, Halted, Limits, max_input_tokens
from mike_sdk.calls.refusals import RefusalWatch, profile_hint
from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.ledger import Ledger

T = TypeVar("T")
Q = TypeVar("Q", bound=BaseModel)

R = TypeVar("R", bound=BaseModel)


class ModelClient(Intake):
    """A backend with caching, rate limits, retries, cost accounting and one concurrency
    limit. Share one client between callers to share its limits.

    ``concurrency`` (else ``limits.max_concurrency``, else the backend's
    ``abilities.max_concurrency``) is the number of backend calls in flight at once.
    ``cache=None`` makes no cache lookups or writes. ``shared=False`` sends without
    leases: for a cache no other client sends for at the same time.
    """

    def __init__(self, backend: Backend, *, cache: ResponseCache | None = None,
                 limits: Limits | None = None, concurrency: int | None = None,
                 shared: bool = True) -> None:
        self.backend = backend
        self.cache = cache
        self.leases = Leases(cache.directory) if cache is not None and shared else None
        """This client's leases in the cache folder (None: not shared, or no cache)."""
        self.limits = limits or Limits()
        abilities = backend.abilities
        self.concurrency = concurrency or self.limits.max_concurrency \
            or abilities.max_concurrency
        self.batch_size = abilities.batch_size
        self.identity: Identity = backend.identity
        settings = backend.request_settings()
        self.guard = CallGuard(self.limits, self.identity.model, hidden_output=(
            settings.reasoning_budget or 0) if settings is not None else 0)
        self.calls = 0
        """Requests the backend answered for this client."""
        self.errors = 0
        """Requests the backend refused (400s)."""
        self.stopped: str | None = None
        """``max_cost`` or ``error`` once the client stopped sending; None while it sends."""
        self.fatal: CallFailed | None = None
        """The failure that stopped the client (credentials, model, retries given up)."""
        self.refusals = RefusalWatch(profile_hint(backend))
        """Holds refusals until the model first answers, to stop on systematic ones."""
        self.held: dict[str, Answered] | None = None
        """Batch mode (not None): requests the cache lacks are not sent live but wait for
        their batch; answers and refusals that batches brought in this session wait here
        until asked for (see :meth:`take_batch`). None: live."""
        self.held_costs: dict[str, float | None] = {}
        """Batch mode: what each answer a batch brought cost, until asked for (the answer
        itself is read from the cache then: half a million held took 1.3 GB)."""
        self.abandoned_keys: set[str] = set()
        """Requests still in flight :data:`~.inflight.DRAIN_S` after an interruption: sent, perhaps
        paid for, their answers lost (the next run asks them again)."""
        self._slots: asyncio.Semaphore | None = None
        self._flights: InFlight | None = None
        self._billed_failures: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def hidden_output(self) -> int:
        """Output tokens a request may spend beyond its ``max_new_tokens`` (reasoning)."""
        return self.guard.hidden_output

    def __repr__(self) -> str:
        return (f"ModelClient({self.backend!r}, cache={self.cache!r}, "
                f"concurrency={self.concurrency})")

    # -- keys and the cache ------------------------------------------------------------

    def key(self, request: GenerationRequest | LikelihoodRequest) -> str:
        """The cache key of a generation or likelihood request to this model."""
        call = "generate" if isinstance(request, GenerationRequest) else "loglikelihood"
        return request_key(self.identity, call, request)

    def lookup(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached values among ``keys``, as stored (absent keys are left out)."""
        return self.cache.get_many(keys) if self.cache is not None else {}

    def reset(self) -> None:
        """Clear ``stopped`` and ``fatal`` so that the client sends again."""
        self.stopped, self.fatal, self.abandoned_keys = None, None, set()
        self.guard.halted = False

    def stop(self, why: str, failure: CallFailed | None = None) -> None:
        """Send nothing new (no retry either); answers already in flight still land."""
        self.stopped = self.stopped or why
        self.fatal = self.fatal or failure
        self.guard.halted = True
        if self._flights is not None:
            self._flights.gate.set()  # the callers held by a suspicious refusal watch go home

    # -- calls ---------------------------------------------------------------------------

    async def generate(self, requests: Mapping[str, GenerationRequest], *,
                       on_batch: OnBatch | None = None,
                       on_send: OnSend | None = None,
                       ledger: Ledger | None = None) -> dict[str, Answered]:
        """Answers for requests by cache key: from the cache, else from the backend.

        Keys the client could not answer because it stopped (``max_cost``, or a fatal
        failure in any of its callers) are absent from the result; refused requests are
        present with ``error`` set. ``on_batch`` sees each batch of answers as it lands,
        cache hits first; ``on_send`` sees the keys of each batch as it is sent (a run
        folder's journal of requests in flight): once its body is on the socket where the
        backend reports it (``Backend.reports_sending``), else just before. What is paid
        for is written to ``ledger`` (a run's ``spend.jsonl``) before it is cached.
        """
        out: dict[str, Answered] = {}

        def found(values: Mapping[str, dict[str, Any]]) -> None:
            answers = self.answered(values)
            out.update((a.key, a) for a in answers)
            if answers and on_batch is not None:
                on_batch(answers)

        if self.held is not None:  # batch mode: this session's batch answers come first
            landed = self.take_held(requests)
            out.update((a.key, a) for a in landed)
            if landed and on_batch is not None:
                on_batch(landed)
        found(self.lookup(k for k in requests if k not in out))
        missing = {k: r for k, r in requests.items() if k not in out}
        if missing and not self.stopped and self.held is None:
            def arrived(batch: dict[str, Generation], failed: dict[str, str],
                        costs: Mapping[str, float | None]) -> None:
                answers = [Answered(k, g, False, costs.get(k)) for k, g in batch.items()]
                answers += [Answered(k, None, False, None, error) for k, error in failed.items()]
                out.update((a.key, a) for a in answers)
                if on_batch is not None:
                    on_batch(answers)

            await self._send(self.backend.generate, missing, arrived, found, on_send, ledger)
        return out

    def answered(self, values: Mapping[str, dict[str, Any]]) -> list[Answered]:
        """Cached generations (as :meth:`lookup` gives them) as answers, priced."""
        answers = []
        for key, value in values.items():
            generation = Generation.model_validate(value)  # pydantic-core: fast
            answers.append(Answered(key, generation, True, self.cost(generation)))
        return answers

    async def loglikelihood(self, requests: Mapping[str, LikelihoodRequest]
                            ) -> dict[str, Likelihood]:
        """Scores for requests by cache key (refused or unsent keys are absent)."""
        out: dict[str, Likelihood] = {}

        def found(values: Mapping[str, dict[str, Any]]) -> None:
            out.update((k, Likelihood.model_validate(v)) for k, v in values.items())

        found(self.lookup(requests))
        missing = {k: r for k, r in requests.items() if k not in out}
        if missing and not self.stopped:
            def arrived(batch: dict[str, Likelihood], failed: dict[str, str],
                        costs: Mapping[str, float | None]) -> None:
                out.update(batch)

            await self._send(self.backend.loglikelihood, missing, arrived, found)
        return out

    async def generate_many(self, requests: Sequence[GenerationRequest]) -> list[Answered]:
        """:meth:`generate` for a list; raises the failure if a request got no answer."""
        keys = [self.key(r) for r in requests]
        answers = await self.generate(dict(zip(keys, requests, strict=True)))
        if self.fatal is not None:
            raise self.fatal
        for key in keys:
            if key not in answers:
                raise BudgetReached(f"Not sent: max_cost ${self.limits.max_cost} reached.")
            if answers[key].error is not None:
                raise BadRequest(answers[key].error or "")
        return [answers[k] for k in keys]

    def generate_sync(self, requests: Sequence[GenerationRequest]) -> list[Answered]:
        """:meth:`generate_many` from synchronous code."""
        return run_sync(self.backend, self.generate_many(requests))

    async def aclose(self) -> None:
        """Close the backend (connections, memory); the cache belongs to whoever opened it."""
        await self.backend.aclose()

    # -- the machinery -------------------------------------------------------------------

    def _slot(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; ask() runs a new loop each call.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.concurrency), loop
            self._flights = InFlight()
            self._tasks = set()
        return self._slots

    def _landed(self, flights: InFlight) -> None:
        """A request came back (answered, refused or failed): with a suspicious refusal
        watch, hold new sends until nothing is in flight, then stop or go on."""
        if not self.refusals.suspicious:
            flights.gate.set()
            return
        flights.gate.clear()
        if flights.count == 0:
            failure = self.refusals.verdict()
            if failure is not None:
                self.stop("error", failure)
            flights.gate.set()

    async def _send(self, fn: Callable[[Sequence[Q]], Awaitable[Sequence[R]]],
                    requests: dict[str, Q],
                    arrived: Callable[[dict[str, R], dict[str, str], Mapping[str, float | None]],
                                      None],
                    found: Callable[[Mapping[str, dict[str, Any]]], None],
                    on_send: OnSend | None = None,
                    ledger: Ledger | None = None) -> None:
        """Send ``requests`` in length-sorted batches under the one concurrency limit;
        ``arrived`` sees each batch (answers, refusals) once it is cached, ``found`` the
        answers another client paid for (a shared cache: see :class:`Claim`).

        A stop (``max_cost``, a fatal failure, this call cancelled) sends nothing new but
        lets the calls in flight land in the cache: they are paid for. Those still out
        after :data:`~.inflight.DRAIN_S` are abandoned and counted."""
        slots = self._slot()
        claim = Claim(self.leases, self.lookup, found) if self.leases is not None else None
        flights = self._flights or InFlight()

        def record(key: str, message: str) -> None:
            self.errors += 1
            arrived({}, {key: message}, {})

        def refuse(key: str, message: str) -> None:
            if claim is not None:
                claim.refused(key, message)
            record(key, message)

        async def ask(batch: list[str]) -> None:
            journal = _journal(batch, on_send, self.backend.reports_sending)
            try:
                with on_body_sent(journal):
                    answers = await self.guard.call(
                        fn, [requests[k] for k in batch],
                        on_billed=lambda: self._billed_failures.update(batch))
            except BadRequest as exc:
                if len(batch) == 1:
                    self.refusals.refused(batch[0], " ".join(str(exc).split()), refuse)
                    return
                for key in batch:  # find which request of the batch was refused
                    await ask([key])
                return
            self.refusals.answer()
            fresh = dict(zip(batch, answers, strict=True))
            costs = self.store(fresh, ledger=ledger, requests=requests)
            if claim is not None:
                claim.release(batch)
            arrived(fresh, {}, costs)

        async def send(batch: list[str], claimed: bool = False) -> None:
            async with slots:
                if not flights.gate.is_set():
                    await flights.gate.wait()  # a suspicious refusal watch: its verdict
                if self.stopped:
                    return
                flights.begin(batch)
                try:
                    if claim is not None and not claimed:
                        batch = claim.take(batch)
                    if batch:
                        await ask(batch)
                except BudgetReached:
                    self.stop("max_cost")
                except Halted:
                    pass  # stopped between two attempts: nothing was sent
                except (CallFailed, ConfigError) as exc:
                    # Credentials, model, retries given up, or a cache that cannot be
                    # written: stop every caller (what is in flight still lands).
                    self.stop("error", exc if isinstance(exc, CallFailed) else None)
                    if isinstance(exc, ConfigError):
                        raise
                finally:
                    flights.end()
                    self._landed(flights)

        def start(keys: Iterable[str], claimed: bool = False) -> set[asyncio.Task[None]]:
            order = sorted(keys, key=lambda k: max_input_tokens(requests[k]))
            size = self.batch_size
            new = {asyncio.create_task(send(order[i:i + size], claimed))
                   for i in range(0, len(order), size)}
            self._tasks.update(new)
            return new

        tasks = start(requests)
        done: set[asyncio.Task[None]] = set()
        try:
            while tasks or (claim is not None and claim.waiting and not self.stopped):
                if tasks:
                    timeout = None if claim is None else claim.pause()
                    finished, tasks = await asyncio.wait(tasks, timeout=timeout)
                    done |= finished
                elif claim is not None:
                    await asyncio.sleep(claim.pause())
                if claim is not None and not self.stopped:
                    tasks |= start(claim.look(record), claimed=True)
            if self.fatal is None:  # all sent: refusals still held were isolated after all
                self.refusals.flush()
        finally:
            if tasks:  # interrupted: what is in flight is paid for, let it land
                self.guard.halted = True  # no retries: a failed attempt was not paid for
                self.abandoned_keys.update(await flights.drain(tasks))
            self._tasks.difference_update(tasks | done)
            if claim is not None:
                claim.close()  # unsent (stopped, cancelled) or refused: given back
        # Read every failure (several callers may hit a full disk): raise the first.
        errors = [e for t in done if not t.cancelled() and (e := t.exception()) is not None]
        if errors:
            raise errors[0]


def _journal(batch: list[str], on_send: OnSend | None, on_the_wire: bool
             ) -> Callable[[], None]:
    """Journals ``batch`` as in flight (``on_send``) once: at the transport's first
    :func:`~mike_sdk.backend.body_sent` when it reports them (a request still waiting for a
    connection, the rate limiter or a retry's pause was never received, so never billed),
    else now, before the call."""
    journaled = on_send is None

    def journal() -> None:
        nonlocal journaled
        if not journaled and on_send is not None:
            journaled = True
            on_send(batch)

    if not on_the_wire:
        journal()
    return journal


def run_sync(backend: Backend, work: Awaitable[T]) -> T:
    """Run ``work`` in a new event loop and release the backend's connections, which
    belong to that loop, before it ends (the model itself stays loaded)."""
    async def main() -> T:
        try:
            return await work
        finally:
            await backend.release_connections()

    return asyncio.run(main())
