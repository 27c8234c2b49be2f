"""`mike eval --edit-memory`: all test edits in one memory, each question retrieves."""

from __future__ import annotations

from pathlib import Path

import pytest
import word_embedder  # noqa: F401 - registers the "test-words" embedder

from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.memory.records import MemorySettings
from mike_sdk.report.table import summary_table
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.rundir import final_rows


def run(benchmark: Benchmark, tmp_path: Path, languages: tuple[str, ...],
        backend: MockBackend) -> tuple[Evaluator, object, list]:  # type: ignore[type-arg]
    config = EvalConfig(tasks=("zsre",), languages=languages, limit=4, strategy="zero-shot",
                        language_id="script",
                        edit_memory=MemorySettings(embedder="test-words", k=1))
    evaluator = Evaluator(backend, benchmark=benchmark, progress=False,
                          cache=ResponseCache(tmp_path / "cache"))
    summary = evaluator.run(config, tmp_path / "run")
    return evaluator, summary, list(final_rows(tmp_path / "run"))


def test_rows_and_summary_record_the_retrieval(benchmark: Benchmark, tmp_path: Path) -> None:
    backend = MockBackend(answer="edit")
    _, summary, rows = run(benchmark, tmp_path, ("en", "de"), backend)
    assert len(rows) == 2 * 4 * 4 and all(r.retrieval is not None for r in rows)
    english = [r for r in rows if r.target_lang == "en" and r.metric == "reliability"]
    # The English question is the edit's own question: it ranks first, it is stated, and
    # the mock (a perfect in-context editor) answers with the new answer.
    assert all(r.retrieval.own_rank == 1 and r.retrieval.own_applied for r in english)
    assert all(r.scores["em"] == 1.0 for r in english)
    for row in rows:
        if row.retrieval.own_applied:
            assert row.retrieval.edit_ids == (str(row.index),)
    # What was stated is what the prompts show: k=1 fact at most, none when nothing applied.
    facts = [r.prompt.count("New Fact:") for r in backend.requests]
    assert max(facts) == 1
    assert facts.count(0) == len({r.cache_key for r in rows if not r.retrieval.edit_ids})
    stats = summary.retrieval["zsre"]  # type: ignore[attr-defined]
    for lang in ("en", "de"):
        about = [r for r in rows if r.target_lang == lang and r.metric != "locality"]
        assert stats[lang].questions == len(about) == 12
        assert stats[lang].top1 == sum(r.retrieval.own_rank == 1 for r in about) / 12
        assert stats[lang].top_k == sum(r.retrieval.own_rank is not None for r in about) / 12
    # Hashed words: German questions share names with the edits, but score lower.
    assert stats["en"].own_applied > stats["de"].own_applied
    local = [r for r in rows if r.target_lang == "de" and r.metric == "locality"]
    assert stats["de"].locality_applied == sum(bool(r.retrieval.edit_ids)
                                               for r in local) / len(local)
    assert "Edit memory:" in summary_table(summary)  # type: ignore[arg-type]
    assert summary.strategy["edit_memory"]["embedder"] == "test-words"  # type: ignore[attr-defined]


def test_a_rerun_resumes_from_the_cache(benchmark: Benchmark, tmp_path: Path) -> None:
    backend = MockBackend(answer="edit")
    run(benchmark, tmp_path, ("en",), backend)
    calls = backend.calls
    evaluator, summary, rows = run(benchmark, tmp_path, ("en",), backend)
    assert backend.calls == calls and evaluator.calls == 0
    assert summary.retrieval["zsre"]["en"].questions == 12  # type: ignore[attr-defined]
    assert len(rows) == 16


def test_the_memory_mode_is_part_of_the_configuration() -> None:
    plain = EvalConfig(tasks=("zsre",), limit=2)
    assert "edit_memory" not in plain.model_dump_json(exclude={"edit_memory"}) \
        and plain.fingerprint() == EvalConfig(tasks=("zsre",), limit=2).fingerprint()
    assert EvalConfig(tasks=("zsre",), limit=2,
                      edit_memory=MemorySettings()).fingerprint() != plain.fingerprint()
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        MemorySettings(k=0)


def test_evaluate_an_edited_model(benchmark: Benchmark, tmp_path: Path) -> None:
    from mike_sdk import evaluate
    from mike_sdk.memory import EditedModel, EditMemory

    memory = EditMemory(tmp_path / "mine.sqlite", embedder="test-words")
    edited = EditedModel(MockBackend(answer="edit"), memory, strategy="zero-shot", k=2)
    summary = evaluate(edited, run_dir=str(tmp_path / "run"), data_dir=str(benchmark.root),
                       cache_dir=str(tmp_path / "cache"), tasks=("zsre",), languages=("en",),
                       limit=2, progress=False)
    assert summary.config.edit_memory == MemorySettings(embedder="test-words", k=2)
    assert summary.config.strategy == "zero-shot"
    assert summary.retrieval is not None and summary.retrieval["zsre"]["en"].questions == 6
