"""A fleet of three real llama.cpp servers (SmolLM2) behind the OpenAI backend, one of
them killed in the middle of a run."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rows import read_rows
from servers import llama_server, llama_servers

from mike_sdk.backends.openai import OpenAIBackend
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.evaluator import Evaluator

# 4 items x 4 metrics = 16 requests, about 0.3 s each on one core: five or so per server,
# enough for the victim to answer twice and die holding a third.
CONFIG = EvalConfig(tasks=("zsre",), languages=("de",), strategy="zero-shot", limit=4,
                    likelihood=False)


@pytest.fixture(scope="module")
def three_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:
    """Three llama.cpp servers, one thread each (the same arithmetic on every one)."""
    with llama_servers(tmp_path_factory.mktemp("fleet"), 3, threads=1) as servers:
        yield servers


def run(backend: OpenAIBackend, benchmark: Benchmark, where: Path,
        during: Callable[[threading.Event], None] | None = None
        ) -> tuple[list[dict[str, Any]], ModelClient]:
    """The run's rows and client; ``during`` runs beside it, told when the run is over."""
    finished = threading.Event()
    with ResponseCache(where / "cache") as cache:
        client = ModelClient(backend, cache=cache)
        watcher = threading.Thread(target=during, args=(finished,), daemon=True) \
            if during else None
        if watcher:
            watcher.start()
        try:
            Evaluator(client, benchmark=benchmark, progress=False).run(CONFIG, where / "run")
        finally:
            finished.set()
        if watcher:
            watcher.join(30)
    return read_rows(where / "run"), client


def answers(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {row["id"]: row["answer"] for row in rows}


def test_killing_a_server_mid_run_loses_nothing(three_servers: list[Any], benchmark: Benchmark,
                                                tmp_path: Path) -> None:
    urls = [url for url, _ in three_servers]
    single, _ = run(OpenAIBackend("smollm2", base_url=urls[1], api_key="unused",
                                  max_concurrency=1), benchmark, tmp_path / "one")

    fleet_backend = OpenAIBackend("smollm2", base_url=urls, api_key="unused",
                                  max_concurrency=1)
    fleet = fleet_backend.fleet
    assert fleet is not None and fleet_backend.abilities.max_concurrency == 3
    victim = fleet.members[0]
    killed_after: list[int] = []

    def kill_when_busy(finished: threading.Event) -> None:
        # Kill server 0 once it has answered twice and holds a request in flight (watching
        # until the run is over, however slow the machine).
        while not finished.is_set():
            if victim.answered >= 2 and victim.in_flight:
                three_servers[0][1].kill()
                killed_after.append(victim.answered)
                return
            time.sleep(0.005)

    rows, client = run(fleet_backend, benchmark, tmp_path / "fleet", during=kill_when_busy)

    assert killed_after, "the server was never killed mid-request"
    assert victim.failed >= 1 and victim.down_until is not None
    assert victim.answered == killed_after[0], "nothing answered by the dead server"
    # Every row is there, with the answers one server gives.
    assert len(rows) == len(single) == 16
    assert not any(row["error"] for row in rows)
    assert answers(rows) == answers(single)
    # Each request answered once: answers stored = calls made = answers the servers gave.
    assert sum(m.answered for m in fleet.members) == client.calls == len(
        {row["cache_key"] for row in rows})
    assert all(m.answered for m in fleet.members[1:])


def test_a_server_that_comes_back_rejoins_the_fleet(tmp_path: Path) -> None:
    from mike_sdk.backend import GenerationRequest

    questions = [GenerationRequest(prompt=f"Q: What is {i} plus {i}?\nA:", max_new_tokens=3)
                 for i in range(4)]
    with contextlib.ExitStack() as stack:
        (first, proc), (second, _) = stack.enter_context(llama_servers(tmp_path, 2, threads=1))
        backend = OpenAIBackend("smollm2", base_url=[first, second], api_key="unused",
                                mode="completions", max_concurrency=1)
        fleet = backend.fleet
        assert fleet is not None
        member = fleet.members[0]

        async def ask() -> None:
            await backend.generate(questions)
            await backend.aclose()

        asyncio.run(ask())
        # One request at a time each: both servers take some (how many depends on their
        # speed on a busy machine, so no exact split is asserted).
        before = member.answered
        assert before >= 1 and sum(m.answered for m in fleet.members) == len(questions)
        proc.kill()
        proc.wait()
        asyncio.run(ask())
        assert member.answered == before and member.down_until is not None
        # The same server back on its port: after the pause it is probed and answers.
        port = int(first.rsplit(":", 1)[1].split("/")[0])
        stack.enter_context(llama_server(tmp_path, threads=1, port=port))
        # Until its pause is over (the restart above usually took longer).
        assert member.down_until is not None
        time.sleep(max(0.0, member.down_until - time.monotonic()))
        asyncio.run(ask())
        assert member.answered > before and member.down_until is None


def test_a_fleet_is_one_cache_identity(tmp_path: Path) -> None:
    a = OpenAIBackend("llama", base_url=["http://a:1/v1", "http://b:2/v1"], api_key="k")
    b = OpenAIBackend("llama", base_url=["http://c:3/v1", "http://a:1/v1"], api_key="k")
    one = OpenAIBackend("llama", base_url="http://a:1/v1", api_key="k")
    assert a.identity == b.identity and a.identity.model == "llama@fleet"
    assert one.identity.model == "llama@a:1"
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text('name = "h100s"\n[[servers]]\nurl = "http://x:9/v1"\n'
                          "concurrency = 32\n[[servers]]\nurl = \"http://y:9/v1\"\n")
    named = OpenAIBackend("llama", fleet=str(fleet_file), api_key="k", max_concurrency=4)
    assert named.identity.model == "llama@h100s"
    assert named.abilities.max_concurrency == 36
    assert "http://y:9/v1" in repr(named)


def test_fleets_are_refused_where_they_make_no_sense(tmp_path: Path) -> None:
    from mike_sdk.backends.anthropic import AnthropicBackend

    with pytest.raises(ConfigError, match="OpenAI-compatible servers"):
        AnthropicBackend("claude-haiku-4-5", base_url=["http://a:1", "http://b:1"],
                         api_key="k")
    fleet_file = tmp_path / "f.json"
    fleet_file.write_text('{"servers": [{"url": "http://a:1/v1"}]}')
    with pytest.raises(ConfigError, match="not both"):
        OpenAIBackend("llama", base_url="http://b:1/v1", fleet=str(fleet_file))
