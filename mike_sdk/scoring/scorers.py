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
from collections.abc import Hashable, Sequence
from functools import lru_cache

import regex

from mike_sdk.backend import Tokenizer

SCORERS: dict[str, str] = {
    "em": "exact string match, no normalisation",
    "paper_f1": "BMIKE-53 F1: overlap^2/(len(pred)*len(gold)) on the model tokenizer's ids",
    "token_f1": "harmonic F1 on NFKC+casefold tokens without punctuation; "
                "characters for unsegmented scripts, words elsewhere",
}


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the strings are identical, else 0.0."""
    return 1.0 if prediction == gold else 0.0


def overlap(pred: Sequence[Hashable], gold: Sequence[Hashable]) -> int:
    """Size of the multiset intersection of two token sequences.

    >>> overlap([1, 2, 2, 3], [2, 2, 2, 4])
    2
    """
    if pred == gold:  # the common case of a right answer
        return len(pred)
    if len(pred) > len(gold):
        pred, gold = gold, pred
    if len(pred) == 1:
        return 1 if pred[0] in gold else 0
    # Answers are a few tokens: a plain dict beats two Counters and their intersection.
    counts: dict[Hashable, int] = {}
    for token in pred:
        counts[token] = counts.get(token, 0) + 1
    common = 0
    for token in gold:
        left = counts.get(token)
        if left:
            counts[token] = left - 1
            common += 1
    return common


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
_UNSEGMENTED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Bopomofo}\p{Thai}\p{Lao}\p{Khmer}" \
               r"\p{Myanmar}\p{Tibetan}"
# Runs of ordinary word characters, or one unsegmented-script character; punctuation
# and symbols (P*, S*) and white space separate tokens. Combining marks stay in words.
_TOKEN = regex.compile(rf"[{_UNSEGMENTED}]|[^\s\p{{P}}\p{{S}}{_UNSEGMENTED}]+")


def language_tokens(text: str) -> list[str]:
    """Tokens for the language-aware F1: NFKC, case-folded, punctuation removed; one token
    per character in unsegmented scripts (Chinese, Japanese, Thai, ...), words elsewhere.

    >>> language_tokens("Der Eiffelturm, Paris!")
    ['der', 'eiffelturm', 'paris']
    >>> language_tokens("费城 (Philadelphia)")
    ['费', '城', 'philadelphia']
    """
    return list(_language_tokens(text))


@lru_cache(maxsize=1 << 16)
def _language_tokens(text: str) -> tuple[str, ...]:
    # Golds recur in every metric of an item, and answers repeat: tokenize each text once.
    return tuple(_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()))


def token_f1(prediction: str, gold: str) -> float:
    """Tokenizer-independent F1 (harmonic mean) over :func:`language_tokens`.

    >>> token_f1("the Eiffel Tower", "Eiffel tower")
    0.8
    """
    pred, ref = _language_tokens(prediction), _language_tokens(gold)
    if not pred and not ref:
        return 1.0
    if not pred or not ref:
        return 0.0
    c = overlap(pred, ref)
    if c == 0:
        return 0.0
    precision, recall = c / len(pred), c / len(ref)
    return 2 * precision * recall / (precision + recall)


def encode_many(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of many texts, each distinct text encoded once (answers often repeat
    their gold, and golds recur across an item's metrics); texts that repeat share one
    list of ids.

    One call per text, not the tokenizer's batch call: answers are a few tokens, and
    spreading them over threads cost 35-50 us a text against 5 us one by one (Gemma's
    tokenizer, 512 answers, two busy cores).
    """
    unique = list(dict.fromkeys(texts))
    encoded = [tokenizer.encode(t) for t in unique]
    if len(unique) == len(texts):
        return encoded
    ids = dict(zip(unique, encoded, strict=True))
    return [ids[t] for t in texts]


def score_answers(predictions: list[str], golds: list[str],
                  tokenizer: Tokenizer | None) -> list[dict[str, float]]:
    """All scorers that apply to each pair: ``em``, ``token_f1`` and, given a tokenizer,
    ``paper_f1`` (the tokenizer encodes each distinct text of the batch once)."""
    scores = [{"em": exact_match(p, g), "token_f1": token_f1(p, g)}
              for p, g in zip(predictions, golds, strict=True)]
    if tokenizer is not None:
        # An answer equal to its gold scores 1.0 whatever its ids: only the others are
        # encoded (right answers are common, and encoding is most of the scoring).
        wrong = [i for i, (p, g) in enumerate(zip(predictions, golds, strict=True)) if p != g]
        ids = encode_many(tokenizer, [predictions[i] for i in wrong]
                          + [golds[i] for i in wrong])
        for entry in scores:
            entry["paper_f1"] = 1.0
        for n, i in enumerate(wrong):
            scores[i]["paper_f1"] = paper_f1_ids(ids[n], ids[len(wrong) + n])
    return scores


def score_answer(prediction: str, gold: str, tokenizer: Tokenizer | None) -> dict[str, float]:
    """:func:`score_answers` for one pair."""
    return score_answers([prediction], [gold], tokenizer)[0]
