"""Language-confusion labels on real BMIKE-53 gold strings and on typical wrong answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mike_sdk.run.results import Aggregator
from mike_sdk.runfolder.files import ResultRow
from mike_sdk.scoring.confusion import LanguageIdentifier, dominant_script, scripts_of
from mike_sdk.scoring.verdicts import IdentificationCache


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    pytest.importorskip("lingua")
    return LanguageIdentifier()


def gold(data_dir: Path, lang: str, index: int, field: str) -> str:
    path = data_dir / "data" / "BMIKE53" / "CounterFact" / f"counterfact_test_{lang}.json"
    value = json.loads(path.read_text(encoding="utf-8"))[index][lang][field]
    assert isinstance(value, str)
    return value


# (language, CounterFact item, field): real gold strings that are words of their language
# (the translations of "Spanish" and "John Warnock and Charles Geschke", Philadelphia).
REAL_GOLD = [
    ("de", 1, "loc_ans"), ("fr", 1, "loc_ans"), ("es", 1, "loc_ans"), ("it", 1, "loc_ans"),
    ("nl", 1, "loc_ans"), ("pl", 1, "loc_ans"), ("ru", 1, "loc_ans"), ("ru", 2, "port_ans"),
    ("uk", 0, "alt"), ("zh", 1, "loc_ans"), ("zh", 0, "alt"), ("ja", 1, "loc_ans"),
    ("ja", 2, "port_ans"), ("ko", 1, "loc_ans"), ("ar", 1, "loc_ans"), ("fa", 0, "alt"),
    ("hi", 1, "loc_ans"), ("hi", 2, "port_ans"), ("he", 2, "port_ans"), ("th", 1, "loc_ans"),
    ("el", 2, "port_ans"), ("ka", 0, "alt"), ("hy", 1, "loc_ans"),
]


@pytest.mark.parametrize(("lang", "index", "field"), REAL_GOLD)
def test_real_gold_is_the_target_language(identifier: LanguageIdentifier, data_dir: Path,
                                          lang: str, index: int, field: str) -> None:
    text = gold(data_dir, lang, index, field)
    found = identifier.label(text, lang, "en")
    assert found.label == "target", (text, found)
    assert found.detected == lang or found.detected in scripts_of(lang)


@pytest.mark.parametrize("lang", ["hi", "ru", "zh", "ja", "ko", "ar", "he", "th", "el"])
def test_english_answer_to_a_non_latin_question_is_source(
        identifier: LanguageIdentifier, data_dir: Path, lang: str) -> None:
    english = gold(data_dir, "en", 1, "loc_ans")  # "Spanish"
    found = identifier.label(english, lang, "en", gold(data_dir, lang, 1, "loc_ans"))
    assert found.label == "source" and found.detected == "en"


def test_source_gold_copied_into_a_latin_target_is_source(
        identifier: LanguageIdentifier, data_dir: Path) -> None:
    # English "Philadelphia" answered to a Spanish question whose gold is "Filadelfia".
    found = identifier.label(gold(data_dir, "en", 0, "alt"), "es", "en",
                             gold(data_dir, "es", 0, "alt"), gold(data_dir, "en", 0, "alt"))
    assert found.label == "source" and found.detected == "en"


def test_wrong_language_answers(identifier: LanguageIdentifier, data_dir: Path) -> None:
    german = gold(data_dir, "de", 1, "loc_ans")  # "Spanisch"
    assert identifier.label(german, "fr", "en").model_dump() == {"label": "other",
                                                                 "detected": "de"}
    russian = gold(data_dir, "ru", 1, "loc_ans")
    assert identifier.label(russian, "hi", "en").label == "other"
    assert identifier.label(russian, "hi", "ru").label == "source"
    # Ukrainian and Russian share Cyrillic: the identifier tells them apart.
    assert identifier.label(russian, "uk", "ru").label == "source"
    japanese = gold(data_dir, "ja", 1, "loc_ans")
    assert identifier.label(japanese, "zh", "en").model_dump() == {"label": "other",
                                                                   "detected": "ja"}


def test_language_neutral_answers(identifier: LanguageIdentifier, data_dir: Path) -> None:
    for answer in ("", "   ", "2006", "12.03.1999", "—"):
        assert identifier.label(answer, "de", "en").model_dump() == {"label": "neutral",
                                                                     "detected": "none"}
    # "Adobe" is the gold in German and English alike: copying it says nothing.
    adobe = gold(data_dir, "de", 2, "alt")
    found = identifier.label(adobe, "de", "en", adobe, gold(data_dir, "en", 2, "alt"))
    assert found.model_dump() == {"label": "neutral", "detected": "gold"}
    # A bare name the identifier cannot place is undetermined, not wrong.
    assert identifier.label(adobe, "de", "en").model_dump() == {
        "label": "neutral", "detected": "undetermined"}


def test_verdicts_are_kept_and_read_back(data_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("lingua")
    german = gold(data_dir, "de", 1, "loc_ans")  # "Spanisch"
    with_store = IdentificationCache(tmp_path / "ids.sqlite")
    first = LanguageIdentifier(store=with_store)
    first.prefetch([(german, "fr", "en"), ("2006", "fr", "en")])
    # "Spanisch" by the identifiers of all Latin-script languages and of fr/en; "2006"
    # has no script and is never sent.
    assert len(with_store) == 2
    assert first.label(german, "fr", "en").model_dump() == {"label": "other", "detected": "de"}
    # A new identifier reads the stored verdicts instead of identifying again: overwrite
    # them with different ones and see those come back.
    with_store._db.execute("UPDATE verdicts SET code = 'fr', confidence = 0.99")
    second = LanguageIdentifier(store=with_store)
    second.prefetch([(german, "fr", "en")])
    assert second.label(german, "fr", "en").model_dump() == {"label": "target", "detected": "fr"}
    assert LanguageIdentifier().label(german, "fr", "en").detected == "de"  # no store
    with_store.close()


def test_short_latin_answers_to_a_latin_pair(identifier: LanguageIdentifier) -> None:
    # One or two words: an identifier over all 33 Latin-script languages cannot decide
    # these; the pair's own identifier can, and leaves bare names undetermined.
    assert identifier.label("Spanish", "de", "en").model_dump() == {"label": "source",
                                                                   "detected": "en"}
    assert identifier.label("the French language", "fr", "en").label == "source"
    assert identifier.label("inglese", "it", "en").model_dump() == {"label": "target",
                                                                   "detected": "it"}
    assert identifier.label("piłka nożna", "pl", "en").label == "target"
    for name, target in (("Paris", "fr"), ("Microsoft", "fr"), ("Toyota", "it")):
        assert identifier.label(name, target, "en").detected == "undetermined", name


def test_script_only_fallback(data_dir: Path) -> None:
    plain = LanguageIdentifier(use_lingua=False)
    assert plain.method == "script-only" and plain.describe() == {"method": "script-only"}
    assert plain.label(gold(data_dir, "de", 1, "loc_ans"), "de", "en").label == "neutral"
    assert plain.label(gold(data_dir, "en", 0, "alt"), "hi", "en").label == "source"
    assert plain.label(gold(data_dir, "hi", 0, "alt"), "hi", "en").label == "target"
    assert plain.label(gold(data_dir, "th", 0, "alt"), "hi", "en").model_dump() == {
        "label": "other", "detected": "th"}


def test_dominant_script() -> None:
    assert dominant_script("タミル語") == "Kana" and dominant_script("泰米尔语") == "Han"
    assert dominant_script("존 워녹과") == "Hangul" and dominant_script("2006") is None
    assert dominant_script("Ταμίλ Ναντού") == "Greek"


def test_stored_verdicts_only_say_whether_all_are_there(data_dir: Path,
                                                        tmp_path: Path) -> None:
    """What a helper process does: read the verdicts, never identify."""
    pytest.importorskip("lingua")
    german = gold(data_dir, "de", 1, "loc_ans")  # "Spanisch"
    store = IdentificationCache(tmp_path / "ids.sqlite")
    questions = [(german, "fr", "en"), ("Paris", "fr", "en"), ("2006", "fr", "en")]
    reader = LanguageIdentifier(store=store)
    assert not reader.prefetch_stored(questions)
    assert len(store) == 0 and reader.worker is None  # nothing identified
    writer = LanguageIdentifier(store=store)
    writer.prefetch(questions)
    labels = [writer.label(*q).model_dump() for q in questions]
    reader = LanguageIdentifier(store=store)
    assert reader.prefetch_stored(questions)
    assert [reader.label(*q).model_dump() for q in questions] == labels
    store.close()


def test_aggregator_reports_wrong_language_share_and_in_language_scores() -> None:
    aggregator = Aggregator()
    base = {"task": "zsre", "source_lang": "en", "target_lang": "hi", "metric": "reliability",
            "cached": True, "id": "zsre/en>hi/0/reliability", "index": 0, "case_id": 0,
            "prompt": "p", "messages": None, "cache_key": "k", "output": "a", "answer": "a",
            "gold": "a", "finish_reason": "stop"}  # what a result row must have
    for label, em in (("target", 1.0), ("source", 0.0), ("other", 0.0), ("neutral", 1.0)):
        aggregator.add(ResultRow.model_validate(
            {**base, "scores": {"em": em}, "answer_language": {"label": label, "detected": "x"}}))
    # A row of an older run, before answers were labelled.
    aggregator.add(ResultRow.model_validate({**base, "target_lang": "de", "scores": {"em": 1.0}}))
    by_target = {r["target_lang"]: r for r in aggregator.table()}
    hi, de = by_target["hi"], by_target["de"]
    assert hi["answer_language"] == {"target": 1, "source": 1, "other": 1, "neutral": 1}
    assert hi["wrong_language"] == pytest.approx(200 / 3, abs=1e-3)
    assert hi["in_language"] == {"n": 2, "em": 100.0} and hi["em"] == 50.0
    assert "answer_language" not in de and de["em"] == 100.0
