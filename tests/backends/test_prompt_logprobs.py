"""The likelihood check through a server's prompt log-probabilities
(backends/prompt_logprobs.py).

vLLM cannot run here: tests/vllm_wire.py stands in for it, speaking its wire and
computing every log-probability with the embedded model through transformers. The
wrong-server case also runs against the real llama.cpp server
(tests/cli/test_backend_args.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from rows import read_rows
from vllm_wire import VllmWire

from mike_sdk.backend import Abilities, Backend, Likelihood, LikelihoodRequest
from mike_sdk.backends.hf import HFBackend
from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator
from mike_sdk.run.likelihood import likelihood_requests
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import STRATEGIES

# WikiFactDiff in two scripts: reliability and generality get the check (12 rows, with
# new answers both more and less probable than the old ones).
CONFIG = EvalConfig(tasks=("wikifactdiff",), languages=("de", "zh"),
                    strategy="zero-shot", limit=3, metrics=("reliability", "generality"),
                    language_id="script")


def checks(backend: Backend, benchmark: Benchmark, where: Path) -> dict[str, Any]:
    with ResponseCache(where / "cache") as cache:
        Evaluator(backend, benchmark=benchmark, cache=cache, progress=False).run(
            CONFIG, where / "run")
    return {row["id"]: row["likelihood"] for row in read_rows(where / "run")}


def wins(check: dict[str, float]) -> bool:
    return check["new_logprob"] > check["old_logprob"]


def server(wire: VllmWire, likelihood: str) -> OpenAIBackend:
    return OpenAIBackend(wire.model_name, base_url=wire.base_url, api_key="unused",
                         mode="completions", likelihood=likelihood,  # type: ignore[arg-type]
                         max_concurrency=2)


def test_server_verdicts_equal_the_hf_backends(vllm_wire: VllmWire, benchmark: Benchmark,
                                                hf_backend: HFBackend, tmp_path: Path) -> None:
    local = checks(hf_backend, benchmark, tmp_path / "hf")
    remote = checks(server(vllm_wire, "echo"), benchmark, tmp_path / "echo")
    assert local.keys() == remote.keys() and len(local) == 12
    for item, ours in remote.items():
        theirs = local[item]
        assert ours is not None and theirs is not None, item
        assert ours["new_logprob"] == pytest.approx(theirs["new_logprob"], abs=2e-3), item
        assert ours["old_logprob"] == pytest.approx(theirs["old_logprob"], abs=2e-3), item
        assert wins(ours) == wins(theirs), item
    # Both verdicts occur, so agreeing on them says something.
    assert {wins(c) for c in remote.values()} == {True, False}


def test_prompt_logprobs_score_as_echo_does(vllm_wire: VllmWire, benchmark: Benchmark) -> None:
    abilities = Abilities(completion=True, loglikelihood=True)
    planner = Planner(benchmark, CONFIG, STRATEGIES.create(CONFIG.strategy), abilities)
    pairs = list(likelihood_requests(list(planner), CONFIG, abilities).values())[:2]
    requests = [r for pair in pairs for r in pair]

    async def score(backend: OpenAIBackend) -> list[Likelihood]:
        try:
            return await backend.loglikelihood(requests)
        finally:
            await backend.aclose()

    echo = asyncio.run(score(server(vllm_wire, "echo")))
    prompt = asyncio.run(score(server(vllm_wire, "prompt_logprobs")))
    assert [s.tokens for s in echo] == [s.tokens for s in prompt]
    assert [s.logprob for s in echo] == pytest.approx([s.logprob for s in prompt], abs=1e-4)
    assert len({round(s.logprob, 3) for s in echo}) == len(echo)  # real, distinct scores


def test_the_continuation_is_scored_on_its_own_token_count(vllm_wire: VllmWire,
                                                           hf_backend: HFBackend) -> None:
    backend = server(vllm_wire, "echo")
    request = LikelihoodRequest(context="The capital of France is", continuation=" Paris")
    hf = asyncio.run(hf_backend.loglikelihood([request]))[0]

    async def score() -> Any:
        try:
            return await backend.loglikelihood([request, request])
        finally:
            await backend.aclose()

    first, again = asyncio.run(score())
    assert first == again and first.tokens == hf.tokens == 1
    assert first.logprob == pytest.approx(hf.logprob, abs=1e-3)


def test_a_server_with_wrong_prompt_logprobs_is_refused(vllm_wire_broken: VllmWire) -> None:
    backend = server(vllm_wire_broken, "echo")
    before = vllm_wire_broken.counts["/v1/completions"]

    async def score() -> None:
        try:
            await backend.loglikelihood([LikelihoodRequest(context="a", continuation=c)
                                         for c in "bcde"])
        finally:
            await backend.aclose()

    with pytest.raises(ConfigError, match=r"returns wrong prompt log-probabilities: after "
                       r"'The capital of France is' it generates ' the' with log-probability "
                       r"-1\.654 but scores the same token in the prompt at -\d"):
        asyncio.run(score())
    # One check (two requests) for the four requests at once, none of them scored.
    assert vllm_wire_broken.counts["/v1/completions"] - before == 2
    assert vllm_wire_broken.counts["/tokenize"] == 0
