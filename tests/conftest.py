"""Shared fixtures: the real BMIKE-53 copy in ../shared/bmike53 (never committed)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MIKE_SHARED_DATA", REPO.parent / "shared" / "bmike53"))


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker's torch (OpenMP) gets its share of the cores: with
    every worker using all of them, their threads outnumber the cores and spin waiting for
    each other. Set before torch is imported; an explicit ``$OMP_NUM_THREADS`` wins."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        share = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ.setdefault("OMP_NUM_THREADS", str(share))


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


def _shared_temp(factory: pytest.TempPathFactory) -> Path:
    """The folder every worker of this test run sees: under pytest-xdist, the parent of
    the workers' own base folders; otherwise the session's base folder."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def embedded_conversion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """The test run's one fresh conversion of the embedded model into an empty cache:
    ``(cache, folder, seconds)``. One conversion for all pytest-xdist workers: the first
    converts under a file lock and records it; the others wait and read the record. On a
    machine whose user cache has no converted model yet (a fresh CI machine), the folder
    is then copied there: the tests that load the model (the default cache) would
    otherwise convert it a second time (~80 s)."""
    from filelock import FileLock

    from mike_sdk.backends.embedded import (
        EMBEDDED_MODEL_NAME,
        cache_root,
        embedded_model_dir,
        is_converted,
    )

    shared = _shared_temp(tmp_path_factory)
    record = shared / "embedded-conversion.json"
    with FileLock(str(shared / "embedded-conversion.lock")):
        if record.is_file():
            done = json.loads(record.read_text(encoding="utf-8"))
            return Path(done["cache"]), Path(done["folder"]), float(done["seconds"])
        cache = shared / "mike-cache"
        cache.mkdir(exist_ok=True)
        started = time.perf_counter()
        folder = embedded_model_dir(cache)
        seconds = time.perf_counter() - started
        if not is_converted():
            target = cache_root() / "models" / EMBEDDED_MODEL_NAME
            target.parent.mkdir(parents=True, exist_ok=True)
            # Copied beside, then renamed into place (a stale folder moved aside first), as
            # the conversion itself does: a reader never sees a partial folder.
            work = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL_NAME}-", dir=target.parent))
            shutil.copytree(folder, work / "new")
            if target.exists():
                os.replace(target, work / "stale")
            os.replace(work / "new", target)
            shutil.rmtree(work, ignore_errors=True)
        record.write_text(json.dumps({"cache": str(cache), "folder": str(folder),
                                      "seconds": seconds}), encoding="utf-8")
    return cache, folder, seconds


def _convert_first(request: pytest.FixtureRequest) -> None:
    """Before the embedded model is loaded from the user cache: when that cache has no
    converted model yet, let :func:`embedded_conversion` fill it (one conversion, not
    two; another worker waits for it rather than converting beside it)."""
    from mike_sdk.backends.embedded import is_converted

    if not is_converted():
        request.getfixturevalue("embedded_conversion")


@pytest.fixture(autouse=True)
def _embedded_model_ready(request: pytest.FixtureRequest) -> None:
    """Tests marked ``model`` load the embedded model: see :func:`_convert_first`."""
    if request.node.get_closest_marker("model"):
        _convert_first(request)


@pytest.fixture(scope="session")
def hf_backend(request: pytest.FixtureRequest) -> Any:
    """The embedded model on the ``hf`` backend (batch 4), loaded once per session on first
    use: the tests that run it, the vLLM stand-in and the ``hf`` backends with other
    options share these weights (each load costs seconds and a gigabyte)."""
    from mike_sdk.backends.hf import HFBackend

    _convert_first(request)
    return HFBackend(batch_size=4)


# Local servers for the remote-backend tests (session scope, started on first use).
from batch_servers import batch_server  # noqa: E402, F401
from servers import faults, katan, llama  # noqa: E402, F401
from strict_api import strict_api  # noqa: E402, F401
from vllm_wire import vllm_wire, vllm_wire_broken  # noqa: E402, F401
