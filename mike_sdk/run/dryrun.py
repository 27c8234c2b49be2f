"""``mike eval --dry-run``: what a run would send and cost, without calling the backend.

Plans every work item, leaves out what the run folder already holds and what the
response cache answers, and prices the rest with the run's price table: input tokens
counted with the model's own tokenizer where one is public, else approximated, saying
which (:mod:`mike_sdk.providers.tokens`); output tokens at ``max_new_tokens`` plus a
reasoning model's budget (answers usually stop earlier: ``--pilot`` measures them). The
upper bound that ``--max-cost`` reserves (UTF-8 bytes plus template tokens) is shown
beside it.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.pricing import DEFAULTS_NOTE
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.providers.tokens import input_counter
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.likelihood import likelihood_requests
from mike_sdk.run.plan import Planner
from mike_sdk.runfolder.rundir import read_row_ids
from mike_sdk.sampling.positions import expected_positions
from mike_sdk.strategy import get_strategy


class TaskPlan(BaseModel):
    """One task's share of the plan, for projecting other sample sizes."""

    model_config = ConfigDict(frozen=True)

    available: int
    """Item positions in the task's test files."""
    positions: int
    """Item positions the configuration takes."""
    requests: int
    """Distinct generation requests planned (done and cached ones included)."""
    input_tokens: int
    """Their input tokens, counted as the dry run's ``token_method`` says."""
    output_tokens: int
    """Their output tokens at the limit (``max_new_tokens`` plus any reasoning budget)."""


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
    """Prompt tokens of those calls, counted as :attr:`token_method` says."""
    token_method: str
    """How input tokens were counted: the model's own tokenizer, or which approximation."""
    input_tokens_bound: int
    """Prompt tokens at most (UTF-8 bytes plus template tokens: what ``--max-cost``
    reserves)."""
    output_tokens: int
    """Output tokens at ``max_new_tokens`` (plus the reasoning budget) each: an upper
    bound."""
    cost_usd: float | None
    """Estimated cost (counted input, output at its limit), or None when the model has no
    price."""
    batch: bool = False
    """Priced at the provider's batch rates."""
    model: str
    """The model priced."""
    tasks: dict[str, TaskPlan] = {}
    """Per task, what the configuration plans (all of it, done or cached included)."""

    def describe(self) -> str:
        """A few lines for the terminal."""
        rates = "batch prices" if self.batch else "live prices"
        cost = (f"${self.cost_usd:.4f} ({rates}; output at its limit; {DEFAULTS_NOTE})"
                if self.cost_usd is not None
                else f"unknown (no price for {self.model!r}; add one with --prices FILE)")
        lines = [f"Dry run: {self.items} items, {self.done} already in the run folder, "
                 f"{self.cache_hits} answered by the cache.",
                 f"Calls to send: {self.calls}"
                 + (f" (+{self.likelihood_calls} likelihood)" if self.likelihood_calls else ""),
                 f"Input tokens: {self.input_tokens}, {self.token_method} "
                 f"(upper bound {self.input_tokens_bound}: UTF-8 bytes plus template tokens)",
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
    counter = input_counter(client.backend)
    chat = abilities.chat and not abilities.completion
    strategy = get_strategy(config.strategy, **config.strategy_options)
    done = read_row_ids(Path(run_dir)) if run_dir else set()
    planner = Planner(benchmark, config, strategy, abilities)
    items = hits = skipped = in_tokens = bound = out_tokens = 0
    per_task: dict[str, list[int]] = {}
    seen: set[str] = set()
    ll_seen: set[str] = set()
    work = iter(planner)
    distinct: set[str] = set()
    while chunk := list(islice(work, 2048)):
        items += len(chunk)
        every = {w.id: client.key(w.request) for w in chunk}
        todo = [w for w in chunk if w.id not in done]
        skipped += len(chunk) - len(todo)
        keys = [every[w.id] for w in todo]
        found = client.lookup(k for k in keys if k not in seen)
        counted: dict[str, int] = {}
        for w in chunk:  # each distinct request once: a repeated prompt is paid once
            key = every[w.id]
            if key in distinct:
                continue
            distinct.add(key)
            counted[key] = counter.count(w.request, chat=chat)
            counts = per_task.setdefault(w.item.task, [0, 0, 0])
            counts[0] += 1
            counts[1] += counted[key]
            counts[2] += w.request.max_new_tokens + client.hidden_output
        for w, key in zip(todo, keys, strict=True):
            if key in found:
                hits += 1
            elif key not in seen:
                seen.add(key)
                in_bound, out_bound = client.guard.bound(w.request)
                in_tokens += counted.get(key) or counter.count(w.request, chat=chat)
                bound += in_bound
                out_tokens += out_bound
        for pair in likelihood_requests(todo, config, abilities).values():
            ll_keys = [client.key(r) for r in pair]
            ll_found = client.lookup(ll_keys)
            ll_seen.update(k for k in ll_keys if k not in ll_found)
    cost = client.guard.tokens_cost(in_tokens, out_tokens, batch=batch)
    tasks = {task: TaskPlan(available=planner.available.get(task, 0),
                            positions=expected_positions(task, planner.available.get(task, 0),
                                                         config),
                            requests=n, input_tokens=tokens, output_tokens=out)
             for task, (n, tokens, out) in per_task.items()}
    return DryRun(items=items, done=skipped, cache_hits=hits,
                  calls=len(seen), likelihood_calls=len(ll_seen), input_tokens=in_tokens,
                  token_method=counter.method, input_tokens_bound=bound,
                  output_tokens=out_tokens, cost_usd=cost, model=identity.model, batch=batch,
                  tasks=tasks)
