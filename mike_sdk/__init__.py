"""mike-sdk: cross-lingual in-context knowledge editing (MIKE) and the BMIKE-53 benchmark.

Quick start::

    from mike_sdk import Edit, ask, load_backend
    model = load_backend("hf")          # the embedded Gemma 3 270M, on CPU
    fact = Edit(question="Where does Spike Hughes originate from?", answer="Philadelphia")
    print(ask(model, fact, "Woher stammt Spike Hughes?", language="de").answer)
"""

from __future__ import annotations

from typing import Any

from .backend import (
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
from .cache import ResponseCache
from .config import EvalConfig
from .data import Benchmark
from .editing import Answer, ask, ask_many
from .errors import BackendError, ConfigError, DataError, MikeError
from .records import Demonstration, Edit, FactRecord, Item, Question
from .strategy import STRATEGIES, PromptCase, PromptStrategy, get_strategy

__version__ = "0.1.0"


def load_backend(name: str = "hf", **options: Any) -> Backend:
    """A registered backend by name, e.g. ``load_backend("hf", model="path/to/model")``."""
    return BACKENDS.create(name, **options)


def evaluate(backend: Backend, config: EvalConfig | None = None, *, run_dir: str,
             data_dir: str | None = None, cache_dir: str | None = None,
             progress: bool = True, **config_fields: Any) -> dict[str, Any]:
    """Evaluate ``backend`` on BMIKE-53 (resumable, cached); returns the run summary.

    >>> summary = evaluate(load_backend("hf"), run_dir="runs/demo", tasks=("zsre",),
    ...                    languages=("de", "zh"), limit=5)  # doctest: +SKIP
    """
    from .evaluator import Evaluator

    if config is None:
        config = EvalConfig(**config_fields)
    elif config_fields:
        config = config.model_copy(update=config_fields)
    with ResponseCache(cache_dir) as cache:
        return Evaluator(backend, benchmark=Benchmark(data_dir), cache=cache,
                         progress=progress).run(config, run_dir)


__all__ = [
    "BACKENDS", "STRATEGIES", "Abilities", "Answer", "Backend", "BackendError", "Benchmark",
    "ChatMessage", "ConfigError", "DataError", "Demonstration", "Edit", "EvalConfig",
    "FactRecord", "Generation", "GenerationRequest", "Identity", "Item", "Likelihood",
    "LikelihoodRequest", "MikeError", "PromptCase", "PromptStrategy", "Question",
    "ResponseCache", "ask", "ask_many", "evaluate", "get_strategy", "load_backend",
]
