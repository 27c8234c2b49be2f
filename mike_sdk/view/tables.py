"""The viewer's queries: DuckDB over each run's cached database, attached read-only.

DuckDB reads only the columns and blocks a query needs and answers filters, sorts,
counts and joins in C++ on every core, so a full configuration (531,504 rows) is never
held as Python objects: memory stays near the page being shown, and DuckDB's own buffer
is bounded (``memory_limit``; a large sort spills to the cache folder).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mike_sdk.errors import ConfigError
from mike_sdk.view.cache import CachedRun
from mike_sdk.view.filters import RowFilter, order_by, score_column, where

__all__ = ["RunTables"]

#: Columns a table page returns (the raw output and the full prompt come with one row).
PAGE = ("seq", "id", "task", "source", "target", "metric", "question", "gold", "answer",
        "label", "likelihood_won", "cached", "cost_usd", "error")
#: Columns of run A a comparison shows first (then each run's answer, score and label).
PAIRED = ("seq", "id", "task", "source", "target", "metric", "question", "gold")
#: A row of run A is right (run comparison) when its score is at least this.
RIGHT = 0.5


class RunTables:
    """One DuckDB connection over the runs' Parquet files; each call uses its own cursor."""

    def __init__(self, runs: list[CachedRun], threads: int | None = None,
                 memory_limit: str = "512MB") -> None:
        import duckdb

        self.runs = runs
        spill = Path(runs[0].folder).parent / "spill" if runs else Path(".")
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": memory_limit, "temp_directory": str(spill)}
        if threads:
            config["threads"] = threads
        self._db = duckdb.connect(config=config)
        self._lock = threading.Lock()
        self.columns: list[set[str]] = []
        for i, run in enumerate(runs):
            self._db.execute(f"ATTACH '{run.database}' AS run{i} (READ_ONLY)")
            for name in ("rows", "requests", "blocks"):
                self._db.execute(f"CREATE VIEW {name}{i} AS SELECT * FROM run{i}.{name}")
            described = self._db.execute(f"DESCRIBE rows{i}").fetchall()
            self.columns.append({str(d[0]) for d in described} - {"haystack"})

    def _query(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._lock:
            cursor = self._db.cursor()
        try:
            cursor.execute(sql, params)
            names = [d[0] for d in cursor.description or ()]
            return names, cursor.fetchall()
        finally:
            cursor.close()

    def _run(self, index: int) -> int:
        if not 0 <= index < len(self.runs):
            raise ConfigError(f"bad run={index}: the viewer serves runs 0..{len(self.runs) - 1}.")
        return index

    def facets(self, run: int) -> dict[str, list[str]]:
        """Each filterable column's distinct values."""
        return self.runs[self._run(run)].facets

    def rows(self, run: int, view: RowFilter) -> dict[str, Any]:
        """A page of the filtered, sorted rows, and how many rows match."""
        run = self._run(run)
        columns = self.columns[run]
        start = time.perf_counter()
        condition, params = where(view, columns)
        score = score_column(view, columns)
        scores = sorted(c for c in columns if c.startswith("score_"))
        shown = [*PAGE, *scores]
        page = self._page(shown, f"rows{run}", condition, params, order_by(view, columns), view,
                          key="seq")
        return {**page, "score": score, "columns": shown,
                "took_ms": round((time.perf_counter() - start) * 1000, 1)}

    def _page(self, shown: list[str], source: str, condition: str, params: list[Any],
              order: str, view: RowFilter, key: str = "") -> dict[str, Any]:
        """One page of ``source`` and the count of all matching rows; with ``key`` (a
        unique column), the page's rows are found first by the sort's column and the key
        alone, then only those rows' other columns are read."""
        # Two queries: a count over the whole result would stop DuckDB from keeping only
        # the top rows of a sort (its top-N), and the count alone is a plain scan.
        _, counted = self._query(f"SELECT count(*) FROM {source} WHERE {condition}", params)
        page = f"{order} LIMIT ? OFFSET ?"
        if key:  # a deep page's top-N then holds narrow rows: 3x less work at page 2,001
            selected = f"SELECT {key} FROM {source} WHERE {condition} {page}"
            query = (f"SELECT {', '.join(shown)} FROM {source} WHERE {key} IN ({selected}) "
                     f"{order}")
        else:
            query = f"SELECT {', '.join(shown)} FROM {source} WHERE {condition} {page}"
        _, found = self._query(query, [*params, view.limit, view.offset])
        return {"total": int(counted[0][0]), "offset": view.offset,
                "rows": [list(r) for r in found]}

    def row(self, run: int, item: str) -> dict[str, Any]:
        """Everything about one row: its columns and the request sent, parts unfolded."""
        run = self._run(run)
        names, found = self._query(f"SELECT * EXCLUDE (haystack) FROM rows{run} WHERE id = ?",
                                   [item])
        if not found:
            raise ConfigError(f"no row {item!r} in run {run}: open a row from the table.")
        record = dict(zip(names, found[0], strict=True))
        _, requests = self._query(f"SELECT prompt, messages FROM requests{run} WHERE key = ? "
                                  "LIMIT 1", [record["cache_key"]])
        request: dict[str, Any] = {"prompt": None, "messages": None}
        if requests:
            prompt, messages = requests[0]
            blocks = self._blocks(run, prompt, messages)
            if prompt is not None:
                request["prompt"] = self._parts(json.loads(prompt), blocks)
            if messages is not None:
                request["messages"] = [{"role": role, "parts": self._parts(parts, blocks)}
                                       for role, parts in json.loads(messages)]
        return {"row": record, "request": request, "stored": bool(requests)}

    def _blocks(self, run: int, *texts: str | None) -> dict[str, str]:
        ids = sorted({part["b"] for text in texts if text for parts in _all_parts(text)
                      for part in parts if isinstance(part, dict)})
        if not ids:
            return {}
        _, found = self._query(f"SELECT block, any_value(text) FROM blocks{run} WHERE block IN "
                               f"({', '.join('?' * len(ids))}) GROUP BY block", list(ids))
        return {str(b): str(t) for b, t in found}

    @staticmethod
    def _parts(parts: list[Any], blocks: dict[str, str]) -> list[dict[str, Any]]:
        """Text parts, and demonstration blocks marked so the page can fold them."""
        return [{"text": p} if isinstance(p, str) else
                {"text": blocks.get(p["b"], ""), "block": p["b"]} for p in parts]

    def compare(self, a: int, b: int, view: RowFilter, runs: Sequence[int] = ()
                ) -> dict[str, Any]:
        """The items of run A (filtered on A's rows) beside the same items, by id, of every
        run in ``runs`` (all runs by default; A and B always): each run's answer, score
        and answer-language label. ``view.pair`` keeps the items right in A and wrong in
        B (or the reverse, or scored differently, or the same)."""
        a, b = self._run(a), self._run(b)
        shown = list(dict.fromkeys([*(self._run(r) for r in runs or range(len(self.runs))),
                                    a, b]))
        columns = self.columns[a]
        start = time.perf_counter()
        condition, params = where(view, columns, alias="a")
        score = score_column(view, columns)
        for run in shown:
            if score not in self.columns[run]:
                raise ConfigError(f"bad filter scorer={view.scorer!r}: run {run} has no such "
                                  "scorer.")
        alias = {run: "a" if run == a else f"r{run}" for run in shown}
        sa, sb = f"a.{score}", f"{alias[b]}.{score}"
        pairs = {"all": "TRUE", "a_right_b_wrong": f"{sa} >= {RIGHT} AND {sb} < {RIGHT}",
                 "a_wrong_b_right": f"{sa} < {RIGHT} AND {sb} >= {RIGHT}",
                 "differ": f"{sa} IS DISTINCT FROM {sb}",
                 "same": f"{sa} IS NOT DISTINCT FROM {sb}"}
        selected = [f"a.{c}" for c in PAIRED]
        names = list(PAIRED)
        for run in shown:
            for column, name in (("answer", "answer"), (score, "score"), ("label", "label")):
                selected.append(f"{alias[run]}.{column}")
                names.append(f"{name}_{run}")
        joins = "".join(f" JOIN rows{run} {alias[run]} ON {alias[run]}.id = a.id"
                        for run in shown if run != a)
        page = self._page(selected, f"rows{a} a{joins}", f"{condition} AND {pairs[view.pair]}",
                          params, order_by(view, columns, alias="a"), view)
        return {**page, "score": score, "columns": names, "runs": shown, "a": a, "b": b,
                "took_ms": round((time.perf_counter() - start) * 1000, 1)}


def _all_parts(text: str) -> list[list[Any]]:
    """The part lists of a stored prompt (one list) or of chat messages (one per message)."""
    data = json.loads(text)
    if data and isinstance(data[0], list):  # messages: [[role, parts], ...]
        return [parts for _, parts in data]
    return [data]
