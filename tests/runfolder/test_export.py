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


def test_parquet_schema_is_fixed_whatever_a_run_holds(data_dir: Path, tmp_path: Path) -> None:
    """A run with refused requests and no tokenizer, and a clean run with one: the same
    column types (no ``null`` columns), so the two tables concatenate."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from mike_sdk.runfolder.export import column_types

    tables = []
    for name, options in (("clean", ()), ("refused", (
            "tokenizer=false", "failure_rate=0.5", "failure_kinds=bad_request",
            "failures_per_request=none", "batch_size=1"))):
        run = tmp_path / name
        main(["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
              "--languages", "de", "--limit", "2", "--run-dir", str(run), "--cache-dir",
              str(tmp_path / f"cache-{name}"), "--no-progress", "--language-id", "script",
              "--no-likelihood", *(f"--backend-option={o}" for o in options)])
        assert main(["export", str(run), "--format", "parquet", "--out",
                     str(tmp_path / f"{name}.parquet")]) == 0
        tables.append(pq.read_table(tmp_path / f"{name}.parquet"))
    clean, refused = tables
    assert clean.column("error").null_count == clean.num_rows  # empty here ...
    assert refused.column("error").null_count < refused.num_rows  # ... filled there
    assert refused.column("score_paper_f1").null_count == refused.num_rows
    assert clean.schema == refused.schema
    assert not [f.name for f in clean.schema if pa.types.is_null(f.type)]
    assert clean.schema.names == list(column_types())
    types = {f.name: f.type for f in pa.concat_tables(tables).schema}
    assert types["cost_usd"] == types["score_paper_f1"] == types["likelihood_new"] == pa.float64()
    assert types["error"] == types["case_id"] == pa.string()
    assert types["cached_input_tokens"] == pa.int64()
