"""A run in batch mode: the plan's uncached requests go to the provider's batch interface,
the rows come from the response cache.

1. A first pass of the ordinary :class:`~mike_sdk.run.evaluator.Evaluator` checks the
   run folder (manifest, resume) and writes the rows the cache can answer already.
2. :class:`~mike_sdk.batch.runner.BatchRunner` plans the remaining work items with the
   evaluator's :class:`~mike_sdk.run.plan.Planner`, re-attaches to the run's batches in
   flight (``batches.jsonl``), submits the rest, polls and collects each ended batch
   into the response cache under the live keys.
3. After each collected batch, and once at the end, the evaluator runs again over the
   cache: it writes the rows of the newly answered items (and error rows for requests
   refused for good), exactly as a live run would, and the summary.

The evaluator's client is a :class:`BatchClient`: a :class:`ModelClient` that never
sends (a request the cache lacks is left unanswered, as by a stopped client, and waits
for its batch), prices answers at batch rates, and marks the answers collected in this
session as not cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.batch.progress import BatchProgress
from mike_sdk.batch.provider import BatchProvider, provider_for
from mike_sdk.batch.records import BatchRecord
from mike_sdk.batch.runner import BatchOptions, BatchReport, BatchRunner
from mike_sdk.calls.client import Answered, ModelClient, OnBatch, run_sync
from mike_sdk.calls.failures import CallFailed
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator, RunStopped
from mike_sdk.run.plan import Planner
from mike_sdk.runfolder.files import Summary
from mike_sdk.runfolder.rundir import read_row_ids, write_summary
from mike_sdk.strategy import get_strategy


class BatchClient(ModelClient):
    """A :class:`ModelClient` that answers from the cache only, at batch prices.

    It shares the cache, limits and call guard (prices, what was spent) of the client it
    is made from. ``fresh`` names the keys answered by batches collected in this session
    (their rows say ``cached: false``), ``extra`` holds the answers the cache does not
    keep (an empty reply cut at the limit), ``refused`` the requests refused for good.
    """

    def __init__(self, client: ModelClient) -> None:
        super().__init__(client.backend, cache=client.cache, limits=client.limits,
                         concurrency=client.concurrency)
        self.guard = client.guard
        self.fresh: set[str] = set()
        self.extra: dict[str, Generation] = {}
        self.refused: dict[str, str] = {}
        self.live: set[str] = set()
        """Keys answered by live calls (``--batch-fallback live``): priced at live rates."""

    def cost(self, generation: Generation, key: str | None = None) -> float | None:
        """USD of one generation at the provider's batch rates (live rates for the keys
        sent live)."""
        return self.guard.prices.generation_cost(self.identity.model, generation,
                                                 batch=key not in self.live)

    async def generate(self, requests: Mapping[str, GenerationRequest], *,
                       on_batch: OnBatch | None = None) -> dict[str, Answered]:
        """Answers from the cache (and this session's batches); nothing is sent. Keys not
        answered yet are absent, as for a stopped client: their rows wait."""
        found = self.lookup(requests)
        cached: list[Answered] = []
        fresh: list[Answered] = []
        for key in requests:
            if key in found:
                generation = Generation.model_validate(found[key])
            elif key in self.extra:
                generation = self.extra[key]
            elif key in self.refused:
                fresh.append(Answered(key, None, False, None, self.refused[key]))
                continue
            else:
                continue
            answer = Answered(key, generation, key not in self.fresh,
                              self.cost(generation, key))
            (cached if answer.cached else fresh).append(answer)
        for group in (cached, fresh):  # the progress bar reads one kind per batch
            if group and on_batch is not None:
                on_batch(group)
        return {a.key: a for a in (*cached, *fresh)}


@dataclass
class BatchRun:
    """What :func:`run_batched` returns."""

    summary: Summary
    report: BatchReport
    http_calls: dict[str, int] = field(default_factory=dict)
    """HTTP calls to the batch interface by kind (upload, create, poll, download, ...)."""


def plan_requests(client: ModelClient, benchmark: Benchmark, config: EvalConfig,
                  run_dir: str | Path, sizes: dict[str, int] | None = None,
                  ) -> Iterator[tuple[str, GenerationRequest]]:
    """``(cache key, request)`` of every work item of ``config`` without a row in
    ``run_dir``, in plan order: the requests a batch run needs."""
    strategy = get_strategy(config.strategy, **config.strategy_options)
    strategy.bind(benchmark)
    path = Path(run_dir)
    done = read_row_ids(path) if (path / "results.jsonl").exists() else set()
    planner = Planner(benchmark, config, strategy, client.backend.abilities, sizes=sizes)
    for work in planner:
        if work.id not in done:
            yield client.key(work.request), work.request


async def arun_batched(client: ModelClient, config: EvalConfig, run_dir: str | Path, *,
                       benchmark: Benchmark | None = None, options: BatchOptions | None = None,
                       progress: bool = True, provider: BatchProvider | None = None
                       ) -> BatchRun:
    """Run (or resume) ``config`` into ``run_dir`` through the provider's batch interface.

    ``client`` gives the backend (``openai`` or ``anthropic``), the response cache, the
    limits (``max_cost`` counts what has been submitted, at batch prices, as an upper
    bound) and the retry policy of the batch interface's HTTP calls.
    """
    benchmark = benchmark or Benchmark()
    provider = provider or provider_for(client.backend, client.limits.retry)
    if config.target_ci is not None:  # a batch per round, each round as below
        from mike_sdk.run.rounds import run_rounds

        evaluator = Evaluator(BatchClient(client), benchmark=benchmark, progress=False)
        runs: list[BatchRun] = []

        async def one_round(sizes: dict[str, int]) -> Summary:
            runs.append(await _batched(client, config, run_dir, benchmark, options, progress,
                                       provider, sizes))
            return runs[-1].summary

        summary = await run_rounds(evaluator, config, run_dir, one_round=one_round)
        return dataclasses.replace(runs[-1], summary=summary)
    return await _batched(client, config, run_dir, benchmark, options, progress, provider,
                          None)


async def _batched(client: ModelClient, config: EvalConfig, run_dir: str | Path,
                   benchmark: Benchmark, options: BatchOptions | None, progress: bool,
                   provider: BatchProvider, sizes: dict[str, int] | None) -> BatchRun:
    """One batch run of ``config`` (one round's ``sizes`` of a ``target_ci`` run)."""
    batch_client = BatchClient(client)
    evaluator = Evaluator(batch_client, benchmark=benchmark, progress=False)
    await evaluator.arun(config, run_dir, sizes=sizes)  # checks the folder; cached rows

    async def collected(record: BatchRecord, answers: dict[str, Generation]) -> None:
        await evaluator.arun(config, run_dir, sizes=sizes)

    runner = BatchRunner(batch_client, provider, run_dir, options,
                         progress=BatchProgress(enabled=progress), on_collected=collected)
    batch_client.fresh, batch_client.extra = runner.fresh, runner.answers
    batch_client.refused = runner.refused
    try:
        report = await runner.run(lambda: plan_requests(batch_client, benchmark, config,
                                                        run_dir, sizes))
    except CallFailed as exc:
        message = " ".join(str(exc).split())
        raise RunStopped(f"{message} Batch mode stopped; collected answers are cached and the "
                         f"batches in flight are recorded in {run_dir}: fix this and re-run "
                         "the same command to re-attach.") from None
    if runner.live:  # out of batch rounds: sent live through the ordinary client
        answered = await client.generate(runner.live)
        for key, got in answered.items():
            if got.generation is not None:
                batch_client.extra[key] = got.generation
                batch_client.fresh.add(key)
                batch_client.live.add(key)
            elif got.error is not None:
                batch_client.refused[key] = got.error
    summary = await evaluator.arun(config, run_dir, sizes=sizes)
    if report.stopped == "max_cost":
        summary = summary.model_copy(update={"stopped": "max_cost"})
        write_summary(run_dir, summary)
    return BatchRun(summary, report, dict(provider.http.calls))


def run_batched(client: ModelClient, config: EvalConfig, run_dir: str | Path, *,
                benchmark: Benchmark | None = None, options: BatchOptions | None = None,
                progress: bool = True, provider: BatchProvider | None = None) -> BatchRun:
    """:func:`arun_batched` from synchronous code (one event loop)."""
    return run_sync(client.backend, arun_batched(
        client, config, run_dir, benchmark=benchmark, options=options, progress=progress,
        provider=provider))

