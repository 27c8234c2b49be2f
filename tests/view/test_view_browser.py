"""`mike view` in a real headless browser (Debian's chromium driven by Playwright) against
the real server: filter, open a row, compare runs, and hostile answers shown as text."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs import HOSTILE, Runs

from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import final_rows, read_summary
from mike_sdk.view.app import build_app
from mike_sdk.view.cache import cache_run
from mike_sdk.view.library import RunLibrary
from mike_sdk.web import LocalServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def url(view_runs: Runs, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[str]:
    cache = tmp_path_factory.mktemp("view-cache")
    runs = [cache_run([run], cache) for run in view_runs]
    with LocalServer(build_app(runs, ["editor", "hostile", "flaky"])).running() as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    opened = browser.new_page(viewport={"width": 1400, "height": 900})
    dialogs: list[str] = []

    def refuse(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", refuse)
    yield opened
    opened.close()
    assert dialogs == []  # no script from the data ever ran


def _shown(page: Any) -> None:
    """Wait until the page has rendered the view its URL names."""
    page.wait_for_selector("body[data-ready]", state="attached")


def _column(page: Any, name: str) -> list[str]:
    return [str(t) for t in page.locator(f"#rows td[data-col={name}]").all_text_contents()]


def test_filter_hindi_wrong_language_then_open_a_row(page: Any, url: str,
                                                     view_runs: Runs) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#heatmap td[data-cell='zsre/en/hi/reliability'] a")
    summary = read_summary(view_runs[0])
    for group in summary.results:  # the numbers of `mike report`, cell by cell
        cell = f"{group.task}/{group.source_lang}/{group.target_lang}/{group.metric}"
        assert page.text_content(f"#heatmap td[data-cell='{cell}']") == f"{group.em:.2f}"
    page.click("text=Rows")
    _shown(page)
    page.select_option("#filters select[name=target]", "hi")
    page.select_option("#filters select[name=label]", "source")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**label=source**")
    _shown(page)
    expected = [r for r in final_rows(view_runs[0]) if r.target_lang == "hi"
                and r.answer_language and r.answer_language.label == "source"]
    assert page.text_content("#total") == f"{len(expected)} rows"
    assert set(_column(page, "target")) == {"hi"} and set(_column(page, "label")) == {"source"}
    permalink = page.url
    page.locator("#rows td a").first.click()
    _shown(page)
    item = page.text_content("h2")
    row = next(r for r in expected if r.id == item)
    stored = read_requests(view_runs[0])[row.cache_key].prompt
    shown = "".join(page.locator("#prompt pre.part").all_text_contents())
    assert shown == stored  # byte-identical, demonstrations included
    assert page.locator("#prompt details.block").count() == 1
    assert not page.locator("#prompt details.block").get_attribute("open")  # folded
    page.go_back()
    _shown(page)
    assert page.url == permalink and page.text_content("#total") == f"{len(expected)} rows"


def _em(run: Path) -> dict[str, float]:
    return {r.id: r.scores["em"] for r in final_rows(run)}


def test_compare_two_runs_right_in_a_wrong_in_b(page: Any, url: str, view_runs: Runs) -> None:
    editor, hostile = _em(view_runs[0]), _em(view_runs[1])
    expected = sorted(i for i, s in editor.items() if s >= 0.5 and hostile[i] < 0.5)
    page.goto(url + "/?view=compare&runs=0,1&a=0&b=1&pair=a_right_b_wrong&limit=500")
    _shown(page)
    assert page.text_content("#total") == f"{len(expected)} rows"
    assert sorted(page.locator("#rows td:first-child + td a").all_text_contents()) == expected
    assert set(_column(page, "answer_1")) == {HOSTILE}


def test_compare_three_runs_choosing_a_and_b(page: Any, url: str, view_runs: Runs) -> None:
    editor, flaky = _em(view_runs[0]), _em(view_runs[2])
    expected = sorted(i for i, s in editor.items() if s >= 0.5 and flaky[i] < 0.5)
    page.goto(url + "/")
    _shown(page)
    page.click("#nav >> text=Compare runs")
    _shown(page)
    assert page.locator("#runs input:checked").count() == 3  # every run side by side
    page.select_option("#filters select[name=b]", "2")
    page.select_option("#filters select[name=pair]", "a_right_b_wrong")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**pair=a_right_b_wrong**")
    _shown(page)
    assert page.text_content("#total") == f"{len(expected)} rows"
    heads = page.locator("#rows th").all_text_contents()
    assert [h for h in heads if h.startswith("answer")] == [
        "answer · editor", "answer · hostile", "answer · flaky"]
    assert set(_column(page, "answer_1")) == {HOSTILE}
    assert all(float(s) < 0.5 for s in _column(page, "score_2"))
    assert all(float(s) >= 0.5 for s in _column(page, "score_0"))
    assert sorted(page.locator("#rows td:first-child + td a").all_text_contents()) == expected
    page.uncheck("#runs input[value='1']")  # hostile out of the table, A and B kept
    page.click("#filters button[type=submit]")
    page.wait_for_url("**runs=0%2C2**")
    _shown(page)
    assert _column(page, "answer_1") == [] and page.text_content("#total") == \
        f"{len(expected)} rows"


def test_a_first_open_shows_indexing_then_the_filtered_table(page: Any, view_runs: Runs,
                                                             tmp_path: Path) -> None:
    hold = threading.Event()  # stands in for a slow build: held until the notice is seen
    library = RunLibrary([[view_runs[0]]], tmp_path, hold=hold).start()
    with LocalServer(build_app(library, ["editor"])).running() as base:
        page.goto(base + "/")
        page.wait_for_selector("#heatmap")  # the summary does not wait for the build
        assert page.text_content("#indexing") == ("Indexing 48 rows (first open of this run "
                                                  "only)...")
        page.goto(base + "/?view=rows&run=0&target=hi&label=source")
        page.wait_for_selector("#indexing")
        assert page.locator("#rows").count() == 0
        hold.set()
        page.wait_for_selector("#rows", timeout=30_000)  # the page asked again by itself
        expected = [r for r in final_rows(view_runs[0])
                    if r.target_lang == "hi" and r.answer_language
                    and r.answer_language.label == "source"]
        assert page.text_content("#total") == f"{len(expected)} rows"
        assert page.locator("#indexing").count() == 0
        assert page.input_value("#filters select[name=target]") == "hi"


def test_hostile_answers_render_as_text(page: Any, url: str) -> None:
    page.goto(url + "/?view=rows&run=1&target=ar&limit=5")
    page.wait_for_selector("#rows")
    cells = page.locator("#rows td[data-col=answer]")
    assert cells.all_text_contents() == [HOSTILE] * 5
    assert page.locator("main script, main b").count() == 0  # no element made from data
    assert cells.first.get_attribute("dir") == "auto"  # RTL text reads right to left
    page.locator("#rows td a").first.click()
    _shown(page)
    assert page.text_content("#fields dd[data-field=answer]") == HOSTILE


def test_the_server_refuses_other_hosts_and_sets_a_strict_policy(url: str) -> None:
    ok = httpx.get(url + "/api/runs")
    assert ok.status_code == 200 and [r["label"] for r in ok.json()] == ["editor", "hostile",
                                                                          "flaky"]
    assert "script-src 'self'" in ok.headers["content-security-policy"]
    rebound = httpx.get(url + "/api/runs", headers={"Host": "evil.example:80"})
    assert rebound.status_code == 400
    bad = httpx.get(url + "/api/rows", params={"run": "0", "sort": "nope"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("bad filter sort='nope'")
    assert httpx.get(url + "/api/rows", params={"run": "7"}).json()["error"].startswith(
        "bad run=7")
    assert httpx.get(url + "/static/../runs.py").status_code == 404
    odd = httpx.get(url + "/api/compare", params={"a": "0", "b": "1", "runs": "0,x"})
    assert odd.status_code == 400 and odd.json()["error"].startswith("bad runs='0,x'")
    assert httpx.get(url + "/api/compare", params={"a": "0", "b": "1", "runs": "0,9"}).json()[
        "error"].startswith("bad run=9")
