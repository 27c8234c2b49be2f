"""PNG figures: the paper-style language x metric heatmap, a run comparison bar chart and
the wrong-language share per target language.

matplotlib is imported inside the functions (Agg backend, no display needed) so the core
package does not depend on it: ``pip install 'mike-sdk[report]'``.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mike_sdk.data.families import language_label
from mike_sdk.errors import ConfigError
from mike_sdk.report.stats import ALL, GroupStat, ReportStats
from mike_sdk.report.tables import METRICS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mike_sdk.report.confusion import ConfusionStat, ConfusionStats


def require_matplotlib() -> None:
    """Fail before any file is written when PNG figures are asked for without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError("PNG figures need matplotlib: pip install 'mike-sdk[report]' (or "
                          "leave png out of --format). Nothing was written.")


def _pyplot() -> Any:
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight", facecolor="white")
    _pyplot().close(fig)
    return path


def heatmap(stats: ReportStats, run: str, task: str, source: str, scorer: str,
            path: Path) -> Path | None:
    """Target languages (rows, best mean first) x metrics (columns), scores 0-100."""
    plt = _pyplot()
    grid: dict[str, dict[str, float]] = defaultdict(dict)
    for s in stats.scores:
        if (s.run, s.task, s.source, s.scorer) == (run, task, source, scorer):
            grid[s.target][s.metric] = s.estimate.mean
    if not grid:
        return None
    found = {m for by in grid.values() for m in by}
    metrics = [m for m in METRICS if m in found] + sorted(found - set(METRICS))
    nan = float("nan")
    # The paper sorts languages by score; rows lacking a metric sort on what they have.
    langs = sorted(grid, key=lambda lang: -sum(grid[lang].values()) / len(grid[lang]))
    values = [[grid[lang].get(m, nan) for m in metrics] for lang in langs]
    height = max(2.5, 0.22 * len(langs) + 1.4)
    fig, ax = plt.subplots(figsize=(2.0 + 1.15 * len(metrics), height))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(metrics)), metrics, rotation=30, ha="right")
    ax.set_yticks(range(len(langs)), [language_label(lang) for lang in langs], fontsize=7.5)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if value == value:  # not NaN
                # Dark text on the bright (yellow) end of viridis, white elsewhere.
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6.5,
                        color="black" if value > 60 else "white")
    bar = fig.colorbar(image, ax=ax, fraction=0.08, pad=0.03)
    bar.set_label(f"{scorer} (mean x 100)")
    ax.set_title(f"{task}, source {source}: {scorer}\n{run}", fontsize=9)
    return _save(fig, path)


def comparison_bars(stats: ReportStats, scorer: str, path: Path,
                    grouping: str = ALL) -> Path | None:
    """Averages over target languages, one panel per task, metrics on the x axis and one bar
    per run (and per group of ``grouping``: hatched), with 95% CI whiskers."""
    plt = _pyplot()
    found: dict[tuple[str, str], dict[tuple[str, str, str], GroupStat]] = defaultdict(dict)
    for g in stats.groups:
        if g.scorer == scorer and g.grouping == grouping:
            found[(g.task, g.source)][(g.metric, g.run, g.group)] = g
    if not found:
        return None
    panels = sorted(found)
    groups = sorted({k[2] for cells in found.values() for k in cells})
    series = [(run, group) for run in stats.runs for group in groups]
    colours = plt.get_cmap("tab10").colors
    hatches = ("", "///", "...", "xxx", "\\\\\\", "ooo")
    width = 0.8 / len(series)
    metrics_per = [[m for m in METRICS if any(k[0] == m for k in found[p])] for p in panels]
    fig, axes = plt.subplots(1, len(panels), sharey=True, squeeze=False, figsize=(
        max(6.0, sum(1.1 + 0.28 * len(series) * len(m) for m in metrics_per)), 4.2))
    for ax, panel, metrics in zip(axes[0], panels, metrics_per, strict=True):
        for i, (run, group) in enumerate(series):
            xs, means, low, high = [], [], [], []
            for k, metric in enumerate(metrics):
                stat = found[panel].get((metric, run, group))
                if stat is None:
                    continue
                est = stat.estimate
                xs.append(k - 0.4 + width * (i + 0.5))
                means.append(est.mean)
                low.append(est.mean - est.low)
                high.append(est.high - est.mean)
            label = run if grouping == ALL else f"{run} · {group}"
            ax.bar(xs, means, width * 0.92, yerr=[low, high], capsize=2, label=label,
                   color=colours[stats.runs.index(run) % len(colours)],
                   hatch=hatches[groups.index(group) % len(hatches)], edgecolor="white",
                   error_kw={"elinewidth": 1})
        ax.set_xticks(range(len(metrics)), metrics, rotation=20, ha="right", fontsize=8)
        ax.set_title(panel[0] if len({p[1] for p in panels}) == 1 and panel[1] == "en"
                     else f"{panel[0]} (source {panel[1]})", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0][0].set_ylim(0, 100)
    axes[0][0].set_ylabel(f"{scorer} (mean x 100)")
    what = "all target languages" if grouping == ALL else f"target languages by {grouping}"
    fig.suptitle(f"{scorer}: average over {what}, 95% bootstrap CI", fontsize=10)
    fig.tight_layout()
    handles, labels = axes[0][0].get_legend_handles_labels()
    # Below the panels, where no bar or interval can hide under it.
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0),
               ncol=min(len(series), 4), fontsize=8, frameon=False)
    return _save(fig, path)


