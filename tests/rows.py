"""Reading a run folder's rows in tests: every field present, as the model reads them
(lines of format 2 and later leave out empty fields and what the id says), and the
rows' file as text, whatever its name (``results.jsonl.gz``, or ``results.jsonl`` in
folders begun before format 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mike_sdk.runfolder.files import ResultRow
from mike_sdk.runfolder.members import member
from mike_sdk.runfolder.rundir import results_file, row_lines


def results_text(run_dir: Path) -> str:
    """The folder's rows file as text (its complete lines)."""
    return b"".join(row_lines(run_dir)).decode("utf-8")


def write_results(run_dir: Path, text: str, *, append: bool = False) -> None:
    """Replace (or append to) the folder's rows file with ``text``, as a run writes it."""
    path = results_file(run_dir)
    data = text.encode("utf-8")
    with path.open("ab" if append else "wb") as fh:
        fh.write(member(data) if path.suffix == ".gz" else data)


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir``, in file order, as complete dicts."""
    lines = results_text(run_dir).splitlines()
    return [ResultRow.model_validate_json(line).model_dump(mode="json") for line in lines]
