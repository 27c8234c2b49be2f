"""A backend whose optional packages are missing fails in one line naming the extra, before
anything runs; ``mike backends`` says which ones are not installed.

Packages are made missing the way Python sees an uninstalled one: ``sys.modules[name] =
None`` makes ``import name`` fail and ``importlib.util.find_spec(name)`` return None.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mike_sdk import load_backend
from mike_sdk.cli.main import main
from mike_sdk.extras import MissingExtra, missing_modules, require_extra


def uninstall(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(("backend", "model", "gone", "extra"), [
    ("openai", "gpt-5-mini", ("openai",), "api"),
    ("azure-openai", "gpt-5-mini", ("openai",), "api"),
    ("anthropic", "claude-sonnet-4-6", ("anthropic",), "api"),
    ("anthropic-bedrock", "us.anthropic.claude-sonnet-4-6", ("boto3", "botocore"), "cloud"),
    ("anthropic-vertex", "claude-sonnet-4-6", ("google.auth",), "cloud"),
    ("hf", "some/model", ("torch",), "hf"),
])
def test_eval_without_the_extra_is_one_line_naming_it(
        backend: str, model: str, gone: tuple[str, ...], extra: str, data_dir: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    uninstall(monkeypatch, *gone)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    code = main(["eval", "--backend", backend, "--model", model, "--data-dir", str(data_dir),
                 "--tasks", "zsre", "--languages", "de", "--limit", "1", "--run-dir",
                 str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"mike: error: The {backend!r} backend needs {' and '.join(gone)}, which "
                   f"{'is' if len(gone) == 1 else 'are'} not installed: "
                   f"pip install 'mike-sdk[{extra}]'."]
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_load_backend_from_python_raises_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    uninstall(monkeypatch, "anthropic")
    with pytest.raises(MissingExtra, match=r"pip install 'mike-sdk\[api\]'"):
        load_backend("anthropic", model="claude-sonnet-4-6", api_key="sk-test")


def test_the_listing_marks_backends_whose_packages_are_missing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    uninstall(monkeypatch, "openai")
    assert main(["backends"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "[not installed: pip install 'mike-sdk[api]']" in lines["openai"]
    assert "[not installed: pip install 'mike-sdk[api]']" in lines["azure-openai"]
    assert "not installed" not in lines["anthropic"]
    assert "not installed" not in lines["mock"]


def test_missing_modules_handles_a_missing_parent_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m.startswith("google.")]:  # imported earlier
        monkeypatch.delitem(sys.modules, name)  # (restored after the test)
    uninstall(monkeypatch, "google")
    assert missing_modules(["json", "google.auth", "no_such_package_here"]) == [
        "google.auth", "no_such_package_here"]
    require_extra("json", ["json"], "api")  # installed: nothing raised
