"""Shared fixtures: the real BMIKE-53 copy in ../shared/bmike53 (never committed)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def embedded_conversion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """The session's one fresh conversion of the embedded model into an empty cache:
    ``(cache, folder, seconds)``. On a machine whose user cache has no converted model yet
    (a fresh CI machine), the folder is then copied there: the tests that load the model
    (the default cache) would otherwise convert it a second time (~80 s)."""
    from mike_sdk.backends.embedded import (
        EMBEDDED_MODEL_NAME,
        cache_root,
        embedded_model_dir,
        is_converted,
    )

    cache = tmp_path_factory.mktemp("mike-cache")
    started = time.perf_counter()
    folder = embedded_model_dir(cache)
    seconds = time.perf_counter() - started
    if not is_converted():
        target = cache_root() / "models" / EMBEDDED_MODEL_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copied beside, then renamed into place (a stale folder moved aside first), as the
        # conversion itself does: a reader never sees a partial folder.
        work = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL_NAME}-", dir=target.parent))
        shutil.copytree(folder, work / "new")
        if target.exists():
            os.replace(target, work / "stale")
        os.replace(work / "new", target)
        shutil.rmtree(work, ignore_errors=True)
    return cache, folder, seconds


@pytest.fixture(scope="session")
def hf_backend() -> Any:
    """The embedded model on the ``hf`` backend (batch 4), loaded once per session on first
    use: the tests that run it, the vLLM stand-in and the ``hf`` backends with other
    options share these weights (each load costs seconds and a gigabyte)."""
    from mike_sdk.backends.hf import HFBackend

    return HFBackend(batch_size=4)


# Local servers for the remote-backend tests (session scope, started on first use).
from batch_servers import batch_server  # noqa: E402, F401
from servers import faults, katan, llama  # noqa: E402, F401
from strict_api import strict_api  # noqa: E402, F401
from vllm_wire import vllm_wire, vllm_wire_broken  # noqa: E402, F401
