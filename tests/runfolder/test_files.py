"""The typed run files: what the evaluator writes reads back, older folders read with
their defaults, damaged files are refused naming file and line, and the schema doc
is current. No model is loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.errors import ConfigError
from mike_sdk.report.runs import load_run
from mike_sdk.report.table import load_summary, summary_table
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.results import Aggregator
from mike_sdk.runfolder.files import FORMAT, GroupResult, Manifest, ResultRow, Summary, json_schemas
from mike_sdk.runfolder.rundir import (
    RunDir,
    iter_result_rows,
    read_manifest,
    read_row_ids,
    read_summary,
    write_manifest,
    write_summary,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-files.md"
CONFIG = EvalConfig(tasks=("zsre", "counterfact"), languages=("de", "zh"),
                    strategy="zero-shot", limit=2, language_id="script")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A folder written by the shipped evaluator on real BMIKE-53 items."""
    from mike_sdk.data.benchmark import Benchmark
    from mike_sdk.run.evaluator import Evaluator

    root = tmp_path_factory.mktemp("files")
    with ResponseCache(root / "cache") as cache:
        # The mock stands in for a model: these tests are about the files, not answers.
        parrot = MockBackend("parrot", answer="edit", batch_size=8)
        evaluator = Evaluator(parrot, benchmark=Benchmark(data_dir), cache=cache,
                              progress=False)
        evaluator.run(CONFIG, root / "run")
    return root / "run"


def test_what_the_evaluator_writes_reads_back(run_dir: Path) -> None:
    manifest, summary = read_manifest(run_dir), read_summary(run_dir)
    rows = list(iter_result_rows(run_dir))
    assert manifest.format == FORMAT and manifest.backend.model == "parrot"
    assert manifest.config.language_id == "script" and manifest.data_files
    assert summary.totals.rows == len(rows) == 2 * 2 * 2 * 4
    assert summary.language_detection is not None and summary.cost_note
    assert all(r.answer_language is not None for r in rows)
    assert any(r.likelihood is not None for r in rows)
    assert read_row_ids(run_dir) == {r.id for r in rows}
    # The Aggregator gives the same table from typed rows as the evaluator wrote.
    aggregator = Aggregator()
    for row in rows:
        aggregator.add(row)
    assert summary.results == [GroupResult.model_validate(e) for e in aggregator.table()]
    # Readers of `mike report`.
    assert load_summary(run_dir) == summary
    assert "Backend: mock parrot" in summary_table(summary)
    assert load_run(run_dir).describe() == "mock parrot, strategy zero-shot"


def test_round_trips(run_dir: Path, tmp_path: Path) -> None:
    manifest, summary = read_manifest(run_dir), read_summary(run_dir)
    write_manifest(tmp_path, manifest)
    write_summary(tmp_path, summary)
    assert read_manifest(tmp_path) == manifest and read_summary(tmp_path) == summary
    rows = list(iter_result_rows(run_dir))
    holder = RunDir(tmp_path / "copy")
    holder.open(manifest)
    holder.append(rows)
    holder.write_summary(summary)
    holder.close()
    assert list(iter_result_rows(tmp_path / "copy")) == rows
    assert read_summary(tmp_path / "copy") == summary


def test_resume_compares_identity_through_the_models(run_dir: Path, tmp_path: Path) -> None:
    manifest = read_manifest(run_dir)
    folder = RunDir(tmp_path)
    folder.open(manifest)
    folder.update_manifest(data_files={"extra.json": "ab"})
    folder.close()
    # Re-opened with the same identity: it resumes and keeps the data files seen so far.
    folder.open(manifest)
    folder.close()
    assert read_manifest(tmp_path).data_files == {**manifest.data_files, "extra.json": "ab"}
    other = manifest.model_copy(update={"config": CONFIG.model_copy(update={"limit": 1})})
    with pytest.raises(ConfigError, match=r"different run: config\..* is .* there, .* now.*another --run-dir"):
        folder.open(other)


def _old_row(**changes: Any) -> dict[str, Any]:
    """A row as the first versions wrote it: no cost, error or language fields."""
    row = {"id": "zsre/en>de/0/reliability", "task": "zsre", "index": 0, "case_id": 7,
           "source_lang": "en", "target_lang": "de", "metric": "reliability",
           "prompt": "New Fact: ...", "messages": None, "cache_key": "k", "output": 'Paris"',
           "answer": "Paris", "gold": "Paris", "scores": {"em": 1.0, "token_f1": 1.0},
           "likelihood": None, "cached": False, "input_tokens": 10, "output_tokens": 2,
           "finish_reason": "stop"}
    return {**row, **changes}


