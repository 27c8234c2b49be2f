"""The new-vs-old likelihood check: which work items get it, and what it asks.

On CounterFact and WikiFactDiff the paper also checks, for reliability and generality,
whether the new answer is more probable than the old one (``loc_ans``) after the
prompt. Backends that score log-probabilities answer these requests.
"""

from __future__ import annotations

from collections.abc import Sequence

from mike_sdk.backend import Abilities, LikelihoodRequest
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import WorkItem

LIKELIHOOD_TASKS = ("counterfact", "wikifactdiff")
LIKELIHOOD_METRICS = ("reliability", "generality")


def likelihood_requests(todo: Sequence[WorkItem], config: EvalConfig, abilities: Abilities
                        ) -> dict[str, tuple[LikelihoodRequest, LikelihoodRequest]]:
    """The (new answer, old answer) scoring requests per work-item id; empty when the
    configuration or the backend leaves the check out."""
    if not (config.likelihood and abilities.loglikelihood):
        return {}
    out = {}
    for work in todo:
        prompt, old = work.request.prompt, work.item.target.loc_ans
        if (work.item.task in LIKELIHOOD_TASKS and work.metric in LIKELIHOOD_METRICS
                and prompt is not None and old and work.gold):
            out[work.id] = (LikelihoodRequest(context=prompt, continuation=work.gold),
                            LikelihoodRequest(context=prompt, continuation=old))
    return out
