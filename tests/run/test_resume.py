"""A run folder cannot lie: changed data, foreign rows and changed requests are refused.

Real files throughout: a copy of part of BMIKE-53, edited the way a user might.
The mock backend stands in for a model (these tests are about the run folder).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rows import results_text, write_results

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.retry import RetryPolicy
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator, RunStopped
from mike_sdk.runfolder.files import Summary
from mike_sdk.runfolder.rundir import read_manifest, results_file

CONFIG = EvalConfig(tasks=("counterfact",), languages=("de",), strategy="zero-shot", limit=3,
                    language_id="script")
DE = "data/BMIKE53/CounterFact/counterfact_test_de.json"
DE_KEY = DE.removeprefix("data/")  # manifests name files relative to data/


@pytest.fixture
def data_copy(data_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data-copy"
    for name in (DE, "data/lang.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / name, root / name)
    return root


def run(data: Path, tmp_path: Path, config: EvalConfig = CONFIG, **backend: object) -> Summary:
    with ResponseCache(tmp_path / "cache") as cache:
        return Evaluator(MockBackend(**backend), benchmark=Benchmark(data), cache=cache,
                         progress=False).run(config, tmp_path / "run")


def test_changed_data_is_refused_and_nothing_is_rewritten(data_copy: Path,
                                                          tmp_path: Path) -> None:
    run(data_copy, tmp_path)
    manifest = read_manifest(tmp_path / "run")
    assert DE_KEY in manifest.data_files
    rows_before = results_file(tmp_path / "run").read_bytes()
    items = json.loads((data_copy / DE).read_text(encoding="utf-8"))
    items[0]["de"]["alt"] = items[0]["de"]["alt"] + " (edited)"
    (data_copy / DE).write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"Data file {DE_KEY} changed since this run folder "
                       r"was started .*another --run-dir"):
        run(data_copy, tmp_path)
    assert read_manifest(tmp_path / "run").data_files == manifest.data_files
    assert results_file(tmp_path / "run").read_bytes() == rows_before


def test_data_changed_after_a_crashed_first_session_is_refused(data_copy: Path,
                                                               tmp_path: Path) -> None:
    # A first session that stops on a failure has recorded the hashes (a killed one too:
    # test_evaluator.py's test_killed_run_resumes_without_repeating_calls).
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(MockBackend(failure_rate=1.0, failures_per_request=None),
                              benchmark=Benchmark(data_copy), cache=cache, progress=False,
                              limits=Limits(retry=RetryPolicy(max_attempts=1)))
        with pytest.raises(RunStopped):
            evaluator.run(CONFIG, tmp_path / "run")
    assert read_manifest(tmp_path / "run").data_files[DE_KEY]
    (data_copy / DE).write_text((data_copy / DE).read_text(encoding="utf-8") + " ",
                                encoding="utf-8")
    with pytest.raises(ConfigError, match="changed since"):
        run(data_copy, tmp_path)


def test_rows_without_a_manifest_are_refused(data_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    run(data_copy, other)
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(results_file(other / "run"), results_file(folder))
    with pytest.raises(ConfigError, match=r"holds results\.jsonl\.gz but no manifest\.json"):
        run(data_copy, tmp_path, CONFIG.model_copy(update={"metrics": ("locality",)}))
    assert not (folder / "manifest.json").exists()


def test_rows_planned_from_other_requests_are_refused(data_copy: Path, tmp_path: Path) -> None:
    run(data_copy, tmp_path)
    # As if another version of the code had written the rows: their request keys differ.
    rows = [json.loads(line) for line in results_text(tmp_path / "run").splitlines()]
    for row in rows:
        row["cache_key"] = "0" * 64
    write_results(tmp_path / "run", "".join(json.dumps(r) + "\n" for r in rows[:-1]))
    with pytest.raises(ConfigError, match="written with other requests than this session"):
        run(data_copy, tmp_path)


def test_the_refusal_names_only_the_fields_that_differ(data_copy: Path,
                                                       tmp_path: Path) -> None:
    run(data_copy, tmp_path)
    with pytest.raises(ConfigError) as caught:
        run(data_copy, tmp_path, CONFIG.model_copy(update={"limit": 2}))
    message = str(caught.value)
    assert "config.limit is 3 there, 2 now" in message and "tasks" not in message


def test_retry_errors_sends_refused_items_again(data_copy: Path, tmp_path: Path) -> None:
    failing = {"failure_rate": 0.3, "failure_kinds": ("bad_request",),
               "failures_per_request": None, "batch_size": 1}
    first = run(data_copy, tmp_path, **failing)
    assert 0 < first.totals.errors < first.totals.rows
    again = run(data_copy, tmp_path, **failing)  # a plain re-run keeps the error rows
    assert again.totals.errors == first.totals.errors
    with ResponseCache(tmp_path / "cache") as cache:
        fixed = Evaluator(MockBackend(batch_size=1), benchmark=Benchmark(data_copy), cache=cache,
                          progress=False).run(CONFIG, tmp_path / "run", retry_errors=True)
    assert fixed.totals.errors == 0 and fixed.totals.rows == first.totals.rows
    lines = results_text(tmp_path / "run").splitlines()
    assert len(lines) == first.totals.rows + first.totals.errors  # appended, not rewritten


def test_another_runs_rows_appended_after_the_first_ones_are_refused(data_copy: Path,
                                                                     tmp_path: Path) -> None:
    # Every row is checked, not a sample of the first 200: another model's row for an
    # item this folder had not answered yet, appended after 239 rows of its own, would
    # otherwise count as done.
    config = CONFIG.model_copy(update={"limit": 60})
    run(data_copy, tmp_path, config)
    own = results_text(tmp_path / "run").splitlines()
    run(data_copy, tmp_path / "other", config, model="other-model")
    foreign = {json.loads(line)["id"]: line
               for line in results_text(tmp_path / "other" / "run").splitlines()}
    last = json.loads(own[-1])["id"]
    write_results(tmp_path / "run", "\n".join([*own[:-1], foreign[last]]) + "\n")
    with pytest.raises(ConfigError, match="rows of another run were added"):
        run(data_copy, tmp_path, config)


def test_rows_of_items_the_run_does_not_plan_are_refused(data_copy: Path,
                                                         tmp_path: Path) -> None:
    run(data_copy, tmp_path)
    row = json.loads(results_text(tmp_path / "run").splitlines()[0])
    row["id"] = row["id"].replace("/0/", "/99/")
    write_results(tmp_path / "run", json.dumps(row) + "\n", append=True)
    with pytest.raises(ConfigError, match=r"has 1 rows of items this run does not plan "
                       r"\(counterfact/en>de/99/"):
        run(data_copy, tmp_path)
