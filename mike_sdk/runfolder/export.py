"""One flat table of a run's rows, for pandas, polars or DuckDB (``mike export``).

Each row of the table is one item (:func:`~mike_sdk.runfolder.rundir.final_rows`: a retried
item appears once), with its scores, likelihood check and answer language flattened
into columns (``score_em``, ``likelihood_new``, ``answer_language``...) and, on request,
the prompt or chat messages sent (from ``prompts.jsonl.gz``).

The table has one fixed schema (:func:`column_types`), taken from the row model, whatever
a run holds: a column empty in one run (``error``, ``cost_usd`` when unpriced,
``score_paper_f1`` without a tokenizer) keeps its type, so that two runs' tables
concatenate without turning numbers into objects.
"""

from __future__ import annotations

import csv
import itertools
import json
import types
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from mike_sdk.errors import ConfigError
from mike_sdk.extras import require_extra
from mike_sdk.runfolder.files import LikelihoodCheck, ResultRow
from mike_sdk.runfolder.prompts import StoredRequests
from mike_sdk.runfolder.rundir import final_rows
from mike_sdk.scoring.scorers import SCORERS

__all__ = ["COLUMNS", "column_types", "export", "flat_rows"]

#: Rows per Parquet row group written (bounds what an export holds at once).
PARQUET_BATCH = 50_000
#: Columns in table order; ``score_<name>`` columns follow ``gold``.
COLUMNS = ("id", "task", "source_lang", "target_lang", "index", "case_id", "metric",
           "answer", "gold", "output", "finish_reason", "error", "cached", "input_tokens",
           "output_tokens", "cached_input_tokens", "reasoning_tokens", "cost_usd",
           "likelihood_new", "likelihood_old", "answer_language", "answer_detected",
           "cache_key")
#: Every scorer has its column, scored in the run or not.
SCORE_COLUMNS = tuple(f"score_{name}" for name in SCORERS)
PROMPT_COLUMNS = ("prompt", "messages")
#: Row fields that become other columns (or none): scores, the likelihood check, ...
_NESTED = frozenset({"scores", "likelihood", "answer_language", *PROMPT_COLUMNS})


def _scalar(annotation: Any) -> type:
    """The Python type of a field's values: ``float | None`` -> float; a literal or a
    union of several types (``case_id: int | str``) -> str."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _scalar(args[0]) if len(args) == 1 else str
    if typing.get_origin(annotation) is Literal:
        return str
    return annotation if annotation in (str, int, float, bool) else str


def column_types(*, prompts: bool = False) -> dict[str, type]:
    """Each column of the table with the Python type of its values, from the row model.

    >>> types = column_types()
    >>> types["cost_usd"], types["error"], types["case_id"], types["score_paper_f1"]
    (<class 'float'>, <class 'str'>, <class 'str'>, <class 'float'>)
    """
    fields = ResultRow.model_fields
    found: dict[str, type] = {}
    for name in COLUMNS:
        if name in fields:
            found[name] = _scalar(fields[name].annotation)
        elif name.startswith("likelihood_"):
            found[name] = _scalar(LikelihoodCheck.model_fields[name[11:] + "_logprob"].annotation)
        else:  # answer_language, answer_detected: the label and the detected language
            found[name] = str
    for name, field in fields.items():  # a field added to the row model after COLUMNS
        if name not in found and name not in _NESTED:
            found[name] = _scalar(field.annotation)
    found.update({name: float for name in SCORE_COLUMNS})
    if prompts:
        found.update({name: str for name in PROMPT_COLUMNS})
    return found


def _flat(row: ResultRow) -> dict[str, Any]:
    data = row.model_dump(exclude=set(_NESTED))
    check, language = row.likelihood, row.answer_language
    data.update(likelihood_new=check.new_logprob if check else None,
                likelihood_old=check.old_logprob if check else None,
                answer_language=language.label if language else None,
                answer_detected=language.detected if language else None)
    data.update({f"score_{name}": row.scores.get(name) for name in SCORERS})
    if data["case_id"] is not None:
        data["case_id"] = str(data["case_id"])
    return data


def flat_rows(run_dir: str | Path, *, prompts: bool = False) -> Iterator[dict[str, Any]]:
    """The run's items as flat dicts, keyed by :func:`column_types`."""
    folder = Path(run_dir)
    requests = StoredRequests(folder) if prompts else None
    for row in final_rows(folder):
        data = _flat(row)
        if requests is not None:
            request = requests.get(row.cache_key)
            prompt = row.prompt if request is None else request.prompt
            messages = row.messages if request is None else request.messages
            data["prompt"] = prompt
            data["messages"] = (json.dumps([m.model_dump() for m in messages],
                                           ensure_ascii=False) if messages else None)
        yield data


def _batched(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def export(run_dir: str | Path, out: str | Path, fmt: Literal["csv", "parquet"], *,
           prompts: bool = False) -> int:
    """Write the flat table to ``out``; returns the number of rows written."""
    if fmt == "parquet":
        require_extra("Parquet", ["pyarrow"], "export", instead=" (or use --format csv)")
    rows = flat_rows(run_dir, prompts=prompts)
    first = next(rows, None)
    if first is None:
        raise ConfigError(f"Run folder {run_dir} has no rows to export yet.")
    columns = column_types(prompts=prompts)
    out = Path(out)
    if fmt == "csv":
        count = 0
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            for row in itertools.chain([first], rows):
                writer.writerow(row)
                count += 1
        return count
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
    schema = pa.schema([(name, arrow[kind]) for name, kind in columns.items()])
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in _batched(itertools.chain([first], rows), PARQUET_BATCH):
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count
