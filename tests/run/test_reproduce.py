"""`mike reproduce`: four configurations, our averages beside the published table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mike_sdk.cli.main import main
from mike_sdk.run.reproduce import (
    COLUMNS,
    CONFIGURATIONS,
    PUBLISHED,
    ConfigResult,
    Reproduction,
    column_averages,
    format_reproduction,
)
from mike_sdk.runfolder.files import GroupResult, Summary


def test_published_table_is_the_protocol_pages() -> None:
    assert PUBLISHED["8-shot-metric-specific"] == (74.86, 32.86, 73.88, 47.55, 71.98, 14.58)
    assert PUBLISHED["zero-shot"][3] == 18.68 and len(PUBLISHED) == 4
    assert all(len(v) == len(COLUMNS) for v in PUBLISHED.values())


def test_averages_are_over_languages_of_per_language_means() -> None:
    summary = Summary.model_construct(results=[GroupResult(**entry) for entry in [
        {"task": "zsre", "source_lang": "en", "target_lang": "de", "metric": "reliability",
         "n": 4, "paper_f1": 50.0},
        {"task": "zsre", "source_lang": "en", "target_lang": "zh", "metric": "reliability",
         "n": 1, "paper_f1": 100.0},
        {"task": "zsre", "source_lang": "fr", "target_lang": "zh", "metric": "reliability",
         "n": 1, "paper_f1": 0.0},
    ]])
    assert column_averages(summary, "paper_f1") == (75.0, None, None, None, None, None)


def test_table_shows_ours_published_and_difference() -> None:
    rows = [ConfigResult(config=c, run_dir=c, ours=(10.0, None, 0, 0, 0, 0),
                         published=PUBLISHED[c]) for c in CONFIGURATIONS]
    text = format_reproduction(Reproduction(scorer="token_f1", backend="m", languages=("de",),
                                            limit=1, rows=rows))
    assert "-55.53" in text and "n/a" in text and "smoke check" in text
    assert "token_f1" in text and "not the paper's score" in text


def test_reproduce_on_a_tiny_slice(data_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The mock backend (a perfect in-context editor) stands in for the embedded model: the table is the point."""
    out = tmp_path / "runs"
    assert main(["reproduce", "--backend", "mock", "--backend-option", "answer=edit", "--limit", "1", "--languages", "de", "--out", str(out),
                 "--data-dir", str(data_dir), "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "score: paper_f1" in lines[0]
    for config in CONFIGURATIONS:
        ours = next(i for i, line in enumerate(lines) if line.startswith(config + " "))
        assert lines[ours + 1].split()[1:] == [f"{v:.2f}" for v in PUBLISHED[config]]
        summary = json.loads((out / config / "summary.json").read_text())
        assert summary["config"]["strategy"] == config and summary["config"]["limit"] == 1
        by = {(e["task"], e["metric"]): e["paper_f1"] for e in summary["results"]
              if e["target_lang"] == "de"}
        expected = [f"{by[col]:.2f}" for col in COLUMNS]  # one language: its own mean
        assert lines[ours].split()[2:] == expected
        diffs = [f"{by[col] - p:.2f}" for col, p in zip(COLUMNS, PUBLISHED[config], strict=True)]
        assert lines[ours + 2].split()[1:] == diffs
    assert "smoke check" in text
