"""`mike view` answers before its tables are built: the summary at once, the rows with
503 and the build's state until the background build is done, a build's failure shown.

A ``threading.Event`` the test holds stands in for a slow build (a full configuration's
takes seconds): the build thread waits on it before reading anything."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from runs import Runs, damaged_copy

from mike_sdk.runfolder.rundir import read_summary
from mike_sdk.view.app import build_app
from mike_sdk.view.library import RunLibrary
from mike_sdk.web import LocalServer


def test_the_summary_answers_while_the_rows_are_built(view_runs: Runs, tmp_path: Path) -> None:
    hold = threading.Event()
    ended: list[str | None] = []
    library = RunLibrary([[run] for run in view_runs], tmp_path,
                         on_done=lambda error, _: ended.append(error), hold=hold)
    with LocalServer(build_app(library.start(), ["a", "b", "c"])).running() as url:
        summary = httpx.get(url + "/api/summary", params={"run": "0"})
        assert summary.status_code == 200
        body = summary.json()
        assert body["summary"] == read_summary(view_runs[0]).model_dump(mode="json")
        assert body["run"]["rows"] == 48 and body["facets"] is None
        assert body["build"]["building"] and body["build"]["message"].startswith(
            "Indexing 144 rows")  # the three runs' rows, from their summaries
        waiting = httpx.get(url + "/api/rows", params={"run": "0"})
        assert waiting.status_code == 503 and waiting.headers["retry-after"] == "1"
        assert waiting.json() == {"building": True, "done": 0.0, "error": None,
                                  "message": body["build"]["message"]}
        for path, query in (("/api/row", {"run": "0", "id": "x"}),
                            ("/api/compare", {"a": "0", "b": "1"})):
            assert httpx.get(url + path, params=query).status_code == 503
        assert httpx.get(url + "/api/rows", params={"run": "5"}).json()["error"].startswith(
            "bad run=5")  # a bad number is refused at once, not told to wait
        assert [r["label"] for r in httpx.get(url + "/api/runs").json()] == ["a", "b", "c"]
        hold.set()
        assert library.wait(60) and ended == [None]
        rows = httpx.get(url + "/api/rows", params={"run": "2", "target": "hi"})
        assert rows.status_code == 200 and rows.json()["total"] == 24
        after = httpx.get(url + "/api/summary", params={"run": "0"}).json()
        assert after["build"]["building"] is False and after["facets"]["target"] == ["ar", "hi"]
        assert httpx.get(url + "/api/compare", params={"a": "0", "b": "1"}).status_code == 200


def test_a_failed_build_is_shown_with_its_one_line(view_runs: Runs, tmp_path: Path) -> None:
    folder = damaged_copy(view_runs[0], tmp_path / "run")
    ended: list[str | None] = []
    library = RunLibrary([[folder]], tmp_path / "c", on_done=lambda e, _: ended.append(e))
    with LocalServer(build_app(library.start(), ["damaged"])).running() as url:
        assert not library.wait(60)
        assert ended[0] is not None and "field 'cache_key' is missing" in ended[0]
        assert "\n" not in ended[0]
        failed = httpx.get(url + "/api/rows", params={"run": "0"})
        assert failed.status_code == 400 and failed.json()["error"] == ended[0]
        assert httpx.get(url + "/api/summary", params={"run": "0"}).json()["build"][
            "error"] == ended[0]
