"""PNG figures: the paper-style language x metric heatmap and a run comparison bar chart.

matplotlib is imported inside the functions (Agg backend, no display needed) so the core
package does not depend on it: ``pip install 'mike-sdk[report]'``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .families import language_label
from .report_stats import ALL, GroupStat, ReportStats
from .report_tables import METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("PNG figures need matplotlib: pip install 'mike-sdk[report]'.") \
            from None
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
    axes[0][-1].legend(fontsize=7.5, loc="upper right", framealpha=0.85)
    return _save(fig, path)
