"""The report's language-confusion tables and figure, checked against counts taken
straight from real runs' ``results.jsonl`` (real BMIKE-53 items, the edit-parroting
backend of test_report_run: it answers in the edit's language whatever the question's)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from rows import read_rows
from test_report_run import EditParrot, _csv, _png_ok

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.report.build import ReportOptions, build_report
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator

pytest.importorskip("matplotlib")

LANGS = ("de", "fr", "ru", "zh", "hi")
WRONG, KEPT = ("source", "other"), ("target", "neutral")


def _config(language_id: Literal["script", "lingua"]) -> EvalConfig:
    return EvalConfig(tasks=("zsre", "counterfact"), languages=LANGS,
                      source_languages=("en", "de"), strategy="zero-shot", limit=8,
                      language_id=language_id)


class GermanAtTimes(EditParrot):
    """The parrot, but one prompt in four gets a German phrase: a third language for
    en>fr, en>ru, en>zh and en>hi questions."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        answers = await super().generate(requests)
        return [Generation(text='die spanische Sprache"', finish_reason="stop")
                if int(hashlib.sha256((r.prompt or "").encode()).hexdigest(), 16) % 4 == 0
                else a for r, a in zip(requests, answers, strict=True)]


def _run(benchmark: Benchmark, folder: Path, name: str,
         language_id: Literal["script", "lingua"]) -> Path:
    with ResponseCache(folder / "cache") as cache:
        Evaluator(GermanAtTimes("parrot"), benchmark=benchmark, cache=cache,
                  progress=False).run(
            _config(language_id), folder / name)
    return folder / name


