"""`mike view` in a real headless browser (Debian's chromium driven by Playwright) against
the real server: filter, open a row, compare runs, and hostile answers shown as text."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs import HOSTILE

from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import final_rows, read_summary
from mike_sdk.view.app import build_app
from mike_sdk.view.cache import cache_run
from mike_sdk.web import LocalServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def url(view_runs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[str]:
    cache = tmp_path_factory.mktemp("view-cache")
    runs = [cache_run([run], cache) for run in view_runs]
    with LocalServer(build_app(runs, ["editor", "hostile"])).running() as base:
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
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    opened.close()
    assert dialogs == []  # no script from the data ever ran


def _shown(page: Any) -> None:
    """Wait until the page has rendered the view its URL names."""
    page.wait_for_selector("body[data-ready]", state="attached")


def _column(page: Any, name: str) -> list[str]:
    return [str(t) for t in page.locator(f"#rows td[data-col={name}]").all_text_contents()]


def test_filter_hindi_wrong_language_then_open_a_row(page: Any, url: str,
                                                     view_runs: tuple[Path, Path]) -> None:
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


def test_compare_two_runs_right_in_a_wrong_in_b(page: Any, url: str,
                                                view_runs: tuple[Path, Path]) -> None:
    editor = {r.id: r.scores["em"] for r in final_rows(view_runs[0])}
    hostile = {r.id: r.scores["em"] for r in final_rows(view_runs[1])}
    expected = sorted(i for i, s in editor.items() if s >= 0.5 and hostile[i] < 0.5)
    page.goto(url + "/?view=compare&a=0&b=1&pair=a_right_b_wrong&limit=500")
    page.wait_for_selector("#rows")
    assert page.text_content("#total") == f"{len(expected)} rows"
    assert sorted(page.locator("#rows td:first-child + td a").all_text_contents()) == expected
    assert set(_column(page, "b_answer")) == {HOSTILE}


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
    assert ok.status_code == 200 and [r["label"] for r in ok.json()] == ["editor", "hostile"]
    assert "script-src 'self'" in ok.headers["content-security-policy"]
    rebound = httpx.get(url + "/api/runs", headers={"Host": "evil.example:80"})
    assert rebound.status_code == 400
    bad = httpx.get(url + "/api/rows", params={"run": "0", "sort": "nope"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("bad filter sort='nope'")
    assert httpx.get(url + "/api/rows", params={"run": "7"}).json()["error"].startswith(
        "bad run=7")
    assert httpx.get(url + "/static/../runs.py").status_code == 404
