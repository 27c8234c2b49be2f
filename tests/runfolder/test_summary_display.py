"""What ``evaluate`` returns reads well: ``print(summary)`` is the score table, and
``summary.to_pandas()`` one row per group."""

from __future__ import annotations

from pathlib import Path

import pytest

from mike_sdk import evaluate, load_backend
from mike_sdk.runfolder.files import Summary


@pytest.fixture(scope="module")
def summary(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Summary:
    tmp = tmp_path_factory.mktemp("summary")
    return evaluate(load_backend("mock"), run_dir=str(tmp / "run"), data_dir=str(data_dir),
                    cache_dir=str(tmp / "cache"), tasks=("zsre",), languages=("de", "hi"),
                    strategy="one-shot", limit=2, progress=False, language_id="script")


def test_print_shows_the_score_table(summary: Summary) -> None:
    text = str(summary)
    assert text == summary.table()
    lines = text.splitlines()
    assert lines[0].split() == ["task", "src>tgt", "metric", "n", "em", "paper_f1",
                                "token_f1", "wrong_lang%"]
    assert sum(line.startswith("zsre  en>") for line in lines) == 2 * 4
    assert "Averages over target languages" in text
    assert "Summary(" not in text


def test_to_pandas_has_one_row_per_group(summary: Summary) -> None:
    pytest.importorskip("pandas")
    frame = summary.to_pandas()
    assert len(frame) == len(summary.results) == 2 * 4
    assert {"task", "target_lang", "metric", "n", "em", "paper_f1", "token_f1"} <= set(frame)
    de = frame[(frame.target_lang == "de") & (frame.metric == "reliability")]
    expected = next(r for r in summary.results
                    if r.target_lang == "de" and r.metric == "reliability")
    assert de.iloc[0]["token_f1"] == pytest.approx(expected.token_f1)
    assert str(frame["token_f1"].dtype) == "float64"
