"""End to end on a real model: the edit memory against the oracle edit, same items.

Runs the same configuration twice on one backend (default: the embedded Gemma 3
270M on CPU): the oracle (each question gets its item's own edit) and
``--edit-memory`` (each question retrieves from all the task's test edits), then
prints per metric and language the paired difference of the scores with a 95%
bootstrap interval, beside the retrieval hit rates. With ``--serve`` it also runs
`mike serve`'s app on that model and asks it with the official openai client, plainly
and streamed.

    python bench/memory_end_to_end.py [--data ../shared/bmike53] [--limit 15]
        [--languages de,zh,ru] [--embedder multilingual-e5-small-q4] [--serve]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mike_sdk import load_backend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.memory.records import MemorySettings
from mike_sdk.report.bootstrap import estimate, paired_difference, rng_for
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.runfolder.rundir import final_rows


def paired(args: argparse.Namespace, client: ModelClient) -> None:
    benchmark = Benchmark(args.data)
    base = EvalConfig(tasks=(args.task,), languages=tuple(args.languages.split(",")),
                      limit=args.limit, strategy=args.strategy,
                      metrics=tuple(args.metrics.split(",")), likelihood=False)
    memory = base.model_copy(update={"edit_memory": MemorySettings(embedder=args.embedder,
                                                                   k=args.k)})
    runs = {}
    for name, config in (("oracle", base), ("memory", memory)):
        start = time.perf_counter()
        Evaluator(client, benchmark=benchmark, progress=False).run(config, Path(args.out) / name)
        rows = list(final_rows(Path(args.out) / name))
        runs[name] = rows
        print(f"{name}: {len(rows)} rows in {time.perf_counter() - start:.0f} s")
    print(f"\n{args.task}, {args.strategy}, embedder {args.embedder} (k={args.k}), "
          f"first {args.limit} items; scores x100, memory - oracle with 95% bootstrap CI")
    print(f"{'metric':12}{'lang':6}{'n':>4}{'oracle':>8}{'memory':>8}  {'diff [95% CI]':24}"
          f"{'top1%':>6}{'stated%':>8}")
    for metric in base.metrics:
        for lang in (*base.languages, "all"):
            oracle, mem = ({r.id: r.scores[args.scorer] for r in runs[name]
                            if r.metric == metric and lang in ("all", r.target_lang)}
                           for name in ("oracle", "memory"))
            found = paired_difference(mem, oracle, 2000, rng_for(53, f"{metric}/{lang}"))
            if found is None:
                continue
            point, reps, n = found
            diff = estimate(point, reps, n)
            rows = [r for r in runs["memory"] if r.metric == metric and r.retrieval
                    and (lang == "all" or r.target_lang == lang)]
            top1 = 100 * sum(r.retrieval.own_rank == 1 for r in rows) / len(rows)
            stated = 100 * sum(r.retrieval.own_applied if metric != "locality"
                               else bool(r.retrieval.edit_ids) for r in rows) / len(rows)
            print(f"{metric:12}{lang:6}{n:4}{100 * sum(oracle.values()) / n:8.1f}"
                  f"{100 * sum(mem.values()) / n:8.1f}  {diff.text(signed=True):24}"
                  f"{top1:6.0f}{stated:8.0f}")
    print("stated%: own edit stated in the prompt (locality: any edit stated)")


def serve(args: argparse.Namespace, client: ModelClient) -> None:
    import openai

    from mike_sdk.memory import EditedModel, EditMemory
    from mike_sdk.serve.app import EditServer
    from mike_sdk.web.server import LocalServer

    memory = EditMemory(Path(args.out) / "serve.sqlite", embedder=args.embedder)
    memory.add_many([
        {"id": "acme", "question": "Who is the CEO of Acme?", "answer": "Ada Lovelace"},
        {"id": "hughes", "question": "Where does Spike Hughes originate from?",
         "answer": "Philadelphia"}], replace=True)
    edited = EditedModel(client, memory, strategy=args.strategy, task=args.task,
                         benchmark=Benchmark(args.data))
    with LocalServer(EditServer(edited, token="bench-token").app()).running() as url:
        ai = openai.OpenAI(base_url=url + "/v1", api_key="bench-token")
        for question, lang in (("Wer ist der CEO von Acme?", "de"),
                               ("斯派克·休斯来自哪里？", "zh")):
            start = time.perf_counter()
            reply = ai.chat.completions.create(model="m", extra_body={"language": lang},
                                               messages=[{"role": "user", "content": question}])
            edits = [(e["id"], e["score"]) for e in reply.model_extra["edits_applied"]]
            print(f"serve plain    {question!r} -> {reply.choices[0].message.content!r} "
                  f"edits {edits} ({time.perf_counter() - start:.1f} s)")
            stream = ai.chat.completions.create(model="m", stream=True,
                                                extra_body={"language": lang},
                                                messages=[{"role": "user", "content": question}])
            text = "".join(c.choices[0].delta.content or "" for c in stream)
            print(f"serve streamed {question!r} -> {text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/bmike53")
    parser.add_argument("--backend", default="hf")
    parser.add_argument("--task", default="zsre")
    parser.add_argument("--limit", type=int, default=15)
    parser.add_argument("--languages", default="de,zh,ru")
    parser.add_argument("--metrics", default="reliability,generality,locality")
    parser.add_argument("--strategy", default="8-shot-metric-specific")
    parser.add_argument("--embedder", default="multilingual-e5-small-q4")
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--scorer", default="token_f1")
    parser.add_argument("--out", default="runs/memory-e2e")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    with ResponseCache(Path(args.out) / "cache") as cache:
        client = ModelClient(load_backend(args.backend), cache=cache)
        paired(args, client)
        if args.serve:
            serve(args, client)


if __name__ == "__main__":
    main()
