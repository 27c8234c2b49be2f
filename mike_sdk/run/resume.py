"""Picking a run folder up again: which items are done, and whether the rows already in
it can be trusted to belong to what this session would plan.

A resume is refused, rather than mixing two runs into one set of numbers, when a data
file differs from the sha256 the folder recorded (:func:`~mike_sdk.run.plan.check_data_files`,
as each file is read), when this version plans other requests for the items already
done (prompts or request settings changed, or rows of another run appended:
:meth:`Resumed.check`, for every row), or when rows name items this run does not plan
(:meth:`Resumed.check_all_planned`). Every row is checked: its cache key is computed
again from the plan (about 12 us a row, 6 s for half a million).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mike_sdk.backend import Generation
from mike_sdk.errors import ConfigError
from mike_sdk.run.results import Aggregator
from mike_sdk.runfolder.ledger import Ledger
from mike_sdk.runfolder.prompts import stored_key
from mike_sdk.runfolder.rundir import RunDir, final_rows

__all__ = ["Resumed", "resume"]


@dataclass
class Resumed:
    """What a run folder already holds."""

    done: set[str] = field(default_factory=set)
    """Ids of items with a row (refused items too, unless they are to be retried)."""
    aggregator: Aggregator = field(default_factory=Aggregator)
    """The rows counted so far."""
    retrying: int = 0
    """Refused items whose rows are left out, to be sent again (``--retry-errors``)."""
    keys: set[bytes | str] = field(default_factory=set)
    """Cache keys of the rows kept (as :func:`~mike_sdk.runfolder.prompts.stored_key`
    gives them): their requests are in ``prompts.jsonl.gz``."""
    unchecked: dict[str, str] = field(default_factory=dict)
    """Cache keys of the done items, by id, until the plan reaches them and checks them."""

    def check(self, work_id: str, key: str, folder: object) -> None:
        """Refuse to go on if ``work_id``, already done, is now planned as another request."""
        before = self.unchecked.pop(work_id, None)
        if before is not None and before != key:
            raise ConfigError(
                f"Run folder {folder} was written with other requests than this session "
                f"plans for the same items ({work_id}: request {before[:12]}... then, "
                f"{key[:12]}... now): the prompts or request settings changed (a new "
                "mike-sdk version?), or rows of another run were added to its "
                "results.jsonl. Start a new run with another --run-dir.")

    def check_all_planned(self, folder: object,
                          later: Callable[[str], bool] | None = None) -> None:
        """After the whole plan: refuse rows of items this run does not plan (``later``:
        ids a later round of the run plans, left for it to check)."""
        left = [i for i in self.unchecked if later is None or not later(i)]
        if left:
            some = ", ".join(sorted(left)[:3])
            raise ConfigError(
                f"Run folder {folder} has {len(left)} rows of items this run does "
                f"not plan ({some}...): rows of another run were added to its "
                "results.jsonl. Remove them, or start a new run with another --run-dir.")


def resume(run: RunDir, ledger: Ledger, *, retry_errors: bool = False) -> Resumed:
    """Read a run folder's rows: one per item (:func:`final_rows`), refused ones left out
    when ``retry_errors`` (their items are planned and sent again).

    A folder written before the ledger existed gets one from its rows (each paid
    request once), so that its cost still counts.
    """
    state = Resumed()
    seed = not ledger.path.exists()
    paid: list[tuple[str, Generation, float | None]] = []
    for row in final_rows(run.results_path):
        if seed and not row.cached and row.error is None:
            paid.append((row.cache_key, Generation(
                text=row.output, input_tokens=row.input_tokens, output_tokens=row.output_tokens,
                cached_input_tokens=row.cached_input_tokens,
                reasoning_tokens=row.reasoning_tokens), row.cost_usd))
        if row.error is not None and retry_errors:
            state.retrying += 1
            continue
        state.done.add(row.id)
        state.keys.add(stored_key(row.cache_key))
        state.aggregator.add(row)
        state.unchecked[row.id] = row.cache_key
    if paid:
        ledger.record(paid)
    return state
