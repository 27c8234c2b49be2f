"""The response cache: keys, what is stored, and two processes sharing one folder."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mike_sdk.backend import Abilities, Generation, GenerationRequest, Identity
from mike_sdk.calls.cache import ResponseCache, cacheable, request_key, unsealed
from mike_sdk.errors import ConfigError
from mike_sdk.records import Edit, Question
from mike_sdk.strategy import STRATEGIES, PromptCase, get_strategy

HF = Identity(kind="hf", model="gemma", revision="abc")


def test_key_depends_on_model_prompt_and_parameters() -> None:
    base = GenerationRequest(prompt="p", stop=('"',), max_new_tokens=15)
    key = request_key(HF, "generate", base)
    assert key == request_key(HF, "generate", GenerationRequest(prompt="p", stop=('"',)))
    assert key != request_key(HF, "generate", base.model_copy(update={"prompt": "q"}))
    assert key != request_key(HF, "generate", base.model_copy(update={"max_new_tokens": 16}))
    assert key != request_key(HF.model_copy(update={"revision": "def"}), "generate", base)
    assert key != request_key(HF, "loglikelihood", base)


def test_key_ignores_the_strategy_name() -> None:
    from mike_sdk.prompts.mike import ZeroShot as Builtin

    @STRATEGIES.register("test-cache-renamed-zero-shot")
    class Renamed(Builtin):
        """The zero-shot prompt under another name."""

    case = PromptCase(edit=Edit(question="Q?", answer="A"), question=Question(text="Q2?"))
    first = get_strategy("zero-shot").render(case, Abilities())
    second = get_strategy("test-cache-renamed-zero-shot").render(case, Abilities())
    assert request_key(HF, "generate", first) == request_key(HF, "generate", second)


def test_errors_and_empty_failures_are_not_cacheable() -> None:
    assert cacheable(Generation(text='Paris"', finish_reason="stop"))
    assert cacheable(Generation(text="", finish_reason="stop"))  # model closed the quote at once
    assert not cacheable(Generation(text="", finish_reason="error"))
    assert not cacheable(Generation(text="", finish_reason="length"))


def test_round_trip_and_persistence(tmp_path: Path) -> None:
    with ResponseCache(tmp_path) as cache:
        cache.put_many([("k1", {"text": "Paris", "n": 1})])
    with ResponseCache(tmp_path) as cache:
        assert cache.get_many(["k1", "k2"]) == {"k1": {"text": "Paris", "n": 1}}
        assert (cache.hits, cache.misses) == (1, 1)


def _writer(folder: str, worker: int, count: int) -> None:
    with ResponseCache(folder) as cache:
        for i in range(count):
            # Half the keys are shared by both workers: same key, same value.
            key = f"shared-{i}" if i % 2 else f"w{worker}-{i}"
            cache.put_many([(key, {"text": f"value {key}", "worker": worker if i % 2 == 0 else -1})])


def test_two_processes_share_one_cache_folder(tmp_path: Path) -> None:
    count = 400
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), w, count)) for w in (0, 1)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    with ResponseCache(tmp_path) as cache:
        assert len(cache) == count + count // 2  # 200 per worker alone + 200 shared
        values = cache.get_many([f"w{w}-{i}" for w in (0, 1) for i in range(0, count, 2)]
                                + [f"shared-{i}" for i in range(1, count, 2)])
        assert len(values) == len(cache)
        assert all(v["text"] == f"value {k}" for k, v in values.items())


def test_get_many_reads_what_get_reads(tmp_path: Path) -> None:
    # get_many reads diskcache's table in one query: it must agree with diskcache's own
    # get, also for a value large enough to be kept in a file of its own.
    entries = [(f"key-{i}", {"text": "x" * i}) for i in range(1200)]
    entries.append(("large", {"text": "y" * 200_000}))
    with ResponseCache(tmp_path) as cache:
        cache.put_many(entries)
        wanted = [key for key, _ in entries] + ["absent", "key-3"]
        found = cache.get_many(wanted)
        assert found == {key: unsealed(key, cache._cache.get(key)) for key, _ in entries}
        assert found == dict(entries)
        assert len(found["large"]["text"]) == 200_000
        assert (cache.hits, cache.misses) == (len(entries), 1)


# -- a damaged or unwritable cache ----------------------------------------------------------


def fill(folder: Path, count: int = 3000) -> None:
    with ResponseCache(folder) as cache:
        cache.put_many((f"key-{i}", {"text": f"answer {i}" * 20}) for i in range(count))


def damaged(folder: Path) -> list[Path]:
    """The damaged databases moved aside (their -wal and -shm files go with them)."""
    return sorted(p for p in folder.glob("cache.db.damaged-*")
                  if not p.name.endswith(("-wal", "-shm")))


def test_a_cache_db_that_is_not_sqlite_is_moved_aside(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cache.db").write_bytes(b"this is no database\n" * 500)
    with caplog.at_level(logging.WARNING), ResponseCache(tmp_path) as cache:
        cache.put_many([("k", {"text": "fresh"})])
        assert cache.get_many(["k"]) == {"k": {"text": "fresh"}}
    [aside] = damaged(tmp_path)
    assert aside.read_bytes().startswith(b"this is no database")
    [message] = [r.getMessage() for r in caplog.records]
    assert str(tmp_path / "cache.db") in message and aside.name in message
    assert "asked (and paid for) again" in message


def test_a_malformed_cache_db_is_moved_aside_when_read(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    fill(tmp_path)
    with open(tmp_path / "cache.db", "r+b") as db:  # pages of the table overwritten
        db.seek(4096 * 3)
        db.write(bytes(range(256)) * 16 * 40)
    with caplog.at_level(logging.WARNING), ResponseCache(tmp_path) as cache:
        # The header is intact, so it opens; the damage shows on the first read.
        assert cache.get_many([f"key-{i}" for i in range(3000)]) == {}
        cache.put_many([("key-1", {"text": "asked again"})])
        assert cache.get_many(["key-1"]) == {"key-1": {"text": "asked again"}}
    assert len(damaged(tmp_path)) == 1
    assert "malformed" in caplog.text and "asked (and paid for) again" in caplog.text


def test_a_folder_under_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError) as caught:
        ResponseCache(tmp_path / "file" / "cache")
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "file" / "cache") in message
    assert "--cache-dir" in message


@contextmanager
def mounted(path: Path, options: str) -> Iterator[None]:
    """A small tmpfs at ``path`` (root only); skips the test where it cannot be made."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextmanager
