"""The caching evaluator end to end on real data: its mechanics on the mock backend, and
one small run of the real embedded model (what only a real model can show)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from killing import kill_when
from rows import read_rows

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.run.results import ResultRow
from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import RunDir, read_manifest, results_file

SMALL = EvalConfig(tasks=("counterfact",), languages=("de", "zh"), strategy="zero-shot", limit=2)
TINY = EvalConfig(tasks=("counterfact",), languages=("de",), strategy="zero-shot", limit=1)


@pytest.fixture
def backend() -> MockBackend:
    return MockBackend(batch_size=4)


@pytest.fixture(scope="module")
def real_run(benchmark: Benchmark, tmp_path_factory: pytest.TempPathFactory,
             hf_backend: Any) -> tuple[Path, Path]:
    """One tiny run of the embedded model (the session's, conftest.py): (run folder, cache
    folder)."""
    folder = tmp_path_factory.mktemp("real")
    with ResponseCache(folder / "cache") as cache:
        Evaluator(hf_backend, benchmark=benchmark, cache=cache,
                  progress=False).run(TINY, folder / "run")
    return folder / "run", folder / "cache"


def rows(run_dir: Path) -> list[dict[str, Any]]:
    return read_rows(run_dir)


def by_id(run_dir: Path) -> dict[str, tuple[Any, ...]]:
    requests = read_requests(run_dir)  # each row's request, stored once
    return {r["id"]: (requests[r["cache_key"]].prompt, r["output"], r["answer"], r["scores"],
                      r.get("likelihood"), r.get("answer_language")) for r in rows(run_dir)}


def test_small_run_writes_auditable_rows(backend: MockBackend, benchmark: Benchmark, tmp_path: Path) -> None:
    """The mock backend stands in for the embedded model: the rows' shape does not depend on it."""
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False)
        summary = evaluator.run(SMALL, tmp_path / "run")
    found = rows(tmp_path / "run")
    assert [r["id"] for r in found][:4] == [f"counterfact/en>de/0/{m}" for m in
                                            ("reliability", "generality", "locality", "portability")]
    assert len(found) == 2 * 2 * 4
    requests = read_requests(tmp_path / "run")  # each request stored once, by cache key
    for row in found:
        ResultRow.model_validate(row)
        assert row["answer"] == row["output"].split('"')[0]
        prompt = requests[row["cache_key"]].prompt or ""
        assert prompt.startswith('New Fact: "') and prompt.endswith('Answer: "')
        assert set(row["scores"]) == {"em", "token_f1", "paper_f1"}
        assert (row["likelihood"] is not None) == (row["metric"] in ("reliability", "generality"))
        assert row["cached"] is False and row["input_tokens"] > 10
    assert summary.totals.rows == 16 and summary.skipped == {"counterfact": {"en>de": 0, "en>zh": 0}}
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["backend"]["model"] == "mock"
    assert set(manifest["data_files"]) == {"BMIKE53/CounterFact/counterfact_test_de.json",
                                           "BMIKE53/CounterFact/counterfact_test_zh.json"}
    means = {(r.target_lang, r.metric): r.model_dump(exclude_unset=True) for r in summary.results}
    de_rel = [r for r in found if r["target_lang"] == "de" and r["metric"] == "reliability"]
    assert means[("de", "reliability")]["token_f1"] == pytest.approx(
        100 * sum(r["scores"]["token_f1"] for r in de_rel) / 2, abs=1e-3)
    # Batches of the backend's size, every request sent once (identical prompts share a call).
    assert max(backend.batch_sizes) == 4
    assert len(backend.requests) + len(backend.scored) == evaluator.calls
    assert len({r.prompt for r in backend.requests}) == len(backend.requests)


