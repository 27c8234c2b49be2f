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
English edit is ``source``, unless the identifier is confident of another Latin
language); a script neither uses is ``other``. When both languages share the
answer's script (Latin pairs such as en>de, Cyrillic ru>uk, Han zh>ja) the
``lingua`` identifier decides, restricted to the run's languages, and only above
:data:`MIN_CONFIDENCE` (:data:`OTHER_CONFIDENCE` for a third language; answers are
short); without ``lingua`` (the ``analysis``
extra) such answers are ``undetermined``. The identifier's verdicts can be kept on disk
(:class:`~mike_sdk.identification_cache.IdentificationCache`), so that a re-run from the
response cache does not identify every answer again.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict

from .identification_cache import IdentificationCache, Verdict, detector_key

Label = Literal["target", "source", "other", "neutral"]
LABELS: tuple[Label, ...] = ("target", "source", "other", "neutral")

#: The identifier's relative confidence needed to name the source or target language.
MIN_CONFIDENCE = 0.5
#: ... and to name a third language (proper names in short answers mislead it).
OTHER_CONFIDENCE = 0.8

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


@lru_cache(maxsize=1 << 16)
def dominant_script(text: str) -> str | None:
    """The script of most letters (Kana and Hangul win over Han, as in Japanese and Korean)."""
    counts: dict[str, int] = {}
    for char in _LETTER.findall(text):
        script = next((s for s, pattern in _SCRIPT_RE.items() if pattern.match(char)), "Other")
        script = "Kana" if script in ("Hiragana", "Katakana") else script
        counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    for preferred in ("Kana", "Hangul"):  # kanji/hanja appear inside Japanese/Korean text
        if preferred in counts:
            return preferred
    return max(counts, key=lambda s: counts[s])


@cache
def _users(script: str) -> tuple[str, ...]:
    from .languages import LANGUAGES

    return tuple(code for code in LANGUAGES if script in scripts_of(code))


class AnswerLanguage(BaseModel):
    """Which language an answer is in, relative to the item's source and target."""

    model_config = ConfigDict(frozen=True)

    label: Label
    """``target``, ``source``, ``other`` or ``neutral`` (see :mod:`mike_sdk.confusion`)."""
    detected: str
    """A language code, a script name, or ``none``/``gold``/``undetermined``."""


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@lru_cache(maxsize=8)
def _detector(codes: frozenset[str]) -> Any:
    """A lingua detector over ``codes`` (built once per set: it loads its models lazily)."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper()))
                 for c in sorted(codes)]
    return LanguageDetectorBuilder.from_languages(*languages).build()


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


class LanguageIdentifier:
    """Labels answers for the languages of one run (``languages``: every source and target).

    >>> LanguageIdentifier(["en", "hi"]).label("Philadelphia", "hi", "en").label
    'source'
    """

    def __init__(self, languages: Iterable[str], *, use_lingua: bool = True,
                 store: IdentificationCache | None = None) -> None:
        self.lingua = use_lingua and lingua_available()
        self.store = store if self.lingua else None
        """Where verdicts are kept between runs (None: this identifier's memory only)."""
        supported = _lingua_codes() if self.lingua else frozenset()
        self.codes = frozenset(languages) & supported
        """The run's languages the identifier knows (Cebuano and Galician it does not)."""
        # Answers repeat a lot (names, common words), and each identification costs ~3 ms
        # one at a time: keep what was found, and fill it per chunk in parallel (prefetch).
        self._found: dict[tuple[str, str], Verdict] = {}

    @property
    def method(self) -> str:
        """``script+lingua`` or ``script-only`` (the summary reports which)."""
        return "script+lingua" if self.lingua else "script-only"

    def identify(self, text: str, script: str) -> Verdict:
        """The most likely run language written in ``script`` and its relative confidence."""
        key = (text, script)
        if key not in self._found:
            self._identify_many([text], script)
        return self._found[key]

    def prefetch(self, answers: Iterable[str]) -> None:
        """Identify many answers at once (lingua runs them in parallel); :meth:`label`
        then finds them ready."""
        if not self.lingua:
            return
        by_script: dict[str, set[str]] = {}
        for answer in answers:
            script = dominant_script(unicodedata.normalize("NFKC", answer))
            if script is not None and (answer, script) not in self._found:
                by_script.setdefault(script, set()).add(answer)
        for script, texts in by_script.items():
            self._identify_many(sorted(texts), script)

    def _identify_many(self, texts: list[str], script: str) -> None:
        if len(self._found) > 1 << 18:
            self._found.clear()  # bound the memory of very long runs
        codes = frozenset(c for c in self.codes if script in scripts_of(c))
        if len(codes) < 2:
            self._found.update(((t, script), None) for t in texts)
            return
        key = detector_key(_lingua_version(), codes)
        known = self.store.get_many(key, texts) if self.store is not None else {}
        unknown = [t for t in texts if t not in known]
        fresh: dict[str, Verdict] = {}
        if unknown:
            values = _detector(codes).compute_language_confidence_values_in_parallel(unknown)
            for text, confidences in zip(unknown, values, strict=True):
                best = confidences[0] if confidences else None
                fresh[text] = None if best is None else (
                    best.language.iso_code_639_1.name.lower(), float(best.value))
            if self.store is not None:
                self.store.put_many(key, fresh)
        self._found.update(((t, script), v) for t, v in (*known.items(), *fresh.items()))

    def label(self, answer: str, target: str, source: str, gold: str = "",
              source_gold: str | None = None) -> AnswerLanguage:
        """Label one answer to a question in ``target`` about an edit stated in ``source``."""
        script = dominant_script(unicodedata.normalize("NFKC", answer))
        if script is None:
            return AnswerLanguage(label="neutral", detected="none")
        said, tgold = _norm(answer), _norm(gold)
        sgold = tgold if source_gold is None else _norm(source_gold)
        if said and said in (tgold, sgold):
            if tgold == sgold:
                return AnswerLanguage(label="neutral", detected="gold")
            side: Label = "target" if said == tgold else "source"
            return AnswerLanguage(label=side, detected=target if side == "target" else source)
        in_target, in_source = script in scripts_of(target), script in scripts_of(source)
        users = _users(script)
        found = self.identify(answer, script) if self.lingua else None
        confident = None
        if found is not None:
            # A third language needs more evidence: names in answers mislead the identifier.
            needed = MIN_CONFIDENCE if found[0] in (target, source) else OTHER_CONFIDENCE
            confident = found[0] if found[1] >= needed else None
        if in_target and in_source:
            if confident is None:
                return AnswerLanguage(label="neutral", detected="undetermined")
            return self._by_code(confident, target, source)
        if in_target or in_source:
            mine = target if in_target else source
            # Only one side writes this script; it wins unless another language is certain.
            if confident is not None and confident != mine:
                return self._by_code(confident, target, source)
            return AnswerLanguage(label="target" if in_target else "source", detected=mine)
        detected = users[0] if len(users) == 1 else (confident if confident else script)
        return AnswerLanguage(label="other", detected=detected)

    @staticmethod
    def _by_code(code: str, target: str, source: str) -> AnswerLanguage:
        label: Label = "target" if code == target else "source" if code == source else "other"
        return AnswerLanguage(label=label, detected=code)
