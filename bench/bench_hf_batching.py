"""Benchmark: one-at-a-time vs batched greedy generation on real BMIKE-53 prompts.

Runs the same zsRE prompts (English fact, question in the target language, the paper's
format) through the ``hf`` backend one request at a time (the paper's procedure: exactly
``max_new_tokens`` tokens, then cut at the first quote) and batched (length-sorted
micro-batches that stop each row at the quote), then compares speed and answers.

    python bench/bench_hf_batching.py [--data PATH] [--n 200] [--batch-size 16] [--shots 8]

The data path defaults to ``$MIKE_DATA_DIR``, else ``../shared/bmike53`` beside the repo.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.backends.hf import HFBackend

REPO = Path(__file__).resolve().parent.parent
ANSWER_END = '"'
# The paper's 8-shot-mixed order: demonstrations #8 down to #1.
MIXED_IDS = (8, 7, 6, 5, 4, 3, 2, 1)
MODES = ("single-full", "single-stop", "batched-full", "batched-stop")


def data_root(arg: str | None) -> Path:
    """The BMIKE-53 ``data`` folder from the argument, the environment or the default."""
    root = Path(arg or os.environ.get("MIKE_DATA_DIR") or REPO.parent / "shared" / "bmike53")
    return root / "data" if (root / "data" / "BMIKE53").is_dir() else root


def demonstrations(data: Path, lang: str) -> str:
    """The paper's 8 mixed zsRE demonstrations, English fact then the translated prompt."""
    pool = json.loads((data / "manual_prompts" / "zsre_multi.json").read_text(encoding="utf-8"))
    by_id = {int(d["case_id"]): d for d in pool}
    # Demonstration files say zh-cn where test files say zh.
    key = {"en": "prompt", "zh": "zh-cn"}.get(lang, lang)
    return "".join(f"{by_id[i]['new_fact']}\n{by_id[i][key]}\n\n" for i in MIXED_IDS)


def load_prompts(data: Path, langs: list[str], n: int, shots: int) -> list[str]:
    """``n`` paper-format prompts, spread evenly over ``langs``."""
    per_lang = -(-n // len(langs))
    prompts: list[str] = []
    for lang in langs:
        path = data / "BMIKE53" / "zsRE" / f"zsre_test_{lang}.json"
        items = json.loads(path.read_text(encoding="utf-8"))
        block = demonstrations(data, lang) if shots else ""
        usable = [it for it in items if lang in it and "en" in it][:per_lang]
        for it in usable:
            fact = f"{it['en']['src']} {it['en']['alt']}"
            prompts.append(f'{block}New Fact: "{fact}"\nQuestion: "{it[lang]["src"]}" Answer: "')
    return prompts[:n]


async def run_mode(
    backend: HFBackend, prompts: list[str], mode: str, max_new_tokens: int
) -> tuple[float, list[Generation]]:
    """Seconds taken and generations for one mode."""
    stop = (ANSWER_END,) if mode.endswith("-stop") else ()
    requests = [GenerationRequest(prompt=p, stop=stop, max_new_tokens=max_new_tokens)
                for p in prompts]
    started = time.perf_counter()
    if mode.startswith("single"):
        out = [g for r in requests for g in await backend.generate([r])]
    else:
        # One call: the backend sorts all prompts by length and cuts its own micro-batches.
        out = await backend.generate(requests)
    return time.perf_counter() - started, out


def peak_rss_mib() -> float:
    """Peak resident set size of this process."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="BMIKE-53 folder (or its data/ folder)")
    parser.add_argument("--model", default=None, help="local folder or hub id (default: embedded)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--langs", default="de,zh,ru,fr")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=15)
    parser.add_argument("--shots", type=int, choices=(0, 8), default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--modes", default="batched-stop,single-full",
                        help=f"comma-separated, first is compared to the others: {MODES}")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    if bad := [m for m in modes if m not in MODES]:
        parser.error(f"unknown modes {bad}; choose from {MODES}")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    prompts = load_prompts(data_root(args.data), args.langs.split(","), args.n, args.shots)
    print(f"{len(prompts)} prompts ({args.langs}, {args.shots}-shot), "
          f"max_new_tokens={args.max_new_tokens}, torch threads={torch.get_num_threads()}")

    # One backend serves both ways: a call with a single request is a batch of one.
    backend = HFBackend(args.model, batch_size=args.batch_size)
    started = time.perf_counter()
    await backend.generate([GenerationRequest(prompt=p, max_new_tokens=2) for p in prompts[:4]])
    print(f"load + warm-up: {time.perf_counter() - started:.1f} s")

    results: dict[str, tuple[float, list[Generation]]] = {}
    for mode in modes:
        seconds, out = await run_mode(backend, prompts, mode, args.max_new_tokens)
        results[mode] = (seconds, out)
        tokens = sum(g.output_tokens or 0 for g in out)
        reasons = dict(Counter(g.finish_reason for g in out))
        print(f"{mode:>13}: {seconds:7.1f} s  {len(out) / seconds:6.2f} items/s  "
              f"{tokens / seconds:6.1f} generated tok/s  {tokens / len(out):5.2f} tok/item  "
              f"{reasons}")

    first_s, first = results[modes[0]]
    answers = [g.text.split(ANSWER_END)[0] for g in first]
    for mode in modes[1:]:
        seconds, out = results[mode]
        other = [g.text.split(ANSWER_END)[0] for g in out]
        diffs = [i for i, (a, b) in enumerate(zip(answers, other, strict=True)) if a != b]
        print(f"{modes[0]} vs {mode}: {seconds / first_s:.2f}x faster, "
              f"identical answers {len(answers) - len(diffs)}/{len(answers)}")
        for i in diffs[:5]:
            print(f"  #{i}: {answers[i]!r} != {other[i]!r}")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    await backend.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
