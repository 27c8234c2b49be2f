"""Edits as JSON Lines: one ``{"id", "question", "answer", "language"}`` object per line."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from mike_sdk.memory.records import StoredEdit
from mike_sdk.memory.store import EditMemoryError, as_stored


def read_edits(path: str | Path) -> list[StoredEdit]:
    """The edits of a JSONL file; a bad line raises one error naming the file and line."""
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EditMemoryError(f"cannot read edits from {source}: {exc.strerror}.") from None
    edits = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EditMemoryError(f"{source}:{number}: not JSON ({exc.msg}); each line must be "
                                  'one edit such as {"question": ..., "answer": ...}.') from None
        if not isinstance(data, dict):
            raise EditMemoryError(f"{source}:{number}: expected a JSON object, got "
                                  f"{type(data).__name__}.")
        edits.append(as_stored(data, where=f"{source}:{number}"))
    return edits


def write_edits(path: str | Path, edits: Iterable[StoredEdit]) -> int:
    """Write ``edits`` to ``path`` (replaced whole, through a temporary file); returns the count."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    count = 0
    with temporary.open("w", encoding="utf-8") as out:
        for edit in edits:
            out.write(json.dumps(edit.model_dump(), ensure_ascii=False) + "\n")
            count += 1
    temporary.replace(target)
    return count
