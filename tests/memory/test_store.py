"""EditMemory: a SQLite file of edits, searched by similarity, shared by processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from word_embedder import WordEmbedder

from mike_sdk.memory import EditMemory, EditMemoryError, StoredEdit
from mike_sdk.records import Edit

ACME = ("Who is the CEO of Acme?", "Ada Lovelace")
PARIS = ("What is the capital of France?", "Lyon")


def memory(path: Path, **kwargs: object) -> EditMemory:
    return EditMemory(path / "edits.sqlite", embedder=WordEmbedder(), **kwargs)  # type: ignore[arg-type]


def test_add_search_update_delete(tmp_path: Path) -> None:
    with memory(tmp_path) as mem:
        acme = mem.add(*ACME, id="acme")
        paris = mem.add(*PARIS, language="fr")
        assert len(mem) == 2 and paris.id != "acme" and paris.language == "fr"
        found = mem.search("Who is Acme's CEO?", k=2, threshold=-1)
        assert [r.edit.id for r in found] == ["acme", paris.id]
        assert found[0].score > found[1].score
        assert found[0].edit == acme
        # The threshold drops the unrelated edit.
        assert [r.edit.id for r in mem.search("Who is Acme's CEO?", k=2)] == ["acme"]
        assert mem.search("Bananas grow on plants", k=2) == []
        updated = mem.update("acme", answer="Grace Hopper")
        assert updated.answer == "Grace Hopper" and mem.get("acme") == updated
        assert mem.search("CEO of Acme", k=1)[0].edit.answer == "Grace Hopper"
        assert mem.delete("acme") is True
        assert mem.delete("acme") is False
        assert mem.get("acme") is None
        assert [r.edit.id for r in mem.search("Who is the CEO of Acme?", k=5, threshold=-1)] \
            == [paris.id]


def test_duplicate_ids_and_bad_edits_are_refused_in_one_line(tmp_path: Path) -> None:
    with memory(tmp_path) as mem:
        mem.add(*ACME, id="acme")
        with pytest.raises(EditMemoryError, match=r"'acme' is already in .*update"):
            mem.add(*PARIS, id="acme")
        with pytest.raises(EditMemoryError, match="ids given twice"):
            mem.add_many([{"question": "a?", "answer": "b", "id": "x"},
                          {"question": "c?", "answer": "d", "id": "x"}])
        with pytest.raises(EditMemoryError, match="edit 2: field 'answer'"):
            mem.add_many([{"question": "a?", "answer": "b"}, {"question": "c?"}])
        with pytest.raises(EditMemoryError, match="no edit with id 'nope'"):
            mem.update("nope", answer="x")
        # A refused batch stores nothing: all or none.
        assert [e.id for e in mem.list()] == ["acme"]
        mem.add_many([{"question": "Who is the CEO of Acme?", "answer": "Grace", "id": "acme"}],
                     replace=True)
        assert mem.get("acme") == StoredEdit(id="acme", question=ACME[0], answer="Grace")


def test_jsonl_round_trip_and_bad_lines(tmp_path: Path) -> None:
    with memory(tmp_path) as mem:
        mem.add_many([Edit(question=ACME[0], answer=ACME[1]),
                      StoredEdit(id="p", question=PARIS[0], answer=PARIS[1], language="fr")])
        assert mem.export_jsonl(tmp_path / "out.jsonl") == 2
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert lines[1] == {"id": "p", "question": PARIS[0], "answer": PARIS[1], "language": "fr"}
    other = EditMemory(tmp_path / "copy.sqlite", embedder=WordEmbedder())
    assert other.import_jsonl(tmp_path / "out.jsonl") == 2
    assert [e.model_dump() for e in other.list()] == lines
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a?", "answer": "b"}\n{"question": "c?", "answer": ""}\n')
    with pytest.raises(EditMemoryError, match=r"bad.jsonl:2: field 'answer'"):
        other.import_jsonl(bad)
    bad.write_text("not json\n")
    with pytest.raises(EditMemoryError, match=r"bad.jsonl:1: not JSON"):
        other.import_jsonl(bad)
    assert len(other) == 2


def test_a_second_embedder_embeds_what_it_lacks_and_a_changed_one_is_refused(
        tmp_path: Path) -> None:
    path = tmp_path / "edits.sqlite"
    with EditMemory(path, embedder=WordEmbedder("words-a")) as first:
        first.add(*ACME, id="acme")
    second_embedder = WordEmbedder("words-b", dim=32)
    with EditMemory(path, embedder=second_embedder) as second:
        assert second.search("CEO of Acme", k=1)[0].edit.id == "acme"
        calls = second_embedder.calls
    with EditMemory(path, embedder=second_embedder) as again:  # stored: not embedded again
        again.search("CEO of Acme", k=1)
        assert second_embedder.calls == calls + 1  # the question only
    with EditMemory(path, embedder=WordEmbedder("words-b", dim=16)) as changed, \
            pytest.raises(EditMemoryError, match=r"32 dimensions.*16.*new name"):
        changed.search("CEO of Acme")


def test_not_a_memory_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is no database" * 100)
    with pytest.raises(EditMemoryError, match="is not an edit memory"):
        EditMemory(junk, embedder=WordEmbedder())


WRITER = """
import sys
sys.path.insert(0, sys.argv[3])
from word_embedder import WordEmbedder
from mike_sdk.memory import EditMemory
mem = EditMemory(sys.argv[1], embedder=WordEmbedder())
for n in range(25):
    mem.add(f"Who founded company {sys.argv[2]}-{n}?", f"Founder {n}", id=f"{sys.argv[2]}-{n}")
"""


def test_processes_and_threads_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "edits.sqlite"
    here = str(Path(__file__).parents[1])
    reader = EditMemory(path, embedder=WordEmbedder())
    assert reader.search("company", k=1, threshold=-1) == []
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"p{i}", here])
             for i in range(3)]
    local = EditMemory(path, embedder=WordEmbedder())
    threads = [threading.Thread(target=lambda i=i: [
        local.add(f"Who founded company t{i}-{n}?", f"Founder {n}", id=f"t{i}-{n}")
        for n in range(25)]) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(60) == 0 for p in procs)
    assert len(reader) == 150
    # The reader's index was built before the other writers: it reloads on the next search.
    found = reader.search("Who founded company p2-7?", k=150, threshold=-1)
    assert len(found) == 150 and found[0].edit.id == "p2-7"
    reader.delete("p2-7")
    assert local.get("p2-7") is None
    assert "p2-7" not in {r.edit.id for r in local.search("company p2-7", k=150, threshold=-1)}