@pytest.fixture(scope="module")
def script_run(benchmark: Benchmark, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scripts only: Latin answers to a Latin pair (en>de, de>fr) are undetermined."""
    return _run(benchmark, tmp_path_factory.mktemp("confusion"), "script", "script")


@pytest.fixture(scope="module")
def lingua_run(benchmark: Benchmark, script_run: Path) -> Path:
    pytest.importorskip("lingua")
    return _run(benchmark, script_run.parent, "lingua", "lingua")


def _rows(run: Path) -> list[dict[str, Any]]:
    return read_rows(run)


def _expected(run: Path) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Counts and means per (task, metric or 'all', source, target), computed directly."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in _rows(run):
        for metric in (row["metric"], "all"):
            groups[(row["task"], metric, row["source_lang"], row["target_lang"])].append(row)
    out = {}
    for key, rows in groups.items():
        labels = [r["answer_language"]["label"] for r in rows]
        counts = {label: labels.count(label) for label in ("target", "source", "other",
                                                           "neutral")}
        decided = len(rows) - counts["neutral"]
        kept = [r["scores"]["paper_f1"] for r in rows if r["answer_language"]["label"] in KEPT]
        out[key] = {**counts, "n": len(rows), "decided": decided,
                    "wrong": 100 * (counts["source"] + counts["other"]) / decided
                    if decided else None,
                    "f1": 100 * sum(r["scores"]["paper_f1"] for r in rows) / len(rows),
                    "kept_f1": 100 * sum(kept) / len(kept) if kept else None}
    return out


def _check_cells(table: list[dict[str, str]],
                 expected: dict[tuple[str, str, str, str], dict[str, Any]]) -> None:
    """Every confusion.csv line against the counts and means taken from the rows."""
    for r in table:
        want = expected[(r["task"], r["metric"], r["source_lang"], r["target_lang"])]
        for col in ("n", "decided", "target", "source", "other", "neutral"):
            assert int(r[col]) == want[col], (col, r)
        assert float(r["paper_f1"]) == pytest.approx(want["f1"], abs=1e-3)
        if want["kept_f1"] is None:
            assert r["paper_f1_in_language"] == ""
        else:
            assert float(r["paper_f1_in_language"]) == pytest.approx(want["kept_f1"], abs=1e-3)
        if want["wrong"] is None:
            assert r["wrong_language"] == r["ci_low"] == ""  # not a silent 0%
        else:
            assert float(r["wrong_language"]) == pytest.approx(want["wrong"], abs=1e-3)
            assert float(r["ci_low"]) <= float(r["wrong_language"]) <= float(r["ci_high"])


def test_confusion_tables_match_the_rows(script_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    written = {p.name for p in build_report([script_run], out, ReportOptions(resamples=200))}
    assert {"confusion.csv", "confusion_averages.csv", "wrong_language_script.png"} <= written
    expected = _expected(script_run)
    table = _csv(out / "confusion.csv")
    assert len(table) == len(expected) == 2 * 2 * len(LANGS) * 5  # 4 metrics + 'all'
    assert {r["detection"] for r in table} == {"script-only"}
    _check_cells(table, expected)

    # Per metric, the numbers are summary.json's own.
    summary = json.loads((script_run / "summary.json").read_text(encoding="utf-8"))
    by_key = {(r["task"], r["metric"], r["source_lang"], r["target_lang"]): r for r in table}
    for s in summary["results"]:
        r = by_key[(s["task"], s["metric"], s["source_lang"], s["target_lang"])]
        assert (float(r["wrong_language"]) if r["wrong_language"] else None) == (
            pytest.approx(s["wrong_language"], abs=1e-3) if s["wrong_language"] is not None
            else None)
        assert float(r["paper_f1_in_language"] or "nan") == pytest.approx(
            s["in_language"].get("paper_f1", float("nan")), abs=1e-3, nan_ok=True)

    # The plain per-metric score is the score table's own number, interval included.
    scores = {(r["task"], r["metric"], r["source_lang"], r["target_lang"]): r
              for r in _csv(out / "scores.csv") if r["scorer"] == "paper_f1"}
    for r in table:
        if r["metric"] != "all":
            same = scores[(r["task"], r["metric"], r["source_lang"], r["target_lang"])]
            assert (r["paper_f1"], r["paper_f1_ci_low"], r["paper_f1_ci_high"]) == (
                same["mean"], same["ci_low"], same["ci_high"])

    # English answers to Russian, Chinese, Hindi questions: decided by script, all wrong.
    for target in ("ru", "zh", "hi"):
        assert expected[("zsre", "all", "en", target)]["source"] > 0
    # Script-only, German answers to French questions (de>fr) cannot be told apart: many
    # neutral, few decided, and the table says so rather than reporting 0%.
    de_fr = expected[("zsre", "all", "de", "fr")]
    assert de_fr["neutral"] > de_fr["decided"]
    assert expected[("zsre", "locality", "de", "fr")]["decided"] == 0  # shown as '-', above

    # The average over targets: unweighted over the languages with a decided answer,
    # leaving out the source language itself (de>de).
    averages = _csv(out / "confusion_averages.csv")
    for task in ("zsre", "counterfact"):
        for source in ("en", "de"):
            shares = [expected[(task, "all", source, t)]["wrong"] for t in LANGS if t != source]
            known = [s for s in shares if s is not None]
            row = next(r for r in averages if (r["task"], r["metric"], r["source_lang"],
                                               r["grouping"]) == (task, "all", source, "all"))
            assert int(row["languages"]) == len(shares)
            assert int(row["decided_languages"]) == len(known)
            assert float(row["wrong_language"]) == pytest.approx(sum(known) / len(known),
                                                                 abs=1e-3)
            assert int(row["neutral"]) == sum(expected[(task, "all", source, t)]["neutral"]
                                              for t in LANGS if t != source)
    assert {r["group"] for r in averages if r["grouping"] == "script class"} == {
        "Latin", "non-Latin"}

    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Answer-language detection: script = script-only" in md
    assert "## Run script: language confusion" in md
    assert "zsre (source de) language confusion per language" in md
    assert "| decided |" in md and "wrong language % [95% CI]" in md
    ru = expected[("zsre", "all", "en", "ru")]
    assert (f"| Russian (ru) | Cyrillic | {ru['n']} | {ru['decided']} | {ru['target']} | "
            f"{ru['source']} | {ru['other']} | {ru['neutral']} | ") in md
    assert "![" in md and "wrong_language_script.png" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "language confusion per language" in html
    assert html.count("data:image/png;base64,") == 2 + 4 + 1  # bars, heatmaps, confusion


def test_confusion_figure_is_drawn(script_run: Path, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    build_report([script_run], tmp_path, ReportOptions(formats=("png",), resamples=100))
    png = tmp_path / "wrong_language_script.png"
    _png_ok(png)
    height, width = mpimg.imread(png).shape[:2]
    # Two tasks across, two sources down, five languages each: about 1180 x 680 pixels.
    assert width > 1000 and height > 550
    assert not (tmp_path / "report.md").exists()


def test_runs_side_by_side(script_run: Path, lingua_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    build_report([script_run, lingua_run, script_run], out,
                 ReportOptions(formats=("csv", "md"), resamples=200,
                               labels=["script", "lingua", "again"]))
    diffs = _csv(out / "confusion_differences.csv")
    again = [d for d in diffs if d["run"] == "again"]
    assert again and all(float(d["difference"]) == 0 and d["paired"] == "True"
                         and d["excludes_zero"] == "False" for d in again)
    # lingua decides Latin pairs that scripts cannot: more decided answers, same answers.
    cells = _csv(out / "confusion.csv")
    lingua = [r for r in cells if r["run"] == "lingua"]
    _check_cells(lingua, _expected(lingua_run))
    # Third-language answers exist here, so keeping 'other' answers would show.
    assert any(int(r["other"]) and r["paper_f1_in_language"] for r in lingua)
    decided = {r["run"]: int(r["decided"]) for r in cells
               if (r["task"], r["metric"], r["source_lang"], r["target_lang"])
               == ("zsre", "all", "de", "fr")}
    assert decided["lingua"] > decided["script"]
    assert {r["detection"] for r in cells} == {"script-only", "script+lingua"}
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Language confusion across runs" in md
    assert "| target languages | script wrong % | lingua wrong % | again wrong % | " \
           "lingua - script | again - script |" in md


def test_runs_without_labels_get_no_confusion_section(script_run: Path,
                                                      tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(script_run / "summary.json", old / "summary.json")
    with (old / "results.jsonl").open("w", encoding="utf-8") as f:  # an older, plain folder
        for row in _rows(script_run):
            row.pop("answer_language")
            f.write(json.dumps(row) + "\n")
    written = {p.name for p in build_report([old], tmp_path / "r",
                                            ReportOptions(formats=("csv", "md", "png"),
                                                          resamples=100))}
    assert "scores.csv" in written and not any("confusion" in n or "wrong" in n
                                               for n in written)
    assert "language confusion" not in (tmp_path / "r" / "report.md").read_text("utf-8")
