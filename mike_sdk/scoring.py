"""Answer scorers: exact match, the paper's tokenizer F1, and a language-aware token F1.

Every stored number carries the name of the scorer that made it:

- ``em``: the answer equals the gold string exactly (no stripping, no case folding).
- ``paper_f1``: the paper's "F1", on the evaluated model's own token ids:
  c = multiset overlap, score = c*c / (len(pred) * len(gold)), i.e. precision
  times recall. Comparable only between runs of the same tokenizer.
- ``token_f1``: tokenizer-independent F1 (harmonic mean of precision and recall)
  over language-aware tokens; comparable across any backends.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence

from .backend import Tokenizer

SCORERS: dict[str, str] = {
    "em": "exact string match, no normalisation",
    "paper_f1": "BMIKE-53 F1: overlap^2/(len(pred)*len(gold)) on the model tokenizer's ids",
    "token_f1": "harmonic F1 on NFKC+casefold tokens without punctuation; "
                "characters for unsegmented scripts, words elsewhere",
}


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the strings are identical, else 0.0."""
    return 1.0 if prediction == gold else 0.0


def overlap(pred: Sequence[object], gold: Sequence[object]) -> int:
    """Size of the multiset intersection of two token sequences."""
    return sum((Counter(pred) & Counter(gold)).values())


def paper_f1_ids(pred: Sequence[int], gold: Sequence[int]) -> float:
    """The paper's F1 on token ids: overlap squared over the product of lengths.

    >>> paper_f1_ids([1, 2, 3], [2, 3])   # c=2: 4 / 6
    0.6666666666666666
    """
    if not pred and not gold:
        return 1.0
    if not pred or not gold:
        return 0.0
    c = overlap(pred, gold)
    return c * c / (len(pred) * len(gold))


def paper_f1(prediction: str, gold: str, tokenizer: Tokenizer) -> float:
    """The paper's F1 of two strings under a model's tokenizer (no special tokens)."""
    return paper_f1_ids(tokenizer.encode(prediction), tokenizer.encode(gold))


# Scripts written without spaces between words: each character is a token.
_UNSEGMENTED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B+
)


def _unsegmented(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _UNSEGMENTED)


def _dropped(ch: str) -> bool:
    # Punctuation and symbols carry no answer content; combining marks stay (Indic vowels).
    return unicodedata.category(ch)[0] in "PS"


def language_tokens(text: str) -> list[str]:
    """Tokens for the language-aware F1: NFKC, case-folded, punctuation removed; one token
    per character in unsegmented scripts (Chinese, Japanese, Thai, ...), words elsewhere.

    >>> language_tokens("Der Eiffelturm, Paris!")
    ['der', 'eiffelturm', 'paris']
    >>> language_tokens("费城 (Philadelphia)")
    ['费', '城', 'philadelphia']
    """
    tokens: list[str] = []
    word: list[str] = []
    for ch in unicodedata.normalize("NFKC", text).casefold():
        if ch.isspace() or _dropped(ch):
            if word:
                tokens.append("".join(word))
                word = []
        elif _unsegmented(ch):
            if word:
                tokens.append("".join(word))
                word = []
            tokens.append(ch)
        else:
            word.append(ch)
    if word:
        tokens.append("".join(word))
    return tokens


def token_f1(prediction: str, gold: str) -> float:
    """Tokenizer-independent F1 (harmonic mean) over :func:`language_tokens`.

    >>> token_f1("the Eiffel Tower", "Eiffel tower")
    0.8
    """
    pred, ref = language_tokens(prediction), language_tokens(gold)
    if not pred and not ref:
        return 1.0
    if not pred or not ref:
        return 0.0
    c = overlap(pred, ref)
    if c == 0:
        return 0.0
    precision, recall = c / len(pred), c / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_answer(prediction: str, gold: str, tokenizer: Tokenizer | None) -> dict[str, float]:
    """All scorers that apply: ``em``, ``token_f1`` and, given a tokenizer, ``paper_f1``."""
    scores = {"em": exact_match(prediction, gold), "token_f1": token_f1(prediction, gold)}
    if tokenizer is not None:
        scores["paper_f1"] = paper_f1(prediction, gold, tokenizer)
    return scores
