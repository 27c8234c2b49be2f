"""The columns DuckDB reads a results file with, derived from :class:`ResultRow`'s fields.

DuckDB parses the JSON lines itself (no Python object per row): it needs each key's type
up front, and a key a line leaves out reads as NULL, which is what the model's default
(None) is for every field the viewer reads. The types follow the model's annotations, so
a field added to :class:`ResultRow` is typed here without a second list to keep in step.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from mike_sdk.runfolder.files import FROM_ID, ResultRow

__all__ = ["REQUIRED", "row_columns", "sql_type"]

#: Fields the viewer does not show (left unread: parsing them costs time).
UNREAD = frozenset({"retrieval", "cached_input_tokens"})
#: Fields every line holds (no default, and not said by the id): a line without one is
#: not a row mike-sdk wrote.
REQUIRED = tuple(name for name, field in ResultRow.model_fields.items()
                 if field.is_required() and name not in FROM_ID)
_SCALARS = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN"}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_type(annotation: Any) -> str:
    """The DuckDB type of a field's annotation (a nested model: a STRUCT of its fields;
    ``int | str``: VARCHAR, as the viewer shows it; anything else: JSON text)."""
    options = [a for a in get_args(annotation) if a is not type(None)] \
        if get_origin(annotation) in (types.UnionType, typing.Union) else [annotation]
    if len(options) > 1:
        return "VARCHAR" if all(o in (int, str) for o in options) else "JSON"
    kind = options[0]
    if get_origin(kind) is Literal:
        return "VARCHAR"
    if kind in _SCALARS:
        return _SCALARS[kind]
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        fields = ", ".join(f"{_quoted(n)} {sql_type(f.annotation)}"
                           for n, f in kind.model_fields.items())
        return f"STRUCT({fields})"
    return "JSON"


def row_columns(scorers: list[str], with_request: bool) -> dict[str, str]:
    """``read_json``'s columns for the rows of a run with ``scorers`` (``with_request``:
    rows of format 0 and 1, which still hold their prompt or messages)."""
    columns: dict[str, str] = {}
    for name, field in ResultRow.model_fields.items():
        if name in UNREAD or (name in ("prompt", "messages") and not with_request):
            continue
        if name == "scores":  # dict[str, float]: one column per scorer of the manifest
            columns[name] = f"STRUCT({', '.join(f'{_quoted(s)} DOUBLE' for s in scorers)})"
        else:
            columns[name] = sql_type(field.annotation)
    return columns
