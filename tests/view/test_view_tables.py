"""`mike view`'s data side: the columnar cache, the filters, a row's prompt, comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest
from rows import results_text, write_results
from runs import HOSTILE, Runs

from mike_sdk.cli.main import main
from mike_sdk.errors import ConfigError
from mike_sdk.runfolder.prompts import read_requests
from mike_sdk.runfolder.rundir import final_rows
from mike_sdk.view.cache import cache_run, group_runs
from mike_sdk.view.filters import parse_filter
from mike_sdk.view.tables import RunTables


@pytest.fixture(scope="module")
def tables(view_runs: Runs, tmp_path_factory: pytest.TempPathFactory
           ) -> RunTables:
    cache = tmp_path_factory.mktemp("view-cache")
    return RunTables([cache_run([run], cache) for run in view_runs])


def _all(tables: RunTables, run: int, **query: str) -> list[dict[str, object]]:
    page = tables.rows(run, parse_filter({**query, "limit": "500"}))
    return [dict(zip(page["columns"], r, strict=True)) for r in page["rows"]]


def test_the_cache_holds_every_final_row_and_is_reused(view_runs: Runs,
                                                        tmp_path: Path) -> None:
    editor = view_runs[0]
    first = cache_run([editor], tmp_path)
    assert first.rows == len(list(final_rows(editor))) == 48
    built = Path(first.database).stat().st_mtime_ns
    again = cache_run([editor], tmp_path)
    assert again.folder == first.folder
    assert Path(again.database).stat().st_mtime_ns == built
    assert sorted(p.name for p in Path(first.folder).iterdir()) == ["run.json", "view.duckdb"]
    assert not (editor / "view.duckdb").exists()  # nothing written into the run folder


def test_a_changed_run_gets_a_new_cache(view_runs: Runs, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("manifest.json", "summary.json", "results.jsonl.gz", "prompts.jsonl.gz"):
        (copy / name).write_bytes((view_runs[0] / name).read_bytes())
    before = cache_run([copy], tmp_path / "c")
    lines = results_text(copy).splitlines(keepends=True)
    write_results(copy, "".join(lines[:-1]))  # the last row gone
    after = cache_run([copy], tmp_path / "c")
    assert after.folder != before.folder and after.rows == before.rows - 1


def test_filters_match_the_rows_themselves(view_runs: Runs,
                                           tables: RunTables) -> None:
    rows = list(final_rows(view_runs[0]))
    wrong_hindi = {r.id for r in rows if r.target_lang == "hi" and r.answer_language
                   and r.answer_language.label == "source"}
    assert wrong_hindi  # the editor answers in the edit's language on some questions
    got = _all(tables, 0, target="hi", label="source")
    assert {r["id"] for r in got} == wrong_hindi
    partial = {r.id for r in rows if 0.2 <= r.scores["token_f1"] <= 0.9}
    assert {r["id"] for r in _all(tables, 0, scorer="token_f1", min="0.2", max="0.9")} == partial
    assert {r["id"] for r in _all(tables, 0, script="Arabic")} == {
        r.id for r in rows if r.target_lang == "ar"}
    assert _all(tables, 0, errors="only") == []


def test_free_text_finds_markup_literally_and_sorts(tables: RunTables) -> None:
    found = _all(tables, 1, q="<script>")
    assert len(found) == 48 and all(r["answer"] == HOSTILE for r in found)
    assert _all(tables, 1, q="100%_") == []  # LIKE wildcards are searched as text
    by_gold = _all(tables, 0, sort="gold", desc="true")
    golds = [str(r["gold"]) for r in by_gold]
    assert golds == sorted(golds, reverse=True)


def test_pages_count_every_match(tables: RunTables) -> None:
    page = tables.rows(0, parse_filter({"limit": "10", "offset": "40"}))
    assert page["total"] == 48 and len(page["rows"]) == 8
    past = tables.rows(0, parse_filter({"offset": "100"}))
    assert past["total"] == 48 and past["rows"] == []


def test_sorted_pages_tile_the_whole_sorted_table(tables: RunTables) -> None:
    whole = [(str(r["gold"]), int(str(r["seq"]))) for r in _all(
        tables, 0, sort="gold", desc="true", target="hi")]
    expected = sorted(whole, key=lambda r: r[1])
    expected.sort(key=lambda r: r[0], reverse=True)  # stable: ties keep the folder's order
    assert whole == expected
    paged = [(str(r[7]), int(r[0])) for offset in range(0, len(whole), 5) for r in tables.rows(
        0, parse_filter({"sort": "gold", "desc": "true", "target": "hi", "limit": "5",
                         "offset": str(offset)}))["rows"]]
    assert paged == whole and len(whole) == 24


def test_a_row_shows_its_stored_prompt_byte_for_byte(view_runs: Runs,
                                                      tables: RunTables) -> None:
    stored = read_requests(view_runs[0])
    for item in ("counterfact/en>hi/2/generality", "zsre/en>ar/0/locality"):
        opened = tables.row(0, item)
        parts = opened["request"]["prompt"]
        assert "".join(p["text"] for p in parts) == stored[opened["row"]["cache_key"]].prompt
        assert parts[0].get("block") and not parts[-1].get("block")  # demonstrations fold


def _em(run: Path) -> dict[str, float]:
    return {r.id: r.scores["em"] for r in final_rows(run)}


def test_compare_pairs_items_by_id(view_runs: Runs, tables: RunTables) -> None:
    editor, hostile = _em(view_runs[0]), _em(view_runs[1])
    expected = {i for i, s in editor.items() if s >= 0.5 and hostile[i] < 0.5}
    page = tables.compare(0, 1, parse_filter({"pair": "a_right_b_wrong", "limit": "500"}),
                          [0, 1])
    assert expected and {r[1] for r in page["rows"]} == expected
    assert page["columns"][-6:] == ["answer_0", "score_0", "label_0", "answer_1", "score_1",
                                    "label_1"]
    assert all(r[page["columns"].index("answer_1")] == HOSTILE for r in page["rows"])
    assert tables.compare(1, 0, parse_filter({"pair": "a_right_b_wrong"}))["total"] == 0


def test_compare_three_runs_a_and_b_chosen_among_them(view_runs: Runs,
                                                      tables: RunTables) -> None:
    editor, flaky = _em(view_runs[0]), _em(view_runs[2])
    expected = {i for i, s in flaky.items() if s >= 0.5 and editor[i] < 0.5}
    assert expected == set()  # the flaky editor is never right where the editor is wrong
    expected = {i for i, s in editor.items() if s >= 0.5 and flaky[i] < 0.5}
    assert expected  # its refused requests
    view = parse_filter({"pair": "a_right_b_wrong", "limit": "500"})
    page = tables.compare(0, 2, view)  # every run shown, A = 0, B = 2
    assert page["runs"] == [0, 1, 2] and {r[1] for r in page["rows"]} == expected
    row = dict(zip(page["columns"], page["rows"][0], strict=True))
    assert row["answer_1"] == HOSTILE and row["score_2"] < 0.5 <= row["score_0"]
    assert tables.compare(2, 0, view, [1])["runs"] == [1, 2, 0]
    hindi = tables.compare(0, 2, parse_filter({"pair": "differ", "target": "hi",
                                               "limit": "500"}))
    assert {r[1] for r in hindi["rows"]} == {i for i in expected if ">hi/" in i}


@pytest.mark.parametrize(("query", "message"), [
    ({"sort": "answer; DROP TABLE x"}, "bad filter sort=.*sort by one of"),
    ({"scorer": "bleu"}, "bad filter scorer='bleu'.*em, paper_f1, token_f1"),
    ({"min": "2"}, "bad filter min='2'"),
    ({"errors": "maybe"}, "bad filter errors='maybe'"),
])
def test_bad_filters_are_one_clear_line(tables: RunTables, query: dict[str, str],
                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tables.rows(0, parse_filter(query))


def test_shards_of_one_run_open_as_that_run(data_dir: Path, tmp_path: Path) -> None:
    common = ["eval", "--backend", "mock", "--data-dir", str(data_dir), "--tasks", "zsre",
              "--languages", "de", "--limit", "3", "--cache-dir", str(tmp_path / "cache"),
              "--no-progress", "--language-id", "script"]
    for i in (1, 2):
        assert main([*common, "--shard", f"{i}/2", "--run-dir", str(tmp_path / f"s{i}")]) == 0
    assert main([*common, "--run-dir", str(tmp_path / "whole")]) == 0
    groups = group_runs([tmp_path / "s1", tmp_path / "whole", tmp_path / "s2"])
    assert groups == [[tmp_path / "s1", tmp_path / "s2"], [tmp_path / "whole"]]
    merged = cache_run(groups[0], tmp_path / "c")
    whole = cache_run(groups[1], tmp_path / "c")
    assert merged.rows == whole.rows == 12
    assert merged.summary is not None and whole.summary is not None
    assert merged.summary["results"] == whole.summary["results"]


def test_a_folder_without_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"No results\.jsonl\.gz \(or results\.jsonl\) in .*is it a run folder"):
        cache_run([tmp_path], tmp_path / "c")


def test_a_run_without_a_summary_still_shows_its_rows(view_runs: Runs,
                                                      tmp_path: Path) -> None:
    unfinished = tmp_path / "run"
    unfinished.mkdir()
    for name in ("manifest.json", "results.jsonl.gz", "prompts.jsonl.gz"):
        (unfinished / name).write_bytes((view_runs[0] / name).read_bytes())
    run = cache_run([unfinished], tmp_path / "c")
    assert run.summary is None and run.rows == 48
    assert RunTables([run]).rows(0, parse_filter({}))["total"] == 48
