"""The ``hf`` backend's batch size from free memory (``batch_size="auto"``), its back-off
where memory runs out, and the static-cache option (``compile=True``).

No GPU here: free memory is given as a figure (standing in for ``torch.cuda.mem_get_info``)
to the sizing arithmetic with real model configurations, and running out of memory is a
real ``torch.OutOfMemoryError`` raised by a hook on the embedded model's forward pass
(standing in for a GPU's allocator). The answers are the real model's, float32, greedy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import torch

from mike_sdk.backend import Generation, GenerationRequest
from mike_sdk.backends.embedded import embedded_model_dir
from mike_sdk.backends.hf import HFBackend
from mike_sdk.backends.hf_batching import (
    AUTO_CAP,
    AUTO_CPU_CAP,
    MEMORY_SHARE,
    auto_batch_size,
    generate_rows,
    kv_bytes_per_token,
    left_pad,
    row_bytes,
)
from mike_sdk.errors import BackendError, ConfigError

T = TypeVar("T")
GIB = 2**30
DEMOS = ('Demonstration: "What is the capital of France? Paris"\n\n'
         'Demonstration: "Which river flows through Vienna? Danube"\n\n')
PROMPTS = [
    *(DEMOS + f'Question: "{q}" Answer: "' for q in (
        "Who wrote Hamlet?", "斯派克·休斯来自哪里？", "Кто написал Гамлета?")),
    'New Fact: "What is the capital of France? Berlin"\n'
    'Question: "What is the capital of France?" Answer: "',
    'Question: "Wann wurde die IAAF Combined Events Challenge ins Leben gerufen?" Answer: "',
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def requests() -> list[GenerationRequest]:
    return [GenerationRequest(prompt=p, stop=('"',), max_new_tokens=6) for p in PROMPTS]


def seen(g: Generation) -> tuple[object, ...]:
    return g.text, g.finish_reason, g.input_tokens, g.output_tokens


def llama_8b() -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, intermediate_size=14336, vocab_size=128_256)


def gemma_270m() -> Any:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(embedded_model_dir()))
    return config.get_text_config(decoder=True)


# -- the arithmetic (configurations only, no weights) -------------------------------------


def test_key_value_bytes_per_token_of_real_configurations() -> None:
    # Llama-3.1-8B: 32 layers x 8 kv heads x 128 x 2 x 2 bytes (bfloat16) = 128 KiB.
    assert kv_bytes_per_token(llama_8b(), 2) == 131_072
    # Gemma 3 270M: 18 layers x 1 kv head x head_dim 256 x 2 x 4 bytes (float32).
    assert kv_bytes_per_token(gemma_270m(), 4) == 36_864


def test_batch_size_from_a_given_free_memory() -> None:
    config = llama_8b()
    # One row, 1,000 prompt tokens + 15 new, bfloat16: cache 131,072 x 1,015, activations
    # 1,000 x (4 x 4,096 + 2 x 14,336) x 2, scores 17 x 128,256 x 4 x 2.
    row = row_bytes(config, 2, 1000, 15)
    assert row == 133_038_080 + 90_112_000 + 17_442_816
    # 100 GiB free (an H200 with the 16 GiB model loaded): 357 rows fit in 80%: 256.
    assert auto_batch_size(config, 2, 100 * GIB, 1000, 15) == 256
    assert auto_batch_size(config, 2, 200 * GIB, 1000, 15) == AUTO_CAP  # capped
    assert auto_batch_size(config, 2, 1 * GIB, 1000, 15) == 2
    assert auto_batch_size(config, 2, 10**6, 1000, 15) == 1  # none fits: 1, memory says so
    for free in (3 * GIB, 17 * GIB, 41 * GIB):
        size = auto_batch_size(config, 2, free, 600, 15)
        assert size & (size - 1) == 0  # a power of two
        assert size * row_bytes(config, 2, 600, 15) <= free * MEMORY_SHARE
        assert (2 * size) * row_bytes(config, 2, 600, 15) > free * MEMORY_SHARE
    # Longer prompts, fewer rows; float32 halves them again.
    assert auto_batch_size(config, 2, 41 * GIB, 4000, 15) < auto_batch_size(
        config, 2, 41 * GIB, 600, 15)
    assert auto_batch_size(config, 4, 41 * GIB, 600, 15) == auto_batch_size(
        config, 2, 41 * GIB, 600, 15) // 2


def test_auto_is_a_validated_option_and_a_cli_value() -> None:
    from mike_sdk.cli.backend_args import batch_size

    assert HFBackend(batch_size="auto").options.batch_size == "auto"
    assert HFBackend(batch_size="auto").abilities.batch_size == AUTO_CPU_CAP  # no GPU here
    for bad in ("big", 0, -3):
        with pytest.raises(ConfigError, match="Invalid options for the 'hf' backend: "
                                              "batch_size"):
            HFBackend(batch_size=bad)
    assert batch_size("auto") == "auto" and batch_size("32") == 32
    with pytest.raises(ConfigError, match=r"--batch-size takes a whole number or 'auto', "
                                          r"got 'big'\."):
        batch_size("big")
    with pytest.raises(ConfigError, match="--batch-size must be at least 1, got 0"):
        batch_size("0")


# -- on the embedded model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_at_a_time() -> Iterator[tuple[HFBackend, list[Generation]]]:
    """The embedded model, float32 on the CPU, one prompt at a time, no prefix reuse."""
    backend = HFBackend(device="cpu", dtype="float32", batch_size=1, prefix_reuse=False)
    answers = run(backend.generate(requests()))
    yield backend, answers
    run(backend.aclose())


def sharing(loaded: HFBackend, **options: Any) -> HFBackend:
    backend = HFBackend(device="cpu", dtype="float32", **options)
    backend.model, backend._tokenizer = loaded.model, loaded._tokenizer
    return backend


@pytest.mark.parametrize("reuse", [False, True])
def test_auto_gives_the_answers_of_one_at_a_time(
        one_at_a_time: tuple[HFBackend, list[Generation]], reuse: bool) -> None:
    loaded, expected = one_at_a_time
    backend = sharing(loaded, batch_size="auto", prefix_reuse=reuse)
    sizes: list[int] = []
    hook = loaded.model.register_forward_pre_hook(
        lambda _m, args, kwargs: sizes.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    try:
        answers = run(backend.generate(requests()))
    finally:
        hook.remove()
    assert [seen(a) for a in answers] == [seen(e) for e in expected]
    assert max(sizes) > 1  # batched: auto chose more than one row from the free memory


@pytest.mark.parametrize("reuse", [False, True])
def test_out_of_memory_halves_the_batch_and_loses_no_prompt(
        one_at_a_time: tuple[HFBackend, list[Generation]], reuse: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    """A forward pass of more than 2 rows raises torch.OutOfMemoryError (standing in for a
    GPU's allocator): the call goes on at 4, then 2 rows, each prompt answered once."""
    loaded, expected = one_at_a_time
    backend = sharing(loaded, batch_size="auto", prefix_reuse=reuse)
    rows_run: list[int] = []
    refused: list[int] = []

    def allocator(_module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        rows = kwargs["input_ids"].shape[0]
        if rows > 2:
            refused.append(rows)
            raise torch.OutOfMemoryError("CUDA out of memory (stand-in)")
        rows_run.append(rows)

    hook = loaded.model.register_forward_pre_hook(allocator, with_kwargs=True)
    try:
        with caplog.at_level(logging.WARNING, logger="mike_sdk.backends.hf"):
            answers = run(backend.generate(requests()))
    finally:
        hook.remove()
    assert [seen(a) for a in answers] == [seen(e) for e in expected]
    assert refused and set(rows_run) <= {1, 2}
    assert backend._sizer.ceiling == 2  # later calls start at 2
    assert backend._sizer.largest(cuda=False) == 2
    assert "Out of memory at batch size 4: going on at 2." in caplog.text


def test_out_of_memory_at_a_fixed_size_or_at_one_row_is_one_clear_line(
        one_at_a_time: tuple[HFBackend, list[Generation]]) -> None:
    loaded, _ = one_at_a_time

    def allocator(_module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory (stand-in)")

    hook = loaded.model.register_forward_pre_hook(allocator, with_kwargs=True)
    try:
        with pytest.raises(BackendError, match=r"Out of memory at batch size 8: give a "
                                               r"smaller --batch-size, or --batch-size auto"):
            run(sharing(loaded, batch_size=8).generate(requests()))
        with pytest.raises(BackendError, match="Out of memory at batch size 1: the model "
                                               "and one prompt do not fit"):
            run(sharing(loaded, batch_size="auto").generate(requests()[:1]))
    finally:
        hook.remove()


def test_a_static_cache_gives_the_same_answers(
        one_at_a_time: tuple[HFBackend, list[Generation]],
        caplog: pytest.LogCaptureFixture) -> None:
    """``compile=True`` asks ``generate`` for a static cache (compiled on CUDA only); on the
    CPU the static cache runs uncompiled and must answer as the dynamic one does."""
    loaded, expected = one_at_a_time
    model, tokenizer = loaded.model, loaded.get_tokenizer().hf
    caches: list[str] = []
    hook = model.register_forward_pre_hook(
        lambda _m, args, kwargs: caches.append(type(kwargs.get("past_key_values")
                                                    or kwargs.get("cache")).__name__),
        with_kwargs=True)
    try:
        encoded = [list(tokenizer(p)["input_ids"]) for p in PROMPTS]
        ids, mask = left_pad(encoded, int(tokenizer.pad_token_id))
        with torch.inference_mode():
            static = generate_rows(model, tokenizer, ids, mask, requests(),
                                   [len(e) for e in encoded], static=True)
    finally:
        hook.remove()
    assert set(caches) == {"StaticCache"}
    assert [seen(a) for a in static] == [seen(e) for e in expected]
    # The option on a CPU: a warning, and the dynamic cache's answers.
    with caplog.at_level(logging.WARNING, logger="mike_sdk.backends.hf"):
        backend = sharing(loaded, batch_size=4, compile=True)
    assert "compile=True works on CUDA only: on cpu, generation runs without it." \
        in caplog.text
    answers = run(backend.generate(requests()))
    assert [seen(a) for a in answers] == [seen(e) for e in expected]
