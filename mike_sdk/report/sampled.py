"""Reports over sampled runs (``--sample``, ``--target-ci``): comparable numbers only.

Two runs that sampled different items (another seed or size, or a full run beside a
sample) would each be averaged over their own items; their difference would then mix the
models' difference with the items'. When any run of a report is sampled, every run's
scores keep only the items all the runs share (work-item ids name the same position in
every run), so that every interval and paired difference rests on the same items, and the
report says so.
"""

from __future__ import annotations

from mike_sdk.report.runs import RunScores
from mike_sdk.runfolder.files import SampleRecord

__all__ = ["sampling_of", "shared_items_only"]


def sampling_of(run: RunScores) -> SampleRecord | None:
    """How a run sampled its items (None: it took every item, or the first ``limit``)."""
    if run.summary is not None and run.summary.sampling is not None:
        return run.summary.sampling
    return None


def _described(run: RunScores, record: SampleRecord) -> str:
    items = ", ".join(f"{task} {n} of {record.available.get(task, n)}"
                      for task, n in record.items.items())
    how = (f"--target-ci {record.target_ci:g} in {record.rounds} rounds"
           if record.target_ci is not None else "--sample")
    return f"{run.label}: {how}, seed {record.seed}, items {items}"


def shared_items_only(runs: list[RunScores]) -> str | None:
    """Keep only the items every run shares when any run is sampled; returns the report's
    note on it (None when no run is sampled)."""
    records = {run.label: sampling_of(run) for run in runs}
    sampled = [(run, rec) for run in runs if (rec := records[run.label]) is not None]
    if not sampled:
        return None
    described = "; ".join(_described(run, rec) for run, rec in sampled)
    if len(runs) == 1:
        return (f"Sampled run ({described}): its intervals say how far its numbers may lie "
                "from those of every item.")
    cells = set.intersection(*(set(run.scores) for run in runs))
    kept: dict[str, set[str]] = {}
    for cell in cells:
        ids = set.intersection(*(set(ids) for run in runs for ids in run.scores[cell].values()))
        for run in runs:
            run.scores[cell] = {name: {i: v for i, v in items.items() if i in ids}
                                for name, items in run.scores[cell].items()}
        kept.setdefault(cell.task, set()).update(i.rsplit("/", 2)[1] for i in ids)
    for run in runs:  # cells some run lacks cannot be compared
        for cell in set(run.scores) - cells:
            del run.scores[cell]
        run.scores = {c: s for c, s in run.scores.items() if any(s.values())}
    shared = ", ".join(f"{task} {len(positions)}" for task, positions in sorted(kept.items()))
    return (f"Sampled runs ({described}). Every number, interval and paired difference "
            f"below uses only the items all {len(runs)} runs share (items per task: "
            f"{shared or 'none'}).")
