"""The viewer's tests share three small real runs (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from runs import Runs, make_runs


@pytest.fixture(scope="session")
def view_runs(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """``(editor, hostile, flaky)``: see :func:`runs.make_runs`."""
    return make_runs(data_dir, tmp_path_factory.mktemp("view-runs"))
