"""Language confusion: is an answer in the target language, the source language, or another?

Each answer gets a label and what was detected (a language code or a script name):

* ``neutral``: nothing tells the languages apart, so the answer counts neither way:
  no letters (empty, numbers, dates: detected ``none``); a copy of the gold when the
  gold is the same string in both languages (a name such as ``Adobe``: ``gold``);
  or a script or identifier that cannot decide (``undetermined``).
* ``target``: written in the question's language (or a copy of a target gold that
  differs from the source gold).
* ``source``: written in the edit's language (or a copy of the source-language gold).
* ``other``: written in a third language.

Scripts come from Unicode data (``regex`` script properties). A script used by one
of the two languages only decides alone (a Latin answer to a Hindi question with an
English edit is ``source``); a script neither uses is ``other``. The ``lingua``
identifier (the ``analysis`` extra) adds two checks, so that labels depend on the
answer and its pair only, never on which other languages a run covers:

* a *third language*: an identifier over every BMIKE-53 language written in the
  answer's script must name one other than the pair's with a relative confidence of
  at least :data:`OTHER_CONFIDENCE` (answers are short and full of names), and one it
  finds at least :data:`DOUBT_CONFIDENCE` likely leaves the answer ``undetermined``;
* *source or target*, when both write the answer's script (Latin pairs such as
  en>de, Cyrillic ru>uk, Han zh>ja): an identifier of just those two languages must
  reach :data:`PAIR_CONFIDENCE`. One over all 33 Latin-script languages would
  spread its confidence too thin to decide a one-word answer.

Without ``lingua`` such answers are ``undetermined``. The identifier's verdicts can be
kept on disk (:class:`~mike_sdk.scoring.verdicts.IdentificationCache`), so that a
re-run from the response cache does not identify every answer again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict

from mike_sdk.scoring.lingua_worker import LinguaWorker, verdicts_of
from mike_sdk.scoring.verdicts import IdentificationCache, Verdict, detector_key

Label = Literal["target", "source", "other", "neutral"]
LABELS: tuple[Label, ...] = ("target", "source", "other", "neutral")

#: Relative confidence a two-language identifier needs to choose the source or the
#: target language (proper names sit near 0.5-0.75: "Paris" for fr/en, "Adobe" for de/en).
PAIR_CONFIDENCE = 0.8
#: Relative confidence the identifier over a whole script needs to name a third language.
OTHER_CONFIDENCE = 0.7
#: ... and a third language this likely leaves the answer ``undetermined`` (the pair's
#: identifier, knowing only two languages, would otherwise force a German word to be
#: French or English).
DOUBT_CONFIDENCE = 0.5

#: Scripts of each language beyond Latin (the released Serbian files are in Latin script).
_SCRIPTS: dict[str, tuple[str, ...]] = {
    "ar": ("Arabic",), "fa": ("Arabic",), "ur": ("Arabic",),
    "be": ("Cyrillic",), "bg": ("Cyrillic",), "ru": ("Cyrillic",), "uk": ("Cyrillic",),
    "sr": ("Latin", "Cyrillic"), "el": ("Greek",), "he": ("Hebrew",),
    "hi": ("Devanagari",), "bn": ("Bengali",), "ta": ("Tamil",), "th": ("Thai",),
    "ka": ("Georgian",), "hy": ("Armenian",), "zh": ("Han",), "ja": ("Kana", "Han"),
    "ko": ("Hangul", "Han"),
}
_KNOWN = ("Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "Devanagari", "Bengali", "Tamil",
          "Thai", "Georgian", "Armenian", "Han", "Hangul", "Hiragana", "Katakana")
_SCRIPT_RE = {name: regex.compile(rf"\p{{Script={name}}}") for name in _KNOWN}
_LETTER = regex.compile(r"\p{L}")


def scripts_of(language: str) -> tuple[str, ...]:
    """The scripts a language is written in (``Kana`` = Hiragana or Katakana)."""
    return _SCRIPTS.get(language, ("Latin",))


@lru_cache(maxsize=1 << 14)
def _char_script(char: str) -> str:
    """The script of one letter (``Kana`` for Hiragana and Katakana, ``Other`` if unknown)."""
    script = next((s for s, pattern in _SCRIPT_RE.items() if pattern.match(char)), "Other")
    return "Kana" if script in ("Hiragana", "Katakana") else script


@lru_cache(maxsize=1 << 16)
def dominant_script(text: str) -> str | None:
    """The script of most letters (Kana and Hangul win over Han, as in Japanese and Korean)."""
    counts: dict[str, int] = {}
    for char in _LETTER.findall(text):
        script = _char_script(char)
        counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    for preferred in ("Kana", "Hangul"):  # kanji/hanja appear inside Japanese/Korean text
        if preferred in counts:
            return preferred
    return max(counts, key=lambda s: counts[s])


@cache
def _users(script: str) -> tuple[str, ...]:
    """The BMIKE-53 languages written in ``script``."""
    return tuple(sorted(code for code in _bmike_codes() if script in scripts_of(code)))


@cache
def _bmike_codes() -> frozenset[str]:
    from mike_sdk.data.languages import LANGUAGES

    return frozenset(LANGUAGES)


class AnswerLanguage(BaseModel):
    """Which language an answer is in, relative to the item's source and target."""

    model_config = ConfigDict(frozen=True)

    label: Label
    """``target``, ``source``, ``other`` or ``neutral`` (see :mod:`mike_sdk.scoring.confusion`)."""
    detected: str
    """A language code, a script name, or ``none``/``gold``/``undetermined``."""


