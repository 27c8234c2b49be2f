"""The caching evaluator: runs a configuration against a backend, resumably.

Work items stream from the planner in chunks; each chunk's requests go to the one
call path (:class:`~mike_sdk.calls.client.ModelClient`: cache, call guard, cost, one
concurrency limit) while the next chunk is already queued behind it, so the window
of requests in flight never drains at a chunk boundary. A chunk's rows are scored and
appended to ``results.jsonl`` as soon as its answers are in. A crash or Ctrl-C loses
at most the rows of the chunks in flight, never a paid-for response: re-running the
same command resumes from the cache and the folder.

A refused request (400) becomes an error row and the run goes on; refused credentials
or an unknown model stop the run at once, and so does reaching ``max_cost``, each
keeping every finished row and cached answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from itertools import islice
from pathlib import Path
from typing import Any

from mike_sdk.backend import Abilities, Backend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient, run_sync
from mike_sdk.calls.intake import Answered
from mike_sdk.calls.limits import CallGuard, Limits
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import BackendError, ConfigError
from mike_sdk.memory.evaluation import MemoryStrategy
from mike_sdk.parallel.start import start_helpers
from mike_sdk.run.collector import lean_collector
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.likelihood import likelihood_requests
from mike_sdk.run.plan import Planner, WorkItem, check_data_files
from mike_sdk.run.progress import Progress
from mike_sdk.run.resume import Resumed, resume
from mike_sdk.run.rows import answer_texts, result_rows
from mike_sdk.run.summary import run_summary
from mike_sdk.runfolder.files import Manifest, ResultRow, Summary
from mike_sdk.runfolder.ledger import Ledger
from mike_sdk.runfolder.prompts import PromptStore
from mike_sdk.runfolder.rundir import RunDir, read_manifest
from mike_sdk.sampling.positions import expected_positions, on_permutation
from mike_sdk.scoring.confusion import LanguageIdentifier, lingua_available
from mike_sdk.scoring.scorers import SCORERS
from mike_sdk.scoring.verdicts import IdentificationCache
from mike_sdk.strategy import PromptStrategy, get_strategy

TASK_SIZES = {"zsre": 743, "counterfact": 1031, "wikifactdiff": 784}
_VERSIONED = ("mike-sdk", "pydantic", "diskcache", "torch", "transformers", "openai", "anthropic")
#: Chunks in flight at once: one being answered, one queued behind it.
PIPELINE_DEPTH = 2
#: Items planned or scored between two turns of the event loop: planning and scoring
#: are CPU work in the loop, and a long stretch of it would leave answered slots idle.
SLICE = 32


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


@dataclass
class Session:
    """One session of a run: what its pipeline reads and writes."""

    planner: Planner
    state: Resumed
    config: EvalConfig
    strategy: PromptStrategy
    bar: Progress
    run: RunDir
    ledger: Ledger
    store: PromptStore


class RunStopped(BackendError):
    """The run stopped before the end (credentials, model, or retries given up)."""


class Evaluator:
    """Evaluates one backend on BMIKE-53 through a :class:`ModelClient`.

    >>> from mike_sdk.backends.mock import MockBackend
    >>> evaluator = Evaluator(MockBackend(), benchmark=Benchmark("bmike53"), progress=False)
    >>> config = EvalConfig(tasks=("zsre",), languages=("de",), limit=2)
    >>> summary = evaluator.run(config, "runs/demo")
    >>> summary.totals.rows, summary.totals.cache_hits
    (8, 0)

    Pass a backend (a client is built with ``cache`` and ``limits``) or a ready
    :class:`ModelClient` to share its cache, limits and budget with other callers.
    """

    def __init__(self, backend: Backend | ModelClient, *, benchmark: Benchmark | None = None,
                 cache: ResponseCache | None = None, progress: bool = True,
                 chunk_size: int | None = None, limits: Limits | None = None,
                 processes: int | None = None) -> None:
        if processes is not None and processes < 1:
            raise ConfigError(f"processes={processes}: give 1 or more (1: this process only; "
                              "None: one per core).")
        if isinstance(backend, ModelClient):
            if cache is not None or limits is not None:
                raise ConfigError("Give cache and limits to the ModelClient, not to the "
                                  "Evaluator that uses it.")
            self.client = backend
        else:
            self.client = ModelClient(backend, cache=cache if cache is not None
                                      else ResponseCache(), limits=limits)
        self.backend = self.client.backend
        self.benchmark = benchmark or Benchmark()
        self.progress = progress
        client = self.client
        self.chunk_size = chunk_size or max(256, 4 * client.batch_size * client.concurrency)
        self.processes = processes
        """Processes a run may use, helpers included (None: one per core, up to 4, for
        runs of at least 20,000 rows; :mod:`mike_sdk.parallel`)."""
        self.identifier = LanguageIdentifier(use_lingua=False)
        """Labels each answer's language (set per run: scripts only, or with lingua)."""
        self._verdicts: IdentificationCache | None = None
        self._memory: MemoryStrategy | None = None

    @property
    def cache(self) -> ResponseCache:
        """The response cache of the client."""
        if self.client.cache is None:
            raise ConfigError("The evaluator needs a client with a response cache.")
        return self.client.cache

    @property
    def guard(self) -> CallGuard:
        """The client's call guard (limits, prices, retry counters)."""
        return self.client.guard

    @property
    def calls(self) -> int:
        """Backend requests answered through this evaluator's client."""
        return self.client.calls

    @property
    def errors(self) -> int:
        """Requests refused (400) through this evaluator's client."""
        return self.client.errors

    @property
    def stopped(self) -> str | None:
        """Why the last run stopped early: ``max_cost`` or ``error``; None if it did not."""
        return self.client.stopped

    def run(self, config: EvalConfig, run_dir: str | Path, *,
            retry_errors: bool = False) -> Summary:
        """Run (or resume) ``config`` into ``run_dir``; returns the summary.

        ``retry_errors`` sends the requests of refused items (error rows) again; a
        ``target_ci`` configuration runs in rounds (:mod:`mike_sdk.sampling.rounds`).
        """
        return run_sync(self.backend, self.arun(config, run_dir, retry_errors=retry_errors))

    async def arun(self, config: EvalConfig, run_dir: str | Path, *,
                   retry_errors: bool = False, sizes: dict[str, int] | None = None) -> Summary:
        """Async form of :meth:`run` (one round of a ``target_ci`` run: ``sizes`` gives
        the items per task to take from the permutation)."""
        if config.target_ci is not None and sizes is None:
            from mike_sdk.sampling.rounds import run_rounds

            return await run_rounds(self, config, run_dir, retry_errors=retry_errors)
        started = time.perf_counter()
        strategy = get_strategy(config.strategy, **config.strategy_options)
        self._memory = None if config.edit_memory is None else MemoryStrategy(
            strategy, config.edit_memory, config.metrics, config.limit)
        strategy = self._memory or strategy
        strategy.bind(self.benchmark)
        identity, abilities = self.client.identity, self.backend.abilities
        if self.client.limits.max_cost is not None \
                and self.guard.prices.price(identity.model) is None:
            raise ConfigError(f"--max-cost needs a price for model {identity.model!r}; add it "
                              "to a price file (--prices FILE or $MIKE_PRICES).")
        if config.language_id == "auto":  # the manifest records what was used
            config = config.model_copy(
                update={"language_id": "lingua" if lingua_available() else "script"})
        elif config.language_id == "lingua" and not lingua_available():
            raise ConfigError("language_id='lingua' needs the language identifier: "
                              "pip install 'mike-sdk[analysis]' (or use 'script').")
        run = RunDir(run_dir)
        run.open(Manifest(config=config, backend=identity, strategy=strategy.describe(),
                          abilities=abilities, versions=_versions(), scorers=SCORERS,
                          **self._described(strategy, abilities)))
        self.client.reset()
        ledger = Ledger(run.path)
        try:
            state = resume(run, ledger, retry_errors=retry_errors)
            ledger.settle(self.client.lookup, self.client.cost)
            # Every session of the run counts against --max-cost, not only this one.
            self.guard.spent = ledger.cost_usd or 0.0
            planner = Planner(self.benchmark, config, strategy, abilities, sizes=sizes,
                              recorded=read_manifest(run.path).data_files,
                              on_read=lambda files: run.update_manifest(data_files=files))
            self.identifier = self._identifier(config)
            self.identifier.start(config.pairs())  # loads once a request is sent
            expected = sum(expected_positions(t, TASK_SIZES[t], config, sizes)
                           for t in config.tasks)
            total = expected * len(config.pairs()) * len(config.metrics)
            with Progress(total, enabled=self.progress, initial=len(state.done)) as bar:
                # A model without a price shows no cost at all rather than $0.
                priced = self.guard.prices.price(identity.model) is not None
                bar.cost = ledger.cost_usd if priced else None
                session = Session(planner, state, config, strategy, bar, run, ledger,
                                  PromptStore(run.path, state.keys))
                with lean_collector():
                    extra_files = await self._run_plan(session, total)
                bar.finish()
            # Strategies that read more of the data (retrieval pools) say which files.
            extra_files.update(strategy.files)
            check_data_files(read_manifest(run.path).data_files, extra_files)
            run.update_manifest(data_files=extra_files)
            summary = run_summary(self.client, config, strategy, state.aggregator, ledger,
                                  planner.skipped, time.perf_counter() - started, run.path,
                                  described=self._described(strategy, abilities),
                                  identifier=self.identifier, memory=self._memory)
            if config.sampled:
                summary = summary.model_copy(update={"sampling": planner.sample_record()})
            run.write_summary(summary)
        finally:
            ledger.close(abandoned=self.client.abandoned_keys)
            self.identifier.close()
            run.close()
        if self.client.fatal is not None:
            message = " ".join(str(self.client.fatal).split())
            raise RunStopped(f"{message} Run stopped; finished rows are kept in {run.path}: "
                             "fix this and re-run the same command to resume.")
        return summary

    async def _run_plan(self, session: Session, rows: int) -> dict[str, str]:
        """Answer the whole plan, with helper processes where they pay; returns the data
        files the helpers' strategies read beyond the plan's."""
        planner, state = session.planner, session.state
        pool = start_helpers(self, session, rows)
        if pool is None:
            await self._pipeline(iter(planner), session)
        else:
            try:
                pool.attach()
                await self._pipeline(pool.own_work(planner), session)
                if not self.client.stopped:  # then the blocks given back
                    await pool.finished()
                    await self._pipeline(pool.own_work(planner), session)
            finally:
                pool.close()
            planner.in_order()
        session.bar.skipped(sum(sum(pairs.values()) for pairs in planner.skipped.values()))
        if not self.client.stopped:
            state.check_all_planned(session.run.path, None if planner.sizes is None else
                                    on_permutation(session.config, planner.available))
        return {} if pool is None else pool.strategy_files

    async def _pipeline(self, work: Iterator[WorkItem], session: Session) -> None:
        """Keep up to :data:`PIPELINE_DEPTH` chunks of ``work`` sending; write each one's
        rows as soon as it is answered and labelled (in the order chunks finish). A chunk
        waiting for its labels (lingua still loading) no longer holds requests back."""
        pending: set[asyncio.Task[list[ResultRow]]] = set()
        sending = asyncio.Semaphore(PIPELINE_DEPTH)
        state, bar, run = session.state, session.bar, session.run

        def write(finished: set[asyncio.Task[list[ResultRow]]]) -> None:
            for task in finished:
                rows = task.result()
                # Before the rows that name them:
                session.store.add((row.cache_key, row) for row in rows)
                run.append(rows)
                bar.rows(len(rows))
                for row in rows:
                    state.aggregator.add(row)

        try:
            while not self.client.stopped and (chunk := await self._next_chunk(work)):
                # Items the bar's total counted but cannot be scored, so far:
                bar.skipped(sum(sum(pairs.values())
                                for pairs in session.planner.skipped.values()))
                todo = [w for w in chunk if w.id not in state.done]
                if state.unchecked:  # the rows already there must be what is planned
                    for w in chunk:
                        if w.id in state.unchecked:
                            state.check(w.id, self.client.key(w.request), run.path)
                if todo:
                    await sending.acquire()  # released once the chunk's answers are in
                    pending.add(asyncio.create_task(
                        self._process(todo, session, sending.release)))
                finished = {t for t in pending if t.done()}
                pending -= finished
                write(finished)
            if pending:
                finished, pending = await asyncio.wait(pending)
                write(finished)
        finally:
            for task in pending:  # an error or Ctrl-C: stop the chunks still in flight...
                task.cancel()
            if pending:  # ...and let their paid answers land in the cache and the ledger
                await asyncio.wait(pending)

    async def _next_chunk(self, work: Iterator[WorkItem]) -> list[WorkItem]:
        """The next chunk of the plan, rendered a slice at a time."""
        chunk: list[WorkItem] = []
        while piece := list(islice(work, min(SLICE, self.chunk_size - len(chunk)))):
            chunk += piece
            await asyncio.sleep(0)
        return chunk

    def _identifier(self, config: EvalConfig) -> LanguageIdentifier:
        use_lingua = config.language_id == "lingua"
        if use_lingua and self._verdicts is None:
            self._verdicts = IdentificationCache(self.cache.directory / "language-ids.sqlite")
        return LanguageIdentifier(use_lingua=use_lingua, store=self._verdicts)

    def _described(self, strategy: PromptStrategy, abilities: Abilities) -> dict[str, Any]:
        """The manifest's and summary's record of how requests were built."""
        chat = abilities.chat and not abilities.completion
        return {"requests": self.backend.request_settings(),
                "chat_protocol": strategy.chat_protocol() if chat else None}

    async def _process(self, todo: list[WorkItem], session: Session,
                       answered_all: Callable[[], None]) -> list[ResultRow]:
        """Answer, check, score and label one chunk (``answered_all`` once nothing of it
        is left to send); returns its rows."""
        once = [answered_all]

        def release() -> None:
            while once:
                once.pop()()

        try:
            return await self._answer_and_label(todo, session, release)
        finally:
            release()  # an error or a cancel before the answers were all in

    async def _answer_and_label(self, todo: list[WorkItem], session: Session,
                                answered_all: Callable[[], None]) -> list[ResultRow]:
        client, bar, ledger = self.client, session.bar, session.ledger
        keys = [client.key(w.request) for w in todo]

        def landed(batch: Sequence[Answered]) -> None:
            bar.requests(len(batch), cached=bool(batch) and batch[0].cached)
            if not batch or batch[0].cached:
                return
            ledger.sent((a.key for a in batch if a.error is not None), refused=True)
            # The client wrote these to the ledger with the cache; the bar counts them.
            costs = [a.cost_usd for a in batch if a.generation is not None]
            added = None if None in costs else sum(c or 0.0 for c in costs)
            if added is None:
                bar.cost = None  # no price for the model: show no cost rather than $0
            elif bar.cost is not None:
                bar.cost += added

        def sending(batch: Sequence[str]) -> None:
            self.identifier.warm()  # fresh answers to identify: lingua loads while they fly
            ledger.sent(batch)

        answers = await client.generate(dict(zip(keys, (w.request for w in todo), strict=True)),
                                         on_batch=landed, on_send=sending, ledger=ledger)
        # A stopped client leaves some keys unanswered: those items wait for a re-run.
        todo = [w for w, k in zip(todo, keys, strict=True) if k in answers]
        keys = [k for k in keys if k in answers]
        answered = [w for w, k in zip(todo, keys, strict=True) if answers[k].error is None]
        scoring = likelihood_requests(answered, session.config, self.backend.abilities)
        # Keys hash whole prompts: compute each once, for the lookup and for the rows.
        pair_keys = {wid: (client.key(new), client.key(old))
                     for wid, (new, old) in scoring.items()}
        checks = await client.loglikelihood(
            {key: r for wid, pair in scoring.items()
             for key, r in zip(pair_keys[wid], pair, strict=True)}) if scoring else {}
        bar.likelihoods(len(checks))
        answered_all()
        tokenizer = self.backend.get_tokenizer() if self.backend.abilities.tokenizer else None
        outputs, extracted = answer_texts(todo, keys, answers, session.strategy)
        # One look-up of the stored language verdicts for the whole chunk.
        await self.identifier.aprefetch((a, w.item.target_lang, w.item.source_lang)
                                        for a, w in zip(extracted, todo, strict=True))
        rows: list[ResultRow] = []
        for start in range(0, len(todo), SLICE):
            await asyncio.sleep(0)  # answers waiting to be read, slots waiting to be used
            part = slice(start, start + SLICE)
            rows += result_rows(todo[part], keys[part], outputs[part], extracted[part],
                                answers, pair_keys, checks, tokenizer, self.identifier,
                                self._memory)
        return rows
