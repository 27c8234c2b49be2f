"""Source x target matrices and answer-language labels, end to end on the mock backend
(scripted answers: the labels depend on the answers, not on how a model found them)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from rows import read_rows

from mike_sdk.backend import Abilities
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.cli.main import main
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.run.plan import Planner
from mike_sdk.run.results import ResultRow
from mike_sdk.runfolder.rundir import read_summary
from mike_sdk.strategy import get_strategy

MATRIX = EvalConfig(tasks=("zsre",), languages=("de", "hi"), source_languages=("en", "de"),
                    strategy="zero-shot", metrics=("reliability",), limit=2,
                    language_id="lingua")
SCRIPTED = ["--backend", "mock", "--backend-option", "answer=fixed",
            "--backend-option", "text=Spanisch", "--backend-option", "tokenizer=false"]


@pytest.fixture(scope="module")
def answers(benchmark: Benchmark) -> dict[str, str]:
    """Hindi questions get the source-language gold: the confusion the paper reports."""
    out = {}
    for work in Planner(benchmark, MATRIX, get_strategy("zero-shot"), Abilities()):
        if work.item.target_lang == "hi":
            out[work.request.prompt or ""] = work.item.source.answer(work.metric)
    return out


@pytest.fixture
def model(answers: dict[str, str]) -> MockBackend:
    """Answers each scripted prompt with its text, anything else with ``Spanisch`` (no
    tokenizer, no likelihoods: like the HTTP backend it replaces)."""
    return MockBackend(answer="fixed", text="Spanisch", replies=answers, tokenizer=False,
                       loglikelihood=False)


def rows(run_dir: Path) -> list[dict[str, Any]]:
    return read_rows(run_dir)


def test_old_single_source_is_still_accepted() -> None:
    old = EvalConfig(source_language="fr", languages=("de",))
    assert old.source_languages == ("fr",) and old.source_language == "fr"
    assert old == EvalConfig(source_languages="fr", languages=("de",))
    assert EvalConfig.model_validate(old.model_dump()) == old
    with pytest.raises(ValueError, match="not both"):
        EvalConfig(source_language="fr", source_languages=("de",))


def test_pairs_sources_outermost_and_same_language_optional() -> None:
    assert MATRIX.pairs() == (("en", "de"), ("en", "hi"), ("de", "de"), ("de", "hi"))
    skip = MATRIX.model_copy(update={"skip_same_language": True})
    assert skip.pairs() == (("en", "de"), ("en", "hi"), ("de", "hi"))
    assert skip.fingerprint() != MATRIX.fingerprint()


def test_matrix_run_labels_answers_and_counts_per_pair(
        model: MockBackend, benchmark: Benchmark, tmp_path: Path) -> None:
    """The mock backend stands in for the loopback HTTP server that scripted the answers."""
    pytest.importorskip("lingua")
    with ResponseCache(tmp_path / "cache") as cache:
        evaluator = Evaluator(model, benchmark=benchmark, cache=cache,
                              progress=False)
        summary = evaluator.run(MATRIX, tmp_path / "run")
    found = rows(tmp_path / "run")
    assert [r["id"] for r in found] == [f"zsre/{pair}/{i}/reliability" for pair in
                                        ("en>de", "en>hi", "de>de", "de>hi") for i in (0, 1)]
    for row in found:
        ResultRow.model_validate(row)
    labels = {r["id"]: (r["answer"], r["answer_language"]) for r in found}
    # zsre item 0's gold is "2006" (no letters), item 1's is "Lamiinae" (Hindi: "लामियिन").
    assert labels["zsre/en>de/0/reliability"][1] == {"label": "target", "detected": "de"}
    assert labels["zsre/de>de/1/reliability"][1] == {"label": "target", "detected": "de"}
    assert labels["zsre/en>hi/0/reliability"] == ("2006", {"label": "neutral",
                                                           "detected": "none"})
    assert labels["zsre/en>hi/1/reliability"] == ("Lamiinae", {"label": "source",
                                                               "detected": "en"})
    assert labels["zsre/de>hi/1/reliability"][1] == {"label": "source", "detected": "de"}
    assert summary.skipped == {"zsre": {"en>de": 0, "en>hi": 0, "de>de": 0, "de>hi": 0}}
    assert summary.language_detection.method == "script+lingua"
    # The identifier's verdicts were kept beside the response cache for re-runs.
    assert (tmp_path / "cache" / "language-ids.sqlite").stat().st_size > 0
    # By script only, de answers to de questions are undetermined; the Latin answer to a
    # Hindi question is still "source".
    with ResponseCache(tmp_path / "cache") as cache:
        plain = Evaluator(model, benchmark=benchmark, cache=cache,
                          progress=False).run(MATRIX.model_copy(update={"language_id": "script"}),
                                              tmp_path / "plain")
    assert plain.language_detection is not None
    assert plain.language_detection.method == "script-only"
    by_id = {r["id"]: r["answer_language"] for r in rows(tmp_path / "plain")}
    assert by_id["zsre/en>hi/1/reliability"] == {"label": "source", "detected": "en"}
    assert by_id["zsre/en>de/1/reliability"]["detected"] == "undetermined"
    groups = {f"{r.source_lang}>{r.target_lang}": r.model_dump(exclude_unset=True)
              for r in summary.results}
    assert set(groups) == {"en>de", "en>hi", "de>de", "de>hi"}
    hindi = groups["en>hi"]
    assert hindi["answer_language"] == {"target": 0, "source": 1, "other": 0, "neutral": 1}
    assert hindi["wrong_language"] == 100.0
    assert hindi["in_language"] == {"n": 1, "em": 100.0, "token_f1": 100.0}  # "2006" is right
    assert groups["en>de"]["wrong_language"] == 0.0
    assert groups["en>de"]["in_language"]["n"] == 2


def test_auto_language_id_records_what_it_used(model: MockBackend, benchmark: Benchmark,
                                               tmp_path: Path) -> None:
    """The mock backend stands in for the loopback HTTP server that scripted the answers."""
    pytest.importorskip("lingua")
    config = MATRIX.model_copy(update={"language_id": "auto", "source_languages": ("en",)})
    with ResponseCache(tmp_path / "cache") as cache:
        summary = Evaluator(model, benchmark=benchmark, cache=cache,
                            progress=False).run(config, tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["language_id"] == "lingua"
    assert summary.language_detection.method == "script+lingua"


def test_cli_source_languages_and_skip_same_language(
        benchmark: Benchmark, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The mock backend stands in for the loopback HTTP server (the pairs are the point)."""
    args = ["eval", *SCRIPTED, "--tasks", "zsre", "--languages", "de,hi", "--source-languages", "en,de",
            "--skip-same-language", "--metrics", "reliability", "--strategy", "zero-shot",
            "--limit", "1", "--data-dir", str(benchmark.root), "--run-dir",
            str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 0
    assert [r["id"] for r in rows(tmp_path / "run")] == [
        "zsre/en>de/0/reliability", "zsre/en>hi/0/reliability", "zsre/de>hi/0/reliability"]
    summary = read_summary(tmp_path / "run")
    assert summary.config.source_languages == ("en", "de")
    assert summary.skipped == {"zsre": {"en>de": 0, "en>hi": 0, "de>hi": 0}}
    assert main([*args, "--source-language", "fr"]) == 2
    assert "not both" in capsys.readouterr().err


def test_manifest_records_the_retrieval_files(model: MockBackend, benchmark: Benchmark,
                                              tmp_path: Path) -> None:
    """The mock backend stands in for the loopback HTTP server (the manifest is the point)."""
    config = EvalConfig(tasks=("zsre",), languages=("de",), strategy="retrieved",
                        strategy_options={"k": 2}, metrics=("reliability",), limit=1,
                        language_id="script")
    with ResponseCache(tmp_path / "cache") as cache:
        Evaluator(model, benchmark=benchmark, cache=cache,
                  progress=False).run(config, tmp_path / "run")
    files = json.loads((tmp_path / "run" / "manifest.json").read_text())["data_files"]
    pool = benchmark.training_pool_file("zsre")
    corpus = benchmark.corpus_idx_file("zsre")
    for path in (pool, corpus):
        assert files[benchmark.relative(path)] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "corpus_idx/" in benchmark.relative(corpus)
