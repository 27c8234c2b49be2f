"""What one configuration costs on each current model family, in full and with --target-ci.

One configuration: 3 tasks x 52 target languages x 4 metrics, one strategy. The dry run
plans a seeded sample of SAMPLE items per task (every language and metric) for a priced
model of each profile family, counts input tokens as the dry run does (the model's
encoding where it loads, else the stated approximation), takes output at its limit (plus
a reasoning model's budget: an upper bound), and scales to a number of items per task:
all of them, and the items a --target-ci run took on the embedded-model slice
(``bench/bench_sample_coverage.py``: pass them with --items W=N,...).

    python bench/bench_family_costs.py [DATA_DIR] [--items 5=117,2=652] [--strategy ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from mike_sdk.backend import BACKENDS
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.dryrun import dry_run

#: A priced model of each current family of the model profiles.
FAMILIES = {"openai/gpt-5": "gpt-5", "openai/gpt-5 (mini)": "gpt-5-mini",
            "openai/gpt-4": "gpt-4.1", "openai/o-series": "o4-mini",
            "anthropic/claude-5": "claude-opus-5", "anthropic/claude-opus-4.7+": "claude-opus-4-7",
            "anthropic/claude-4.6": "claude-sonnet-4-6",
            "anthropic/claude-4.5-and-earlier": "claude-haiku-4-5",
            "openai/deepseek-reasoner": "deepseek-reasoner"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default="../shared/bmike53")
    parser.add_argument("--items", default="5=117,2=652", help="W=items per task")
    parser.add_argument("--sample", type=int, default=10)
    parser.add_argument("--strategy", default="8-shot-metric-specific")
    args = parser.parse_args()
    targets = {w: int(n) for w, n in (p.split("=") for p in args.items.split(","))}
    os.environ.setdefault("OPENAI_API_KEY", "not-used-nothing-is-sent")
    os.environ.setdefault("ANTHROPIC_API_KEY", "not-used-nothing-is-sent")
    benchmark = Benchmark(args.data_dir)
    config = EvalConfig(strategy=args.strategy, sample=args.sample, likelihood=False)
    print(f"{'family':34} {'model':18} {'scope':14} {'requests':>9} {'live $':>10} "
          f"{'batch $':>10}  tokens")
    with tempfile.TemporaryDirectory() as scratch, ResponseCache(scratch) as cache:
        for family, model in FAMILIES.items():
            kind = "anthropic" if model.startswith("claude") else "openai"
            client = ModelClient(BACKENDS.create(kind, model=model), cache=cache)
            plan = dry_run(client, benchmark, config, None)
            price = client.guard.prices.price(model)
            assert price is not None, model
            scopes = {"full": None, **{f"--target-ci {w}": n for w, n in targets.items()}}
            for scope, items in scopes.items():
                requests = tokens = out = 0.0
                for task in plan.tasks.values():
                    share = (items or task.available) / task.positions
                    share = min(share, task.available / task.positions)
                    requests += task.requests * share
                    tokens += task.input_tokens * share
                    out += task.output_tokens * share
                live = (tokens * price.input + out * price.output) / 1e6
                print(f"{family:34} {model:18} {scope:14} {requests:9,.0f} {live:10,.0f} "
                      f"{live * price.batch:10,.0f}  {plan.token_method[:60]}")


if __name__ == "__main__":
    main()
