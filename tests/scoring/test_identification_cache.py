"""The on-disk store of language-identifier verdicts."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from mike_sdk.scoring.verdicts import IdentificationCache, detector_key


def test_round_trip_keeps_none_and_separates_detectors(tmp_path: Path) -> None:
    store = IdentificationCache(tmp_path / "ids.sqlite")
    one, two = detector_key("2.1.1", ["en", "de"]), detector_key("2.1.1", ["en", "fr"])
    assert one != two and one != detector_key("2.1.2", ["en", "de"])
    store.put_many(one, {"Spanisch": ("de", 0.93), "Qx": None})
    assert store.get_many(one, ["Spanisch", "Qx", "never seen"]) == {
        "Spanisch": ("de", 0.93), "Qx": None}
    assert store.get_many(two, ["Spanisch"]) == {}
    # A verdict already stored is kept (two processes may race to store one).
    store.put_many(one, {"Spanisch": ("nl", 0.5)})
    assert store.get_many(one, ["Spanisch"]) == {"Spanisch": ("de", 0.93)}
    store.close()
    reopened = IdentificationCache(tmp_path / "ids.sqlite")
    assert len(reopened) == 2
    reopened.close()


def test_more_texts_than_one_query_holds(tmp_path: Path) -> None:
    store = IdentificationCache(tmp_path / "ids.sqlite")
    key = detector_key("v", ["en", "de"])
    verdicts = {f"answer {i}": ("de", i / 3000) for i in range(2500)}
    store.put_many(key, verdicts)
    texts = [*verdicts, "absent"]
    assert store.get_many(key, texts) == verdicts
    store.close()


def _writer(path: str, start: int) -> None:
    store = IdentificationCache(path)
    for i in range(start, start + 200, 20):
        store.put_many("k", {f"t{j}": ("en", 1.0) for j in range(i, i + 20)})
    store.close()


def test_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "ids.sqlite")
    IdentificationCache(path).close()
    workers = [multiprocessing.Process(target=_writer, args=(path, n * 100)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = IdentificationCache(path)
    assert len(store) == 400  # 0..399: the overlapping ranges are stored once
    store.close()
