"""One flat table of a run's rows, for pandas, polars or DuckDB (``mike export``).

Each row of the table is one item (:func:`~mike_sdk.runfolder.rundir.final_rows`: a retried
item appears once), with its scores, likelihood check and answer language flattened
into columns (``score_em``, ``likelihood_new``, ``answer_language``...) and, on request,
the prompt or chat messages sent (from ``prompts.jsonl.gz``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.files import RESULTS, ResultRow
from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import final_rows, read_manifest

__all__ = ["COLUMNS", "export", "flat_rows"]

#: Columns in table order; ``score_<name>`` columns follow ``gold``.
COLUMNS = ("id", "task", "source_lang", "target_lang", "index", "case_id", "metric",
           "answer", "gold", "output", "finish_reason", "error", "cached", "input_tokens",
           "output_tokens", "cached_input_tokens", "reasoning_tokens", "cost_usd",
           "likelihood_new", "likelihood_old", "answer_language", "answer_detected",
           "cache_key")


def _flat(row: ResultRow, scorers: list[str]) -> dict[str, Any]:
    data = row.model_dump(exclude={"scores", "likelihood", "answer_language", "prompt",
                                   "messages"})
    check, language = row.likelihood, row.answer_language
    data.update(likelihood_new=check.new_logprob if check else None,
                likelihood_old=check.old_logprob if check else None,
                answer_language=language.label if language else None,
                answer_detected=language.detected if language else None)
    data.update({f"score_{name}": row.scores.get(name) for name in scorers})
    return data


def flat_rows(run_dir: str | Path, *, prompts: bool = False) -> Iterator[dict[str, Any]]:
    """The run's items as flat dicts (column names: :data:`COLUMNS`, ``score_*``, and
    ``prompt`` / ``messages`` when ``prompts``)."""
    folder = Path(run_dir)
    scorers = list(read_manifest(folder).scorers)
    requests = read_requests(folder) if prompts else {}
    for row in final_rows(folder / RESULTS):
        data = _flat(row, scorers)
        if prompts:
            request = requests.get(row.cache_key)
            prompt = row.prompt if request is None else request.prompt
            messages = row.messages if request is None else request.messages
            data["prompt"] = prompt
            data["messages"] = (json.dumps([m.model_dump() for m in messages],
                                           ensure_ascii=False) if messages else None)
        yield data


def export(run_dir: str | Path, out: str | Path, fmt: Literal["csv", "parquet"], *,
           prompts: bool = False) -> int:
    """Write the flat table to ``out``; returns the number of rows written."""
    rows = flat_rows(run_dir, prompts=prompts)
    first = next(rows, None)
    if first is None:
        raise ConfigError(f"Run folder {run_dir} has no rows to export yet.")
    columns = [c for c in (*COLUMNS, *sorted(k for k in first if k.startswith("score_")),
                           "prompt", "messages") if c in first]
    out = Path(out)
    if fmt == "csv":
        count = 0
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in (first, *rows):
                writer.writerow(row)
                count += 1
        return count
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet needs pyarrow: pip install 'mike-sdk[export]' (or use "
                          "--format csv).") from None
    table = pa.Table.from_pylist([first, *rows])
    pq.write_table(table.select(columns), out)
    return int(table.num_rows)
