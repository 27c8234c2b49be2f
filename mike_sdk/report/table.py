"""Plain-text tables of a run's ``summary.json``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.files import MANIFEST, SUMMARY, Summary
from mike_sdk.runfolder.rundir import read_manifest, read_summary

COLUMNS = ("em", "paper_f1", "token_f1", "likelihood")
WRONG = "wrong_lang%"


def load_summary(run_dir: str | Path) -> Summary:
    """The summary of a finished (or interrupted and summarised) run.

    Raises:
        ConfigError: no summary yet, or a file that does not read (see
            :func:`~mike_sdk.runfolder.files.read_summary`; a newer format is refused).
    """
    path = Path(run_dir) / SUMMARY
    if not path.exists():
        raise ConfigError(f"No {SUMMARY} in {run_dir}: is it a run folder? A run writes its "
                          "summary when it finishes; re-run `mike eval` with the same options "
                          "to finish it.")
    if (Path(run_dir) / MANIFEST).exists():
        read_manifest(run_dir)  # refuses a folder of a newer format before misreading it
    return read_summary(path)


def format_table(rows: list[list[str]]) -> str:
    """Left-aligned text columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def request_notes(requests: Mapping[str, Any] | None, totals: Mapping[str, Any]) -> list[str]:
    """What a reader must know about how a hosted model was asked: its profile, whether
    it was sampled rather than greedy, and answers lost to the reasoning budget."""
    if not requests:
        return []
    lines = [f"Requests: profile {requests['profile']}, "
             f"{'prefilled' if requests.get('prefill') else 'no prefill'}, "
             f"effort {requests.get('reasoning_effort') or '-'}, reasoning budget "
             f"{requests.get('reasoning_budget') or '-'}"]
    if requests.get("sampling") == "provider-default":
        lines.append("Sampled at the provider's default temperature (the model refuses "
                     "temperature 0): answers may differ between runs.")
    starved = totals.get("out_of_reasoning_budget") or 0
    if starved:
        lines.append(f"{starved} answers are empty because the model ran out of tokens while "
                     "reasoning (finish_reason 'reasoning'): raise reasoning_budget or lower "
                     "reasoning_effort.")
    return lines


def summary_table(summary: Summary | Mapping[str, Any]) -> str:
    """Per task x language x metric scores, then the per-task averages over languages.

    ``summary`` is a :class:`~mike_sdk.runfolder.files.Summary` or its JSON form (entries other
    than ``results`` may be left out).
    """
    if isinstance(summary, Summary):
        summary = summary.model_dump(mode="json")
    results = summary["results"]
    shown = [c for c in COLUMNS if any(r.get(c) is not None for r in results)]
    # The share of answers in the wrong language (source or a third), where it was decided.
    if any(r.get("wrong_language") is not None for r in results):
        shown.append(WRONG)
    rows = [["task", "src>tgt", "metric", "n", *shown]]
    averages: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    for r in results:
        values = {**r, WRONG: r.get("wrong_language")}
        rows.append([r["task"], f"{r['source_lang']}>{r['target_lang']}", r["metric"],
                     str(r["n"]), *(f"{values[c]:.2f}" if values.get(c) is not None else "-"
                                    for c in shown)])
        for c in shown:
            if values.get(c) is not None:
                averages[(r["task"], r["metric"])][c].append(values[c])
    lines = [format_table(rows)]
    if averages:
        avg_rows = [["task", "metric", "languages", *(f"avg {c}" for c in shown)]]
        for (task, metric), cols in sorted(averages.items()):
            n = max(len(v) for v in cols.values())
            avg_rows.append([task, metric, str(n), *(
                f"{sum(cols[c]) / len(cols[c]):.2f}" if cols.get(c) else "-" for c in shown)])
        lines += ["", "Averages over target languages (unweighted):", format_table(avg_rows)]
    lines += retrieval_lines(summary)
    skipped = {f"{t}/{lang}": n for t, langs in summary.get("skipped", {}).items()
               for lang, n in langs.items() if n}
    if skipped:
        lines += ["", "Skipped items (a language entry or a required field is missing; "
                  "`mike data info` counts both): "
                  + ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))]
    sampling = summary.get("sampling")
    if sampling:  # a seeded sample: say how many items each estimate rests on
        how = (f"--target-ci {sampling['target_ci']:g} ({sampling.get('rounds', 1)} rounds)"
               if sampling.get("target_ci") is not None else "--sample")
        items = ", ".join(f"{task} {n} of {sampling['available'].get(task, n)}"
                          for task, n in sampling["items"].items())
        lines += ["", f"Sampled run ({how}, seed {sampling['seed']}): items per task "
                  f"{items}, the same positions in every language; each estimate rests on "
                  "the n of its row. `mike report --out` gives the intervals."]
    totals = summary.get("totals", {})
    if totals:
        lines += ["", "Totals: " + ", ".join(f"{k}={v}" for k, v in totals.items())]
    backend = summary.get("backend", {})
    lines += [f"Backend: {backend.get('kind')} {backend.get('model')} "
              f"(revision {backend.get('revision')}); strategy: "
              f"{summary.get('strategy', {}).get('name')}",
              "Scorers: " + "; ".join(f"{k}: {v}" for k, v in summary.get("scorers", {}).items()
                                      if k in shown)]
    if "likelihood" in shown:
        lines.append("likelihood: % of checked items whose new answer is more probable than "
                     "the old one after the prompt (mean log-probability per token; "
                     "CounterFact and WikiFactDiff, backends that score likelihoods).")
    lines += request_notes(summary.get("requests"), totals)
    if WRONG in shown:
        method = (summary.get("language_detection") or {}).get("method", "?")
        lines.append(f"{WRONG}: answers in the edit's or a third language, of those whose "
                     f"language was decided ({method}; `mike report RUN_DIR --out DIR` writes "
                     "the counts).")
    return "\n".join(lines)


def retrieval_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary table's section for an ``--edit-memory`` run (none for other runs):
    hit rates per task and target language beside the reliability scores."""
    stats = summary.get("retrieval")
    if not stats:
        return []
    scores = {(r["task"], r["target_lang"]): r for r in summary.get("results", [])
              if r["metric"] == "reliability"}
    k = next(iter(next(iter(stats.values())).values()))["k_reported"]
    rows = [["task", "tgt", "n", "top1%", f"top{k}%", "stated%", "rel token_f1",
             "loc n", "loc got edit%"]]
    for task, languages in stats.items():
        for lang, s in languages.items():
            f1 = scores.get((task, lang), {}).get("token_f1")
            rows.append([task, lang, str(s["questions"]), f"{100 * s['top1']:.1f}",
                         f"{100 * s['top_k']:.1f}", f"{100 * s['own_applied']:.1f}",
                         "-" if f1 is None else f"{f1:.2f}", str(s["locality_questions"]),
                         "-" if s["locality_applied"] is None
                         else f"{100 * s['locality_applied']:.1f}"])
    return ["", "Edit memory: questions about the edit (reliability, generality, portability) "
            "whose own edit ranked first / in the top k / was stated in the prompt; locality "
            "questions that got an (unrelated) edit:", format_table(rows)]
