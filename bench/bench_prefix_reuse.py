"""Benchmark: shared-prefix reuse in the ``hf`` backend against the plain path, real prompts.

Renders real BMIKE-53 prompts with the evaluator's planner (8-shot metric-specific and
one-shot, languages of several scripts), sends them as the client does (chunks of the plan,
sorted by length, batches of ``--batch-size``) to two ``hf`` backends sharing one model, one
with ``prefix_reuse`` off and one with it on, batch by batch in turn (so that a changing
load on the machine weighs on both alike), then compares wall time, this process's CPU
time (less sensitive to other processes on a shared machine), prompt tokens run and
answers. Any answer that differs is printed with the plain path's margin between its two
best next tokens where the answers part.

    python bench/bench_prefix_reuse.py [--data PATH] [--limit 5] [--batch-size 16]

The data path defaults to ``$MIKE_DATA_DIR``, else ``../shared/bmike53`` beside the repo.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import astuple
from pathlib import Path

from mike_sdk.backend import Abilities, Generation, GenerationRequest
from mike_sdk.backends.hf import HFBackend, PrefixStats
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import STRATEGIES

REPO = Path(__file__).resolve().parent.parent
CHUNK = 256  # the evaluator's chunk of work (it sorts each chunk's misses by length)
# (strategy, languages): Latin, CJK, Cyrillic, Devanagari, Arabic, Hangul, Greek, Hebrew, Thai
GROUPS = (("8-shot-metric-specific", "de,zh,ru,hi,ar"),
          ("one-shot", "fr,ja,ko,el,uk,he,th,fa"))


def data_root(arg: str | None) -> Path:
    return Path(arg or os.environ.get("MIKE_DATA_DIR") or REPO.parent / "shared" / "bmike53")


def plan(benchmark: Benchmark, strategy: str, languages: str, tasks: str,
         limit: int) -> list[tuple[str, GenerationRequest]]:
    """(work id, request) in the evaluator's order."""
    config = EvalConfig.model_validate({"tasks": tasks, "languages": languages,
                                        "strategy": strategy, "limit": limit})
    abilities = Abilities(completion=True, tokenizer=True, batch_size=16)
    planner = Planner(benchmark, config, STRATEGIES.create(strategy), abilities)
    return [(w.id, w.request) for w in planner]


def batches(n: int, prompts: list[str], size: int) -> list[list[int]]:
    """Indices in the client's batches: chunks of the plan, each sorted by prompt length."""
    out: list[list[int]] = []
    for start in range(0, n, CHUNK):
        chunk = sorted(range(start, min(start + CHUNK, n)), key=lambda i: len(prompts[i]))
        out += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    return out


def delta(after: PrefixStats, before: tuple[int, ...]) -> PrefixStats:
    return PrefixStats(*(a - b for a, b in zip(astuple(after), before, strict=True)))


def seen(generation: Generation) -> tuple[object, ...]:
    """What a caller gets: the text, its end and the token counts."""
    g = generation
    return g.text, g.finish_reason, g.input_tokens, g.output_tokens


def margin(backend: HFBackend, prompt: str, plain: str, reused: str) -> str:
    """Where the two answers part: the plain path's top-2 logit gap at that token."""
    import torch

    model, tokenizer = backend.model, backend.get_tokenizer().hf
    mine, theirs = (tokenizer.encode(t, add_special_tokens=False) for t in (plain, reused))
    same = next((k for k, (x, y) in enumerate(zip(mine, theirs, strict=False))
                 if x != y),
                min(len(mine), len(theirs)))
    common = tokenizer.decode(mine[:same])
    ids = tokenizer(prompt)["input_ids"] + mine[:same]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    top = torch.topk(logits, 2)
    first, second = (tokenizer.decode([int(t)]) for t in top.indices)
    return (f"after {common!r}: top-2 {first!r} vs {second!r}, "
            f"logit gap {float(top.values[0] - top.values[1]):.2e}")


