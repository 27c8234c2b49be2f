"""Registries: decorators, entry points from installed packages, helpful errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mike_sdk.errors import ConfigError
from mike_sdk.registry import Registry


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