def test_fully_cached_rerun_makes_no_calls(backend: MockBackend, benchmark: Benchmark, tmp_path: Path) -> None:
    """The mock backend stands in for the embedded model (its counters prove no call is made)."""
    with ResponseCache(tmp_path / "cache") as cache:
        Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(SMALL, tmp_path / "a")
    fresh = MockBackend(batch_size=4)
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(fresh, benchmark=benchmark, cache=cache, progress=False)
        summary = evaluator.run(SMALL, tmp_path / "b")
    assert fresh.calls == fresh.likelihood_calls == 0 and evaluator.calls == 0
    assert summary.totals.cache_hits == 16
    first, again = by_id(tmp_path / "a"), by_id(tmp_path / "b")  # scores, labels, answers
    assert first == again and all(row[-1] is not None for row in again.values())


@pytest.mark.model
def test_real_model_run_scores_likelihoods_on_counterfact(real_run: tuple[Path, Path]) -> None:
    run_dir, _ = real_run
    found = rows(run_dir)
    assert [r["id"] for r in found] == [f"counterfact/en>de/0/{m}" for m in
                                        ("reliability", "generality", "locality", "portability")]
    for row in found:
        ResultRow.model_validate(row)
        assert row["answer"] == row["output"].split('"')[0]
        assert set(row["scores"]) == {"em", "token_f1", "paper_f1"}
        assert (row["likelihood"] is not None) == (row["metric"] in ("reliability", "generality"))
        assert row["cached"] is False and row["input_tokens"] > 10
    for row in found:
        if row["likelihood"] is not None:  # the new-vs-old check, on the real model
            new, old = row["likelihood"]["new_logprob"], row["likelihood"]["old_logprob"]
            assert math.isfinite(new) and math.isfinite(old) and new < 0 and old < 0 and new != old
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["backend"]["model"] == "gemma-3-270m-q4_k_m"


@pytest.mark.model
def test_fully_cached_rerun_loads_no_model(real_run: tuple[Path, Path], benchmark: Benchmark, tmp_path: Path) -> None:
    from mike_sdk.backends.hf import HFBackend

    run_dir, cache_dir = real_run
    fresh = HFBackend(batch_size=4)
    with ResponseCache(cache_dir) as cache:
        evaluator = Evaluator(fresh, benchmark=benchmark, cache=cache, progress=False)
        summary = evaluator.run(TINY, tmp_path / "b")
    assert fresh.model is None and evaluator.calls == 0
    assert summary.totals.cache_hits == 4
    assert by_id(run_dir) == by_id(tmp_path / "b")


def test_other_config_in_same_run_dir_is_refused(backend: MockBackend, benchmark: Benchmark, tmp_path: Path) -> None:
    """The mock backend stands in for the embedded model (the refusal is about the run folder)."""
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False)
        evaluator.run(SMALL.model_copy(update={"limit": 1, "languages": ("de",)}), tmp_path / "run")
        before = results_file(tmp_path / "run").read_bytes()
        with pytest.raises(ConfigError, match=r"different run: config\..* is .* there, .* now.*another --run-dir"):
            evaluator.run(SMALL.model_copy(update={"limit": 1, "languages": ("fr",)}), tmp_path / "run")
    assert results_file(tmp_path / "run").read_bytes() == before


def test_a_run_folder_in_use_is_refused(backend: MockBackend, benchmark: Benchmark, tmp_path: Path) -> None:
    """The mock backend stands in for the embedded model (the lock is about the run folder)."""
    config = SMALL.model_copy(update={"limit": 1, "languages": ("de",)})
    with ResponseCache(tmp_path / "cache") as cache:
        Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(config, tmp_path / "run")
    holder = RunDir(tmp_path / "run")  # another writer, holding the folder with a valid manifest
    holder.open(read_manifest(tmp_path / "run"), identity_keys=())
    calls = backend.calls
    try:
        with ResponseCache(tmp_path / "cache") as cache, pytest.raises(
                ConfigError, match="Another process is writing"):
            Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(config, tmp_path / "run")
    finally:
        holder.close()
    assert backend.calls == calls


