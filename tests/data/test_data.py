"""Loading the real BMIKE-53 files, their known defects, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mike_sdk.data.benchmark import Benchmark, resolve_data_dir
from mike_sdk.data.languages import normalize_language
from mike_sdk.errors import ConfigError, DataError


def raw(data_dir: Path, rel: str) -> list[dict]:  # type: ignore[type-arg]
    return json.loads((data_dir / "data" / rel).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_hebrew_zsre_skips_items_without_hebrew(benchmark: Benchmark, data_dir: Path) -> None:
    rows = raw(data_dir, "BMIKE53/zsRE/zsre_test_he.json")
    lacking = [i for i, r in enumerate(rows) if "he" not in r]
    items = benchmark.items("zsre", "he")
    assert len(rows) == 743
    assert items.missing == len(lacking) == 39
    assert len(items.items) == 743 - 39
    assert not {i.index for i in items.items} & set(lacking)


def test_english_questions_come_from_the_en_record(benchmark: Benchmark) -> None:
    # *_test_en.json pairs en with de: English targets must still read the en record.
    item = benchmark.items("zsre", "en").items[0]
    assert item.target.src == item.source.src == "When was the inception of IAAF Combined Events Challenge?"


def test_non_english_source_joins_two_files_by_position(benchmark: Benchmark, data_dir: Path) -> None:
    fr, de = raw(data_dir, "BMIKE53/CounterFact/counterfact_test_fr.json"), raw(
        data_dir, "BMIKE53/CounterFact/counterfact_test_de.json")
    item = benchmark.items("counterfact", "de", source_lang="fr").items[3]
    assert item.edit.statement == f"{fr[3]['fr']['src']} {fr[3]['fr']['alt']}"
    assert item.edit.language == "fr"
    assert item.question("locality").text == de[3]["de"]["loc"]
    assert item.question("locality").gold == de[3]["de"]["loc_ans"]


def test_oud_key_is_read_as_old(benchmark: Benchmark, data_dir: Path) -> None:
    found = [(i, r["af"]) for i, r in enumerate(raw(data_dir, "BMIKE53/WikiFactDiff/wfd_test_af.json"))
             if "af" in r and "old" not in r["af"]]
    assert found, "the Afrikaans item with the stray key is expected in the real data"
    index, record = found[0]
    item = next(i for i in benchmark.items("wikifactdiff", "af").items if i.index == index)
    assert item.target.old == record["oud"]


def test_empty_loc_ans_is_kept_and_counted_as_scorable(benchmark: Benchmark) -> None:
    items = benchmark.items("wikifactdiff", "de").items
    assert sum(1 for i in items if i.target.loc_ans == "") == 5


def test_chinese_demonstrations_map_zh_to_zh_cn(benchmark: Benchmark, data_dir: Path) -> None:
    rows = raw(data_dir, "manual_prompts/zsre_multi.json")
    demos = benchmark.demonstrations("zsre")
    assert len(demos) == 32 and [d.type for d in demos[:8]] == [r["type"] for r in rows[:8]]
    assert demos[1].texts["zh"] == rows[1]["zh-cn"]
    assert demos[1].texts["en"] == rows[1]["prompt"]


def test_zh_cn_and_language_names_are_accepted(benchmark: Benchmark) -> None:
    assert benchmark.items("zsre", "zh-cn").target_lang == "zh"
    assert benchmark.items("zsre", "German").target_lang == "de"


def test_unknown_task_and_language_list_valid_names(benchmark: Benchmark) -> None:
    with pytest.raises(ConfigError, match=r"Unknown task 'zrse'.*Did you mean 'zsre'.*counterfact"):
        benchmark.items("zrse", "de")
    with pytest.raises(ConfigError, match=r"Unknown language 'germn'. Did you mean 'de' "
                       r"\(German\)\?.*Valid codes:.* de,"):
        benchmark.items("zsre", "germn")


@pytest.mark.parametrize("spelling", ["deu", "ger", "German", "DE"])
def test_iso_639_codes_and_english_names_map_to_the_code(spelling: str) -> None:
    assert normalize_language(spelling) == "de"


def test_missing_folder_names_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        Benchmark(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    assert "mike data download" in str(err.value) and "MIKE_DATA_DIR" in str(err.value)


def test_env_var_locates_the_data(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIKE_DATA_DIR", str(data_dir))
    assert resolve_data_dir() == data_dir / "data"


@pytest.fixture()
def small_copy(data_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of a few real files, to damage."""
    src = data_dir / "data"
    for rel in ("BMIKE53/zsRE/zsre_test_de.json", "manual_prompts/zsre_multi.json"):
        (tmp_path / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, tmp_path / "data" / rel)
    return tmp_path


def test_missing_file_names_the_expected_path(small_copy: Path) -> None:
    with pytest.raises(DataError, match=r"Missing data file .*zsre_test_fr\.json.*mike data download"):
        Benchmark(small_copy).items("zsre", "fr")


def test_malformed_json_names_file_and_position(small_copy: Path) -> None:
    path = small_copy / "data" / "BMIKE53" / "zsRE" / "zsre_test_de.json"
    path.write_text('[{"en": {"src": "x"}},\n {"en": oops}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"zsre_test_de\.json at line 2, column 9"):
        Benchmark(small_copy).items("zsre", "de")


def test_record_without_required_field_is_skipped_and_counted(small_copy: Path) -> None:
    path = small_copy / "data" / "BMIKE53" / "zsRE" / "zsre_test_de.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    del rows[5]["de"]["port_ans"]
    path.write_text(json.dumps(rows), encoding="utf-8")
    items = Benchmark(small_copy).items("zsre", "de")
    assert items.invalid == 1 and items.skipped == 1 and len(items.items) == 742


@pytest.mark.parametrize("spec", [",", "", " , "])
def test_a_language_list_with_no_language_is_refused(spec: str) -> None:
    from mike_sdk.data.languages import parse_languages

    with pytest.raises(ConfigError, match=r"No language in .*'targets' or 'all'"):
        parse_languages(spec)
