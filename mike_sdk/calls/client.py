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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from mike_sdk.backend import (
    Backend,
    Generation,
    GenerationRequest,
    Identity,
    Likelihood,
    LikelihoodRequest,
)
from mike_sdk.calls.cache import ResponseCache, cacheable, request_key
from mike_sdk.calls.failures import BadRequest, CallFailed
from mike_sdk.calls.leases import Claim, Leases
from mike_sdk.calls.limits import BudgetReached, CallGuard, Limits, max_input_tokens
from mike_sdk.calls.refusals import RefusalWatch, profile_hint
from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.ledger import Ledger

T = TypeVar("T")
Q = TypeVar("Q", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Answered:
    """What became of one generation request."""

    key: str
    """Its response-cache key."""
    generation: Generation | None
    """The answer, or None when the request was refused."""
    cached: bool
    """Whether the answer came from the cache (no call made for it now)."""
    cost_usd: float | None
    """What the call cost, or would have for a cached answer (None: no price, or refused)."""
    error: str | None = None
    """Why the request was refused (a 400 with its message), or None."""


OnBatch = Callable[[Sequence[Answered]], None]


class ModelClient:
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
        self._slots: asyncio.Semaphore | None = None
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

    def cost(self, generation: Generation, *, batch: bool | None = None) -> float | None:
        """USD of one generation at this client's prices (None: the model has no price);
        ``batch``: at batch rates (default: in batch mode)."""
        return self.guard.cost(generation, batch=self.held is not None if batch is None
                               else batch)

    def upper_bound(self, requests: Sequence[GenerationRequest], *,
                    batch: bool | None = None) -> float | None:
        """Upper-bound USD of sending ``requests`` (None: no price); ``batch``: at batch
        rates (default: in batch mode)."""
        return self.guard.estimated_cost(requests, batch=self.held is not None
                                         if batch is None else batch)

    def lookup(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached values among ``keys``, as stored (absent keys are left out)."""
        return self.cache.get_many(keys) if self.cache is not None else {}

    def reset(self) -> None:
        """Clear ``stopped`` and ``fatal`` so that the client sends again."""
        self.stopped, self.fatal = None, None

    # -- calls ---------------------------------------------------------------------------

    async def generate(self, requests: Mapping[str, GenerationRequest], *,
                       on_batch: OnBatch | None = None,
                       ledger: Ledger | None = None) -> dict[str, Answered]:
        """Answers for requests by cache key: from the cache, else from the backend.

        Keys the client could not answer because it stopped (``max_cost``, or a fatal
        failure in any of its callers) are absent from the result; refused requests are
        present with ``error`` set. ``on_batch`` sees each batch of answers as it lands,
        cache hits first. What is paid for is written to ``ledger`` (a run's
        ``spend.jsonl``) before it is cached.
        """
        out: dict[str, Answered] = {}

        def found(values: Mapping[str, dict[str, Any]]) -> None:
            answers = []
            for key, value in values.items():
                generation = Generation.model_validate(value)  # pydantic-core: fast
                answers.append(Answered(key, generation, True, self.cost(generation)))
            out.update((a.key, a) for a in answers)
            if answers and on_batch is not None:
                on_batch(answers)

        if self.held is not None:  # batch mode: this session's batch answers come first
            landed = [self.held.pop(k) for k in requests if k in self.held]
            out.update((a.key, a) for a in landed)
            if landed and on_batch is not None:
                on_batch(landed)
        found(self.lookup(k for k in requests if k not in out))
        missing = {k: r for k, r in requests.items() if k not in out}
        if missing and not self.stopped and self.held is None:
            def arrived(batch: dict[str, Generation], failed: dict[str, str]) -> None:
                answers = [Answered(k, g, False, self.cost(g)) for k, g in batch.items()]
                answers += [Answered(k, None, False, None, error) for k, error in failed.items()]
                out.update((a.key, a) for a in answers)
                if on_batch is not None:
                    on_batch(answers)

            await self._send(self.backend.generate, missing, arrived, found, ledger)
        return out

    async def loglikelihood(self, requests: Mapping[str, LikelihoodRequest]
                            ) -> dict[str, Likelihood]:
        """Scores for requests by cache key (refused or unsent keys are absent)."""
        out: dict[str, Likelihood] = {}

        def found(values: Mapping[str, dict[str, Any]]) -> None:
            out.update((k, Likelihood.model_validate(v)) for k, v in values.items())

        found(self.lookup(requests))
        missing = {k: r for k, r in requests.items() if k not in out}
        if missing and not self.stopped:
            def arrived(batch: dict[str, Likelihood], failed: dict[str, str]) -> None:
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

    # -- what the provider answered --------------------------------------------------------

    def store(self, answers: Mapping[str, BaseModel], *, batch: bool = False,
              ledger: Ledger | None = None) -> float | None:
        """Take in what the provider answered (live, or a collected batch: ``batch``
        prices it at batch rates): each paid answer is recorded in the run's ``ledger``,
        then cached, counted and charged to the budget. The one place answers enter;
        returns the USD they cost (None: no price)."""
        paid = [(k, v, self.cost(v, batch=batch)) for k, v in answers.items()
                if isinstance(v, Generation)]
        # The ledger first: a kill between the two writes leaves an answer paid for and
        # sent again (counted once), never one cached and missing from the bill.
        if ledger is not None and paid:
            ledger.record(paid)
        if self.cache is not None:
            self.cache.put_many((k, v.model_dump()) for k, v in answers.items()
                                if not isinstance(v, Generation) or cacheable(v))
        self.calls += len(answers)
        costs = [usd for _, _, usd in paid]
        self.guard.charge(sum(c or 0.0 for c in costs))
        return None if None in costs else sum(c or 0.0 for c in costs)

    def take_batch(self, answers: Mapping[str, Generation], refused: Mapping[str, str], *,
                   ledger: Ledger | None = None) -> float | None:
        """A collected batch: its answers :meth:`store` d at batch rates, its refusals
        counted; both wait (in batch mode) for the caller that asks for them. Returns the
        USD the answers cost (None: no price)."""
        cost = self.store(answers, batch=True, ledger=ledger)
        self.errors += len(refused)
        if self.held is not None:
            self.held.update((k, Answered(k, g, False, self.cost(g, batch=True)))
                             for k, g in answers.items())
            self.held.update((k, Answered(k, None, False, None, m)) for k, m in refused.items())
        return cost

    # -- the machinery -------------------------------------------------------------------

    def _slot(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; ask() runs a new loop each call.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.concurrency), loop
            self._tasks = set()
        return self._slots

    async def _send(self, fn: Callable[[Sequence[Q]], Awaitable[Sequence[R]]],
                    requests: dict[str, Q],
                    arrived: Callable[[dict[str, R], dict[str, str]], None],
                    found: Callable[[Mapping[str, dict[str, Any]]], None],
                    ledger: Ledger | None = None) -> None:
        """Send ``requests`` in length-sorted batches under the one concurrency limit;
        ``arrived`` sees each batch (answers, refusals) once it is cached, ``found`` the
        answers another client paid for (a shared cache: see :class:`Claim`)."""
        slots = self._slot()
        claim = Claim(self.leases, self.lookup, found) if self.leases is not None else None

        def record(key: str, message: str) -> None:
            self.errors += 1
            arrived({}, {key: message})

        def refuse(key: str, message: str) -> None:
            if claim is not None:
                claim.refused(key, message)
            record(key, message)

        async def ask(batch: list[str]) -> None:
            try:
                answers = await self.guard.call(fn, [requests[k] for k in batch])
            except BadRequest as exc:
                if len(batch) == 1:
                    self.refusals.refused(batch[0], " ".join(str(exc).split()), refuse)
                    return
                for key in batch:  # find which request of the batch was refused
                    await ask([key])
                return
            self.refusals.answer()
            fresh = dict(zip(batch, answers, strict=True))
            self.store(fresh, ledger=ledger)
            if claim is not None:
                claim.release(batch)
            arrived(fresh, {})

        async def send(batch: list[str], claimed: bool = False) -> None:
            async with slots:
                if self.stopped:
                    return
                try:
                    if claim is not None and not claimed:
                        batch = claim.take(batch)
                    if batch:
                        await ask(batch)
                except BudgetReached:
                    self.stopped = "max_cost"
                except (CallFailed, ConfigError) as exc:
                    # Credentials, model, retries given up, or a cache that cannot be
                    # written: stop every caller now.
                    self.stopped = "error"
                    if isinstance(exc, CallFailed):
                        self.fatal = exc
                    for task in list(self._tasks):
                        if task is not asyncio.current_task():
                            task.cancel()
                    if isinstance(exc, ConfigError):
                        raise

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
            for task in tasks:
                task.cancel()
            self._tasks.difference_update(tasks | done)
            if claim is not None:
                claim.close()  # unsent (stopped, cancelled) or refused: given back
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error


def run_sync(backend: Backend, work: Awaitable[T]) -> T:
    """Run ``work`` in a new event loop and release the backend's connections, which
    belong to that loop, before it ends (the model itself stays loaded)."""
    async def main() -> T:
        try:
            return await work
        finally:
            await backend.release_connections()

    return asyncio.run(main())
