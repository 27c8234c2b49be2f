"""Cost to plan with: the dry run's figures for the full run, a ``--sample N`` and a
``--target-ci W``, live and at batch prices, each with its expected interval width; and
``--pilot K``, K real requests per task that turn the output-token bound into a measured
estimate with an interval.

The pilot's requests are the first items of the run's own seeded permutation (so a
sampled run re-uses them from the cache: nothing is paid twice), spread over languages
and metrics by a hash of their ids. From their usage it learns, per task, how many input
tokens the provider bills per token the dry run counted, and how many output and
reasoning tokens an answer takes; a bootstrap over the pilot's requests gives the
interval of a run's cost (:func:`project`).
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from mike_sdk.calls.client import ModelClient
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.providers.tokens import input_counter
from mike_sdk.report import bootstrap as bs
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import get_strategy

if TYPE_CHECKING:
    from mike_sdk.run.dryrun import TaskPlan

__all__ = ["PilotTask", "Projection", "cost_table", "project", "run_pilot", "scopes"]

RESAMPLES = 2000


class Pricer(Protocol):
    """USD of so many input and output tokens (None: no price): ``CallGuard.tokens_cost``,
    the one pricing site."""

    def __call__(self, input_tokens: float, output_tokens: float, *,
                 batch: bool = False) -> float | None: ...

#: The widest 95% half-width (points) of a mean of n scores in [0, 1] is 1.96 x 50 / sqrt(n)
#: (every score 0 or 1, half of them 1); an average over languages is no wider.
WORST_HALF_WIDTH = 1.96 * 50
#: The sample size shown when the configuration has none.
SHOWN_SAMPLE = 100
#: The target widths shown when the configuration has none.
SHOWN_TARGETS = (2.0, 5.0)


class PilotTask(BaseModel):
    """What the pilot's requests of one task used."""

    model_config = ConfigDict(frozen=True)

    counted: list[int]
    """Input tokens the dry run counted, per request."""
    billed: list[int]
    """Input tokens the provider billed, per request."""
    output: list[int]
    """Output tokens billed (reasoning included), per request."""
    reasoning: list[int]
    """Reasoning tokens, per request (0 where none were reported)."""
    paid: int
    """Requests sent now (the others came from the cache)."""


async def run_pilot(client: ModelClient, benchmark: Benchmark, config: EvalConfig,
                    k: int) -> dict[str, PilotTask]:
    """Send ``k`` requests per task of ``config`` (through the client: cached, counted,
    within its limits) and return their usage."""
    if k < 2:
        raise ConfigError("--pilot K: K must be at least 2 (an interval needs a spread).")
    abilities = client.backend.abilities
    counter = input_counter(client.backend)
    chat = abilities.chat and not abilities.completion
    strategy = get_strategy(config.strategy, **config.strategy_options)
    strategy.bind(benchmark)
    per_position = len(config.pairs()) * len(config.metrics)
    first = config.model_copy(update={"sample": math.ceil(k / per_position) + 1,
                                      "limit": None, "target_ci": None, "shard": None})
    chosen: dict[str, list[Any]] = {}
    for work in Planner(benchmark, first, strategy, abilities):
        chosen.setdefault(work.item.task, []).append(work)
    out: dict[str, PilotTask] = {}
    for task, works in chosen.items():
        works = sorted(works, key=lambda w: hashlib.sha256(w.id.encode()).digest())[:k]
        requests = {client.key(w.request): w.request for w in works}
        answers = await client.generate(requests)
        if client.fatal is not None:
            raise client.fatal
        used = [(key, a.generation, a.cached) for key, a in answers.items()
                if a.generation is not None]
        if len(used) < 2:
            raise ConfigError(f"The pilot got fewer than 2 answers for {task}: see the "
                              "errors above, or raise --pilot.")
        gens = [g for _, g, _ in used if g is not None]
        counted = [counter.count(requests[key], chat=chat) for key, _, _ in used]
        out[task] = PilotTask(
            counted=counted,  # a provider that reports no usage is billed as counted
            billed=[c if g.input_tokens is None else g.input_tokens
                    for c, g in zip(counted, gens, strict=True)],
            output=[g.output_tokens or 0 for g in gens],
            reasoning=[g.reasoning_tokens or 0 for g in gens],
            paid=sum(1 for _, _, cached in used if not cached))
    return out


class Projection(BaseModel):
    """A run's projected usage and cost, with 95% intervals from the pilot."""

    model_config = ConfigDict(frozen=True)

    input_tokens: tuple[float, float, float]
    """Billed input tokens: estimate, low, high."""
    output_tokens: tuple[float, float, float]
    """Output tokens (reasoning included): estimate, low, high."""
    reasoning_tokens: tuple[float, float, float]
    """Reasoning tokens: estimate, low, high."""
    cost_usd: tuple[float, float, float] | None
    """Live cost: estimate, low, high (None: no price)."""
    batch_cost_usd: tuple[float, float, float] | None
    """Cost at batch prices: estimate, low, high."""