@lru_cache(maxsize=1 << 16)
def _norm(text: str) -> str:
    # Golds recur in every metric of an item, and answers repeat: normalise each once.
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@lru_cache(maxsize=1 << 16)
def _answer_script(answer: str) -> str | None:
    """:func:`dominant_script` of the NFKC form (both :meth:`~LanguageIdentifier.prefetch`
    and :meth:`~LanguageIdentifier.label` ask it of every answer)."""
    return dominant_script(unicodedata.normalize("NFKC", answer))


def lingua_available() -> bool:
    """Whether the ``lingua-language-detector`` package (the ``analysis`` extra) is installed."""
    try:
        import lingua  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _lingua_version() -> str:
    from importlib.metadata import version

    return version("lingua-language-detector")


@lru_cache(maxsize=1)
def _lingua_codes() -> frozenset[str]:
    if not lingua_available():
        return frozenset()
    from lingua import Language

    return frozenset(lang.iso_code_639_1.name.lower() for lang in Language.all())


@lru_cache(maxsize=4096)
def _language_sets(script: str, target: str, source: str
                   ) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """:meth:`LanguageIdentifier._detectors` with lingua, computed once per question kind
    (twice a row otherwise: a measurable share of a cached re-run)."""
    wide = frozenset(c for c in _users(script) if c in _lingua_codes())
    pair = frozenset(c for c in (target, source) if c in wide)
    return (wide if len(wide) > 1 else None), (pair if len(pair) == 2 else None)


@lru_cache(maxsize=4096)
def _answer(label: Label, detected: str) -> AnswerLanguage:
    """A (frozen, hence shared) label: validated once, not once per row."""
    return AnswerLanguage(label=label, detected=detected)


