"""The price table: defaults, user overrides, prefixes, unknown models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mike_sdk.backend import Generation
from mike_sdk.calls.pricing import DEFAULT_PRICES, PriceTable
from mike_sdk.errors import ConfigError


def test_cost_counts_cached_input_at_its_own_price() -> None:
    table = PriceTable()
    gen = Generation(text="x", input_tokens=1_000_000, output_tokens=100_000,
                     cached_input_tokens=400_000)
    price = DEFAULT_PRICES["gpt-4o-mini"]
    assert price.cached_input is not None
    expected = 0.6 * price.input + 0.4 * price.cached_input + 0.1 * price.output
    assert table.generation_cost("gpt-4o-mini", gen) == pytest.approx(expected)


def test_dated_names_use_the_longest_prefix_and_unknown_is_none() -> None:
    table = PriceTable()
    assert table.price("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.price("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert table.price("claude-opus-4-1-20250805") == DEFAULT_PRICES["claude-opus-4-1"]
    assert table.cost("my-local-model", 10, 10) is None
    assert table.cost("gpt-4o", None, 10) is None


def test_user_file_overrides_and_adds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o": {"input": 1, "output": 2}, "mine": {"input": 3,
                                                                              "output": 4}}))
    table = PriceTable.load(path)
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3)
    assert table.cost("mine", 1_000_000, 0, cached_input_tokens=500_000) == pytest.approx(3)
    assert table.price("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]
    toml = tmp_path / "prices.toml"
    toml.write_text('[mine]\ninput = 5\noutput = 6\ncached_input = 1\n')
    monkeypatch.setenv("MIKE_PRICES", str(toml))
    assert PriceTable.load().cost("mine", 1_000_000, 0, 1_000_000) == pytest.approx(1)


def test_bad_files_fail_with_the_expected_shape(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"m": {"input": "free"}}')
    with pytest.raises(ConfigError, match=r"invalid.*per million"):
        PriceTable.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        PriceTable.load(tmp_path / "missing.json")
