"""The caching evaluator: runs a configuration against a backend, resumably.

For each chunk of work items (in plan order) it skips what the run folder
already holds, answers what it can from the response cache, sends the rest to
the backend in length-sorted batches (a bounded number in flight), caches each
batch as soon as it returns, scores, and appends the rows to ``results.jsonl``.
A crash or Ctrl-C loses at most the rows of the current chunk, never a paid-for
response: re-running the same command resumes from the cache and the folder.

Every call goes through a :class:`~mike_sdk.limits.CallGuard` (rate limits, retries,
cost). A refused request (400) becomes an error row and the run goes on; refused
credentials or an unknown model stop the run at once, and so does reaching
``max_cost``, each keeping every finished row and cached answer.
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
from .confusion import LanguageIdentifier, lingua_available
from .data import Benchmark
from .errors import BackendError, ConfigError
from .failures import BadRequest, CallFailed
from .identification_cache import IdentificationCache
from .limits import BudgetReached, CallGuard, Limits
from .plan import Planner, WorkItem
from .pricing import DEFAULTS_NOTE
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


class RunStopped(BackendError):
    """The run stopped before the end (credentials, model, or retries given up)."""


class Evaluator:
    """Evaluates one backend on BMIKE-53 with a response cache.

    >>> evaluator = Evaluator(backend, benchmark=Benchmark("bmike53"))  # doctest: +SKIP
    >>> config = EvalConfig(languages=("de",), limit=5)
    >>> summary = evaluator.run(config, "runs/demo")  # doctest: +SKIP
    """

    def __init__(self, backend: Backend, *, benchmark: Benchmark | None = None,
                 cache: ResponseCache | None = None, progress: bool = True,
                 chunk_size: int | None = None, limits: Limits | None = None) -> None:
        self.backend = backend
        self.benchmark = benchmark or Benchmark()
        self.cache = cache if cache is not None else ResponseCache()
        self.progress = progress
        self.limits = limits or Limits()
        abilities = backend.abilities
        self.concurrency = self.limits.max_concurrency or abilities.max_concurrency
        self.chunk_size = chunk_size or max(256, 4 * abilities.batch_size * self.concurrency)
        self.calls = 0
        self.guard = CallGuard(self.limits, backend.identity.model)
        self.errors = 0
        """Items answered with an error row in this session (refused requests)."""
        self.stopped: str | None = None
        """Why this session stopped early: ``max_cost`` or ``error``; None if it did not."""
        self._fatal: CallFailed | None = None
        self.identifier = LanguageIdentifier(use_lingua=False)
        """Labels each answer's language (set per run: scripts only, or with lingua)."""
        self._verdicts: IdentificationCache | None = None

    def run(self, config: EvalConfig, run_dir: str | Path) -> dict[str, Any]:
        """Run (or resume) ``config`` into ``run_dir``; returns the summary."""
        return asyncio.run(self.arun(config, run_dir))

    async def arun(self, config: EvalConfig, run_dir: str | Path) -> dict[str, Any]:
        """Async form of :meth:`run`."""
        started = time.perf_counter()
        strategy = get_strategy(config.strategy, **config.strategy_options)
        bind = getattr(strategy, "bind", None)
        if callable(bind):  # strategies that read the benchmark themselves (e.g. retrieved)
            bind(self.benchmark)
        identity, abilities = self.backend.identity, self.backend.abilities
        if self.limits.max_cost is not None and self.guard.prices.price(identity.model) is None:
            raise ConfigError(f"--max-cost needs a price for model {identity.model!r}; add it "
                              "to a price file (--prices FILE or $MIKE_PRICES).")
        if config.language_id == "auto":  # the manifest records what was used
            config = config.model_copy(
                update={"language_id": "lingua" if lingua_available() else "script"})
        elif config.language_id == "lingua" and not lingua_available():
            raise ConfigError("language_id='lingua' needs the language identifier: "
                              "pip install 'mike-sdk[analysis]' (or use 'script').")
        run = RunDir(run_dir)
        run.open({"config": config.model_dump(mode="json"),
                  "backend": identity.model_dump(mode="json"),
                  "strategy": strategy.describe(),
                  "abilities": abilities.model_dump(mode="json"),
                  "versions": _versions(), "scorers": SCORERS},
                 identity_keys=("config", "backend", "strategy"))
        self.stopped, self._fatal = None, None
        try:
            aggregator, done = Aggregator(), set()
            for row in iter_rows(run.results_path):
                if row["id"] not in done:
                    done.add(row["id"])
                    aggregator.add(row)
            planner = Planner(self.benchmark, config, strategy, abilities)
            self.identifier = self._identifier(config)
            expected = sum(min(config.limit or TASK_SIZES[t], TASK_SIZES[t]) for t in config.tasks)
            total = expected * len(config.pairs()) * len(config.metrics)
            with Progress(total, enabled=self.progress, initial=len(done)) as bar:
                bar.cost = aggregator.cost_usd
                work = iter(planner)
                while chunk := list(islice(work, self.chunk_size)):
                    todo = [w for w in chunk if w.id not in done]
                    if todo:
                        lines = await self._process(todo, config, strategy, bar)
                        run.append([to_json(r) + b"\n" for r in lines])
                        for row in lines:
                            aggregator.add(row)
                        bar.cost = aggregator.cost_usd
                    if self.stopped:
                        break
                    bar.update(len(chunk) - len(todo), cached=0)
            # Strategies that read more of the data (retrieval pools) say which files.
            extra = getattr(strategy, "files", None)
            run.update_manifest(data_files={**planner.files,
                                            **(extra if isinstance(extra, dict) else {})})
            summary = self._summary(config, strategy.describe(), aggregator, planner.skipped,
                                    time.perf_counter() - started)
            run.write_summary(summary)
        finally:
            run.close()
        if self._fatal is not None:
            message = " ".join(str(self._fatal).split())
            raise RunStopped(f"{message} Run stopped; finished rows are kept in {run.path}: "
                             "fix this and re-run the same command to resume.")
        return summary

    def _identifier(self, config: EvalConfig) -> LanguageIdentifier:
        use_lingua = config.language_id == "lingua"
        if use_lingua and self._verdicts is None:
            self._verdicts = IdentificationCache(self.cache.directory / "language-ids.sqlite")
        return LanguageIdentifier(use_lingua=use_lingua, store=self._verdicts)

    def _summary(self, config: EvalConfig, strategy: dict[str, Any], aggregator: Aggregator,
                 skipped: dict[str, dict[str, int]], wall_s: float) -> dict[str, Any]:
        stats = self.guard.stats
        summary: dict[str, Any] = {
            "backend": self.backend.identity.model_dump(mode="json"),
            "strategy": strategy,
            "config": config.model_dump(mode="json"),
            "scorers": SCORERS,
            "results": aggregator.table(),
            "language_detection": self.identifier.describe(),
            "skipped": skipped,
            "totals": {"rows": aggregator.rows, "cache_hits": aggregator.cached,
                       "backend_calls_this_session": self.calls,
                       "input_tokens": aggregator.input_tokens,
                       "output_tokens": aggregator.output_tokens,
                       "cached_input_tokens": aggregator.cached_input_tokens,
                       "cost_usd": aggregator.cost_usd,
                       "errors": aggregator.errors,
                       "retries": stats.retries, "rate_limited": stats.rate_limited,
                       "wall_time_s": round(wall_s, 3)},
        }
        if aggregator.cost_usd is None:
            summary["cost_note"] = (f"No price known for model {self.backend.identity.model!r}: "
                                    "cost_usd is null. Add it with --prices FILE or "
                                    "$MIKE_PRICES.")
        else:
            summary["cost_note"] = f"Prices: {DEFAULTS_NOTE}."
        if self.stopped:
            summary["stopped"] = self.stopped
            if self._fatal is not None:
                summary["error"] = " ".join(str(self._fatal).split())
        return summary

    async def _process(self, todo: list[WorkItem], config: EvalConfig,
                       strategy: PromptStrategy, bar: Progress) -> list[dict[str, Any]]:
        identity = self.backend.identity
        keys = [request_key(identity, "generate", w.request) for w in todo]
        found = self.cache.get_many(keys)
        cached_ids = {w.id for w, k in zip(todo, keys, strict=True) if k in found}
        bar.update(len(cached_ids), cached=len(cached_ids))
        missing = {k: w.request for w, k in zip(todo, keys, strict=True) if k not in found}
        failed: dict[str, str] = {}
        if missing:
            fresh = await self._call(self.backend.generate, missing, bar, failed)
            found.update({k: g.model_dump() for k, g in fresh.items()})
        # A stopped session writes the rows it has answers for; the rest wait for a re-run.
        todo = [w for w, k in zip(todo, keys, strict=True) if k in found or k in failed]
        keys = [k for k in keys if k in found or k in failed]
        answered = [w for w, k in zip(todo, keys, strict=True) if k in found]
        scoring = self.likelihood_requests(answered, config)
        # Keys hash whole prompts: compute each once, for the lookup and for the rows.
        pair_keys = {wid: tuple(request_key(identity, "loglikelihood", r) for r in pair)
                     for wid, pair in scoring.items()}
        ll_keys = {key: r for wid, pair in scoring.items()
                   for key, r in zip(pair_keys[wid], pair, strict=True)}
        ll_found = self.cache.get_many(ll_keys)
        ll_missing = {k: r for k, r in ll_keys.items() if k not in ll_found}
        if ll_missing and not self.stopped:
            ll_fresh = await self._call(self.backend.loglikelihood, ll_missing, None, {})
            ll_found.update({k: v.model_dump() for k, v in ll_fresh.items()})
        tokenizer = self.backend.get_tokenizer() if self.backend.abilities.tokenizer else None
        outputs = [found[key]["text"] if key in found else "" for key in keys]
        answers = [strategy.extract(w.request, text) if key in found else ""
                   for w, key, text in zip(todo, keys, outputs, strict=True)]
        scores = score_answers(answers, [w.gold for w in todo], tokenizer)
        self.identifier.prefetch((a, w.item.target_lang, w.item.source_lang)
                                 for a, w in zip(answers, todo, strict=True))
        rows = []
        for work, key, text, answer, score in zip(todo, keys, outputs, answers, scores,
                                                  strict=True):
            gen = found.get(key, {"finish_reason": "error"})
            error = failed.get(key)
            row = {
                "id": work.id, "task": work.item.task, "index": work.item.index,
                "case_id": work.item.target.case_id, "source_lang": work.item.source_lang,
                "target_lang": work.item.target_lang, "metric": work.metric,
                "prompt": work.request.prompt,
                "messages": None if work.request.messages is None
                else [m.model_dump() for m in work.request.messages],
                "cache_key": key, "output": text, "answer": answer, "gold": work.gold,
                "scores": {name: 0.0 for name in score} if error else score,
                "likelihood": None, "cached": work.id in cached_ids,
                "input_tokens": gen.get("input_tokens"), "output_tokens": gen.get("output_tokens"),
                "cached_input_tokens": gen.get("cached_input_tokens"),
                "cost_usd": None if error else self.guard.prices.cost(
                    identity.model, gen.get("input_tokens"), gen.get("output_tokens"),
                    gen.get("cached_input_tokens")),
                "finish_reason": gen.get("finish_reason"), "error": error,
                "answer_language": self.identifier.label(
                    answer, work.item.target_lang, work.item.source_lang, work.gold,
                    work.item.source.answer(work.metric)).model_dump(),
            }
            checks = pair_keys.get(work.id)
            if checks is not None:
                if not all(k in ll_found for k in checks):
                    continue  # stopped before its likelihood check: left for a re-run
                new, old = (_mean_logprob(ll_found[k]) for k in checks)
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
                    requests: dict[str, Q], bar: Progress | None,
                    failed: dict[str, str]) -> dict[str, R]:
        """Send requests in length-sorted batches, caching each batch as it returns.

        Refused requests land in ``failed`` (key -> message). Reaching ``max_cost`` stops
        new calls; a final failure (credentials, model, retries given up) also cancels
        the calls in flight. Either way the answers received so far are returned.
        """
        abilities = self.backend.abilities
        keys = sorted(requests, key=lambda k: _length(requests[k]))
        size = abilities.batch_size
        batches = [keys[i:i + size] for i in range(0, len(keys), size)]
        limit = asyncio.Semaphore(self.concurrency)
        results: dict[str, R] = {}

        async def ask(batch: list[str]) -> None:
            try:
                answers = await self.guard.call(fn, [requests[k] for k in batch])
            except BadRequest as exc:
                if len(batch) == 1:
                    failed[batch[0]] = " ".join(str(exc).split())
                    self.errors += 1
                    return
                for key in batch:  # find which request of the batch was refused
                    await ask([key])
                return
            self.calls += len(batch)
            fresh = dict(zip(batch, answers, strict=True))
            results.update(fresh)
            for answer in answers:  # the bar shows the cost as it grows, while it is known
                if bar is None or bar.cost is None or not isinstance(answer, Generation):
                    break
                cost = self.guard.prices.generation_cost(self.guard.model, answer)
                bar.cost = None if cost is None else bar.cost + cost
            self.cache.put_many((k, v.model_dump()) for k, v in fresh.items()
                                if not isinstance(v, Generation) or cacheable(v))

        async def send(batch: list[str]) -> None:
            async with limit:
                if self.stopped:
                    return
                try:
                    await ask(batch)
                except BudgetReached:
                    self.stopped = "max_cost"
                    return
                except CallFailed as exc:
                    # Credentials, model, or a retryable failure past its retries: stop now.
                    self._fatal = exc
                    self.stopped = "error"
                    for task in tasks:
                        if task is not asyncio.current_task():
                            task.cancel()
                    return
            if bar is not None:
                bar.update(len(batch), cached=0)

        tasks = [asyncio.create_task(send(b)) for b in batches]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
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
