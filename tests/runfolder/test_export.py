"""`mike export`: one flat table per run, CSV or Parquet, readable by pandas/pyarrow."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mike_sdk.cli.main import main


@pytest.fixture
def run_dir(data_dir: Path, tmp_path: Path) -> Path:
    """A small real run on the mock backend (the table's shape does not depend on it)."""
    assert main(["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks",
                 "counterfact", "--languages", "de,zh", "--limit", "3", "--run-dir",
                 str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress", "--language-id", "script"]) == 0
    return tmp_path / "run"


def test_csv_has_one_row_per_item_with_flat_columns(run_dir: Path) -> None:
    assert main(["export", str(run_dir)]) == 0
    with (run_dir / "results.csv").open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 2 * 3 * 4
    first = table[0]
    assert first["task"] == "counterfact" and first["metric"] == "reliability"
    assert {"score_em", "score_paper_f1", "likelihood_new", "answer_language"} <= set(first)
    assert "prompt" not in first


def test_parquet_with_prompts(run_dir: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "t.parquet"
    assert main(["export", str(run_dir), "--format", "parquet", "--out", str(out),
                 "--prompts"]) == 0
    table = pq.read_table(out)
    assert table.num_rows == 24
    prompts = table.column("prompt").to_pylist()
    assert all(p.endswith('Answer: "') for p in prompts)
