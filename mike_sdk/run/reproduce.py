"""Reproducing the paper's main table: four configurations, our averages beside the published.

Each configuration is its own run folder under ``out`` (resumable, sharing the
response cache), evaluated through :func:`mike_sdk.evaluate`. Our number per
column is the mean over the chosen target languages of the per-language mean
(as the paper averages over its 52), on ``paper_f1`` when the backend exposes a
tokenizer, else ``token_f1``.

On CPU with the embedded Gemma 3 270M and a slice of a few items this is a smoke
check of the pipeline, not a reproduction: the published model is Llama-3.1-8B
and the published averages cover every item in 52 languages.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mike_sdk.backend import Backend
from mike_sdk.records import MetricName, TaskName
from mike_sdk.runfolder.files import Summary

#: The paper's configurations, in the order of its table (registered strategy names).
CONFIGURATIONS: tuple[str, ...] = ("zero-shot", "one-shot", "8-shot-mixed",
                                   "8-shot-metric-specific")
#: The published columns: (task, metric).
COLUMNS: tuple[tuple[TaskName, MetricName], ...] = (
    ("zsre", "reliability"), ("zsre", "portability"),
    ("counterfact", "reliability"), ("counterfact", "locality"),
    ("wikifactdiff", "reliability"), ("wikifactdiff", "portability"),
)
COLUMN_NAMES = ("zsRE rel", "zsRE port", "CF rel", "CF loc", "WFD rel", "WFD port")
#: Metrics a run must ask for to fill the columns (generality is not in the table).
METRICS: tuple[MetricName, ...] = ("reliability", "locality", "portability")

PUBLISHED_SOURCE = (
    "BMIKE-53 (Nie et al., arXiv 2406.17764, ACL 2025), Llama-3.1-8B base, F1 averaged over "
    "the 52 target languages, as transcribed by a third-party summary (docs: "
    "shared/docs/bmike53-protocol.md, 'Published figures'; not yet checked against the "
    "paper's own table)")
#: Published averages by configuration, in :data:`COLUMNS` order (source: PUBLISHED_SOURCE).
PUBLISHED: dict[str, tuple[float, ...]] = {
    "zero-shot": (65.53, 10.05, 63.01, 18.68, 67.84, 4.15),
    "one-shot": (75.27, 20.81, 71.92, 12.66, 70.53, 4.15),
    "8-shot-mixed": (74.29, 25.18, 75.15, 11.40, 68.57, 8.87),
    "8-shot-metric-specific": (74.86, 32.86, 73.88, 47.55, 71.98, 14.58),
}

SMOKE_NOTE = ("NOTE: a smoke check, not a reproduction, unless the backend is Llama-3.1-8B "
              "base and the run covers all items in the 52 target languages; the published "
              "figures use the paper's F1 on Llama's tokenizer.")


class ReproduceOptions(BaseModel):
    """What slice of BMIKE-53 the reproduction runs on and where it writes."""

    model_config = ConfigDict(frozen=True)

    out: str = "runs/reproduce"
    """Folder holding one run folder per configuration."""
    languages: str | tuple[str, ...] = "de,zh"
    """Target languages (comma list, 'targets' for the paper's 52)."""
    limit: int | None = Field(default=2, ge=1)
    """First N items of each test file (None: all; the default suits a CPU)."""
    data_dir: str | None = None
    """BMIKE-53 folder (default: ``$MIKE_DATA_DIR``, then the user cache)."""
    cache_dir: str | None = None
    """Response cache folder (default: the user cache), shared by the four runs."""
    progress: bool = True
    """Show progress bars."""


class ConfigResult(BaseModel):
    """Our averages for one configuration, beside the published ones."""

    config: str
    """Registered strategy name of the configuration."""
    run_dir: str
    """Its run folder."""
    ours: tuple[float | None, ...]
    """Our average per column (None where the run has no row for it)."""
    published: tuple[float, ...]
    """The paper's figure per column."""


class Reproduction(BaseModel):
    """The four configurations' results and which score they use."""

    scorer: str
    """``paper_f1`` (the backend's tokenizer) or ``token_f1`` (tokenizer-independent)."""
    backend: str
    """The evaluated model."""
    languages: tuple[str, ...]
    """Target languages averaged over."""
    limit: int | None
    """Items per test file (None: all)."""
    rows: list[ConfigResult]
    """One entry per configuration, in the paper's order."""


def column_averages(summary: Summary, scorer: str,
                    source_lang: str = "en") -> tuple[float | None, ...]:
    """Per column: the mean over target languages of the per-language mean of ``scorer``."""
    per_lang: dict[tuple[str, str], list[float]] = defaultdict(list)
    for entry in summary.results:
        value = getattr(entry, scorer, None)
        if entry.source_lang == source_lang and value is not None:
            per_lang[(entry.task, entry.metric)].append(float(value))
    return tuple(sum(v) / len(v) if (v := per_lang.get(col)) else None for col in COLUMNS)


def reproduce(backend: Backend, options: ReproduceOptions | None = None) -> Reproduction:
    """Run the four configurations on ``backend`` and collect our averages."""
    from mike_sdk import evaluate

    options = options or ReproduceOptions()
    scorer = "paper_f1" if backend.abilities.tokenizer else "token_f1"
    rows: list[ConfigResult] = []
    languages: tuple[str, ...] = ()
    for config in CONFIGURATIONS:
        run_dir = Path(options.out) / config
        summary = evaluate(backend, run_dir=str(run_dir), data_dir=options.data_dir,
                           cache_dir=options.cache_dir, progress=options.progress,
                           tasks=tuple(t for t, _ in dict.fromkeys(COLUMNS)),
                           languages=options.languages, strategy=config, metrics=METRICS,
                           limit=options.limit, likelihood=False)
        languages = summary.config.languages
        rows.append(ConfigResult(config=config, run_dir=str(run_dir),
                                 ours=column_averages(summary, scorer),
                                 published=PUBLISHED[config]))
    return Reproduction(scorer=scorer, backend=backend.identity.model, languages=languages,
                        limit=options.limit, rows=rows)


def format_reproduction(result: Reproduction) -> str:
    """A plain-text table: per configuration, ours / published / difference per column."""
    width = max(len(c) for c in CONFIGURATIONS)
    head = f"{'configuration':{width}}  {'':9}" + "".join(f"{c:>10}" for c in COLUMN_NAMES)
    lines = [f"Backend: {result.backend}; score: {result.scorer} (x100); targets: "
             f"{','.join(result.languages)}; items per file: {result.limit or 'all'}",
             head, "-" * len(head)]

    def cells(values: tuple[float | None, ...]) -> str:
        return "".join(f"{'n/a' if v is None else f'{v:.2f}':>10}" for v in values)

    for row in result.rows:
        diff = tuple(None if o is None else o - p
                     for o, p in zip(row.ours, row.published, strict=True))
        lines.append(f"{row.config:{width}}  {'ours':9}{cells(row.ours)}")
        lines.append(f"{'':{width}}  {'published':9}{cells(row.published)}")
        lines.append(f"{'':{width}}  {'diff':9}{cells(diff)}")
    lines += ["", f"Published: {PUBLISHED_SOURCE}.", SMOKE_NOTE]
    if result.scorer != "paper_f1":
        lines.append("Ours use token_f1 (the backend exposes no tokenizer): not the paper's "
                     "score, so the differences are not like for like.")
    return "\n".join(lines)
