"""Script and language family of the 53 BMIKE-53 languages, for grouped results.

Sources: families and branches follow Glottolog 5.0 (https://glottolog.org) top-level
families, with the Indo-European branch as ``branch`` (other families are their own
branch). Scripts are ISO 15924 names of the script each language is written in *in the
released BMIKE-53 files*, checked by counting the Unicode script of the letters of the
first 30 zsRE ``src`` questions per language (notably Serbian is Latin there, not Cyrillic).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mike_sdk.data.languages import LANGUAGES


class LanguageInfo(BaseModel):
    """Where a language sits for grouping."""

    model_config = ConfigDict(frozen=True)

    script: str
    """ISO 15924 script name as used in the data."""
    family: str
    """Top-level family (Glottolog); ``Basque`` is an isolate."""
    branch: str
    """Indo-European branch, or the family itself elsewhere."""

    @property
    def latin(self) -> bool:
        """Written in Latin script (the paper's Latin vs non-Latin split)."""
        return self.script == "Latin"


def _info(script: str, family: str, branch: str | None = None) -> LanguageInfo:
    return LanguageInfo(script=script, family=family, branch=branch or family)


_IE = "Indo-European"
#: Code -> script, family and branch.
LANGUAGE_INFO: dict[str, LanguageInfo] = {
    "en": _info("Latin", _IE, "Germanic"), "af": _info("Latin", _IE, "Germanic"),
    "ar": _info("Arabic", "Afro-Asiatic"), "az": _info("Latin", "Turkic"),
    "be": _info("Cyrillic", _IE, "Balto-Slavic"), "bg": _info("Cyrillic", _IE, "Balto-Slavic"),
    "bn": _info("Bengali", _IE, "Indo-Iranian"), "ca": _info("Latin", _IE, "Italic"),
    "ceb": _info("Latin", "Austronesian"), "cs": _info("Latin", _IE, "Balto-Slavic"),
    "cy": _info("Latin", _IE, "Celtic"), "da": _info("Latin", _IE, "Germanic"),
    "de": _info("Latin", _IE, "Germanic"), "el": _info("Greek", _IE, "Hellenic"),
    "es": _info("Latin", _IE, "Italic"), "et": _info("Latin", "Uralic"),
    "eu": _info("Latin", "Basque"), "fa": _info("Arabic", _IE, "Indo-Iranian"),
    "fi": _info("Latin", "Uralic"), "fr": _info("Latin", _IE, "Italic"),
    "ga": _info("Latin", _IE, "Celtic"), "gl": _info("Latin", _IE, "Italic"),
    "he": _info("Hebrew", "Afro-Asiatic"), "hi": _info("Devanagari", _IE, "Indo-Iranian"),
    "hr": _info("Latin", _IE, "Balto-Slavic"), "hu": _info("Latin", "Uralic"),
    "hy": _info("Armenian", _IE, "Armenian"), "id": _info("Latin", "Austronesian"),
    "it": _info("Latin", _IE, "Italic"), "ja": _info("Japanese", "Japonic"),
    "ka": _info("Georgian", "Kartvelian"), "ko": _info("Hangul", "Koreanic"),
    "la": _info("Latin", _IE, "Italic"), "lt": _info("Latin", _IE, "Balto-Slavic"),
    "lv": _info("Latin", _IE, "Balto-Slavic"), "ms": _info("Latin", "Austronesian"),
    "nl": _info("Latin", _IE, "Germanic"), "pl": _info("Latin", _IE, "Balto-Slavic"),
    "pt": _info("Latin", _IE, "Italic"), "ro": _info("Latin", _IE, "Italic"),
    "ru": _info("Cyrillic", _IE, "Balto-Slavic"), "sk": _info("Latin", _IE, "Balto-Slavic"),
    "sl": _info("Latin", _IE, "Balto-Slavic"), "sq": _info("Latin", _IE, "Albanian"),
    "sr": _info("Latin", _IE, "Balto-Slavic"), "sv": _info("Latin", _IE, "Germanic"),
    "ta": _info("Tamil", "Dravidian"), "th": _info("Thai", "Kra-Dai"),
    "tr": _info("Latin", "Turkic"), "vi": _info("Latin", "Austroasiatic"),
    "uk": _info("Cyrillic", _IE, "Balto-Slavic"), "ur": _info("Arabic", _IE, "Indo-Iranian"),
    "zh": _info("Han", "Sino-Tibetan"),
}

assert set(LANGUAGE_INFO) == set(LANGUAGES), "every benchmark language needs an entry"

#: Grouping name -> how a language is labelled in it (the order tables show them in).
GROUPINGS: dict[str, str] = {
    "script class": "Latin vs non-Latin script",
    "script": "writing system (ISO 15924)",
    "family": "top-level language family (Glottolog)",
    "branch": "Indo-European branch, or family",
}


def group_of(code: str, grouping: str) -> str:
    """The group a language falls in under ``grouping`` (a key of :data:`GROUPINGS`)."""
    info = LANGUAGE_INFO[code]
    if grouping == "script class":
        return "Latin" if info.latin else "non-Latin"
    return str(getattr(info, grouping))


def language_label(code: str) -> str:
    """``German (de)``: readable and still unambiguous."""
    return f"{LANGUAGES.get(code, code)} ({code})"
