"""``Benchmark.items(limit=...)``: only the first positions are validated, and the skipped
counts of those positions stay exact (the planner reports them per language pair)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mike_sdk.backend import Abilities
from mike_sdk.data.benchmark import Benchmark, ItemSet
from mike_sdk.errors import DataError
from mike_sdk.records import FactRecord
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import get_strategy


def record(n: int, **drop: bool) -> dict[str, Any]:
    fields = {"case_id": n, "src": f"q{n}?", "rephrase": f"r{n}?", "alt": f"a{n}",
              "loc": f"l{n}?", "loc_ans": f"la{n}", "port": f"p{n}?", "port_ans": f"pa{n}"}
    return {k: v for k, v in fields.items() if not drop.get(k)}


# Position: 0 ok, 1 no German entry, 2 lacks ``alt``, 3 ok, 4 not an object, 5 lacks
# ``loc``, 6 ok, 7 no English entry.
ROWS: list[Any] = [
    {"en": record(0), "de": record(0)},
    {"en": record(1)},
    {"en": record(2), "de": record(2, alt=True)},
    {"en": record(3), "de": record(3)},
    "garbage",
    {"en": record(5), "de": record(5, loc=True)},
    {"en": record(6), "de": record(6)},
    {"de": record(7)},
]
MISSING, INVALID = {1, 4, 7}, {2, 5}


@pytest.fixture()
def small(tmp_path: Path) -> Benchmark:
    folder = tmp_path / "data" / "BMIKE53" / "zsRE"
    folder.mkdir(parents=True)
    (folder / "zsre_test_de.json").write_text(json.dumps(ROWS), encoding="utf-8")
    # A French file, position-aligned: French entries everywhere.
    fr = [{"fr": record(i)} for i in range(len(ROWS))]
    (folder / "zsre_test_fr.json").write_text(json.dumps(fr), encoding="utf-8")
    return Benchmark(tmp_path)


def restricted(full: ItemSet, limit: int) -> tuple[list[int], int, int]:
    """What ``limit`` must give, worked out from the whole file's item set."""
    kept = [i.index for i in full.items if i.index < limit]
    return kept, len(MISSING & set(range(limit))), len(INVALID & set(range(limit)))


@pytest.mark.parametrize("limit", range(len(ROWS) + 2))
def test_limit_counts_exactly_the_first_positions(small: Benchmark, limit: int) -> None:
    full = small.items("zsre", "de")
    assert (full.missing, full.invalid) == (len(MISSING), len(INVALID))
    part = small.items("zsre", "de", limit=limit)
    kept, missing, invalid = restricted(full, limit)
    assert [i.index for i in part.items] == kept
    assert (part.missing, part.invalid) == (missing, invalid)
    assert part.skipped + len(part.items) == min(limit, len(ROWS))
    assert part.items == full.items[:len(kept)]
    assert part.files == full.files


def test_positions_past_the_limit_are_never_validated(small: Benchmark,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    validate = FactRecord.model_validate

    def counting(obj: Any, *args: Any, **kwargs: Any) -> FactRecord:
        seen.append(obj["src"])
        return validate(obj, *args, **kwargs)

    monkeypatch.setattr(FactRecord, "model_validate", counting)
    small.items("zsre", "de", limit=1)
    assert seen == ["q0?", "q0?"]  # the source and the target record of position 0


def test_limit_zero_and_negative_give_nothing(small: Benchmark) -> None:
    for limit in (0, -3):
        part = small.items("zsre", "de", limit=limit)
        assert (part.items, part.skipped) == ([], 0)


def test_limit_with_a_second_source_file(small: Benchmark, tmp_path: Path) -> None:
    full = small.items("zsre", "de", source_lang="fr")
    part = small.items("zsre", "de", source_lang="fr", limit=4)
    assert [i.index for i in part.items] == [i.index for i in full.items if i.index < 4]
    assert [i.source.src for i in part.items] == ["q0?", "q3?"]
    assert (part.missing, part.invalid) == (1, 1)
    assert set(part.files) == set(full.files) and len(part.files) == 2
    # Alignment is still checked on whole files, whatever the limit.
    path = tmp_path / "data" / "BMIKE53" / "zsRE" / "zsre_test_fr.json"
    path.write_text(json.dumps([{"fr": record(0)}]), encoding="utf-8")
    with pytest.raises(DataError, match="position-aligned"):
        small.items("zsre", "de", source_lang="fr", limit=1)


def test_iter_items_takes_the_limit(small: Benchmark) -> None:
    assert [i.index for i in small.iter_items("zsre", "de", limit=4)] == [0, 3]


@pytest.mark.parametrize(("task", "lang"), [("zsre", "he"), ("zsre", "hi"),
                                            ("counterfact", "he"), ("wikifactdiff", "he"),
                                            ("counterfact", "zh")])
def test_real_files_give_the_whole_files_first_items(benchmark: Benchmark, task: str,
                                                     lang: str) -> None:
    full = benchmark.items(task, lang)
    lacking = sorted(set(range(len(full.items) + full.skipped)) - {i.index for i in full.items})
    for limit in (1, 5, 50, 120, 400, 10_000):
        part = benchmark.items(task, lang, limit=limit)
        assert part.items == [i for i in full.items if i.index < limit]
        assert part.missing == len([i for i in lacking if i < limit])
        assert part.invalid == 0 and part.files == full.files


def test_planner_reports_the_skipped_items_of_the_limited_positions(
        benchmark: Benchmark) -> None:
    # zsRE Hebrew lacks positions 37, 46, 54, 74, 97, ...: two of them fall below 50.
    config = EvalConfig(tasks=("zsre",), languages=("he", "de"), limit=50,
                        metrics=("reliability",))
    planner = Planner(benchmark, config, get_strategy("one-shot"), Abilities(completion=True))
    work = list(planner)
    assert planner.skipped == {"zsre": {"en>he": 2, "en>de": 0}}
    he = [w.item.index for w in work if w.item.target_lang == "he"]
    assert he == [i for i in range(50) if i not in (37, 46)]
    assert len(work) == 48 + 50
    assert all(w.item.index < 50 for w in work)