def read_only_cache(tmp_path: Path) -> Iterator[Path]:
    """A cache folder with answers in it, made read-only: a read-only remount of a tmpfs
    as root (chmod does not stop root), chmod otherwise."""
    if os.geteuid() == 0:
        with mounted(tmp_path / "mnt", "size=4m"):
            fill(tmp_path / "mnt" / "cache", 10)
            subprocess.run(["mount", "-o", "remount,ro", str(tmp_path / "mnt")], check=True)
            yield tmp_path / "mnt" / "cache"
        return
    folder = tmp_path / "cache"
    fill(folder, 10)
    for path, mode in ((folder / "cache.db", 0o400), (folder, 0o500)):
        path.chmod(mode)
    try:
        yield folder
    finally:
        for path, mode in ((folder, 0o700), (folder / "cache.db", 0o600)):
            path.chmod(mode)


def test_a_read_only_cache_folder_is_a_one_line_error(tmp_path: Path) -> None:
    with read_only_cache(tmp_path) as folder:
        with pytest.raises(ConfigError) as caught, ResponseCache(folder) as cache:
            cache.put_many([("new", {"text": "x"})])
        with pytest.raises(ConfigError) as creating:  # a new cache in a read-only folder
            ResponseCache(folder / "new")
    for error, where in ((caught.value, folder), (creating.value, folder / "new")):
        message = str(error)
        assert "\n" not in message and str(where) in message
        assert "cannot be written" in message and "--cache-dir" in message


def test_a_full_disk_is_a_one_line_error(tmp_path: Path) -> None:
    mount = tmp_path / "mnt"
    with mounted(mount, "size=256k"), pytest.raises(ConfigError) as caught, \
            ResponseCache(mount / "cache") as cache:
        for i in range(500):  # a real full disk: the tmpfs holds 256 KiB
            cache.put_many((f"k{i}-{j}", {"text": "x" * 300}) for j in range(20))
    message = str(caught.value)
    assert "\n" not in message and str(mount / "cache") in message
    assert "full disk" in message and "free space" in message and "--cache-dir" in message


def test_a_full_database_is_a_one_line_error(tmp_path: Path) -> None:
    # Where no tmpfs can be mounted: SQLite's own page limit makes it answer exactly as
    # on a full disk (SQLITE_FULL, "database or disk is full"); nothing is mocked.
    with ResponseCache(tmp_path) as cache:
        cache._cache._sql("PRAGMA max_page_count = 16")
        with pytest.raises(ConfigError) as caught:
            cache.put_many((f"k{i}", {"text": "x" * 300}) for i in range(500))
    message = str(caught.value)
    assert "database or disk is full" in message and str(tmp_path) in message


def test_an_answer_edited_on_disk_is_asked_again_not_used(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    import sqlite3

    from mike_sdk.backends.mock import MockBackend
    from mike_sdk.calls.client import ModelClient

    backend = MockBackend()
    request = GenerationRequest(prompt="Q: capital of France?")
    with ResponseCache(tmp_path / "c") as cache:
        client = ModelClient(backend, cache=cache)
        (first,) = client.generate_sync([request])
        assert first.generation is not None
    with sqlite3.connect(tmp_path / "c" / "cache.db") as db:
        (stored,) = db.execute("SELECT value FROM Cache").fetchone()
        edited = stored.replace(first.generation.text.encode(), b"Rome")
        assert edited != stored
        db.execute("UPDATE Cache SET value = ?", (edited,))
    with ResponseCache(tmp_path / "c") as cache:
        client = ModelClient(backend, cache=cache)
        (again,) = client.generate_sync([request])
        seen = cache.tampered  # each look-up before the new answer sees it
        assert seen >= 1 and again.cached is False and backend.calls == 2
        assert again.generation is not None and again.generation.text == first.generation.text
        assert "do not match their checksum" in caplog.text
        (third,) = client.generate_sync([request])  # the fresh answer replaced it
        assert third.cached is True and cache.tampered == seen


def test_values_written_before_checksums_are_read(tmp_path: Path) -> None:
    from pydantic_core import to_json

    with ResponseCache(tmp_path / "c") as cache:
        cache._cache.set("legacy", to_json({"text": "Paris"}))
        assert cache.get_many(["legacy"]) == {"legacy": {"text": "Paris"}}
