"""The printed report of ``bench/bench_gpu_paths.py``: its tables and summary lines.

:func:`report` prints, from the benchmark's measured paths, one table of each path's
totals (prompts per second, tokens, peak GPU memory, hours extrapolated to one and to the
paper's four configurations), one of each configuration's rate and hours, the hours of
``mike eval``'s default (prefix reuse with the likelihood check), and how many answers
agree between paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpu_prompts import CONFIGURATIONS

REQUESTS_PER_CONFIGURATION = 531_504  # one configuration of one model: hours are of this


@dataclass
class Result:
    name: str
    dtype: str
    batch: int
    reuse: bool
    share: float = 1.0
    """Requests of this path per generation request (the likelihood check's are fewer)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds per configuration."""
    prompts: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    output_tokens: int = 0
    full_length: int = 0
    """Answers that used all of max_new_tokens."""
    tokens_run: int = 0
    answers: dict[str, tuple[object, ...]] = field(default_factory=dict)
    """What a caller gets (text, finish reason, token counts) by configuration and work id."""
    peak_gib: float = 0.0
    note: str = ""

    @property
    def total_prompts(self) -> int:
        return sum(self.prompts.values())

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def add(self, strategy: str, seconds: float, prompts: int) -> None:
        self.seconds[strategy] = self.seconds.get(strategy, 0.0) + seconds
        self.prompts[strategy] = self.prompts.get(strategy, 0) + prompts

    def hours(self, strategy: str) -> float | None:
        """Hours of one whole configuration at this configuration's measured rate."""
        if not self.prompts.get(strategy):
            return None
        return (REQUESTS_PER_CONFIGURATION * self.share * self.seconds[strategy]
                / self.prompts[strategy] / 3600)

    def all_hours(self) -> list[float] | None:
        """Each configuration's hours; None unless all of them were measured."""
        hours = [self.hours(s) for s in CONFIGURATIONS]
        return None if None in hours else [h for h in hours if h is not None]


def fmt_hours(hours: float | None) -> str:
    return "n/a" if hours is None else f"{hours:,.1f}"


def table(results: list[Result]) -> str:
    """Each path's totals, then each configuration's prompts per second and hours."""
    lines = [f"{'path':<16}{'dtype':<10}{'batch':>5}{'reuse':>6}{'prompts':>8}{'seconds':>9}"
             f"{'prompts/s':>10}{'prompt tok/s':>13}{'out tok':>8}{'full':>6}"
             f"{'tok run':>9}{'GiB':>6}{'h/config':>10}{'h/4 configs':>12}"]
    for r in results:
        if not r.total_prompts:
            lines.append(f"{r.name:<16}{r.dtype:<10}{r.batch:>5}  {r.note or 'not run'}")
            continue
        hours = r.all_hours()
        total = None if hours is None else sum(hours)
        mean = None if total is None else total / len(CONFIGURATIONS)
        out_tok = f"{r.output_tokens / r.total_prompts:.1f}" if r.output_tokens else "-"
        full = f"{100 * r.full_length / r.total_prompts:.0f}%" if r.output_tokens else "-"
        run = f"{r.tokens_run:,}" if r.tokens_run else "-"
        lines.append(
            f"{r.name:<16}{r.dtype:<10}{r.batch:>5}{'on' if r.reuse else 'off':>6}"
            f"{r.total_prompts:>8}{r.total_seconds:>9.1f}"
            f"{r.total_prompts / r.total_seconds:>10.2f}"
            f"{r.prompt_tokens / r.total_seconds if r.prompt_tokens else 0:>13,.0f}"
            f"{out_tok:>8}{full:>6}{run:>9}{r.peak_gib:>6.1f}{fmt_hours(mean):>10}"
            f"{fmt_hours(total):>12}" + (f"  ({r.note})" if r.note else ""))
    lines.append("")
    lines.append(f"{'per configuration':<30}" + "".join(f"{s:>26}" for s in CONFIGURATIONS))
    lines.append(f"{'(prompts/s, hours for one)':<30}" + "".join(
        f"{'prompts/s':>14}{'hours':>12}" for _ in CONFIGURATIONS))
    for r in results:
        if not r.total_prompts:
            continue
        cells = ""
        for s in CONFIGURATIONS:
            if r.prompts.get(s):
                cells += f"{r.prompts[s] / r.seconds[s]:>14.2f}{fmt_hours(r.hours(s)):>12}"
            else:
                cells += f"{'n/a':>14}{'n/a':>12}"
        lines.append(f"{r.name + ' b' + str(r.batch):<30}{cells}")
    return "\n".join(lines)


def mean_hours(results: list[Result], check: Result) -> list[str]:
    """Hours of one configuration (mean of the four) of each path with prefix reuse, with
    the likelihood check added."""
    extra = check.all_hours()
    if extra is None:
        return []
    lines = []
    for r in results:
        hours = r.all_hours()
        if not r.reuse or r.dtype != "bfloat16" or hours is None:
            continue
        gen = sum(hours) / 4
        ll = sum(extra) / 4
        lines.append(f"  {r.name} b{r.batch} + likelihood b{check.batch}: {gen:.1f} + {ll:.1f} "
                     f"= {gen + ll:.1f} h per configuration, {4 * (gen + ll):.1f} h for four")
    return lines


def agreement(results: list[Result]) -> list[str]:
    """Equal answers (text, finish reason, token counts) between each path and the first
    bfloat16 path without reuse, on the prompts both answered."""
    generated = [r for r in results if r.answers]
    reference = next((r for r in generated if r.dtype == "bfloat16" and not r.reuse), None)
    if reference is None:
        return []
    lines = []
    for r in generated:
        if r is reference:
            continue
        common = [k for k in r.answers if k in reference.answers]
        same = sum(r.answers[k] == reference.answers[k] for k in common)
        why = ("float32 against bfloat16: these may differ" if r.dtype != reference.dtype
               else "the same model and dtype: these should agree; a difference is bfloat16 "
                    "rounding under another batch layout")
        lines.append(f"  {r.name} b{r.batch} vs {reference.name} b{reference.batch}: "
                     f"{same} of {len(common)} answers equal; {why}")
    exact = next((r for r in generated if r.dtype == "float32" and r.batch == 1), None)
    for r in generated:
        if exact is not None and r is not exact and r.dtype == "float32":
            common = [k for k in r.answers if k in exact.answers]
            same = sum(r.answers[k] == exact.answers[k] for k in common)
            lines.append(f"  {r.name} b{r.batch} vs {exact.name} b1: {same} of {len(common)} "
                         "answers equal; float32 both: a difference is a near tie")
    return lines


def report(device: str, arch: str, results: list[Result], check: Result, ratio: float) -> None:
    """Print the tables, what their columns mean, the hours of ``mike eval``'s default and
    the answers' agreement; ``ratio``: likelihood requests per generation request."""
    print(f"\n== {device}: hf backend paths, Llama-3.1-8B architecture ({arch}), random "
          f"weights, real BMIKE-53 prompts ==")
    print(table(results))
    print(f"\nh/config: hours for one configuration ({REQUESTS_PER_CONFIGURATION:,} requests), "
          f"the mean of the four; h/4 configs: the paper's four configurations "
          f"({4 * REQUESTS_PER_CONFIGURATION:,} requests), each at its own rate.\n"
          f"likelihood: the check `mike eval` adds by default (not `mike reproduce`), "
          f"{ratio:.3f} requests per generation request; its hours add to a bf16 path's.\n"
          "out tok: new tokens per answer (of 15); full: share of answers that used all 15; "
          "tok run: prompt tokens the model computed (with reuse: shared prefixes once).\n"
          "Random weights: nearly every answer runs the full 15 tokens, the worst case; "
          "a real model's short answers end batches earlier.")
    lines = mean_hours(results, check)
    if lines:
        print("mike eval's default (prefix reuse, likelihood check), hours per configuration "
              "(mean of the four):")
        print("\n".join(lines))
    print("answers:")
    for line in agreement(results) or ["  (no two paths to compare)"]:
        print(line)