def _confusion_panel(ax: Axes, cells: list[ConfusionStat]) -> None:
    """Stacked horizontal bars: source then other share of the decided answers, worst first;
    languages with nothing decided last, saying so (a missing bar is not 0%)."""
    decided = sorted((c for c in cells if c.wrong is not None),
                     key=lambda c: (-c.wrong.mean if c.wrong else 0, c.target))
    rows = decided + sorted((c for c in cells if c.wrong is None), key=lambda c: c.target)
    ys = range(len(rows))
    source = [100 * c.counts["source"] / c.decided if c.decided else 0 for c in rows]
    other = [100 * c.counts["other"] / c.decided if c.decided else 0 for c in rows]
    ax.barh(ys, source, 0.75, color="tab:orange", label="source (the edit's language)")
    ax.barh(ys, other, 0.75, left=source, color="tab:purple", label="other language")
    for y, c in zip(ys, rows, strict=True):
        if c.wrong is None:
            ax.text(1, y, f"nothing decided ({c.counts['neutral']} neutral)", va="center",
                    fontsize=6.5, color="0.35", style="italic")
            continue
        ax.errorbar(c.wrong.mean, y, xerr=[[c.wrong.mean - c.wrong.low],
                                           [c.wrong.high - c.wrong.mean]],
                    color="black", elinewidth=0.8, capsize=1.5)
        # Decided / all answers: a share over a handful of decided answers is shaky.
        ax.text(1.01, y, f"{c.decided}/{c.n}", transform=ax.get_yaxis_transform(),
                va="center", fontsize=6.5, color="0.3")
    ax.set_yticks(list(ys), [language_label(c.target) for c in rows], fontsize=7.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # worst at the top
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of decided answers in the wrong language", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def confusion_bars(stats: ConfusionStats, run: str, path: Path) -> Path | None:
    """Per task (panel): each target language's wrong-language share (every metric's
    answers pooled), split into the edit's language and others, 95% CI on the total;
    ``decided/answers`` at the right of each bar."""
    from mike_sdk.report.confusion import ALL_METRICS

    plt = _pyplot()
    panels: dict[tuple[str, str], list[ConfusionStat]] = defaultdict(list)
    for c in stats.cells:
        if c.run == run and c.metric == ALL_METRICS:
            panels[(c.task, c.source)].append(c)
    if not panels:
        return None
    # Tasks across, sources down: a many-source run grows downwards, not off the page.
    tasks = sorted({task for task, _ in panels})
    sources = sorted({source for _, source in panels})
    longest = max(len(cells) for cells in panels.values())
    fig, axes = plt.subplots(len(sources), len(tasks), squeeze=False, figsize=(
        5.4 * len(tasks), len(sources) * max(2.6, 0.2 * longest + 1.2) + 0.6))
    for row, source in enumerate(sources):
        for col, task in enumerate(tasks):
            ax = axes[row][col]
            if (task, source) not in panels:
                ax.set_axis_off()
                continue
            _confusion_panel(ax, panels[(task, source)])
            ax.set_title(f"{task}, source {source}", fontsize=9)
    method = stats.methods.get(run) or "unknown"
    fig.suptitle(f"{run}: answers in the wrong language (95% bootstrap CI; decided/answers "
                 f"at right)\ndetection {method}", fontsize=10)
    fig.tight_layout()
    handles, labels = next(ax for ax in axes.flat if ax.axison).get_legend_handles_labels()
    # Below the panels, where no bar can hide under it.
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=2,
               fontsize=8, frameon=False)
    return _save(fig, path)
