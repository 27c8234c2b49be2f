"""The aggregation of rows: counting in parts (helper processes) gives what counting
all at once gives."""

from __future__ import annotations

import pickle
from pathlib import Path

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.run.results import Aggregator
from mike_sdk.runfolder.rundir import iter_result_rows


def test_aggregators_merged_count_what_one_counts(benchmark: Benchmark,
                                                  tmp_path: Path) -> None:
    config = EvalConfig(tasks=("counterfact",), languages=("de", "ja"), limit=4,
                        strategy="zero-shot", language_id="script")
    with ResponseCache(tmp_path / "cache") as cache:
        Evaluator(MockBackend(failure_rate=0.2, failure_kinds=("bad_request",)), benchmark=benchmark,
                  cache=cache, progress=False).run(config, tmp_path / "run")
    rows = list(iter_result_rows(tmp_path / "run"))
    assert any(r.error for r in rows) and any(r.likelihood for r in rows)
    whole, parts = Aggregator(), [Aggregator(), Aggregator(), Aggregator()]
    for n, row in enumerate(rows):
        whole.add(row)
        parts[n % 3].add(row)
    merged = Aggregator()
    for part in parts:
        merged.merge(pickle.loads(pickle.dumps(part)))  # as a helper sends it
    assert merged.table() == whole.table()
    assert (merged.rows, merged.cached, merged.errors) == (whole.rows, whole.cached,
                                                           whole.errors) == (len(rows), 0,
                                                                             whole.errors)
    assert whole.errors > 0
