"""Scorers on hand-computed cases."""

from __future__ import annotations

import pytest

from mike_sdk.scoring.scorers import (
    exact_match,
    language_tokens,
    paper_f1,
    paper_f1_ids,
    score_answer,
    score_answers,
    token_f1,
)


class WordIds:
    """A real (if simple) tokenizer: one id per distinct whitespace word, in first-seen order."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab)) for w in text.split()]


def test_paper_f1_is_precision_times_recall_on_a_multiset() -> None:
    # pred has 4 tokens, gold 3; overlap counts the repeated 2 twice: c = 2 -> 4 / 12.
    assert paper_f1_ids([1, 2, 2, 3], [2, 2, 4]) == pytest.approx(1 / 3)
    # Repeats beyond the gold's count do not overlap: c = 1 -> 1 / (3 * 1).
    assert paper_f1_ids([5, 5, 5], [5]) == pytest.approx(1 / 3)
    assert paper_f1_ids([7, 8], [8, 7]) == 1.0
    assert paper_f1_ids([1], [2]) == 0.0


def test_paper_f1_empty_cases() -> None:
    assert paper_f1_ids([], []) == 1.0
    assert paper_f1_ids([], [1]) == 0.0
    assert paper_f1_ids([1], []) == 0.0


def test_paper_f1_uses_the_tokenizer() -> None:
    tok = WordIds()
    # "the city of Paris" vs "Paris": c = 1 -> 1 / (4 * 1).
    assert paper_f1("the city of Paris", "Paris", tok) == pytest.approx(0.25)


def test_exact_match_does_not_normalise() -> None:
    assert exact_match("Paris", "Paris") == 1.0
    assert exact_match("paris", "Paris") == 0.0
    assert exact_match(" Paris", "Paris") == 0.0


@pytest.mark.parametrize(("text", "tokens"), [
    ("Der Eiffelturm, Paris!", ["der", "eiffelturm", "paris"]),
    ("費城", ["費", "城"]),
    ("ライアン・アーチボルド", ["ラ", "イ", "ア", "ン", "ア", "ー", "チ", "ボ", "ル", "ド"]),
    ("วัณโรค", ["ว", "ั", "ณ", "โ", "ร", "ค"]),
    ("ＰＡＲＩＳ", ["paris"]),                     # NFKC folds full-width letters
    ("Straße", ["strasse"]),                        # case folding, not lower()
    ("तपेदिक रोग", ["तपेदिक", "रोग"]),              # combining vowel signs stay in the word
    ("«Москва»", ["москва"]),
])
def test_language_tokens(text: str, tokens: list[str]) -> None:
    assert language_tokens(text) == tokens


def test_token_f1_is_the_harmonic_mean() -> None:
    # pred 3 tokens, gold 2, overlap 2: P = 2/3, R = 1 -> F1 = 0.8.
    assert token_f1("the Eiffel Tower", "Eiffel tower!") == pytest.approx(0.8)
    # Chinese: 费城 vs 费城市: P = 1, R = 2/3 -> 0.8.
    assert token_f1("费城", "费城市") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0 and token_f1("!", "Paris") == 0.0
    assert token_f1("Berlin", "Paris") == 0.0


def test_score_answer_names_each_scorer() -> None:
    assert set(score_answer("a", "a", None)) == {"em", "token_f1"}
    assert set(score_answer("a", "a", WordIds())) == {"em", "token_f1", "paper_f1"}


def test_a_batch_scores_each_pair_as_alone_encoding_only_wrong_answers() -> None:
    """Right answers score paper_f1 1.0 without being encoded; the others as one by one."""
    predictions = ["Paris", "the city of Paris", "", "Rome Rome", "Paris", "   "]
    golds = ["Paris", "Paris", "Paris", "Rome", "", "   "]
    encoded: list[str] = []

    class Counting(WordIds):
        def encode(self, text: str) -> list[int]:
            encoded.append(text)
            return super().encode(text)

    batch = score_answers(predictions, golds, Counting())
    alone = [score_answer(p, g, WordIds()) for p, g in zip(predictions, golds, strict=True)]
    assert batch == alone
    assert [s["paper_f1"] for s in batch] == [paper_f1(p, g, WordIds())
                                              for p, g in zip(predictions, golds, strict=True)]
    assert [list(s) for s in batch] == [["em", "token_f1", "paper_f1"]] * len(golds)
    assert batch[0]["paper_f1"] == batch[5]["paper_f1"] == 1.0  # "   " encodes to nothing
    assert batch[1]["paper_f1"] == pytest.approx(1 / 4) and batch[2]["paper_f1"] == 0.0
    assert sorted(encoded) == sorted({"the city of Paris", "", "Rome Rome", "Paris", "Rome"})
