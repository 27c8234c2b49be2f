"""Registries: decorators, entry points from installed packages, helpful errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mike_sdk.cli.main import main
from mike_sdk.errors import ConfigError, PluginError
from mike_sdk.registry import Registry
from mike_sdk.strategy import STRATEGIES, PromptStrategy


def test_decorator_registers_and_unknown_names_suggest(tmp_path: Path) -> None:
    registry: Registry[object] = Registry("widget", "mike_sdk.test_widgets", "json")

    @registry.register("round-widget")
    class Round:
        pass

    assert registry.create("round-widget").__class__ is Round
    with pytest.raises(ConfigError, match=r"Unknown widget 'rond-widget'. Did you mean 'round-widget'"):
        registry.get("rond-widget")
    with pytest.raises(ConfigError, match="already registered"):
        registry.register("round-widget")(type("Other", (), {}))


def test_entry_point_plugins_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real installed-package layout: a module plus its .dist-info with entry_points.txt.
    (tmp_path / "my_plugin.py").write_text(
        "from mike_sdk.prompts.mike import ZeroShot\n"
        "class Plain(ZeroShot):\n    '''A plugin strategy.'''\n")
    info = tmp_path / "my_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mike_sdk.strategies]\nplugin-plain = my_plugin:Plain\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[object] = Registry("strategy", "mike_sdk.strategies", "mike_sdk.prompts")
    assert "plugin-plain" in registry.names()
    assert type(registry.create("plugin-plain")).__name__ == "Plain"
    assert "my_plugin" in sys.modules


# -- lazily loaded entry points, and broken ones ----------------------------------------

GOOD = "from mike_sdk.prompts.mike import ZeroShot\nclass Plain(ZeroShot):\n    '''A working plugin.'''\n"
BAD = "raise ImportError('needs frobnicate>=2, found 1.0')\n"


def install_plugins(folder: Path, monkeypatch: pytest.MonkeyPatch, group: str, tag: str,
                    ) -> tuple[str, str]:
    """A real distribution ``broken-plugin 2.3`` on sys.path declaring a working and a
    broken entry point in ``group``; returns the two modules' names (not imported)."""
    good, bad = f"good_{tag}", f"bad_{tag}"
    (folder / f"{good}.py").write_text(GOOD)
    (folder / f"{bad}.py").write_text(BAD)
    info = folder / "broken_plugin-2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 2.3\n")
    (info / "entry_points.txt").write_text(
        f"[{group}]\nplugin-good = {good}:Plain\nplugin-bad = {bad}:Thing\n")
    monkeypatch.syspath_prepend(str(folder))
    for name in (good, bad):  # recorded as absent, so teardown drops the imported module
        monkeypatch.setitem(sys.modules, name, None)
        del sys.modules[name]
    return good, bad


def test_entry_points_load_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = install_plugins(tmp_path, monkeypatch, "mike_sdk.test_lazy", "lazy")
    registry: Registry[object] = Registry("strategy", "mike_sdk.test_lazy", "json")
    assert registry.names() == ["plugin-bad", "plugin-good"]
    assert "plugin-bad" in registry
    assert good not in sys.modules and bad not in sys.modules  # listing names imports nothing
    assert type(registry.create("plugin-good")).__name__ == "Plain"
    assert good in sys.modules and bad not in sys.modules
    with pytest.raises(ConfigError, match=r"Unknown strategy 'plugin-god'. Did you mean 'plugin-good'"):
        registry.get("plugin-god")


def test_a_broken_plugin_fails_only_when_used_and_names_its_distribution(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, bad = install_plugins(tmp_path, monkeypatch, "mike_sdk.test_broken", "broken")
    registry: Registry[object] = Registry("backend", "mike_sdk.test_broken", "json")
    with pytest.raises(PluginError) as caught:
        registry.get("plugin-bad")
    message = str(caught.value)
    for part in ("'plugin-bad'", f"{bad}:Thing", "broken-plugin 2.3",
                 "ImportError: needs frobnicate>=2, found 1.0",
                 "pip install --force-reinstall broken-plugin", "pip uninstall broken-plugin"):
        assert part in message
    assert "\n" not in message and isinstance(caught.value, ConfigError)
    with pytest.raises(PluginError):  # the same answer again, without re-importing
        registry.get("plugin-bad")
    entries = dict(registry.entries())
    assert isinstance(entries["plugin-bad"], PluginError)
    assert entries["plugin-bad"].reason == "ImportError: needs frobnicate>=2, found 1.0"
    assert callable(entries["plugin-good"])


@pytest.fixture
def fresh_strategies(monkeypatch: pytest.MonkeyPatch) -> Registry[PromptStrategy]:
    """The real STRATEGIES registry, its plugin state restored after the test."""
    STRATEGIES.names()  # built-ins registered before the snapshot
    monkeypatch.setattr(STRATEGIES, "_factories", dict(STRATEGIES._factories))
    monkeypatch.setattr(STRATEGIES, "_plugins", None)  # rediscover: the test installs some
    monkeypatch.setattr(STRATEGIES, "_broken", {})
    return STRATEGIES


def test_listing_shows_a_broken_plugin_and_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        fresh_strategies: Registry[PromptStrategy], data_dir: Path) -> None:
    install_plugins(tmp_path, monkeypatch, "mike_sdk.strategies", "listed")
    assert main(["strategies"]) == 0
    out, err = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "A working plugin." in lines["plugin-good"]
    assert "[broken plugin] ImportError: needs frobnicate>=2" in lines["plugin-bad"]
    assert "zero-shot" in lines
    assert "broken-plugin 2.3" in err and "pip install --force-reinstall broken-plugin" in err
    assert main(["eval", "--strategy", "plugin-bad", "--backend", "openai", "--model",
                 "gpt-4o-mini", "--dry-run", "--data-dir", str(data_dir)]) == 2
    assert "plugin 'plugin-bad'" in capsys.readouterr().err
