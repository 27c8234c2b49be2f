"""The likelihood check's direction: new answer against old, never the other way round.

A model that finds the new answer (the edit's gold) far more likely than the old one
(``loc_ans``) must score 100 on the check, and every row must keep the new answer's
log-probability as ``new_logprob``. Swapping the pair anywhere (when it is built, or when
the row is written) turns both around, so this test fails on such a mutation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mike_sdk.backend import Likelihood, LikelihoodRequest
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.rundir import final_rows


class KnowsTheEdit(MockBackend):
    """Scores the edit's new answers at -1 per token and anything else at -9."""

    def __init__(self, new_answers: set[str]) -> None:
        super().__init__(loglikelihood=True)
        self.new_answers = new_answers

    async def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[Likelihood]:
        return [Likelihood(logprob=-1.0 if r.continuation in self.new_answers else -9.0,
                           tokens=1) for r in requests]


def test_the_new_answer_is_new_logprob_and_wins(benchmark: Benchmark, tmp_path: Path) -> None:
    config = EvalConfig(tasks=("counterfact",), languages=("de",), limit=4,
                        metrics=("reliability",), language_id="script")
    golds = {item.target.alt for item in benchmark.items("counterfact", "de", limit=4).items}
    with ResponseCache(tmp_path / "cache") as cache:
        summary = Evaluator(KnowsTheEdit(golds), benchmark=benchmark, cache=cache,
                            progress=False).run(config, tmp_path / "run")
    rows = list(final_rows(tmp_path / "run"))
    checked = [r for r in rows if r.likelihood is not None]
    assert len(checked) == 4
    assert all(r.gold in golds for r in checked)
    assert all((r.likelihood.new_logprob, r.likelihood.old_logprob) == (-1.0, -9.0)
               for r in checked if r.likelihood is not None)
    (group,) = summary.results
    assert group.likelihood == 100.0
