"""Editing in context and asking, through the public Python API, on the mock backend (the
prompts, batching and caching do not depend on the model; tests/backends covers the real one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mike_sdk import Benchmark, DataError, Edit, ResponseCache, ask, ask_many
from mike_sdk.backends.mock import MockBackend

FACT = Edit(question="Where does Spike Hughes originate from?", answer="Philadelphia")


@pytest.fixture
def model() -> MockBackend:
    return MockBackend(batch_size=4)


def test_edit_in_english_ask_in_chinese(model: MockBackend, benchmark: Benchmark, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock backend stands in for the embedded model (the prompt is the point)."""
    monkeypatch.setenv("MIKE_CACHE_DIR", str(tmp_path))  # a fresh default response cache
    answer = ask(model, FACT, "斯派克·休斯来自哪里？", language="zh", task="counterfact",
                 benchmark=benchmark)
    prompt = answer.request.prompt
    assert prompt is not None
    # Metric-specific reliability demonstrations (#1 first) in Chinese, then the query.
    first = benchmark.demonstrations("counterfact")[0]
    assert prompt.startswith(f"{first.new_fact}\n{first.texts['zh']}\n\n")
    assert prompt.endswith('New Fact: "Where does Spike Hughes originate from? Philadelphia"\n'
                           'Question: "斯派克·休斯来自哪里？" Answer: "')
    assert answer.answer == answer.output.split('"')[0] == model.answer_for(answer.request)
    assert not answer.cached and model.requests == [answer.request]


def test_ask_many_batches_and_caches(tmp_path: Path) -> None:
    """The mock backend stands in for the embedded model: its counters show the batch and the cached pass."""
    questions = ["Woher stammt Spike Hughes?", "Was ist die Heimatstadt von Spike Hughes?"]
    with ResponseCache(tmp_path) as cache:
        model = MockBackend()
        first = ask_many(model, FACT, questions, language="de", strategy="zero-shot", cache=cache)
        fresh = MockBackend()
        second = ask_many(fresh, FACT, questions, language="de", strategy="zero-shot", cache=cache)
    assert [a.answer for a in first] == [a.answer for a in second]
    assert model.batch_sizes == [2] and not any(a.cached for a in first)
    assert all(a.cached for a in second) and fresh.calls == 0
    assert second[1].request.prompt == ('New Fact: "Where does Spike Hughes originate from? '
                                        'Philadelphia"\nQuestion: "Was ist die Heimatstadt von '
                                        'Spike Hughes?" Answer: "')


def test_demonstration_strategies_need_the_data(model: MockBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock backend stands in for the embedded model (no call is made)."""
    monkeypatch.setenv("MIKE_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(DataError, match=r"needs the BMIKE-53 demonstrations.*zero-shot"):
        ask(model, FACT, "Woher stammt Spike Hughes?", language="de", strategy="one-shot")
    assert model.calls == 0
