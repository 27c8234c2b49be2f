"""Reports built from real runs on real BMIKE-53 items, by an in-process backend that
answers with the edit's new answer (a perfect "editor" on reliability, not on locality)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from mike_sdk.backend import (
    Abilities,
    Backend,
    Generation,
    GenerationRequest,
    Identity,
    Likelihood,
    LikelihoodRequest,
)
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.cli.main import main
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.report.build import ReportOptions, build_report
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.rundir import read_summary

pytest.importorskip("matplotlib")

LANGS = ("de", "fr", "ru", "zh", "hi")
CONFIG = EvalConfig(tasks=("zsre", "counterfact"), languages=LANGS, strategy="zero-shot",
                    limit=12)


class ByteTokenizer:
    """UTF-8 bytes as token ids: enough for the paper's F1 to be computed."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


class EditParrot(Backend):
    """Answers the new fact's answer (the text after its '?'), or a fixed word."""

    def __init__(self, name: str, parrot: bool = True) -> None:
        self.name = name
        self.parrot = parrot

    @property
    def identity(self) -> Identity:
        return Identity(kind="parrot-test", model=self.name)

    @property
    def abilities(self) -> Abilities:
        return Abilities(tokenizer=True, loglikelihood=True, batch_size=16)

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        out = []
        for request in requests:
            fact = re.search(r'New Fact: "[^"]*\? ([^"]*)"', request.prompt or "")
            text = fact.group(1) if self.parrot and fact else "London"
            out.append(Generation(text=text + '"', finish_reason="stop"))
        return out

    async def loglikelihood(self, requests: Sequence[LikelihoodRequest]) -> list[Likelihood]:
        # Deterministic pseudo log-probabilities: about half the checks succeed.
        return [Likelihood(logprob=-int(hashlib.sha256((r.context + r.continuation).encode())
                                        .hexdigest()[:2], 16) / 50, tokens=1)
                for r in requests]

    def get_tokenizer(self) -> ByteTokenizer:
        return ByteTokenizer()


def _run(benchmark: Benchmark, folder: Path, backend: EditParrot) -> Path:
    with ResponseCache(folder / "cache") as cache:
        Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(
            CONFIG, folder / backend.name)
    return folder / backend.name


@pytest.fixture(scope="module")
def runs(benchmark: Benchmark, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("runs")
    return {"parrot": _run(benchmark, folder, EditParrot("parrot")),
            "twin": _run(benchmark, folder, EditParrot("twin")),
            "london": _run(benchmark, folder, EditParrot("london", parrot=False))}


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def _png_ok(path: Path, min_side: int = 300) -> None:
    import matplotlib.image as mpimg

    assert path.stat().st_size > 10_000
    pixels = mpimg.imread(path)
    height, width = pixels.shape[:2]
    assert min(height, width) >= min_side
    assert float(pixels[..., :3].std()) > 0.05  # not a blank page


def test_single_run_report(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    written = build_report([runs["parrot"]], out, ReportOptions(resamples=200))
    names = {p.name for p in written}
    assert {"scores.csv", "averages.csv", "report.md", "report.html",
            "bars_paper_f1.png"} <= names
    heatmaps = sorted(out.glob("heatmap_*.png"))
    assert [p.name for p in heatmaps] == ["heatmap_parrot_counterfact_en_paper_f1.png",
                                          "heatmap_parrot_zsre_en_paper_f1.png"]
    for png in [*heatmaps, out / "bars_paper_f1.png"]:
        _png_ok(png)

    scores = _csv(out / "scores.csv")
    # + the likelihood check: counterfact reliability and generality
    assert len(scores) == 2 * len(LANGS) * 4 * 3 + len(LANGS) * 2
    assert {r["scorer"] for r in scores} == {"em", "paper_f1", "token_f1", "likelihood"}
    for r in scores:
        assert float(r["ci_low"]) <= float(r["mean"]) <= float(r["ci_high"])
        assert r["n"] == "12"
    rel = {r["target_lang"]: float(r["mean"]) for r in scores
           if (r["task"], r["metric"], r["scorer"]) == ("zsre", "reliability", "token_f1")}
    # The parrot answers in English: right words in Latin-script languages, not elsewhere.
    assert min(rel["de"], rel["fr"]) > 50 > max(rel["ru"], rel["zh"], rel["hi"])

    averages = _csv(out / "averages.csv")
    overall = [r for r in averages if r["grouping"] == "all"]
    assert {r["languages"] for r in overall} == {"5"}
    latin = {r["group"]: r["languages"] for r in averages if r["grouping"] == "script class"}
    assert latin == {"Latin": "2", "non-Latin": "3"}
    # The average is the unweighted mean of the per-language means.
    want = sum(rel.values()) / len(rel)
    got = next(float(r["mean"]) for r in overall
               if (r["task"], r["metric"], r["scorer"]) == ("zsre", "reliability", "token_f1"))
    assert got == pytest.approx(want, abs=1e-3)

    md = (out / "report.md").read_text(encoding="utf-8")
    assert "averages over target languages" in md and "| German (de) |" in md
    assert "scorer paper_f1" in md and "![" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    # 2 bar charts + 2 heatmaps + the wrong-language bars (tests/report/test_report_confusion.py)
    assert html.count("data:image/png;base64,") == 5
    assert "<table>" in html and "German (de)" in html and 'src="http' not in html


def test_comparison_report_pairs_items(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    build_report([runs["parrot"], runs["twin"], runs["london"]], out,
                 ReportOptions(formats=("csv", "html"), resamples=200))
    assert not list(out.glob("*.png")) and not (out / "report.md").exists()
    diffs = _csv(out / "differences.csv")
    assert {r["baseline"] for r in diffs} == {"parrot"} and all(r["paired"] == "True"
                                                                  for r in diffs)
    twin = [r for r in diffs if r["run"] == "twin"]
    assert all(float(r["difference"]) == 0 and r["excludes_zero"] == "False" for r in twin)
    worse = next(r for r in diffs if (r["run"], r["task"], r["metric"], r["grouping"],
                                      r["scorer"]) == ("london", "zsre", "reliability", "all",
                                                       "token_f1"))
    assert float(worse["ci_high"]) < 0 and worse["excludes_zero"] == "True"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "london minus parrot" in html and html.count("data:image/png;base64,") == 2 + 3 * 3


def test_cli_report(runs: dict[str, Path], tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(runs["parrot"])]) == 0
    text = capsys.readouterr().out
    assert "Averages over target languages" in text and "paper_f1" in text
    assert not (runs["parrot"] / "report").exists()
    out = tmp_path / "r"
    assert main(["report", str(runs["parrot"]), str(runs["london"]), "--out", str(out),
                 "--format", "md,png", "--resamples", "100", "--scorer", "token_f1",
                 "--labels", "edit,fixed"]) == 0
    assert "Report: " in capsys.readouterr().out
    assert (out / "bars_token_f1.png").exists() and (out / "report.md").exists()
    assert "fixed minus edit" in (out / "report.md").read_text(encoding="utf-8")
    assert main(["report", str(runs["parrot"]), "--format", "pdf"]) == 2
    assert main(["report", str(runs["parrot"]), "--out", str(out), "--resamples", "5"]) == 2
    assert main(["report", str(runs["parrot"]), "--out", str(out), "--scorer", "bleu"]) == 2
    summary = read_summary(runs["parrot"])
    assert summary.totals.rows == 2 * len(LANGS) * 4 * 12
