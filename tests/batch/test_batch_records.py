"""The run folder's batch records, batch prices and the adapters' request lines (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mike_sdk.backend import BACKENDS, ChatMessage, Generation, GenerationRequest
from mike_sdk.batch.provider import provider_for
from mike_sdk.batch.records import BatchLog, BatchRecord, Counts
from mike_sdk.calls.pricing import PriceTable
from mike_sdk.cli.batches import age, batch_table
from mike_sdk.errors import ConfigError

ASK = GenerationRequest(messages=(ChatMessage(role="user", content='Q? Answer: "'),),
                        max_new_tokens=15, stop=('"',))


def test_latest_line_wins_keys_from_intent(tmp_path: Path) -> None:
    log = BatchLog(tmp_path)
    record = BatchRecord(local_id="mb_1", provider="openai", model="m", endpoint="/v1/x",
                         keys=["a" * 64, "b" * 64], requests=2)
    log.write(record, with_keys=True)
    record.provider_id, record.state = "batch_1", "in_progress"
    record.counts = Counts(total=2, done=1)
    log.write(record)
    with log.path.open("ab") as fh:
        fh.write(b'{"local_id": "mb_1", "state": "comp')  # a torn last line (killed write)
    (read,) = log.read().values()
    assert (read.state, read.provider_id, read.counts.done) == ("in_progress", "batch_1", 1)
    assert read.keys == ["a" * 64, "b" * 64]
    lines = log.path.read_bytes().splitlines()
    assert "keys" in json.loads(lines[0]) and "keys" not in json.loads(lines[1])


def test_damaged_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "batches.jsonl").write_text('{"nope": 1}\n')
    with pytest.raises(ConfigError, match="line 1"):
        BatchLog(tmp_path).read()


def test_one_process_runs_a_folders_batches(tmp_path: Path) -> None:
    log = BatchLog(tmp_path)
    with log.locked(), pytest.raises(ConfigError, match="Another process"), log.locked():
        pass


def test_batch_prices_are_half_cached_discount_kept() -> None:
    prices = PriceTable()
    gen = Generation(text="x", input_tokens=1000, cached_input_tokens=400, output_tokens=100,
                     finish_reason="eos")
    live = prices.generation_cost("gpt-5-mini", gen)
    batch = prices.generation_cost("gpt-5-mini", gen, batch=True)
    assert live is not None and batch == pytest.approx(live / 2)
    assert batch == pytest.approx((600 * 0.125 + 400 * 0.0125 + 100 * 1.0) / 1e6)
    price = prices.price("claude-haiku-4-5")
    assert price is not None and price.batch == 0.5 and price.batch_as_of


def test_lines_are_live_bodies() -> None:
    openai = BACKENDS.create("openai", model="gpt-4.1-mini", api_key="k")
    line = json.loads(provider_for(openai).line("k" * 64, ASK))
    assert line == {"custom_id": "k" * 64, "method": "POST", "url": "/v1/chat/completions",
                    "body": openai.payload(ASK)}  # type: ignore[attr-defined]
    claude = BACKENDS.create("anthropic", model="claude-haiku-4-5", api_key="k")
    adapter = provider_for(claude)
    body, started = claude.payload(ASK)  # type: ignore[attr-defined]
    assert json.loads(adapter.line("k" * 64, ASK)) == {"custom_id": "k" * 64, "params": body}
    assert adapter.stub(ASK) == started == '"'  # the prefill, prepended on collection
    with pytest.raises(ConfigError, match="openai' or 'anthropic"):
        provider_for(BACKENDS.create("mock"))


def test_table_and_ages() -> None:
    assert [age(s) for s in (5, 300, 3 * 3600 + 300, 2 * 86400 + 7200)] == \
        ["5s", "5m", "3h05m", "2d02h"]
    record = BatchRecord(local_id="mb_1", provider="anthropic", model="m", endpoint="/v1/x",
                         provider_id="msgbatch_1", state="ended", requests=3,
                         counts=Counts(total=3, done=2, expired=1), cost_usd=0.5,
                         created_at=100.0)
    table = batch_table([record], now=160.0)
    assert "msgbatch_1" in table and "$0.5000" in table and "1m" in table
