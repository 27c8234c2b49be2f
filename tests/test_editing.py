"""Editing in context and asking, through the public Python API, on the real embedded model."""

from __future__ import annotations

from pathlib import Path

import pytest

from mike_sdk import Benchmark, DataError, Edit, ResponseCache, ask, ask_many

pytestmark = pytest.mark.model

FACT = Edit(question="Where does Spike Hughes originate from?", answer="Philadelphia")


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    from mike_sdk.backends.hf import HFBackend

    return HFBackend(batch_size=4)


def test_edit_in_english_ask_in_chinese(model, benchmark: Benchmark) -> None:  # type: ignore[no-untyped-def]
    answer = ask(model, FACT, "斯派克·休斯来自哪里？", language="zh", task="counterfact",
                 benchmark=benchmark)
    prompt = answer.request.prompt
    assert prompt is not None
    # Metric-specific reliability demonstrations (#1 first) in Chinese, then the query.
    first = benchmark.demonstrations("counterfact")[0]
    assert prompt.startswith(f"{first.new_fact}\n{first.texts['zh']}\n\n")
    assert prompt.endswith('New Fact: "Where does Spike Hughes originate from? Philadelphia"\n'
                           'Question: "斯派克·休斯来自哪里？" Answer: "')
    assert answer.answer == answer.output.split('"')[0]
    assert not answer.cached


def test_ask_many_batches_and_caches(tmp_path: Path) -> None:
    from mike_sdk.backends.hf import HFBackend

    questions = ["Woher stammt Spike Hughes?", "Was ist die Heimatstadt von Spike Hughes?"]
    with ResponseCache(tmp_path) as cache:
        first = ask_many(HFBackend(), FACT, questions, language="de", strategy="zero-shot", cache=cache)
        fresh = HFBackend()
        second = ask_many(fresh, FACT, questions, language="de", strategy="zero-shot", cache=cache)
    assert [a.answer for a in first] == [a.answer for a in second]
    assert all(a.cached for a in second) and fresh.model is None
    assert second[1].request.prompt == ('New Fact: "Where does Spike Hughes originate from? '
                                        'Philadelphia"\nQuestion: "Was ist die Heimatstadt von '
                                        'Spike Hughes?" Answer: "')


def test_demonstration_strategies_need_the_data(model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MIKE_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(DataError, match=r"needs the BMIKE-53 demonstrations.*zero-shot"):
        ask(model, FACT, "Woher stammt Spike Hughes?", language="de", strategy="one-shot")
