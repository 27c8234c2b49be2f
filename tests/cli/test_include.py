"""``mike --include``: user code that registers strategies or backends, before the command."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mike_sdk.backend import BACKENDS
from mike_sdk.cli.main import main
from mike_sdk.strategy import STRATEGIES

STRATEGY = '''
from mike_sdk import STRATEGIES
from mike_sdk.prompts.mike import ZeroShot


@STRATEGIES.register("{name}")
class Mine(ZeroShot):
    """Zero-shot, registered by an included file."""
'''

BACKEND = '''
from collections.abc import Sequence

from mike_sdk.backend import BACKENDS, Backend, Generation, GenerationRequest, Identity
from {helper} import ANSWER


@BACKENDS.register("{name}")
class Fixed(Backend):
    """Always the same answer, registered by an included file."""

    @property
    def identity(self) -> Identity:
        return Identity(kind="{name}", model="fixed")

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return [Generation(text=ANSWER) for _ in requests]
'''


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Registrations, sys.path and the modules imported from tmp_path are put back."""
    for registry in (STRATEGIES, BACKENDS):
        registry.names()
        monkeypatch.setattr(registry, "_factories", dict(registry._factories))
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_included_file_registers_a_strategy_that_eval_accepts(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "my_strats.py"
    script.write_text(STRATEGY.format(name="included-zero-shot"))
    assert main(["--include", str(script), "strategies"]) == 0
    assert "included-zero-shot" in capsys.readouterr().out
    common = ["--strategy", "included-zero-shot", "--backend", "openai", "--model",
              "gpt-4o-mini", "--dry-run", "--data-dir", str(data_dir), "--tasks", "zsre",
              "--languages", "de", "--limit", "2", "--cache-dir", str(tmp_path / "cache"),
              "--run-dir", str(tmp_path / "run")]
    # Before the subcommand, after it, and both at once (a file is imported once).
    for argv in (["--include", str(script), "eval", *common],
                 ["eval", "--include", str(script), *common],
                 ["--include", str(script), "eval", "--include", str(script), *common]):
        assert main(argv) == 0, capsys.readouterr().err
    assert "included-zero-shot" not in capsys.readouterr().err


def test_an_unincluded_strategy_is_unknown(tmp_path: Path, data_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--strategy", "never-registered", "--backend", "openai", "--model",
                 "gpt-4o-mini", "--dry-run", "--data-dir", str(data_dir),
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "Unknown strategy 'never-registered'" in capsys.readouterr().err


def test_module_name_and_sibling_imports(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fixed_helper.py").write_text("ANSWER = 'Paris'\n")
    (tmp_path / "fixed_backend.py").write_text(
        BACKEND.format(name="included-fixed", helper="fixed_helper"))
    # A file may import the modules beside it, as under `python file.py`.
    assert main(["backends", "--include", str(tmp_path / "fixed_backend.py")]) == 0
    assert "included-fixed" in capsys.readouterr().out

    (tmp_path / "pkg_strats").mkdir()
    (tmp_path / "pkg_strats" / "__init__.py").write_text("")
    (tmp_path / "pkg_strats" / "mine.py").write_text(STRATEGY.format(name="from-a-module"))
    sys.path.insert(0, str(tmp_path))
    assert main(["--include", "pkg_strats.mine", "strategies"]) == 0
    assert "from-a-module" in capsys.readouterr().out


def test_missing_file_and_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.py"
    assert main(["--include", str(missing), "strategies"]) == 2
    assert capsys.readouterr().err == f"mike: error: --include {missing}: no such file ({missing}).\n"
    assert main(["--include", "no_such_module_here", "strategies"]) == 2
    err = capsys.readouterr().err
    assert "no module named 'no_such_module_here'" in err and err.count("\n") == 1
    # A module that exists but lacks a dependency: the error names the dependency.
    (tmp_path / "needs_dep.py").write_text("import no_such_dependency_zz\n")
    sys.path.insert(0, str(tmp_path))
    assert main(["--include", "needs_dep", "strategies"]) == 2
    err = capsys.readouterr().err
    assert "importing module 'needs_dep' failed: ModuleNotFoundError: No module named " \
           "'no_such_dependency_zz'" in err


def test_import_error_is_one_line_unless_verbose(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "raises.py"
    script.write_text("import json\nraise ValueError('bad setting\\nsecond line')\n")
    assert main(["--include", str(script), "strategies"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "importing file" in err and "raises.py" in err and "ValueError: bad setting" in err
    assert main(["-v", "--include", str(script), "backends"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "raises.py" in err and err.endswith("bad setting\n")
    (tmp_path / "twice.py").write_text(STRATEGY.format(name="zero-shot"))
    assert main(["--include", str(tmp_path / "twice.py"), "strategies"]) == 2
    assert "already registered" in capsys.readouterr().err
