"""``mike eval --dry-run``: what a run would send and cost, without calling the backend.

Plans every work item, leaves out what the run folder already holds and what the
response cache answers, and bounds the rest from above: input tokens as UTF-8 bytes plus
chat-template tokens (what ``--max-cost`` reserves), output tokens at ``max_new_tokens``
plus a reasoning model's budget (answers usually stop earlier), priced with the run's
price table.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.pricing import DEFAULTS_NOTE
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.likelihood import likelihood_requests
from mike_sdk.run.plan import Planner
from mike_sdk.runfolder.rundir import read_row_ids
from mike_sdk.strategy import get_strategy


class DryRun(BaseModel):
    """The plan of a run: calls still to make, their estimated tokens and cost."""

    model_config = ConfigDict(frozen=True)

    items: int
    """Work items of the configuration."""
    done: int
    """Items the run folder already holds."""
    cache_hits: int
    """Items the response cache answers."""
    calls: int
    """Generation requests to send (distinct, after cache hits)."""
    likelihood_calls: int
    """Likelihood-scoring requests to send (backends that score only)."""
    input_tokens: int
    """Prompt tokens of those calls, at most (UTF-8 bytes plus template tokens)."""
    output_tokens: int
    """Output tokens at ``max_new_tokens`` (plus the reasoning budget) each: an upper
    bound."""
    cost_usd: float | None
    """Estimated cost (an upper bound), or None when the model has no price."""
    model: str
    """The model priced."""

    def describe(self) -> str:
        """A few lines for the terminal."""
        cost = (f"${self.cost_usd:.4f} (upper bound; {DEFAULTS_NOTE})"
                if self.cost_usd is not None
                else f"unknown (no price for {self.model!r}; add one with --prices FILE)")
        lines = [f"Dry run: {self.items} items, {self.done} already in the run folder, "
                 f"{self.cache_hits} answered by the cache.",
                 f"Calls to send: {self.calls}"
                 + (f" (+{self.likelihood_calls} likelihood)" if self.likelihood_calls else ""),
                 f"Input tokens: at most {self.input_tokens} (UTF-8 bytes plus template "
                 "tokens; tokenizers usually need 3-4 times fewer)",
                 f"Estimated output tokens: {self.output_tokens} (at max_new_tokens plus any "
                 "reasoning budget: an upper bound)",
                 f"Estimated cost: {cost}",
                 "Nothing was sent."]
        return "\n".join(lines)


def dry_run(client: ModelClient, benchmark: Benchmark, config: EvalConfig,
            run_dir: str | Path | None, *, batch: bool = False) -> DryRun:
    """Plan ``config`` for the client's backend without calling it (or loading a model);
    cache lookups and prices are the client's, as in a real run (at the provider's batch
    rates with ``batch``)."""
    identity, abilities = client.identity, client.backend.abilities
    cost: float | None = 0.0 if client.guard.prices.price(identity.model) is not None else None
    strategy = get_strategy(config.strategy, **config.strategy_options)
    done = read_row_ids(Path(run_dir)) if run_dir else set()
    planner = Planner(benchmark, config, strategy, abilities)
    items = hits = skipped = in_tokens = out_tokens = 0
    seen: set[str] = set()
    ll_seen: set[str] = set()
    work = iter(planner)
    while chunk := list(islice(work, 2048)):
        items += len(chunk)
        todo = [w for w in chunk if w.id not in done]
        skipped += len(chunk) - len(todo)
        keys = [client.key(w.request) for w in todo]
        found = client.lookup(k for k in keys if k not in seen)
        for w, key in zip(todo, keys, strict=True):
            if key in found:
                hits += 1
            elif key not in seen:
                seen.add(key)
                bound = client.guard.bound(w.request)
                in_tokens, out_tokens = in_tokens + bound[0], out_tokens + bound[1]
                usd = client.upper_bound([w.request], batch=batch)
                cost = None if cost is None or usd is None else cost + usd
        for pair in likelihood_requests(todo, config, abilities).values():
            ll_keys = [client.key(r) for r in pair]
            ll_found = client.lookup(ll_keys)
            ll_seen.update(k for k in ll_keys if k not in ll_found)
    return DryRun(items=items, done=skipped, cache_hits=hits,
                  calls=len(seen), likelihood_calls=len(ll_seen), input_tokens=in_tokens,
                  output_tokens=out_tokens, cost_usd=cost, model=identity.model)
