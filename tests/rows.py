"""Reading a run folder's rows in tests: every field present, as the model reads them
(``results.jsonl`` lines of format 2 leave out empty fields and what the id says)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mike_sdk.runfolder.files import ResultRow


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/results.jsonl``, in file order, as complete dicts."""
    lines = (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [ResultRow.model_validate_json(line).model_dump(mode="json") for line in lines]
