"""The flags of a sampled evaluation and of planning its cost: ``--sample``, ``--seed``,
``--target-ci``, ``--pilot``; the dry run's report of what each scope costs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mike_sdk.calls.client import ModelClient
    from mike_sdk.data.benchmark import Benchmark
    from mike_sdk.run.config import EvalConfig


def add_sample_arguments(command: argparse.ArgumentParser) -> None:
    """Add the sampling flags to ``mike eval``."""
    command.add_argument("--sample", type=int, metavar="N", help="N items per task from a "
                         "seeded permutation of positions: the same items in every language "
                         "and for every model (a larger N later adds items and re-uses every "
                         "cached answer)")
    command.add_argument("--seed", type=int, default=0, help="seed of the --sample / "
                         "--target-ci permutation (default 0; recorded in the manifest)")
    command.add_argument("--target-ci", type=float, metavar="W", help="evaluate in rounds "
                         "along the permutation until each task's 95%% interval of the "
                         "average over target languages is within +/- W points, per metric "
                         "(or its items, or --sample N, run out)")
    command.add_argument("--pilot", type=int, metavar="K", help="with --dry-run: send K "
                         "real requests per task first (cached, counted) and extrapolate "
                         "tokens, reasoning tokens and cost with a 95%% interval")


def print_dry_run(client: ModelClient, benchmark: Benchmark, config: EvalConfig,
                  run_dir: Path, *, batch: bool, pilot: int | None) -> None:
    """Print the dry run, then the cost of the full run, a sample and target widths."""
    from mike_sdk.calls.client import run_sync
    from mike_sdk.run.dryrun import dry_run
    from mike_sdk.sampling.costplan import cost_table, run_pilot

    plan = dry_run(client, benchmark, config, run_dir, batch=batch)
    print(plan.describe())
    if config.target_ci is not None:
        print(f"(--target-ci {config.target_ci:g}: the calls above are the most its rounds can "
              "send; they stop once the intervals are narrow enough.)")
    measured = None
    if pilot:
        measured = run_sync(client.backend, run_pilot(client, benchmark, config, pilot))
        paid = sum(task.paid for task in measured.values())
        sent = sum(len(task.output) for task in measured.values())
        print(f"\nPilot: {sent} requests ({paid} sent now, the rest from the cache; they "
              "stay cached for the run). Output, reasoning and billed input tokens below "
              "are extrapolated from them, with 95% intervals.")
    how = "the pilot's estimates [95% interval]" if measured else "output at its limit"
    print(f"\nCost to plan with (input counted as above; {how}):")
    print(cost_table(config, plan.tasks, client.guard.tokens_cost, measured))
    if measured is None:
        print("Half-widths are the widest a 95% interval of 0..1 scores can be; --target-ci "
              "rounds stop as soon as the measured one is narrow enough.")
