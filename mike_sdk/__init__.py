"""mike-sdk: cross-lingual in-context knowledge editing (MIKE) and the BMIKE-53 benchmark.

Quick start::

    from mike_sdk import Edit, ask, load_backend
    model = load_backend("hf")          # the embedded Gemma 3 270M, on CPU
    fact = Edit(question="Where does Spike Hughes originate from?", answer="Philadelphia")
    print(ask(model, fact, "Woher stammt Spike Hughes?", language="de").answer)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mike_sdk.backend import (
    BACKENDS,
    Abilities,
    Backend,
    ChatMessage,
    Generation,
    GenerationRequest,
    Identity,
    Likelihood,
    LikelihoodRequest,
)
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.limits import Limits
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.editing import Answer, ask, ask_many
from mike_sdk.errors import BackendError, ConfigError, DataError, MikeError
from mike_sdk.records import Demonstration, Edit, FactRecord, Item, Question
from mike_sdk.run.config import EvalConfig
from mike_sdk.runfolder.files import Manifest, ResultRow, Summary
from mike_sdk.strategy import STRATEGIES, PromptCase, PromptStrategy, get_strategy

if TYPE_CHECKING:
    from mike_sdk.memory.edited import EditedModel

__version__ = "0.1.0"


def load_backend(name: str = "hf", **options: Any) -> Backend:
    """A registered backend by name, e.g. ``load_backend("hf", model="path/to/model")``."""
    return BACKENDS.create(name, **options)


def evaluate(model: Backend | ModelClient | EditedModel, config: EvalConfig | None = None, *,
             run_dir: str, data_dir: str | None = None, cache_dir: str | None = None,
             limits: Limits | None = None, progress: bool = True, batch: bool = False,
             retry_errors: bool = False, **config_fields: Any) -> Summary:
    """Evaluate a backend on BMIKE-53 (resumable, cached); returns the run summary.

    ``model`` is a backend, or a :class:`ModelClient` whose cache, limits and budget the
    run shares (then ``cache_dir`` and ``limits`` are the client's business), or an
    :class:`~mike_sdk.memory.edited.EditedModel`: the ``--edit-memory`` mode with its
    strategy, embedder, ``k`` and threshold (the memory holds each task's test edits, not
    the EditedModel's own). ``batch``
    sends what the cache lacks through the provider's batch interface (OpenAI,
    Anthropic; re-run to re-attach); ``retry_errors`` sends refused requests again.

    >>> summary = evaluate(load_backend("mock"), run_dir="runs/demo", data_dir="bmike53",
    ...                    tasks=("zsre",), languages=("de", "zh"), limit=2, progress=False)
    >>> summary.totals.rows
    16
    """
    if config is None:
        config = EvalConfig(**config_fields)
    elif config_fields:
        config = config.model_copy(update=config_fields)
    from mike_sdk.memory.edited import EditedModel

    if isinstance(model, EditedModel):  # the --edit-memory mode with its settings
        config = model.evaluation_config(config)
        model = model.model
    benchmark = Benchmark(data_dir)
    if isinstance(model, ModelClient):
        if cache_dir is not None or limits is not None:
            raise ConfigError("Give cache and limits to the ModelClient, not to evaluate().")
        return _evaluate(model, config, run_dir, benchmark, progress, batch, retry_errors)
    with ResponseCache(cache_dir) as cache:
        return _evaluate(ModelClient(model, cache=cache, limits=limits), config, run_dir,
                         benchmark, progress, batch, retry_errors)


def _evaluate(client: ModelClient, config: EvalConfig, run_dir: str, benchmark: Benchmark,
              progress: bool, batch: bool, retry_errors: bool) -> Summary:
    if batch:
        from mike_sdk.batch.mode import run_batched

        return run_batched(client, config, run_dir, benchmark=benchmark,
                           progress=progress).summary
    from mike_sdk.run.evaluator import Evaluator

    return Evaluator(client, benchmark=benchmark, progress=progress).run(
        config, run_dir, retry_errors=retry_errors)


__all__ = [
    "BACKENDS", "STRATEGIES", "Abilities", "Answer", "Backend", "BackendError", "Benchmark",
    "ChatMessage", "ConfigError", "DataError", "Demonstration", "Edit", "EvalConfig",
    "FactRecord", "Generation", "GenerationRequest", "Identity", "Item", "Likelihood",
    "LikelihoodRequest", "Limits", "Manifest", "MikeError", "ModelClient", "PromptCase",
    "PromptStrategy", "Question", "ResponseCache", "ResultRow", "Summary", "ask", "ask_many",
    "evaluate", "get_strategy", "load_backend",
]
