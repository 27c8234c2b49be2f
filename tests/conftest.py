"""Shared fixtures: the real BMIKE-53 copy in ../shared/bmike53 (never committed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MIKE_SHARED_DATA", REPO.parent / "shared" / "bmike53"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real benchmark folder; tests that need it skip when it is absent."""
    if not (SHARED_DATA / "data" / "BMIKE53").is_dir():
        pytest.skip(f"BMIKE-53 copy not found at {SHARED_DATA} (set MIKE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def benchmark(data_dir: Path):  # type: ignore[no-untyped-def]
    from mike_sdk.data.benchmark import Benchmark

    return Benchmark(data_dir)


# Local servers for the remote-backend tests (session scope, started on first use).
from batch_servers import batch_server  # noqa: E402, F401
from servers import faults, katan, llama  # noqa: E402, F401
from strict_api import strict_api  # noqa: E402, F401
from vllm_wire import vllm_wire, vllm_wire_broken  # noqa: E402, F401
