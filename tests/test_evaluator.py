"""The caching evaluator end to end, on the real embedded model and real data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mike_sdk.cache import ResponseCache
from mike_sdk.config import EvalConfig
from mike_sdk.data import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.evaluator import Evaluator
from mike_sdk.results import ResultRow
from mike_sdk.rundir import RunDir

pytestmark = pytest.mark.model

SMALL = EvalConfig(tasks=("counterfact",), languages=("de", "zh"), strategy="zero-shot", limit=2)


@pytest.fixture(scope="module")
def backend():  # type: ignore[no-untyped-def]
    from mike_sdk.backends.hf import HFBackend

    return HFBackend(batch_size=4)


def rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def by_id(run_dir: Path) -> dict[str, tuple[Any, ...]]:
    return {r["id"]: (r["prompt"], r["output"], r["answer"], r["scores"], r["likelihood"])
            for r in rows(run_dir)}


def test_small_real_run_writes_auditable_rows(backend, benchmark: Benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False)
        summary = evaluator.run(SMALL, tmp_path / "run")
    found = rows(tmp_path / "run")
    assert [r["id"] for r in found][:4] == [f"counterfact/en>de/0/{m}" for m in
                                            ("reliability", "generality", "locality", "portability")]
    assert len(found) == 2 * 2 * 4
    for row in found:
        ResultRow.model_validate(row)
        assert row["answer"] == row["output"].split('"')[0]
        assert row["prompt"].startswith('New Fact: "') and row["prompt"].endswith('Answer: "')
        assert set(row["scores"]) == {"em", "token_f1", "paper_f1"}
        assert (row["likelihood"] is not None) == (row["metric"] in ("reliability", "generality"))
        assert row["cached"] is False and row["input_tokens"] > 10
    assert summary["totals"]["rows"] == 16 and summary["skipped"] == {"counterfact": {"en>de": 0, "en>zh": 0}}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["backend"]["model"] == "gemma-3-270m-q4_k_m"
    assert set(manifest["data_files"]) == {"BMIKE53/CounterFact/counterfact_test_de.json",
                                           "BMIKE53/CounterFact/counterfact_test_zh.json"}
    means = {(r["target_lang"], r["metric"]): r for r in summary["results"]}
    de_rel = [r for r in found if r["target_lang"] == "de" and r["metric"] == "reliability"]
    assert means[("de", "reliability")]["token_f1"] == pytest.approx(
        100 * sum(r["scores"]["token_f1"] for r in de_rel) / 2, abs=1e-3)


def test_fully_cached_rerun_loads_no_model(benchmark: Benchmark, tmp_path: Path) -> None:
    from mike_sdk.backends.hf import HFBackend

    first = HFBackend(batch_size=4)
    with ResponseCache(tmp_path / "cache") as cache:
        Evaluator(first, benchmark=benchmark, cache=cache, progress=False).run(SMALL, tmp_path / "a")
    fresh = HFBackend(batch_size=4)
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(fresh, benchmark=benchmark, cache=cache, progress=False)
        summary = evaluator.run(SMALL, tmp_path / "b")
    assert fresh.model is None and evaluator.calls == 0
    assert summary["totals"]["cache_hits"] == 16
    assert by_id(tmp_path / "a") == by_id(tmp_path / "b")


def test_other_config_in_same_run_dir_is_refused(backend, benchmark: Benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False)
        evaluator.run(SMALL.model_copy(update={"limit": 1, "languages": ("de",)}), tmp_path / "run")
        before = (tmp_path / "run" / "results.jsonl").read_bytes()
        with pytest.raises(ConfigError, match=r"different run \(config differs.*another --run-dir"):
            evaluator.run(SMALL.model_copy(update={"limit": 1, "languages": ("fr",)}), tmp_path / "run")
    assert (tmp_path / "run" / "results.jsonl").read_bytes() == before


def test_a_run_folder_in_use_is_refused(backend, benchmark: Benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    holder = RunDir(tmp_path / "run")
    holder.open({"config": {}}, identity_keys=())
    try:
        with ResponseCache(tmp_path / "cache") as cache, pytest.raises(
                ConfigError, match="Another process is writing"):
            Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(SMALL, tmp_path / "run")
    finally:
        holder.close()


def test_skipped_items_are_counted_in_the_summary(backend, benchmark: Benchmark, tmp_path: Path, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads((data_dir / "data/BMIKE53/zsRE/zsre_test_he.json").read_text())
    first_missing = next(i for i, r in enumerate(raw) if "he" not in r)
    config = EvalConfig(tasks=("zsre",), languages=("he",), strategy="zero-shot",
                        metrics=("reliability",), limit=first_missing + 1, likelihood=False)
    with ResponseCache(tmp_path / "cache") as cache:
        summary = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(
            config, tmp_path / "run")
    assert summary["skipped"] == {"zsre": {"en>he": 1}}
    assert summary["totals"]["rows"] == first_missing


KILLED_RUN = """
import sys
from mike_sdk.backends.hf import HFBackend
from mike_sdk.cache import ResponseCache
from mike_sdk.config import EvalConfig
from mike_sdk.data import Benchmark
from mike_sdk.evaluator import Evaluator
config = EvalConfig.model_validate_json(sys.argv[4])
with ResponseCache(sys.argv[2]) as cache:
    Evaluator(HFBackend(batch_size=1), benchmark=Benchmark(sys.argv[1]), cache=cache,
              progress=False, chunk_size=4).run(config, sys.argv[3])
"""


def test_killed_run_resumes_without_repeating_calls(benchmark: Benchmark, data_dir: Path, tmp_path: Path) -> None:
    from mike_sdk.backends.hf import HFBackend

    config = EvalConfig(tasks=("counterfact",), languages=("de", "fr"), strategy="zero-shot", limit=3)
    # The reference: one uninterrupted run with its own cache; batch size 1 everywhere so that
    # batching cannot change any number.
    with ResponseCache(tmp_path / "ref-cache") as cache:
        reference = Evaluator(HFBackend(batch_size=1), benchmark=benchmark, cache=cache, progress=False)
        reference.run(config, tmp_path / "ref")
    total_calls = reference.calls

    run_dir, cache_dir = tmp_path / "run", tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(data_dir), str(cache_dir),
                             str(run_dir), config.model_dump_json()], env=os.environ.copy())
    results = run_dir / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and results.stat().st_size > 0:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    written = len(rows(run_dir))
    assert 0 < written < 24
    with ResponseCache(cache_dir) as cache:
        paid_for = len(cache)
        resumed = Evaluator(HFBackend(batch_size=1), benchmark=benchmark, cache=cache, progress=False)
        resumed.run(config, run_dir)
    assert resumed.calls == total_calls - paid_for
    ids = [r["id"] for r in rows(run_dir)]
    assert len(ids) == len(set(ids)) == 24
    assert by_id(run_dir) == by_id(tmp_path / "ref")
