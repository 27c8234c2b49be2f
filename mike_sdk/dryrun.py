"""``mike eval --dry-run``: what a run would send and cost, without calling the backend.

Plans every work item, leaves out what the run folder already holds and what the
response cache answers, and estimates the rest: input tokens as
``ceil(characters / 4)``, output tokens at ``max_new_tokens`` (an upper bound:
answers usually stop earlier), priced with the run's price table.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .backend import Backend
from .cache import ResponseCache, request_key
from .config import EvalConfig
from .data import Benchmark
from .plan import Planner
from .pricing import DEFAULTS_NOTE, PriceTable
from .ratelimit import estimate_input_tokens
from .rundir import RESULTS, iter_rows
from .strategy import get_strategy


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
    """Estimated prompt tokens of those calls (characters / 4)."""
    output_tokens: int
    """Output tokens at ``max_new_tokens`` each: an upper bound."""
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
                 f"Estimated input tokens: {self.input_tokens} (characters / 4)",
                 f"Estimated output tokens: {self.output_tokens} (at max_new_tokens: an upper "
                 "bound)",
                 f"Estimated cost: {cost}",
                 "Nothing was sent."]
        return "\n".join(lines)


def dry_run(backend: Backend, benchmark: Benchmark, cache: ResponseCache, config: EvalConfig,
            run_dir: str | Path | None, prices: PriceTable) -> DryRun:
    """Plan ``config`` for ``backend`` without calling it (or loading a model)."""
    from .evaluator import Evaluator

    identity, abilities = backend.identity, backend.abilities
    strategy = get_strategy(config.strategy, **config.strategy_options)
    done = {row["id"] for row in iter_rows(Path(run_dir) / RESULTS)} if run_dir else set()
    helper = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False)
    planner = Planner(benchmark, config, strategy, abilities)
    items = hits = skipped = in_tokens = out_tokens = 0
    seen: set[str] = set()
    ll_seen: set[str] = set()
    work = iter(planner)
    while chunk := list(islice(work, 2048)):
        items += len(chunk)
        todo = [w for w in chunk if w.id not in done]
        skipped += len(chunk) - len(todo)
        keys = [request_key(identity, "generate", w.request) for w in todo]
        found = cache.get_many(k for k in keys if k not in seen)
        for w, key in zip(todo, keys, strict=True):
            if key in found:
                hits += 1
            elif key not in seen:
                seen.add(key)
                in_tokens += estimate_input_tokens(w.request)
                out_tokens += w.request.max_new_tokens
        for pair in helper.likelihood_requests(todo, config).values():
            ll_keys = [request_key(identity, "loglikelihood", r) for r in pair]
            ll_found = cache.get_many(ll_keys)
            ll_seen.update(k for k in ll_keys if k not in ll_found)
    cost = prices.cost(identity.model, in_tokens, out_tokens)
    return DryRun(items=items, done=skipped, cache_hits=hits,
                  calls=len(seen), likelihood_calls=len(ll_seen), input_tokens=in_tokens,
                  output_tokens=out_tokens, cost_usd=cost, model=identity.model)
