"""The plan in blocks (a task and a language pair): planned one by one, in any order and
in any process, they are the plan."""

from __future__ import annotations

from itertools import chain

from mike_sdk.backend import Abilities
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import get_strategy

CONFIG = EvalConfig(tasks=("zsre", "counterfact"), languages=("de", "zh", "fr"),
                    sample=4, seed=3)


def planner(benchmark: Benchmark) -> Planner:
    strategy = get_strategy(CONFIG.strategy)
    strategy.bind(benchmark)
    return Planner(benchmark, CONFIG, strategy, Abilities())


def test_blocks_in_any_order_are_the_plan(benchmark: Benchmark) -> None:
    whole = planner(benchmark)
    planned = [(w.id, w.request) for w in whole]
    blocks = whole.blocks()
    assert [(b.task, b.pair) for b in blocks][:2] == [("zsre", "en>de"), ("zsre", "en>zh")]
    assert len(blocks) == 6 and planned
    parts = planner(benchmark)
    backwards = [[(w.id, w.request) for w in parts.block(b)] for b in reversed(blocks)]
    assert list(chain(*reversed(backwards))) == planned
    parts.in_order()
    assert list(parts.skipped["zsre"].items()) == list(whole.skipped["zsre"].items())
    assert parts.skipped == whole.skipped and parts.available == whole.available
    assert parts.files == whole.files


def test_what_one_planner_found_another_records(benchmark: Benchmark) -> None:
    """A helper plans a block and the run's planner absorbs its record."""
    helper, run = planner(benchmark), planner(benchmark)
    blocks = helper.blocks()
    for block in blocks:
        list(helper.block(block))
        run.absorb(block, helper.record(block))
    assert run.skipped == helper.skipped and run.available == helper.available
    assert run.files == helper.files and run.sample_record() == helper.sample_record()
