"""The plain-text table that `mike eval` and `mike report RUN_DIR` print."""

from __future__ import annotations

from typing import Any

from mike_sdk.report.table import summary_table


def _cell(target: str, wrong: float | None, em: float) -> dict[str, Any]:
    return {"task": "zsre", "source_lang": "en", "target_lang": target, "metric": "reliability",
            "n": 4, "em": em, "wrong_language": wrong}


def test_wrong_language_column_and_average() -> None:
    summary = {"results": [_cell("de", 25.0, 50.0), _cell("hi", 75.0, 0.0),
                           _cell("fi", None, 100.0)],
               "language_detection": {"method": "script+lingua"}}
    text = summary_table(summary)
    lines = text.splitlines()
    assert lines[0].split() == ["task", "src>tgt", "metric", "n", "em", "wrong_lang%"]
    assert lines[1].split()[-2:] == ["50.00", "25.00"]
    assert lines[3].split()[-2:] == ["100.00", "-"]  # undecided: not a silent 0
    average = next(line for line in lines if line.startswith("zsre") and "reliability  3" in line)
    # em over three languages, the wrong-language share over the two that were decided.
    assert average.split()[-2:] == ["50.00", "50.00"]
    assert "script+lingua" in text


def test_no_column_without_labels() -> None:
    text = summary_table({"results": [{**_cell("de", None, 50.0)}]})
    assert "wrong_lang%" not in text