class LanguageIdentifier:
    """Labels answers relative to their question's (source, target) pair.

    >>> LanguageIdentifier().label("Philadelphia", "hi", "en").label
    'source'
    """

    def __init__(self, *, use_lingua: bool = True,
                 store: IdentificationCache | None = None) -> None:
        self.lingua = use_lingua and lingua_available()
        self.store = store if self.lingua else None
        """Where verdicts are kept between runs (None: this identifier's memory only)."""
        # Answers repeat a lot (names, common words), and each identification costs about
        # a millisecond: keep what was found, and fill it per chunk in parallel (prefetch).
        self._found: dict[tuple[str, frozenset[str]], Verdict] = {}
        self.worker: LinguaWorker | None = None
        """The process that identifies for :meth:`aprefetch` (None: this process, or not
        started yet)."""
        self._sets: list[tuple[str, frozenset[str]]] | None = None
        """The detectors the worker is to load (None: no worker, identify here)."""

    def start(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Identify in a worker process from now on, loading there the detectors that
        ``(source, target)`` pairs need (answers in either language's scripts). The
        worker starts at :meth:`warm`, or when an answer has no stored verdict: a fully
        cached re-run, whose verdicts are all stored, never loads lingua."""
        if not self.lingua or self.worker is not None:
            return
        self._sets = [(script, codes) for source, target in pairs
                      for script in {*scripts_of(source), *scripts_of(target)}
                      for codes in _language_sets(script, target, source) if codes is not None]

    def warm(self) -> None:
        """Start the worker (once :meth:`start` ed) so that lingua loads now: while the
        requests whose answers it will identify are in flight."""
        if self._sets is None or self.worker is not None:
            return
        from mike_sdk.scoring.lingua_worker import LinguaWorker

        self.worker = LinguaWorker(self._sets)

    def close(self) -> None:
        """Stop the worker process, if any."""
        self._sets = None
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    @property
    def method(self) -> str:
        """``script+lingua`` or ``script-only`` (the summary reports which)."""
        return "script+lingua" if self.lingua else "script-only"

    def describe(self) -> dict[str, object]:
        """What a run summary records about the detection."""
        about: dict[str, object] = {"method": self.method}
        if self.lingua:
            about.update(lingua=_lingua_version(), pair_confidence=PAIR_CONFIDENCE,
                         other_confidence=OTHER_CONFIDENCE, doubt_confidence=DOUBT_CONFIDENCE,
                         languages=sorted(_lingua_codes() & _bmike_codes()))
        return about

    def _detectors(self, script: str, target: str, source: str
                   ) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """The language sets to identify among: the whole script's, and the pair's."""
        if not self.lingua:
            return None, None
        return _language_sets(script, target, source)

    def identify(self, text: str, codes: frozenset[str]) -> Verdict:
        """The most likely of ``codes`` for ``text`` and its relative confidence."""
        key = (text, codes)
        if key not in self._found:
            self._identify_many([text], codes)
        return self._found[key]

    def prefetch(self, questions: Iterable[tuple[str, str, str]]) -> None:
        """Identify many ``(answer, target, source)`` at once (lingua runs them in
        parallel); :meth:`label` then finds them ready."""
        self._bound()
        for codes, texts in self._todo(questions).items():
            self._identify_many(sorted(texts), codes)

    async def aprefetch(self, questions: Iterable[tuple[str, str, str]]) -> None:
        """:meth:`prefetch`, in the worker process once :meth:`start` ed."""
        self._bound()
        for codes, texts in self._todo(questions).items():
            unknown = self._known(sorted(texts), codes)
            if unknown:
                self.warm()
                fresh = (await self.worker.verdicts(codes, unknown) if self.worker is not None
                         else verdicts_of(codes, unknown))
                self._keep(codes, dict(zip(unknown, fresh, strict=True)))

    def prefetch_stored(self, questions: Iterable[tuple[str, str, str]]) -> bool:
        """Take the stored verdicts for many ``(answer, target, source)``, identifying
        nothing; False when an answer was never identified (a helper process leaves its
        chunk to the run's own process, which identifies it)."""
        self._bound()
        return not any(self._known(sorted(texts), codes)
                       for codes, texts in self._todo(questions).items())

    def _bound(self) -> None:
        """Forget the verdicts of earlier chunks once there are many (a chunk needs its
        own only: the rest saves look-ups), so that memory does not grow with the run."""
        if len(self._found) > 1 << 16:
            self._found.clear()

    def _todo(self, questions: Iterable[tuple[str, str, str]]
              ) -> dict[frozenset[str], set[str]]:
        """The answers to identify, by detector (those already known left out)."""
        todo: dict[frozenset[str], set[str]] = {}
        if not self.lingua:
            return todo
        for answer, target, source in questions:
            script = _answer_script(answer)
            if script is None:
                continue
            for codes in self._detectors(script, target, source):
                if codes is not None and (answer, codes) not in self._found:
                    todo.setdefault(codes, set()).add(answer)
        return todo

    def _identify_many(self, texts: list[str], codes: frozenset[str]) -> None:
        unknown = self._known(texts, codes)
        if unknown:
            self._keep(codes, dict(zip(unknown, verdicts_of(codes, unknown), strict=True)))

    def _known(self, texts: list[str], codes: frozenset[str]) -> list[str]:
        """Take the stored verdicts among ``texts``; returns the texts still unknown."""
        key = detector_key(_lingua_version(), codes)
        known = self.store.get_many(key, texts) if self.store is not None else {}
        self._found.update(((t, codes), v) for t, v in known.items())
        return [t for t in texts if t not in known]

    def _keep(self, codes: frozenset[str], fresh: dict[str, Verdict]) -> None:
        if self.store is not None:
            self.store.put_many(detector_key(_lingua_version(), codes), fresh)
        self._found.update(((t, codes), v) for t, v in fresh.items())

    def label(self, answer: str, target: str, source: str, gold: str = "",
              source_gold: str | None = None) -> AnswerLanguage:
        """Label one answer to a question in ``target`` about an edit stated in ``source``."""
        script = _answer_script(answer)
        if script is None:
            return _answer("neutral", "none")
        said, tgold = _norm(answer), _norm(gold)
        sgold = tgold if source_gold is None else _norm(source_gold)
        if said and said in (tgold, sgold):
            if tgold == sgold:
                return _answer("neutral", "gold")
            side: Label = "target" if said == tgold else "source"
            return _answer(side, target if side == "target" else source)
        wide, pair = self._detectors(script, target, source)
        found = self.identify(answer, wide) if wide is not None else None
        third = 0.0  # how likely a third language is
        if found is not None and found[0] not in (target, source):
            third = found[1]
            if third >= OTHER_CONFIDENCE:
                return _answer("other", found[0])
        in_target, in_source = script in scripts_of(target), script in scripts_of(source)
        if (in_target or in_source) and third >= DOUBT_CONFIDENCE:
            return _answer("neutral", "undetermined")
        if in_target and in_source and target != source:
            chosen = self.identify(answer, pair) if pair is not None else None
            if chosen is None or chosen[1] < PAIR_CONFIDENCE:
                return _answer("neutral", "undetermined")
            return _answer("target" if chosen[0] == target else "source", chosen[0])
        if in_target or in_source:  # only one side writes this script (or they are one)
            return _answer("target" if in_target else "source",
                           target if in_target else source)
        users = _users(script)
        return _answer("other", users[0] if len(users) == 1 else script)
