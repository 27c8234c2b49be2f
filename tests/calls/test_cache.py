"""The response cache: keys, what is stored, and two processes sharing one folder."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from pydantic_core import from_json

from mike_sdk.backend import Abilities, Generation, GenerationRequest, Identity
from mike_sdk.calls.cache import ResponseCache, cacheable, request_key
from mike_sdk.records import Edit, Question
from mike_sdk.strategy import STRATEGIES, PromptCase, get_strategy

HF = Identity(kind="hf", model="gemma", revision="abc")


def test_key_depends_on_model_prompt_and_parameters() -> None:
    base = GenerationRequest(prompt="p", stop=('"',), max_new_tokens=15)
    key = request_key(HF, "generate", base)
    assert key == request_key(HF, "generate", GenerationRequest(prompt="p", stop=('"',)))
    assert key != request_key(HF, "generate", base.model_copy(update={"prompt": "q"}))
    assert key != request_key(HF, "generate", base.model_copy(update={"max_new_tokens": 16}))
    assert key != request_key(HF.model_copy(update={"revision": "def"}), "generate", base)
    assert key != request_key(HF, "loglikelihood", base)


def test_key_ignores_the_strategy_name() -> None:
    from mike_sdk.prompts.mike import ZeroShot as Builtin

    @STRATEGIES.register("test-cache-renamed-zero-shot")
    class Renamed(Builtin):
        """The zero-shot prompt under another name."""

    case = PromptCase(edit=Edit(question="Q?", answer="A"), question=Question(text="Q2?"))
    first = get_strategy("zero-shot").render(case, Abilities())
    second = get_strategy("test-cache-renamed-zero-shot").render(case, Abilities())
    assert request_key(HF, "generate", first) == request_key(HF, "generate", second)


def test_errors_and_empty_failures_are_not_cacheable() -> None:
    assert cacheable(Generation(text='Paris"', finish_reason="stop"))
    assert cacheable(Generation(text="", finish_reason="stop"))  # model closed the quote at once
    assert not cacheable(Generation(text="", finish_reason="error"))
    assert not cacheable(Generation(text="", finish_reason="length"))


def test_round_trip_and_persistence(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        cache.put_many([("k1", {"text": "Paris", "n": 1})])
    with ResponseCache(tmp_path) as cache:
        assert cache.get_many(["k1", "k2"]) == {"k1": {"text": "Paris", "n": 1}}
        assert (cache.hits, cache.misses) == (1, 1)


def _writer(folder: str, worker: int, count: int) -> None:
    with ResponseCache(folder) as cache:
        for i in range(count):
            # Half the keys are shared by both workers: same key, same value.
            key = f"shared-{i}" if i % 2 else f"w{worker}-{i}"
            cache.put_many([(key, {"text": f"value {key}", "worker": worker if i % 2 == 0 else -1})])


def test_two_processes_share_one_cache_folder(tmp_path: Path) -> None:
    count = 400
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), w, count)) for w in (0, 1)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    with ResponseCache(tmp_path) as cache:
        assert len(cache) == count + count // 2  # 200 per worker alone + 200 shared
        values = cache.get_many([f"w{w}-{i}" for w in (0, 1) for i in range(0, count, 2)]
                                + [f"shared-{i}" for i in range(1, count, 2)])
        assert len(values) == len(cache)
        assert all(v["text"] == f"value {k}" for k, v in values.items())


def test_get_many_reads_what_get_reads(tmp_path: Path) -> None:
    # get_many reads diskcache's table in one query: it must agree with diskcache's own
    # get, also for a value large enough to be kept in a file of its own.
    entries = [(f"key-{i}", {"text": "x" * i}) for i in range(1200)]
    entries.append(("large", {"text": "y" * 200_000}))
    with ResponseCache(tmp_path) as cache:
        cache.put_many(entries)
        wanted = [key for key, _ in entries] + ["absent", "key-3"]
        found = cache.get_many(wanted)
        assert found == {key: from_json(cache._cache.get(key)) for key, _ in entries}
        assert len(found["large"]["text"]) == 200_000
        assert (cache.hits, cache.misses) == (len(entries), 1)
