"""The fleet's routing, failover and recovery (mike_sdk/calls/fleet.py).

The routing is exercised here with coroutines standing in for servers (the sending
itself is not under test); tests/backends/test_fleet_servers.py runs a fleet of real
llama.cpp servers over loopback.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mike_sdk.calls.failures import (
    BadRequest,
    ModelNotFound,
    RateLimited,
    Transient,
    Unreachable,
)
from mike_sdk.calls.fleet import DOWN_AFTER, PAUSE_S, Fleet, Member, read_fleet
from mike_sdk.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fleet_of(*capacities: int, clock: Clock | None = None) -> Fleet[str]:
    members = [Member(label=f"s{i}", capacity=c, target=f"s{i}")
               for i, c in enumerate(capacities)]
    return Fleet(members, clock=clock or Clock())


def test_requests_go_to_the_least_loaded_server() -> None:
    fleet = fleet_of(2, 1, 1)
    seen: list[str] = []
    release = asyncio.Event()

    async def hold(target: str) -> str:
        seen.append(target)
        await release.wait()
        return target

    async def main() -> list[str]:
        tasks = [asyncio.ensure_future(fleet.send(hold)) for _ in range(4)]
        await asyncio.sleep(0.01)
        # Capacity 4 in all: every request is in flight, each server filled to its share.
        assert sorted(seen) == ["s0", "s0", "s1", "s2"]
        fifth = asyncio.ensure_future(fleet.send(hold))
        await asyncio.sleep(0.01)
        assert len(seen) == 4, "a full fleet makes the next request wait"
        release.set()
        return await asyncio.gather(*tasks, fifth)

    answers = asyncio.run(main())
    assert len(answers) == 5
    assert sum(m.answered for m in fleet.members) == 5
    assert all(m.in_flight == 0 for m in fleet.members)


def test_an_unreachable_server_is_taken_out_and_its_request_moves() -> None:
    clock = Clock()
    fleet = fleet_of(1, 1, clock=clock)
    calls: list[str] = []

    async def call(target: str) -> str:
        calls.append(target)
        if target == "s0":
            raise Unreachable("connection refused")
        return f"from {target}"

    async def main() -> list[str]:
        return [await fleet.send(call) for _ in range(3)]

    assert asyncio.run(main()) == ["from s1"] * 3
    assert calls == ["s0", "s1", "s1", "s1"], "out after one refusal, not tried again yet"
    s0 = fleet.members[0]
    assert (s0.failed, s0.answered, s0.down_until) == (1, 0, 100.0 + PAUSE_S)

    # After its pause it gets one probe; it answers now and is back.
    clock.now += PAUSE_S
    calls.clear()

    async def healthy(target: str) -> str:
        calls.append(target)
        return target

    async def again() -> str:
        return await fleet.send(healthy)

    assert asyncio.run(again()) == "s0"
    assert s0.down_until is None and s0.answered == 1


def test_requests_in_flight_on_a_dying_server_take_it_out_once() -> None:
    fleet = fleet_of(3, 3)
    dying = asyncio.Event()

    async def call(target: str) -> str:
        await dying.wait()
        if target == "s0":
            raise Unreachable("connection reset")
        return target

    async def main() -> list[str]:
        tasks = [asyncio.ensure_future(fleet.send(call)) for _ in range(6)]
        await asyncio.sleep(0.01)
        assert fleet.members[0].in_flight == 3
        dying.set()
        return await asyncio.gather(*tasks)

    # The three requests it held moved to s1; it was taken out once, with the first pause.
    assert asyncio.run(main()) == ["s1"] * 6
    s0 = fleet.members[0]
    assert (s0.failed, s0.down_until, s0.pause) == (3, 100.0 + PAUSE_S, 2 * PAUSE_S)


def test_server_errors_take_a_server_out_after_several_in_a_row() -> None:
    fleet = fleet_of(1, 1)
    count = {"s0": 0, "s1": 0}

    async def call(target: str) -> str:
        count[target] += 1
        if target == "s0":
            raise Transient("Server error (500)", status=500)
        return target

    async def main() -> None:
        for _ in range(DOWN_AFTER + 3):
            # Sent one at a time: s0 is the least loaded with the fewest answers.
            assert await fleet.send(call) == "s1"

    asyncio.run(main())
    assert count["s0"] == DOWN_AFTER, "out after DOWN_AFTER failures in a row"
    assert fleet.members[0].down_until is not None


def test_failures_of_the_request_or_account_are_not_the_servers() -> None:
    fleet = fleet_of(1, 1)
    for failure in (BadRequest("400"), RateLimited("429")):
        async def call(target: str, failure: Exception = failure) -> str:
            raise failure

        with pytest.raises(type(failure)):
            asyncio.run(fleet.send(call))
    assert all(m.down_until is None and m.failed == 0 for m in fleet.members)


def test_a_failure_that_stops_the_run_names_the_server() -> None:
    fleet = fleet_of(1, 1)

    async def call(target: str) -> str:
        raise ModelNotFound("Not found (404): no model 'llama'", status=404)

    with pytest.raises(ModelNotFound, match=r"no model 'llama' \(server s0\)"):
        asyncio.run(fleet.send(call))


def test_a_fleet_with_every_server_out_raises_for_the_retry_layer() -> None:
    clock = Clock()
    fleet = fleet_of(1, 1, clock=clock)

    async def refused(target: str) -> str:
        raise Unreachable(f"{target} refused")

    with pytest.raises(Unreachable, match="s1 refused"):
        asyncio.run(fleet.send(refused))
    # Both are out and not due: the next request fails at once, naming the servers.
    with pytest.raises(Unreachable, match=r"Every server of the fleet is out \(s0, s1\)"):
        asyncio.run(fleet.send(refused))
    # A probe that fails again doubles the pause.
    clock.now += PAUSE_S
    with pytest.raises(Unreachable):
        asyncio.run(fleet.send(refused))
    assert fleet.members[0].down_until == clock.now + 2 * PAUSE_S


def test_fleet_files(tmp_path: Path) -> None:
    good = tmp_path / "fleet.toml"
    good.write_text('name = "llama-8b"\n[[servers]]\nurl = "http://a:8000/v1"\n'
                    'concurrency = 64\n[[servers]]\nurl = "http://b:8000/v1"\n')
    spec = read_fleet(good)
    assert spec.name == "llama-8b"
    assert [(s.url, s.concurrency) for s in spec.servers] == [
        ("http://a:8000/v1", 64), ("http://b:8000/v1", None)]

    bad = tmp_path / "fleet.json"
    bad.write_text(json.dumps({"servers": [{"url": "gpu1:8000/v1", "concurency": 2}]}))
    with pytest.raises(ConfigError) as caught:
        read_fleet(bad)
    message = str(caught.value)
    assert str(bad) in message and "servers.0.url" in message and "concurency" in message

    with pytest.raises(ConfigError, match="not found"):
        read_fleet(tmp_path / "missing.toml")
