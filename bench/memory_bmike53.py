"""Cross-lingual retrieval from an edit memory on BMIKE-53 (docs/editing.md).

Every English test edit of a task goes into one EditMemory (zsRE: 743, CounterFact:
1,031); each target-language reliability question retrieves from all of them. Prints,
per embedder, task, language and script: the top-1 and top-5 hit rates (the item's own
edit retrieved), and the share of locality questions whose best edit clears the
embedder's threshold (an unrelated edit that would be applied). Embeddings are cached
on disk (``--cache``), so a second run costs only the searches.

    python bench/memory_bmike53.py [--data ../shared/bmike53] [--questions 150]
        [--locality 50] [--embedders all-MiniLM-L6-v2,use-multilingual-v3,...]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mike_sdk.data.benchmark import Benchmark
from mike_sdk.data.families import LANGUAGE_INFO
from mike_sdk.memory import EditMemory
from mike_sdk.prompts.embeddings import EmbeddingCache, get_embedder

LANGUAGES = ("de", "fr", "ru", "uk", "zh", "ja", "ar", "hi", "ko", "el", "he", "th")
EMBEDDERS = ("all-MiniLM-L6-v2", "use-multilingual-v3", "multilingual-e5-small-q4")
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.82, 0.85, 0.9)


class CachedEmbedder:
    """An embedder whose batches are kept on disk by the sha256 of their texts."""

    def __init__(self, name: str, cache: EmbeddingCache) -> None:
        self.inner = get_embedder(name)
        self.name = self.inner.name
        self.threshold = float(getattr(self.inner, "threshold", 0.5))
        self.cache = cache
        self.seconds = 0.0
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> Any:
        digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
        start = time.perf_counter()
        computed = self.cache.computed
        vectors = self.cache.vectors(digest, texts, self.inner)
        if self.cache.computed > computed:
            self.seconds += time.perf_counter() - start
            self.texts += len(texts)
        return vectors


def run_embedder(name: str, benchmark: Benchmark, args: argparse.Namespace,
                 folder: Path) -> dict[str, Any]:
    embedder = CachedEmbedder(name, EmbeddingCache(args.cache))
    out: dict[str, Any] = {"embedder": name, "threshold": embedder.threshold, "tasks": {}}
    for task in ("zsre", "counterfact"):
        english = benchmark.items(task, "de").items  # every item's English source record
        memory = EditMemory(folder / f"{task}-{name}.sqlite", embedder=embedder)
        memory.add_many([{"id": str(i.index), "question": i.source.src,
                          "answer": i.source.alt} for i in english])
        rows: dict[str, Any] = {}
        for lang in args.languages:
            items = benchmark.items(task, lang, limit=args.questions).items
            found = memory.search_many([i.target.src for i in items], k=5, threshold=-2.0)
            pairs = list(zip(items, found, strict=True))
            top1 = [bool(f) and f[0].edit.id == str(i.index) for i, f in pairs]
            top5 = [any(r.edit.id == str(i.index) for r in f) for i, f in pairs]
            hit_scores = [f[0].score for f, hit in zip(found, top1, strict=True) if hit]
            local = items[: args.locality]
            loc_found = memory.search_many([i.target.loc for i in local], k=1, threshold=-2.0)
            loc_scores = [f[0].score for f in loc_found]
            rows[lang] = {
                "questions": len(items), "top1": float(np.mean(top1)),
                "top5": float(np.mean(top5)), "locality_questions": len(local),
                "locality_applied": float(np.mean([s >= embedder.threshold
                                                   for s in loc_scores])),
                "own_kept": float(np.mean([f[0].score >= embedder.threshold and hit
                                           for f, hit in zip(found, top1, strict=True)])),
                "sweep": {str(t): [float(np.mean([bool(f) and f[0].score >= t and h
                                                  for f, h in zip(found, top1, strict=True)])),
                                   float(np.mean([s >= t for s in loc_scores]))]
                          for t in THRESHOLDS},
                "hit_score_median": float(np.median(hit_scores)) if hit_scores else None,
                "locality_score_median": float(np.median(loc_scores)),
            }
        memory.close()
        out["tasks"][task] = {"edits": len(english), "languages": rows}
    out["embed_seconds"] = round(embedder.seconds, 1)
    out["embedded_texts"] = embedder.texts
    return out


def report(result: dict[str, Any]) -> None:
    name, threshold = result["embedder"], result["threshold"]
    print(f"\n== {name} (threshold {threshold}; embedded {result['embedded_texts']} texts "
          f"in {result['embed_seconds']} s)")
    for task, data in result["tasks"].items():
        print(f"-- {task}: {data['edits']} edits in memory")
        print(f"{'lang':6}{'script':12}{'n':>5}{'top1':>7}{'top5':>7}{'kept':>7}"
              f"{'loc>=t':>8}{'med hit':>9}{'med loc':>9}")
        by_script: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
        for lang, r in data["languages"].items():
            script = LANGUAGE_INFO[lang].script
            by_script[script].append((r["top1"], r["top5"], r["questions"]))
            print(f"{lang:6}{script:12}{r['questions']:5}{r['top1']:7.3f}{r['top5']:7.3f}"
                  f"{r['own_kept']:7.3f}{r['locality_applied']:8.3f}"
                  f"{r['hit_score_median'] or float('nan'):9.3f}"
                  f"{r['locality_score_median']:9.3f}")
        print("   by script: " + ", ".join(
            f"{s} {np.average([x[0] for x in v], weights=[x[2] for x in v]):.3f}/"
            f"{np.average([x[1] for x in v], weights=[x[2] for x in v]):.3f}"
            for s, v in by_script.items()) + "  (top1/top5)")
        sweep = defaultdict(list)
        for r in data["languages"].values():
            for t, (kept, applied) in r["sweep"].items():
                sweep[t].append((kept, applied))
        print("   threshold sweep (mean over languages: own edit kept at top-1 / locality "
              "question gets an edit): " + ", ".join(
                  f"{t}: {np.mean([k for k, _ in v]):.2f}/{np.mean([a for _, a in v]):.2f}"
                  for t, v in sweep.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/bmike53")
    parser.add_argument("--questions", type=int, default=150,
                        help="reliability questions per task and language (first N items)")
    parser.add_argument("--locality", type=int, default=50,
                        help="locality questions per task and language")
    parser.add_argument("--languages", type=lambda s: s.split(","), default=list(LANGUAGES))
    parser.add_argument("--embedders", type=lambda s: s.split(","), default=list(EMBEDDERS))
    parser.add_argument("--cache", default=None, help="embedding cache folder")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    benchmark = Benchmark(args.data)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.embedders:
            result = run_embedder(name, benchmark, args, Path(folder))
            report(result)
            results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
