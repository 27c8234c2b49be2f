"""A run in batch mode: the plan's uncached requests go to the provider's batch interface,
the rows come from the response cache.

1. A first pass of the ordinary :class:`~mike_sdk.run.evaluator.Evaluator` checks the
   run folder (manifest, resume) and writes the rows the cache can answer already.
2. :class:`~mike_sdk.batch.runner.BatchRunner` plans the remaining work items with the
   evaluator's :class:`~mike_sdk.run.plan.Planner`, re-attaches to the run's batches in
   flight (``batches.jsonl``), submits the rest, polls and collects each ended batch
   into the response cache under the live keys.
3. At the end, and between two rounds of batches (requests sent again after an expired
   or errored batch), the evaluator runs again over the cache: it writes the rows of the
   newly answered items (and error rows for requests refused for good), exactly as a
   live run would, and the summary. Not after each batch: each pass reads the whole
   configuration, and a full one in 11 batches spent most of its time and memory there.

The evaluator's client is the run's own :class:`ModelClient` in batch mode
(``client.held``): a request the cache lacks is not sent live but left unanswered, as by
a stopped client, until its batch is collected; answers are priced at batch rates, and
those collected in this session are handed over once as not cached. What a collected
batch cost is in the run's ledger (``spend.jsonl``) before its answers are in the cache,
so every later session's summary counts it, whenever the process is stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mike_sdk.backend import GenerationRequest
from mike_sdk.batch.options import BatchOptions, BatchReport
from mike_sdk.batch.progress import BatchProgress
from mike_sdk.batch.provider import BatchProvider, NoBatchInterface, provider_for
from mike_sdk.batch.records import BatchRecord
from mike_sdk.batch.runner import BatchRunner
from mike_sdk.calls.client import ModelClient, run_sync
from mike_sdk.calls.failures import CallFailed
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator, RunStopped
from mike_sdk.run.plan import Planner
from mike_sdk.runfolder.files import Summary
from mike_sdk.runfolder.ledger import Ledger
from mike_sdk.runfolder.rundir import read_row_ids, write_summary
from mike_sdk.strategy import get_strategy


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
    done = read_row_ids(path) if path.is_dir() else set()
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
        from mike_sdk.sampling.rounds import run_rounds

        runs: list[BatchRun] = []

        async def one_round(sizes: dict[str, int]) -> Summary:
            runs.append(await _batched(client, config, run_dir, benchmark, options, progress,
                                       provider, sizes))
            return runs[-1].summary

        summary = await run_rounds(Evaluator(client, benchmark=benchmark, progress=False),
                                   config, run_dir, one_round=one_round)
        return dataclasses.replace(runs[-1], summary=summary)
    return await _batched(client, config, run_dir, benchmark, options, progress, provider,
                          None)


async def _batched(client: ModelClient, config: EvalConfig, run_dir: str | Path,
                   benchmark: Benchmark, options: BatchOptions | None, progress: bool,
                   provider: BatchProvider, sizes: dict[str, int] | None) -> BatchRun:
    """One batch run of ``config`` (one round's ``sizes`` of a ``target_ci`` run)."""
    evaluator = Evaluator(client, benchmark=benchmark, progress=False)
    held, ledger = client.held, None
    client.held = {}  # batch mode: what the cache lacks waits for its batch
    try:
        # Checks the folder; writes the rows the cache holds.
        await evaluator.arun(config, run_dir, sizes=sizes)
        ledger = Ledger(Path(run_dir))  # collected batches are paid for here

        async def collected(record: BatchRecord) -> None:
            await evaluator.arun(config, run_dir, sizes=sizes)

        runner = BatchRunner(client, provider, run_dir, options, ledger=ledger,
                             progress=BatchProgress(enabled=progress), on_collected=collected)
        try:
            report = await runner.run(lambda: plan_requests(client, benchmark, config,
                                                            run_dir, sizes))
        except NoBatchInterface as exc:
            raise RunStopped(str(exc)) from None
        except CallFailed as exc:
            message = " ".join(str(exc).split())
            raise RunStopped(f"{message} Batch mode stopped; collected answers are cached and "
                             f"paid for in {run_dir}, the batches in flight are recorded "
                             "there: fix this and re-run the same command to re-attach."
                             ) from None
        live = runner.live
        del runner  # its keys and stubs go before the last pass over the configuration
        if live:  # out of batch rounds: sent live, at live prices
            waiting, client.held = client.held, None
            try:
                answered = await client.generate(live, ledger=ledger)
            finally:
                client.held = waiting
            waiting.update(answered)
        ledger.close()  # the last pass reads its own: one set of half a million keys, not two
        ledger = None
        summary = await evaluator.arun(config, run_dir, sizes=sizes)
    finally:
        if ledger is not None:
            ledger.close()
        client.held = held
        client.held_costs.clear()
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