def test_skipped_items_are_counted_in_the_summary(backend: MockBackend, benchmark: Benchmark, tmp_path: Path, data_dir: Path) -> None:
    """The mock backend stands in for the embedded model (skips come from the data)."""
    raw = json.loads((data_dir / "data/BMIKE53/zsRE/zsre_test_he.json").read_text())
    first_missing = next(i for i, r in enumerate(raw) if "he" not in r)
    config = EvalConfig(tasks=("zsre",), languages=("he",), strategy="zero-shot",
                        metrics=("reliability",), limit=first_missing + 1, likelihood=False)
    with ResponseCache(tmp_path / "cache") as cache:
        summary = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(
            config, tmp_path / "run")
    assert summary.skipped == {"zsre": {"en>he": 1}}
    assert summary.totals.rows == first_missing


KILLED_RUN = """
import sys
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.run.config import EvalConfig
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.evaluator import Evaluator
config = EvalConfig.model_validate_json(sys.argv[4])
with ResponseCache(sys.argv[2]) as cache:
    Evaluator(MockBackend(batch_size=1, max_concurrency=1, latency_s=0.05),
              benchmark=Benchmark(sys.argv[1]), cache=cache, progress=False,
              chunk_size=4).run(config, sys.argv[3])
"""


def test_killed_run_resumes_without_repeating_calls(benchmark: Benchmark, data_dir: Path, tmp_path: Path) -> None:
    """The mock backend (50 ms a call) stands in for the embedded model: resuming is about files and cache."""
    config = EvalConfig(tasks=("counterfact",), languages=("de", "fr"), strategy="zero-shot",
                        limit=3, language_id="script")
    # The reference: one uninterrupted run with its own cache; batch size 1 everywhere so that
    # batching cannot change any number.
    with ResponseCache(tmp_path / "ref-cache") as cache:
        reference = Evaluator(MockBackend(batch_size=1), benchmark=benchmark, cache=cache,
                              progress=False)
        reference.run(config, tmp_path / "ref")
    total_calls = reference.calls

    run_dir, cache_dir = tmp_path / "run", tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(data_dir), str(cache_dir),
                             str(run_dir), config.model_dump_json()], env=os.environ.copy())
    results = results_file(run_dir)
    kill_when(proc, lambda: results.exists() and results.stat().st_size > 0, 240)
    written = len(rows(run_dir))
    assert 0 < written < 24
    # The data files' hashes were recorded as they were read, not at the end.
    assert any(path.endswith("counterfact_test_de.json")
               for path in read_manifest(run_dir).data_files)
    with ResponseCache(cache_dir) as cache:
        paid_for = len(cache)
        backend = MockBackend(batch_size=1)
        resumed = Evaluator(backend, benchmark=benchmark, cache=cache, progress=False)
        resumed.run(config, run_dir)
    assert resumed.calls == total_calls - paid_for
    assert backend.calls + backend.likelihood_calls == total_calls - paid_for
    ids = [r["id"] for r in rows(run_dir)]
    assert len(ids) == len(set(ids)) == 24
    assert by_id(run_dir) == by_id(tmp_path / "ref")


def test_runs_sharing_a_client_each_ledger_their_own_spend(benchmark: Benchmark,
                                                           tmp_path: Path) -> None:
    """Two runs at once through one client: each run folder's spend.jsonl holds exactly
    the requests its own rows name (the ledger goes with the call, not the client)."""
    import asyncio

    from mike_sdk.calls.client import ModelClient

    configs = {"de": TINY, "zh": TINY.model_copy(update={"languages": ("zh",)})}
    with ResponseCache(tmp_path / "cache") as cache:
        client = ModelClient(MockBackend(), cache=cache)
        runs = {n: Evaluator(client, benchmark=benchmark, progress=False) for n in configs}

        async def both() -> None:
            await asyncio.gather(*(runs[n].arun(configs[n], tmp_path / n) for n in configs))

        asyncio.run(both())
    for name in configs:
        keys = {row["cache_key"][:16] for row in rows(tmp_path / name)}
        paid = {json.loads(line)[0] for line in (tmp_path / name / "spend.jsonl").open()}
        assert paid == keys and keys
