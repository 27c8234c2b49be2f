"""prompts.jsonl.gz: each request stored once, blocks shared, torn members cut off."""

from __future__ import annotations

import gzip
from pathlib import Path

from mike_sdk.backend import ChatMessage, GenerationRequest
from mike_sdk.runfolder.prompts import MIN_BLOCK, PromptStore, read_requests

DEMOS = "".join(f"Demonstration {i}: a fact.\nDie Demonstration {i}.\n\n" for i in range(12))
assert len(DEMOS) > MIN_BLOCK


def test_requests_round_trip_and_blocks_are_stored_once(tmp_path: Path) -> None:
    store = PromptStore(tmp_path)
    requests = {f"k{i}": GenerationRequest(prompt=DEMOS + f'New Fact: "q{i}" Answer: "')
                for i in range(50)}
    chat = GenerationRequest(messages=(ChatMessage(role="system", content="S" * 300),
                                       ChatMessage(role="user", content=DEMOS + "Q?")))
    store.add(requests.items())
    store.add([("chat", chat), ("k0", requests["k0"])])  # k0 again: not stored twice
    text = gzip.decompress((tmp_path / "prompts.jsonl.gz").read_bytes()).decode()
    assert text.count("Demonstration 0: a fact.") == 1 and text.count('"k":"k0"') == 1
    back = read_requests(tmp_path)
    assert {k: r.prompt for k, r in back.items() if k != "chat"} == {
        k: r.prompt for k, r in requests.items()}
    assert back["chat"].messages == chat.messages
    # Compared with the prompts written out in full, the store is a fraction.
    full = sum(len(r.prompt.encode()) for r in requests.values())  # type: ignore[union-attr]
    assert (tmp_path / "prompts.jsonl.gz").stat().st_size < full / 20


def test_a_torn_member_is_cut_off_and_appends_go_on(tmp_path: Path) -> None:
    store = PromptStore(tmp_path)
    store.add([("a", GenerationRequest(prompt="first"))])
    path = tmp_path / "prompts.jsonl.gz"
    whole = path.read_bytes()
    store.add([("b", GenerationRequest(prompt="second"))])
    path.write_bytes(path.read_bytes()[:-7])  # a crash in the middle of the second member
    assert set(read_requests(tmp_path)) == {"a"}
    again = PromptStore(tmp_path, known={"a"})
    assert path.read_bytes() == whole  # the torn member is gone
    again.add([("b", GenerationRequest(prompt="second"))])
    assert {k: r.prompt for k, r in read_requests(tmp_path).items()} == {"a": "first",
                                                                        "b": "second"}