def test_old_rows_read_with_defaults_and_a_torn_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_old_row()) + "\n" + '{"id": "zsre/en>de/1/relia', "utf-8")
    (row,) = iter_result_rows(path)
    assert row.answer_language is None and row.cost_usd is None and row.error is None
    aggregator = Aggregator()
    aggregator.add(row)
    assert "answer_language" not in aggregator.table()[0]


@pytest.mark.parametrize(("line", "problem"), [
    ("{not json", "not JSON"),
    (json.dumps(_old_row(scores="high")), "scores"),
    (json.dumps({k: v for k, v in _old_row().items() if k != "gold"}), "'gold' is missing"),
])
def test_a_bad_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_old_row()) + "\n" + line + "\n", "utf-8")
    with pytest.raises(ConfigError, match=rf"results.jsonl, line 2: .*{problem}"
                                          r".*delete that line.*--run-dir"):
        list(iter_result_rows(path))


def test_row_ids_need_only_the_id(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"id": "a"}) + "\n" + "{broken\n", "utf-8")
    with pytest.raises(ConfigError, match="line 2: not JSON"):
        read_row_ids(path)
    path.write_text(json.dumps({"id": "a"}) + "\n", "utf-8")
    assert read_row_ids(path) == {"a"}


def _old_summary(run_dir: Path) -> dict[str, Any]:
    """The summary as versions before language labels and costs wrote it."""
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text("utf-8"))
    for key in ("language_detection", "cost_note"):
        data.pop(key)
    for key in ("cached_input_tokens", "cost_usd", "errors", "retries", "rate_limited"):
        data["totals"].pop(key)
    data["results"] = [{k: v for k, v in r.items()
                        if k not in ("answer_language", "wrong_language", "in_language")}
                       for r in data["results"]]
    return data


def test_old_summary_and_manifest_read_with_defaults(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps(_old_summary(run_dir)), "utf-8")
    manifest = json.loads((run_dir / "manifest.json").read_text("utf-8"))
    for key in ("format", "data_files"):
        manifest.pop(key)
    manifest["config"].pop("language_id")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    summary = load_summary(tmp_path)
    assert summary.language_detection is None and summary.totals.cost_usd is None
    assert summary.totals.errors == 0 and summary.results[0].wrong_language is None
    assert "wrong_lang%" not in summary_table(summary)
    old = read_manifest(tmp_path)
    assert old.format == 0 and old.data_files == {} and old.config.language_id == "auto"


def test_refused_files_say_what_and_how(run_dir: Path, tmp_path: Path) -> None:
    data = json.loads((run_dir / "manifest.json").read_text("utf-8"))
    (tmp_path / "manifest.json").write_text(json.dumps({**data, "format": FORMAT + 1}), "utf-8")
    with pytest.raises(ConfigError, match=rf"format {FORMAT + 1}.*Upgrade mike-sdk"):
        read_manifest(tmp_path)
    data.pop("abilities")
    (tmp_path / "manifest.json").write_text(json.dumps(data), "utf-8")
    with pytest.raises(ConfigError, match=r"manifest.json: field 'abilities' is missing.*"
                                          r"new --run-dir.*version that wrote it"):
        RunDir(tmp_path).open(read_manifest(run_dir))
    (tmp_path / "summary.json").write_text("{", "utf-8")
    with pytest.raises(ConfigError, match=r"summary.json: not JSON.*damaged"):
        read_summary(tmp_path)
    with pytest.raises(ConfigError, match=r"does not exist"):
        read_summary(tmp_path / "nowhere")


def test_models_are_exported_and_frozen() -> None:
    import mike_sdk

    assert (mike_sdk.ResultRow, mike_sdk.Summary, mike_sdk.Manifest) == (
        ResultRow, Summary, Manifest)
    row = ResultRow.model_validate(_old_row())
    with pytest.raises(ValueError, match="frozen"):
        row.answer = "x"


def test_the_doc_shows_the_current_schemas() -> None:
    text = DOC.read_text("utf-8")
    for name, schema in json_schemas().items():
        block = "```json\n" + json.dumps(schema, indent=2, ensure_ascii=False) + "\n```"
        assert block in text, (f"docs/run-files.md is out of date for {name}: regenerate its "
                               "schema blocks (see the end of that file).")
