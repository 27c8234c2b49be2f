"""The caching evaluator: runs a configuration against a backend, resumably.

For each chunk of work items (in plan order) it skips what the run folder
already holds, answers what it can from the response cache, sends the rest to
the backend in length-sorted batches (a bounded number in flight), caches each
batch as soon as it returns, scores, and appends the rows to ``results.jsonl``.
A crash or Ctrl-C loses at most the rows of the current chunk, never a paid-for
response: re-running the same command resumes from the cache and the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import to_json

from .backend import Backend, Generation, GenerationRequest, Likelihood, LikelihoodRequest
from .cache import ResponseCache, cacheable, request_key
from .config import EvalConfig
from .data import Benchmark
from .plan import Planner, WorkItem
from .progress import Progress
from .results import Aggregator
from .rundir import RunDir, iter_rows
from .scoring import SCORERS, score_answers
from .strategy import PromptStrategy, get_strategy

TASK_SIZES = {"zsre": 743, "counterfact": 1031, "wikifactdiff": 784}
LIKELIHOOD_TASKS = ("counterfact", "wikifactdiff")
LIKELIHOOD_METRICS = ("reliability", "generality")
_VERSIONED = ("mike-sdk", "pydantic", "diskcache", "torch", "transformers", "openai", "anthropic")

R = TypeVar("R", bound=BaseModel)
Q = TypeVar("Q", bound=BaseModel)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


class Evaluator:
    """Evaluates one backend on BMIKE-53 with a response cache.

    >>> evaluator = Evaluator(backend, benchmark=Benchmark("bmike53"))  # doctest: +SKIP
    >>> config = EvalConfig(languages=("de",), limit=5)
    >>> summary = evaluator.run(config, "runs/demo")  # doctest: +SKIP
    """

    def __init__(self, backend: Backend, *, benchmark: Benchmark | None = None,
                 cache: ResponseCache | None = None, progress: bool = True,
                 chunk_size: int | None = None) -> None:
        self.backend = backend
        self.benchmark = benchmark or Benchmark()
        self.cache = cache if cache is not None else ResponseCache()
        self.progress = progress
        abilities = backend.abilities
        self.chunk_size = chunk_size or max(256, 4 * abilities.batch_size
                                            * abilities.max_concurrency)
        self.calls = 0

    def run(self, config: EvalConfig, run_dir: str | Path) -> dict[str, Any]:
        """Run (or resume) ``config`` into ``run_dir``; returns the summary."""
        return asyncio.run(self.arun(config, run_dir))

    async def arun(self, config: EvalConfig, run_dir: str | Path) -> dict[str, Any]:
        """Async form of :meth:`run`."""
        started = time.perf_counter()
        strategy = get_strategy(config.strategy, **config.strategy_options)
        identity, abilities = self.backend.identity, self.backend.abilities
        run = RunDir(run_dir)
        run.open({"config": config.model_dump(mode="json"),
                  "backend": identity.model_dump(mode="json"),
                  "strategy": strategy.describe(),
                  "abilities": abilities.model_dump(mode="json"),
                  "versions": _versions(), "scorers": SCORERS},
                 identity_keys=("config", "backend", "strategy"))
        try:
            aggregator, done = Aggregator(), set()
            for row in iter_rows(run.results_path):
                if row["id"] not in done:
                    done.add(row["id"])
                    aggregator.add(row)
            planner = Planner(self.benchmark, config, strategy, abilities)
            expected = sum(min(config.limit or TASK_SIZES[t], TASK_SIZES[t]) for t in config.tasks)
            total = expected * len(config.languages) * len(config.metrics)
            with Progress(total, enabled=self.progress, initial=len(done)) as bar:
                work = iter(planner)
                while chunk := list(islice(work, self.chunk_size)):
                    todo = [w for w in chunk if w.id not in done]
                    if todo:
                        lines = await self._process(todo, config, strategy, bar)
                        run.append([to_json(r) + b"\n" for r in lines])
                        for row in lines:
                            aggregator.add(row)
                    bar.update(len(chunk) - len(todo), cached=0)
            run.update_manifest(data_files=planner.files)
            summary = {
                "backend": identity.model_dump(mode="json"),
                "strategy": strategy.describe(),
                "config": config.model_dump(mode="json"),
                "scorers": SCORERS,
                "results": aggregator.table(),
                "skipped": planner.skipped,
                "totals": {"rows": aggregator.rows, "cache_hits": aggregator.cached,
                           "backend_calls_this_session": self.calls,
                           "input_tokens": aggregator.input_tokens,
                           "output_tokens": aggregator.output_tokens,
                           "wall_time_s": round(time.perf_counter() - started, 3)},
            }
            run.write_summary(summary)
            return summary
        finally:
            run.close()

    async def _process(self, todo: list[WorkItem], config: EvalConfig,
                       strategy: PromptStrategy, bar: Progress) -> list[dict[str, Any]]:
        identity = self.backend.identity
        keys = [request_key(identity, "generate", w.request) for w in todo]
        found = self.cache.get_many(keys)
        cached_ids = {w.id for w, k in zip(todo, keys, strict=True) if k in found}
        bar.update(len(cached_ids), cached=len(cached_ids))
        missing = {k: w.request for w, k in zip(todo, keys, strict=True) if k not in found}
        if missing:
            fresh = await self._call(self.backend.generate, missing, bar)
            found.update({k: g.model_dump() for k, g in fresh.items()})
        scoring = self.likelihood_requests(todo, config)
        ll_keys = {request_key(identity, "loglikelihood", r): r for pair in scoring.values()
                   for r in pair}
        ll_found = self.cache.get_many(ll_keys)
        ll_missing = {k: r for k, r in ll_keys.items() if k not in ll_found}
        if ll_missing:
            ll_fresh = await self._call(self.backend.loglikelihood, ll_missing, None)
            ll_found.update({k: v.model_dump() for k, v in ll_fresh.items()})
        tokenizer = self.backend.get_tokenizer() if self.backend.abilities.tokenizer else None
        outputs = [found[key]["text"] for key in keys]
        answers = [strategy.extract(w.request, text) for w, text in zip(todo, outputs, strict=True)]
        scores = score_answers(answers, [w.gold for w in todo], tokenizer)
        rows = []
        for work, key, text, answer, score in zip(todo, keys, outputs, answers, scores,
                                                  strict=True):
            gen = found[key]
            row = {
                "id": work.id, "task": work.item.task, "index": work.item.index,
                "case_id": work.item.target.case_id, "source_lang": work.item.source_lang,
                "target_lang": work.item.target_lang, "metric": work.metric,
                "prompt": work.request.prompt,
                "messages": None if work.request.messages is None
                else [m.model_dump() for m in work.request.messages],
                "cache_key": key, "output": text, "answer": answer, "gold": work.gold,
                "scores": score, "likelihood": None, "cached": work.id in cached_ids,
                "input_tokens": gen.get("input_tokens"), "output_tokens": gen.get("output_tokens"),
                "finish_reason": gen.get("finish_reason"),
            }
            pair = scoring.get(work.id)
            if pair is not None:
                new, old = (_mean_logprob(ll_found[request_key(identity, "loglikelihood", r)])
                            for r in pair)
                row["likelihood"] = {"new_logprob": new, "old_logprob": old}
            rows.append(row)
        return rows

    def likelihood_requests(self, todo: Sequence[WorkItem], config: EvalConfig
                            ) -> dict[str, tuple[LikelihoodRequest, LikelihoodRequest]]:
        """The new-vs-old scoring requests (new answer, ``loc_ans``) per work-item id."""
        if not (config.likelihood and self.backend.abilities.loglikelihood):
            return {}
        out = {}
        for work in todo:
            prompt, old = work.request.prompt, work.item.target.loc_ans
            if (work.item.task in LIKELIHOOD_TASKS and work.metric in LIKELIHOOD_METRICS
                    and prompt is not None and old and work.gold):
                out[work.id] = (LikelihoodRequest(context=prompt, continuation=work.gold),
                                LikelihoodRequest(context=prompt, continuation=old))
        return out

    async def _call(self, fn: Callable[[Sequence[Q]], Awaitable[Sequence[R]]],
                    requests: dict[str, Q], bar: Progress | None) -> dict[str, R]:
        """Send requests in length-sorted batches, caching each batch as it returns."""
        abilities = self.backend.abilities
        keys = sorted(requests, key=lambda k: _length(requests[k]))
        size = abilities.batch_size
        batches = [keys[i:i + size] for i in range(0, len(keys), size)]
        limit = asyncio.Semaphore(abilities.max_concurrency)
        results: dict[str, R] = {}

        async def send(batch: list[str]) -> None:
            async with limit:
                answers = await fn([requests[k] for k in batch])
            self.calls += len(batch)
            fresh = dict(zip(batch, answers, strict=True))
            results.update(fresh)
            self.cache.put_many((k, v.model_dump()) for k, v in fresh.items()
                                if not isinstance(v, Generation) or cacheable(v))
            if bar is not None:
                bar.update(len(batch), cached=0)

        await asyncio.gather(*(send(b) for b in batches))
        return results


def _mean_logprob(value: dict[str, Any]) -> float:
    """Mean token log-probability of a stored :class:`Likelihood` (the paper compares these)."""
    return Likelihood.model_construct(**value).mean


def _length(request: BaseModel) -> int:
    if isinstance(request, GenerationRequest):
        if request.prompt is not None:
            return len(request.prompt)
        return sum(len(m.content) for m in request.messages or ())
    if isinstance(request, LikelihoodRequest):
        return len(request.context) + len(request.continuation)
    return 0
