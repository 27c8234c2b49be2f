"""Shared caches pay once: a lease per request in the cache folder, released on crash.

Real OS processes where it matters (two runs over the same requests; a holder killed
with SIGKILL); clients of one process otherwise. The mock backend counts what each
process sent (``len(backend.requests)``: no retries happen here).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from mike_sdk.backend import GenerationRequest
from mike_sdk.backends.mock import MockBackend
from mike_sdk.calls import leases as leases_module
from mike_sdk.calls.cache import ResponseCache
from mike_sdk.calls.client import ModelClient
from mike_sdk.calls.leases import Leases, process_alive
from mike_sdk.calls.limits import Limits
from mike_sdk.calls.retry import RetryPolicy

SPAWN = multiprocessing.get_context("spawn")


def prompts(n: int, start: int = 0) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"Question {i}: who leads Acme?")
            for i in range(start, start + n)]


def keyed(client: ModelClient, requests: list[GenerationRequest]) -> dict[str, GenerationRequest]:
    return {client.key(r): r for r in requests}


def _run(folder: str, count: int, shared: bool, barrier: Any, results: Any) -> None:
    """One process: generate ``count`` requests against the shared cache folder."""
    backend = MockBackend(latency_s=0.05, batch_size=4)
    with ResponseCache(folder) as cache:
        client = ModelClient(backend, cache=cache, concurrency=4, shared=shared)
        barrier.wait(30)
        answers = client.generate_sync(prompts(count))
    results.put((len(backend.requests), sum(a.cached for a in answers),
                 sum(a.generation is not None for a in answers)))


def two_processes(folder: Path, count: int, shared: bool) -> list[tuple[int, int, int]]:
    barrier, results = SPAWN.Barrier(2), SPAWN.Queue()
    workers = [SPAWN.Process(target=_run, args=(str(folder), count, shared, barrier, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    out = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    return out


def test_two_processes_on_one_cache_pay_once_per_request(tmp_path: Path) -> None:
    count = 240
    reports = two_processes(tmp_path / "cache", count, shared=True)
    sent = [r[0] for r in reports]
    assert sum(sent) == count  # each unique request sent once, by one of the two
    assert all(r[2] == count for r in reports)  # and each process has every answer
    assert all(r[1] == count - r[0] for r in reports)  # the others read from the cache
    assert min(sent) > 0  # batches are leased as they get a slot: the work is shared
    with ResponseCache(tmp_path / "cache") as cache:
        assert len(cache) == count


def test_without_leases_two_processes_pay_twice(tmp_path: Path) -> None:
    # What the leases fix (shared=False emulates the cache before them).
    reports = two_processes(tmp_path / "cache", 120, shared=False)
    assert sum(r[0] for r in reports) > 120


def _hold(folder: str, count: int) -> None:
    """A holder that leases ``count`` requests, then takes a minute to answer."""
    backend = MockBackend(latency_s=60, batch_size=count)
    with ResponseCache(folder) as cache:
        ModelClient(backend, cache=cache, concurrency=1).generate_sync(prompts(count))


def held_by(folder: Path, pid: int) -> int:
    path = folder / "leases.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM lease WHERE pid = ?", (pid,))
                       .fetchone()[0])
        except sqlite3.OperationalError:  # the table is not made yet
            return 0


def test_a_holder_killed_mid_call_is_taken_over(tmp_path: Path) -> None:
    folder, count = tmp_path / "cache", 30
    holder = SPAWN.Process(target=_hold, args=(str(folder), count))
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while held_by(folder, holder.pid or 0) < count:
            assert time.monotonic() < deadline and holder.is_alive()
            time.sleep(0.05)
        backend = MockBackend(batch_size=8)

        async def main() -> tuple[dict[str, Any], float]:
            with ResponseCache(folder) as cache:
                client = ModelClient(backend, cache=cache)
                task = asyncio.create_task(client.generate(keyed(client, prompts(count))))
                await asyncio.sleep(1.0)
                # The holder lives: nothing is sent here, the answers are waited for.
                assert not task.done() and backend.calls == 0
                holder.kill()  # SIGKILL mid-call: its leases stay behind, its pid is gone
                killed = time.monotonic()
                answers = await asyncio.wait_for(task, 10)
                assert client.leases is not None and client.leases.taken_over == count
                return answers, time.monotonic() - killed

        answers, took = asyncio.run(main())
    finally:
        holder.kill()
        holder.join(10)
    assert len(answers) == count and all(a.generation is not None for a in answers.values())
    assert len(backend.requests) == count
    assert took < 5  # a dead holder's leases are free at once (the next look, <= 1 s)


def test_an_expired_lease_of_another_host_is_taken_over(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    backend = MockBackend()
    with ResponseCache(folder) as cache:
        client = ModelClient(backend, cache=cache)
        key = client.key(prompts(1)[0])
        with monkeypatch.context() as patch:
            # A holder on another host: its pid cannot be checked, only its expiry.
            patch.setattr(leases_module, "_HOST", "another-host")
            assert Leases(folder, lease_s=1.0).acquire([key]) == [key]
        start = time.monotonic()
        answers = client.generate_sync(prompts(1))
        took = time.monotonic() - start
    assert answers[0].generation is not None and len(backend.requests) == 1
    assert 0.9 <= took < 4


def test_several_clients_of_one_process_pay_once(tmp_path: Path) -> None:
    backends = [MockBackend(latency_s=0.02, batch_size=2) for _ in range(3)]

    async def main() -> list[dict[str, Any]]:
        caches = [ResponseCache(tmp_path / "cache") for _ in backends]
        clients = [ModelClient(b, cache=c, concurrency=3) for b, c in zip(backends, caches,
                                                                         strict=True)]
        try:
            # Overlapping request sets, in flight at once.
            return list(await asyncio.gather(*(
                c.generate(keyed(c, prompts(60, start=20 * i))) for i, c in enumerate(clients))))
        finally:
            for cache in caches:
                cache.close()

    results = asyncio.run(main())
    assert [len(r) for r in results] == [60, 60, 60]
    assert sum(len(b.requests) for b in backends) == 100  # 0..99: each sent once


def test_one_client_with_two_calls_in_flight_sends_a_request_once(tmp_path: Path) -> None:
    # The evaluator keeps two chunks in flight; a prompt repeated across them is one call.
    backend = MockBackend(latency_s=0.02, batch_size=1)
    with ResponseCache(tmp_path / "cache") as cache:
        client = ModelClient(backend, cache=cache, concurrency=8)

        async def main() -> list[dict[str, Any]]:
            return list(await asyncio.gather(client.generate(keyed(client, prompts(30))),
                                             client.generate(keyed(client, prompts(30, 10)))))

        first, second = asyncio.run(main())
    assert len(first) == len(second) == 30 and len(backend.requests) == 40
    assert sum(a.cached for a in (*first.values(), *second.values())) == 20


def test_a_refusal_is_recorded_by_the_waiter_without_sending(tmp_path: Path) -> None:
    refuser = MockBackend(latency_s=0.3, batch_size=1, failure_rate=1.0,
                          failure_kinds=("bad_request",), failures_per_request=None)
    waiter = MockBackend()

    async def main() -> tuple[Any, Any, ModelClient]:
        with ResponseCache(tmp_path / "cache") as one, ResponseCache(tmp_path / "cache") as two:
            holder, other = ModelClient(refuser, cache=one), ModelClient(waiter, cache=two)
            request = keyed(holder, prompts(1))
            first = asyncio.create_task(holder.generate(request))
            await asyncio.sleep(0.1)  # the holder has the lease and is sending
            second = await other.generate(request)
            return await first, second, other

    first, second, other = asyncio.run(main())
    [refused] = first.values()
    [recorded] = second.values()
    assert refused.error and recorded.error == refused.error and recorded.generation is None
    assert waiter.calls == 0 and other.errors == 1
    # A later run sends it again: refusals are not cached, and the mark does not hold it.
    with ResponseCache(tmp_path / "cache") as cache:
        assert ModelClient(waiter, cache=cache).generate_sync(prompts(1))[0].generation
    assert waiter.calls == 1


def test_a_holder_that_stops_gives_its_leases_to_the_waiter(tmp_path: Path) -> None:
    failing = MockBackend(latency_s=0.3, batch_size=4, failure_rate=1.0,
                          failures_per_request=None)
    working = MockBackend(batch_size=4)
    once = Limits(retry=RetryPolicy(max_attempts=1))

    async def main() -> tuple[ModelClient, dict[str, Any]]:
        with ResponseCache(tmp_path / "cache") as cache:
            holder = ModelClient(failing, cache=cache, limits=once)
            other = ModelClient(working, cache=cache)
            first = asyncio.create_task(holder.generate(keyed(holder, prompts(8))))
            await asyncio.sleep(0.1)
            answers = await asyncio.wait_for(other.generate(keyed(other, prompts(8))), 10)
            await first
            return holder, answers

    holder, answers = asyncio.run(main())
    assert holder.stopped == "error"
    assert len(answers) == 8 and all(a.generation is not None for a in answers.values())
    assert len(working.requests) == 8


def test_cache_hits_take_no_lease(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    with ResponseCache(folder) as cache:
        ModelClient(MockBackend(), cache=cache).generate_sync(prompts(20))
    (folder / "leases.sqlite").unlink()
    with ResponseCache(folder) as cache:
        answers = ModelClient(MockBackend(), cache=cache).generate_sync(prompts(20))
    assert all(a.cached for a in answers)
    assert not (folder / "leases.sqlite").exists()


def test_a_dead_or_reused_pid_is_not_alive() -> None:
    child = SPAWN.Process(target=time.sleep, args=(30,))
    child.start()
    assert child.pid is not None and process_alive(child.pid)
    assert not process_alive(child.pid, started="1")  # same pid, another start time
    child.kill()
    time.sleep(0.2)
    assert not process_alive(child.pid)  # a zombie until joined: dead all the same
    child.join(10)
    assert not process_alive(child.pid)


def test_a_damaged_lease_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "leases.sqlite").write_bytes(b"not a database" * 100)
    leases = Leases(tmp_path)
    assert leases.acquire(["k"]) == ["k"]
    assert [p.name.split(".damaged-")[0] for p in tmp_path.glob("*.damaged-*")] == [
        "leases.sqlite"]