def project(pilot: dict[str, PilotTask], plans: dict[str, TaskPlan],
            positions: dict[str, int], pricer: Pricer) -> Projection:
    """Usage and cost of a run taking ``positions`` items per task, from the pilot's
    requests: billed input = counted input x the pilot's billed/counted ratio, output =
    requests x the pilot's mean; intervals from resampling the pilot's requests."""
    np_ = bs._numpy()
    totals = {name: np_.zeros(RESAMPLES + 1) for name in ("in", "out", "think")}
    for task, plan in plans.items():
        run = pilot.get(task)
        if run is None or not plan.positions:
            continue
        share = positions.get(task, 0) / plan.positions  # of what the dry run planned
        requests, counted = plan.requests * share, plan.input_tokens * share
        rng = bs.rng_for(bs.DEFAULT_SEED, f"pilot/{task}")
        n = len(run.counted)
        idx = np_.vstack([np_.arange(n), rng.integers(0, n, size=(RESAMPLES, n))])
        c, b = np_.asarray(run.counted, float), np_.asarray(run.billed, float)
        o, r = np_.asarray(run.output, float), np_.asarray(run.reasoning, float)
        totals["in"] += counted * b[idx].sum(axis=1) / np_.maximum(c[idx].sum(axis=1), 1)
        totals["out"] += requests * o[idx].mean(axis=1)
        totals["think"] += requests * r[idx].mean(axis=1)

    def triple(values: Any) -> tuple[float, float, float]:
        low, high = np_.percentile(values[1:], [2.5, 97.5])
        return float(values[0]), float(low), float(high)

    def cost(batch: bool) -> tuple[float, float, float] | None:
        usd = [pricer(float(i), float(o), batch=batch)
               for i, o in zip(totals["in"], totals["out"], strict=True)]
        return None if None in usd else triple(np_.array(usd, dtype=float))

    return Projection(input_tokens=triple(totals["in"]), output_tokens=triple(totals["out"]),
                      reasoning_tokens=triple(totals["think"]), cost_usd=cost(False),
                      batch_cost_usd=cost(True))


def scopes(config: EvalConfig, plans: dict[str, TaskPlan]) -> list[tuple[str, dict[str, int]]]:
    """``(name, items per task)`` of the full run, a sample and target widths; a target's
    items are those the widest interval would need (rounds stop earlier when scores vary
    less)."""
    full = {task: plan.available for task, plan in plans.items()}
    out = [("full run", full)]
    n = config.sample or SHOWN_SAMPLE
    out.append((f"--sample {n}", {t: min(n, a) for t, a in full.items()}))
    for width in (config.target_ci,) if config.target_ci else SHOWN_TARGETS:
        need = math.ceil((WORST_HALF_WIDTH / width) ** 2)
        out.append((f"--target-ci {width:g}", {t: min(need, a) for t, a in full.items()}))
    return out


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 100 else f"${value:.4g}"


def cost_table(config: EvalConfig, plans: dict[str, TaskPlan], pricer: Pricer,
               pilot: dict[str, PilotTask] | None = None) -> str:
    """The dry run's table of scopes: requests, input tokens, cost live and at batch
    prices (output at its limit, or the pilot's estimate with its interval), and the
    widest expected 95% half-width of a task's average over languages."""
    rows = [["scope", "items/task", "requests", "input tokens", "cost live", "cost batch",
             "95% CI half-width"]]
    for name, items in scopes(config, plans):
        shares = {t: items[t] / p.positions if p.positions else 0.0 for t, p in plans.items()}
        requests = sum(p.requests * shares[t] for t, p in plans.items())
        fewest = min(items.values(), default=0)
        width = f"at most +/-{WORST_HALF_WIDTH / math.sqrt(fewest):.1f}" if fewest else "-"
        shown = ",".join(str(n) for n in dict.fromkeys(items.values()))
        if pilot is None:
            tokens = sum(p.input_tokens * shares[t] for t, p in plans.items())
            out = sum(p.output_tokens * shares[t] for t, p in plans.items())
            live, batch = (pricer(tokens, out, batch=b) for b in (False, True))
            rows.append([name, shown, f"{requests:,.0f}", f"{tokens:,.0f}", _money(live),
                         _money(batch), width])
            continue
        proj = project(pilot, plans, items, pricer)
        rows.append([name, shown, f"{requests:,.0f}", f"{proj.input_tokens[0]:,.0f}",
                     _range(proj.cost_usd), _range(proj.batch_cost_usd), width])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _range(triple: tuple[float, float, float] | None) -> str:
    if triple is None:
        return "-"
    return f"{_money(triple[0])} [{_money(triple[1])}, {_money(triple[2])}]"
