"""A run's summary: its results table and what the session paid, sent and stopped on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.pricing import DEFAULTS_NOTE
from mike_sdk.memory.evaluation import MemoryStrategy, retrieval_stats
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.results import Aggregator
from mike_sdk.runfolder.files import GroupResult, LanguageDetection, Summary, Totals
from mike_sdk.runfolder.ledger import Ledger
from mike_sdk.runfolder.rundir import final_rows
from mike_sdk.scoring.confusion import LanguageIdentifier
from mike_sdk.scoring.scorers import SCORERS
from mike_sdk.strategy import PromptStrategy

__all__ = ["run_summary"]


def run_summary(client: ModelClient, config: EvalConfig, strategy: PromptStrategy,
                aggregator: Aggregator, ledger: Ledger, skipped: dict[str, dict[str, int]],
                wall_s: float, run_path: Path, *, described: dict[str, Any],
                identifier: LanguageIdentifier, memory: MemoryStrategy | None) -> Summary:
    """The summary of the run in ``run_path`` after a session of ``client`` (``described``:
    how its requests were built)."""
    stats = client.guard.stats
    model = client.identity.model
    cost, tokens = ledger.cost_usd, ledger.tokens()
    abandoned = client.abandoned_keys
    totals = Totals(rows=aggregator.rows, cache_hits=aggregator.cached,
                    backend_calls_this_session=client.calls,
                    paid_requests=ledger.requests, input_tokens=tokens.input,
                    output_tokens=tokens.output, cached_input_tokens=tokens.cached_input,
                    reasoning_tokens=tokens.reasoning,
                    out_of_reasoning_budget=aggregator.out_of_reasoning_budget,
                    cost_usd=cost, errors=aggregator.errors,
                    usage_unreported=ledger.unreported, abandoned=len(abandoned),
                    retries=stats.retries, rate_limited=stats.rate_limited,
                    wall_time_s=round(wall_s, 3))
    cost_note = (f"No price known for model {model!r}: cost_usd is null. Add it with "
                 "--prices FILE or $MIKE_PRICES." if cost is None
                 else f"Prices: {DEFAULTS_NOTE}.")
    if ledger.unreported:
        cost_note += (f" {ledger.unreported} answers came without usage from the server: "
                      "each is counted at its request's upper bound.")
    if abandoned:
        cost_note += (f" {len(abandoned)} requests were abandoned in flight when the "
                      "session stopped: perhaps billed, not counted yet (the next run "
                      "counts them).")
    retrieval: dict[str, Any] = {} if memory is None else {"retrieval": retrieval_stats(
        final_rows(run_path), memory.candidates)}
    # Set only when the run stopped, so that a finished run's file has neither key.
    stop: dict[str, Any] = {}
    if client.stopped:
        stop["stopped"] = client.stopped
        if client.fatal is not None:
            stop["error"] = " ".join(str(client.fatal).split())
    return Summary(backend=client.identity, strategy=strategy.describe(), config=config,
                   scorers=SCORERS, **described,
                   results=[GroupResult.model_validate(g) for g in aggregator.table()],
                   language_detection=LanguageDetection.model_validate(identifier.describe()),
                   skipped=skipped, totals=totals, cost_note=cost_note, **stop, **retrieval)
