"""DuckDB's own reading of a run folder equals the pydantic readers', row for row: error
rows, --retry-errors rows, likelihood checks, fields left out, torn tails, compressed
rows and folders of the older format that keep each row's prompt inline."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from expected import expected_rows
from rows import results_text, write_results

from mike_sdk.cli.main import main
from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.files import ResultRow
from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import iter_result_rows, read_manifest
from mike_sdk.view import ingest
from mike_sdk.view.cache import cache_run
from mike_sdk.view.tables import RunTables

SCORERS = ["em", "paper_f1", "token_f1"]


@pytest.fixture(scope="module")
def retried(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose first pass had refused requests, re-run with --retry-errors (some
    items answered on the retry, some refused again), likelihood checks included."""
    root = tmp_path_factory.mktemp("retried")
    common = ["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks",
              "counterfact,zsre", "--languages", "hi,de", "--limit", "3", "--cache-dir",
              str(root / "cache"), "--no-progress", "--language-id", "script", "--run-dir",
              str(root / "run"), "--backend-option", "batch_size=1", "--backend-option",
              "failure_kinds=bad_request"]
    main([*common, "--backend-option", "failure_rate=0.4"])
    main([*common, "--retry-errors", "--backend-option", "failure_rate=0.2",
          "--backend-option", "seed=1"])
    return root / "run"


def _table(folder: Path, scratch: Path) -> list[dict[str, Any]]:
    """The ``rows`` table DuckDB builds from ``folder``, in ``seq`` order."""
    scratch.mkdir(exist_ok=True)
    con = duckdb.connect()
    inline = read_manifest(folder).format < 2
    _, source = ingest.load_rows(con, folder, SCORERS, inline, scratch)
    ingest.load_prompts(con, folder, inline, scratch)
    ingest.write_rows(con, source, SCORERS)
    cursor = con.execute("SELECT * FROM rows ORDER BY seq")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to, ignore=shutil.ignore_patterns(".lock"))
    return to


def test_a_retried_run_reads_as_the_readers_read_it(retried: Path, tmp_path: Path) -> None:
    lines = [json.loads(line) for line in results_text(retried).splitlines()]
    ids = [line["id"] for line in lines]
    refused = {line["id"] for line in lines if "error" in line}
    assert len(ids) > len(set(ids)) and refused  # retried items have two lines
    assert any("likelihood" in line for line in lines)
    assert not any("task" in line or "prompt" in line for line in lines)  # format 2
    table = _table(retried, tmp_path / "s")
    assert table == expected_rows(retried, SCORERS)
    assert {r["id"] for r in table if r["error"]} and table[-1]["error"]  # refused last
    assert any(r["likelihood_won"] is not None for r in table)


def test_left_out_fields_and_a_torn_last_line(retried: Path, tmp_path: Path) -> None:
    folder = _copy(retried, tmp_path / "run")
    lines = [json.loads(line) for line in results_text(folder).splitlines()]
    (folder / "results.jsonl.gz").unlink()
    results = folder / "results.jsonl"  # a plain file, as folders before format 3 hold
    for line in lines[::3]:  # rows of versions before language labels and prices
        line.pop("answer_language", None)
        line.pop("input_tokens", None)
    lines[1]["case_id"] = "Q42"  # a string case id
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    results.write_text(text + '{"id": "zsre/en>de/9/loc', encoding="utf-8")  # killed write
    table = _table(folder, tmp_path / "s")
    assert table == expected_rows(folder, SCORERS)
    assert sum(r["label"] is None for r in table) >= len(table) // 3 - 4


def test_compressed_rows_with_a_torn_last_member(retried: Path, tmp_path: Path) -> None:
    folder = _copy(retried, tmp_path / "run")
    lines = results_text(folder).encode("utf-8").splitlines(keepends=True)
    with (folder / "results.jsonl.gz").open("wb") as fh:
        for start in range(0, len(lines), 10):  # one gzip member per flush
            fh.write(gzip.compress(b"".join(lines[start:start + 10])))
        fh.write(gzip.compress(lines[0])[:-6])  # a member torn by a kill
    assert _table(folder, tmp_path / "s") == expected_rows(folder, SCORERS)


def _as_format_1(folder: Path) -> list[ResultRow]:
    """Rewrite ``folder`` as format 1 wrote it: every field in each row, the request
    (prompt or messages) too, no prompt store; returns the rows."""
    requests = read_requests(folder)
    rows = [row.model_copy(update={"prompt": requests[row.cache_key].prompt,
                                   "messages": requests[row.cache_key].messages})
            for row in iter_result_rows(folder)]
    (folder / "results.jsonl").write_text(
        "".join(row.model_dump_json() + "\n" for row in rows), encoding="utf-8")
    (folder / "results.jsonl.gz").unlink()  # format 1 wrote plain lines
    (folder / "prompts.jsonl.gz").unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    return rows


def test_a_folder_of_format_1_keeps_prompts_in_its_rows(retried: Path, tmp_path: Path
                                                        ) -> None:
    folder = _copy(retried, tmp_path / "run")
    rows = _as_format_1(folder)
    table = _table(folder, tmp_path / "s")
    assert table == expected_rows(folder, SCORERS)
    assert all(r["question"] for r in table)
    tables = RunTables([cache_run([folder], tmp_path / "c")])
    opened = tables.row(0, rows[5].id)
    assert "".join(p["text"] for p in opened["request"]["prompt"]) == rows[5].prompt


def test_a_chat_run_in_both_formats(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "chat"
    assert main(["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
                 "--languages", "hi", "--limit", "2", "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress", "--language-id", "script", "--run-dir", str(folder),
                 "--backend-option", "chat=true", "--backend-option", "completion=false",
                 "--backend-option", "answer=edit"]) == 0
    table = _table(folder, tmp_path / "s")
    assert table == expected_rows(folder, SCORERS)
    assert all(r["question"] and r["question"].startswith("New Fact") for r in table)
    rows = _as_format_1(folder)  # the messages in the rows
    assert rows[1].messages and _table(folder, tmp_path / "s1") == table
    opened = RunTables([cache_run([folder], tmp_path / "c")]).row(0, rows[1].id)
    assert [(m["role"], "".join(p["text"] for p in m["parts"]))
            for m in opened["request"]["messages"]] == [
        (m.role, m.content) for m in rows[1].messages or ()]


@pytest.mark.parametrize(("change", "problem"), [
    (lambda line: {k: v for k, v in line.items() if k != "cache_key"},
     "field 'cache_key' is missing"),
    (lambda line: {**line, "id": "zsre/en>de/x/reliability"}, "line 2"),
    (lambda line: {**line, "id": "nosuchtask/en>de/0/reliability"}, "line 2"),
    (lambda line: {**line, "cached": [1]}, "line 2: cached"),
])
def test_a_damaged_line_is_refused_naming_it(retried: Path, tmp_path: Path, change: Any,
                                             problem: str) -> None:
    folder = _copy(retried, tmp_path / "run")
    lines = results_text(folder).splitlines()
    lines[1] = json.dumps(change(json.loads(lines[1])))
    write_results(folder, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=problem):
        _table(folder, tmp_path / "s")
