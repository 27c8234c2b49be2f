"""Doctest collection for the whole repository (``python -m pytest`` runs them).

``backends/`` and ``prompts/`` are installed as ``mike_sdk.backends`` and
``mike_sdk.prompts``; pytest would import ``backends/hf.py`` a second time as
``backends.hf`` and register every backend twice. So before pytest imports one of
their files, its installed module is put in ``sys.modules`` under the path's name too.
A module whose optional dependency is missing is not collected (its doctests skip).

Doctests run in a fresh temporary folder holding ``bmike53`` (a link to the real
data, see ``tests/conftest.py``, also ``$MIKE_DATA_DIR``), with ``MIKE_CACHE_DIR``
inside it, so examples
write no files into the repository or the user cache.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SHARED_DATA = Path(os.environ.get("MIKE_SHARED_DATA", ROOT.parent / "shared" / "bmike53"))
_INSTALLED_AS = {"backends": "mike_sdk.backends", "prompts": "mike_sdk.prompts"}


def _alias(path: Path) -> bool:
    """Put the installed module of ``backends/x.py`` in ``sys.modules`` as ``backends.x``
    too; False when a module of the package cannot be imported for want of an optional
    (third-party) dependency."""
    try:
        parts = path.relative_to(ROOT).with_suffix("").parts
    except ValueError:
        return True
    if not parts or parts[0] not in (*_INSTALLED_AS, "mike_sdk") or path.suffix != ".py":
        return True
    if parts[-1] == "__init__":
        parts = parts[:-1]
    installed = ".".join((_INSTALLED_AS.get(parts[0], parts[0]), *parts[1:]))
    try:
        module = importlib.import_module(installed)
    except ModuleNotFoundError as exc:
        ours = (exc.name or "").split(".")[0] in (*_INSTALLED_AS, "mike_sdk")
        return ours  # a missing module of ours is a bug: let the import fail loudly
    if parts[0] in _INSTALLED_AS:
        sys.modules.setdefault(parts[0], importlib.import_module(_INSTALLED_AS[parts[0]]))
        sys.modules[".".join(parts)] = module
    return True


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out modules whose optional dependency is not installed."""
    return None if _alias(collection_path) else True


@pytest.hookimpl(tryfirst=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Alias before the doctest plugin imports the file (also for files named on the
    command line, which ``pytest_ignore_collect`` does not see)."""
    _alias(file_path)


@pytest.fixture(autouse=True)
def _doctest_folder(request: pytest.FixtureRequest) -> Iterator[None]:
    """Doctests only: run in a temporary folder with the data as ``bmike53``."""
    from _pytest.doctest import DoctestItem

    if not isinstance(request.node, DoctestItem):
        yield
        return
    if "bmike53" in str(request.node.dtest.docstring) and not (
            SHARED_DATA / "data" / "BMIKE53").is_dir():
        pytest.skip(f"BMIKE-53 copy not found at {SHARED_DATA} (set MIKE_SHARED_DATA)")
    folder = request.getfixturevalue("tmp_path")
    (folder / "bmike53").symlink_to(SHARED_DATA, target_is_directory=True)
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.chdir(folder)
    monkeypatch.setenv("MIKE_CACHE_DIR", str(folder / "cache"))
    monkeypatch.setenv("MIKE_DATA_DIR", str(folder / "bmike53"))
    yield