async def run_group(off: HFBackend, on: HFBackend, strategy: str,
                    work: list[tuple[str, GenerationRequest]],
                    size: int) -> tuple[int, dict[HFBackend, tuple[float, float]]]:
    """Runs one strategy's prompts both ways; returns the answers that differ and each
    backend's (wall, CPU) seconds."""
    prompts = [r.prompt or "" for _, r in work]
    requests = [r for _, r in work]
    before = {b: astuple(b.prefix_stats) for b in (off, on)}
    seconds = {off: 0.0, on: 0.0}
    cpu = {off: 0.0, on: 0.0}
    answers: dict[HFBackend, dict[int, Generation]] = {off: {}, on: {}}
    for batch in batches(len(work), prompts, size):
        for backend in (off, on):
            started, used = time.perf_counter(), time.process_time()
            out = await backend.generate([requests[i] for i in batch])
            seconds[backend] += time.perf_counter() - started
            cpu[backend] += time.process_time() - used
            answers[backend].update(zip(batch, out, strict=True))
    stats = {b: delta(b.prefix_stats, before[b]) for b in (off, on)}
    print(f"\n{strategy}: {len(work)} prompts")
    for name, backend in (("reuse off", off), ("reuse on", on)):
        s = stats[backend]
        print(f"  {name:>9}: {seconds[backend]:7.1f} s wall ({len(work) / seconds[backend]:5.2f} "
              f"items/s), {cpu[backend]:7.1f} s CPU, prompt tokens run {s.prompt_tokens}")
    s = stats[on]
    print(f"  speed-up {seconds[off] / seconds[on]:.2f}x wall, {cpu[off] / cpu[on]:.2f}x CPU; "
          f"prompt tokens "
          f"{stats[off].prompt_tokens / max(s.prompt_tokens, 1):.2f}x fewer; prefix encodes "
          f"{s.prefix_encodes}, rows reused {s.reused_rows} (from an earlier call "
          f"{s.prefix_hits}), fallbacks {s.fallback_rows}")
    differ = [i for i in range(len(work)) if seen(answers[off][i]) != seen(answers[on][i])]
    print(f"  answers that differ: {len(differ)} of {len(work)}")
    for i in differ:
        a, b = answers[off][i].text, answers[on][i].text
        print(f"    {work[i][0]}: off {a!r} on {b!r}; {margin(off, prompts[i], a, b)}")
    return len(differ), {b: (seconds[b], cpu[b]) for b in (off, on)}


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="BMIKE-53 folder")
    parser.add_argument("--tasks", default="zsre,counterfact")
    parser.add_argument("--limit", type=int, default=5, help="items per task and language")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    benchmark = Benchmark(data_root(args.data))
    work = {s: plan(benchmark, s, langs, args.tasks, args.limit) for s, langs in GROUPS}
    print(f"{sum(map(len, work.values()))} prompts ({args.tasks}, {args.limit} items per task "
          f"and language, 4 metrics), batch size {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")

    on = HFBackend(batch_size=args.batch_size, prefix_reuse=True)
    off = HFBackend(batch_size=args.batch_size, prefix_reuse=False)
    started = time.perf_counter()
    await on.generate([GenerationRequest(prompt="Warm up", max_new_tokens=2)])
    off.model = on.model  # one model, loaded once: the two differ only in the option
    await off.generate([GenerationRequest(prompt="Warm up", max_new_tokens=2)])
    print(f"load + warm-up: {time.perf_counter() - started:.1f} s")

    before = {b: astuple(b.prefix_stats) for b in (off, on)}
    differ, wall, cpu = 0, {off: 0.0, on: 0.0}, {off: 0.0, on: 0.0}
    for (strategy, _), items in zip(GROUPS, work.values(), strict=True):
        d, times = await run_group(off, on, strategy, items, args.batch_size)
        differ += d
        for b, (w, c) in times.items():
            wall[b], cpu[b] = wall[b] + w, cpu[b] + c
    tokens = {b: delta(b.prefix_stats, before[b]).prompt_tokens for b in (off, on)}
    print(f"\nall {sum(map(len, work.values()))} prompts: reuse off {wall[off]:.1f} s wall "
          f"({cpu[off]:.1f} s CPU), reuse on {wall[on]:.1f} s wall ({cpu[on]:.1f} s CPU); "
          f"speed-up {wall[off] / wall[on]:.2f}x wall, {cpu[off] / cpu[on]:.2f}x CPU; prompt "
          f"tokens run {tokens[off]} off, {tokens[on]} on "
          f"({tokens[off] / max(tokens[on], 1):.2f}x fewer); answers that differ: {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
