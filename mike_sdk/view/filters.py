"""What a table view of `mike view` asks for: filters, sort and page, from the URL's query.

Every value reaches DuckDB as a bound parameter; column names only from the table's own
schema, so a query string can neither inject SQL nor name a file.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mike_sdk.errors import ConfigError

__all__ = ["Pair", "RowFilter", "order_by", "parse_filter", "score_column", "where"]

Pair = Literal["all", "a_right_b_wrong", "a_wrong_b_right", "differ", "same"]


class RowFilter(BaseModel):
    """One view of a run's rows (the permalink's query string, validated)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    task: str = ""
    """Benchmark task (empty: all)."""
    source: str = ""
    """Source (edit) language code."""
    target: str = ""
    """Target (question) language code."""
    metric: str = ""
    """Metric: reliability, generality, locality, portability."""
    script: str = ""
    """The target language's script (ISO 15924 name)."""
    family: str = ""
    """The target language's family (Glottolog)."""
    label: str = ""
    """Answer-language label: source, other, target, neutral (``none``: unlabelled)."""
    scorer: str = "em"
    """The scorer that ``min``/``max``, ``pair`` and the heatmap use."""
    min: float | None = Field(default=None, ge=0, le=1)
    """Lowest score kept (0..1)."""
    max: float | None = Field(default=None, ge=0, le=1)
    """Highest score kept (0..1)."""
    errors: Literal["", "only", "none"] = ""
    """Error rows: ``only`` them, ``none`` of them, or both (empty)."""
    q: str = ""
    """Free text, case-insensitive, in the question, gold or answer."""
    sort: str = "seq"
    """Column to sort by (the folder's order by default)."""
    desc: bool = False
    """Sort descending."""
    offset: int = Field(default=0, ge=0)
    """Rows skipped (pagination)."""
    limit: int = Field(default=50, ge=1, le=500)
    """Rows returned."""
    pair: Pair = "all"
    """Comparison only: rows right in run A and wrong in run B (or the reverse, or
    scored differently, or the same); right means a score of at least 0.5."""


def parse_filter(query: dict[str, str]) -> RowFilter:
    """The filter of a query string; one clear line on a bad value."""
    cleaned = {k: v for k, v in query.items() if v != ""}
    try:
        return RowFilter.model_validate(cleaned)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise ConfigError(f"bad filter {field}={cleaned.get(field, '')!r}: "
                          f"{error['msg']}.") from None


def where(view: RowFilter, columns: set[str], alias: str = "") -> tuple[str, list[Any]]:
    """The SQL condition of the filters (``alias.`` prefixes columns) and its parameters."""
    prefix = f"{alias}." if alias else ""
    clauses: list[str] = []
    params: list[Any] = []
    for name in ("task", "source", "target", "metric", "script", "family"):
        value = getattr(view, name)
        if value:
            clauses.append(f"{prefix}{name} = ?")
            params.append(value)
    if view.label == "none":
        clauses.append(f"{prefix}label IS NULL")
    elif view.label:
        clauses.append(f"{prefix}label = ?")
        params.append(view.label)
    score = score_column(view, columns)
    if view.min is not None:
        clauses.append(f"{prefix}{score} >= ?")
        params.append(view.min)
    if view.max is not None:
        clauses.append(f"{prefix}{score} <= ?")
        params.append(view.max)
    if view.errors == "only":
        clauses.append(f"{prefix}error IS NOT NULL")
    elif view.errors == "none":
        clauses.append(f"{prefix}error IS NULL")
    if view.q:
        # One lower-cased column of question, gold and answer (the cache builds it): a
        # plain substring search, wildcards and all taken literally.
        clauses.append(f"contains({prefix}haystack, lower(?))")
        params.append(view.q)
    return (" AND ".join(clauses) or "TRUE"), params


def score_column(view: RowFilter, columns: set[str]) -> str:
    """The ``score_<scorer>`` column, refused when the run has no such scorer."""
    name = f"score_{view.scorer}"
    if name not in columns:
        known = sorted(c.removeprefix("score_") for c in columns if c.startswith("score_"))
        raise ConfigError(f"bad filter scorer={view.scorer!r}: this run's scorers are "
                          f"{', '.join(known)}.")
    return name


def order_by(view: RowFilter, columns: set[str], alias: str = "") -> str:
    """The ORDER BY clause (ties broken by the folder's order)."""
    if view.sort not in columns:
        raise ConfigError(f"bad filter sort={view.sort!r}: sort by one of the table's columns "
                          f"({', '.join(sorted(columns))}).")
    prefix = f"{alias}." if alias else ""
    direction = "DESC" if view.desc else "ASC"
    return f"ORDER BY {prefix}{view.sort} {direction} NULLS LAST, {prefix}seq"
