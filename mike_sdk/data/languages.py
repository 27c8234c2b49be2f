"""The 53 BMIKE-53 languages and the naming quirks of the released files."""

from __future__ import annotations

import difflib

from mike_sdk.errors import ConfigError

#: Code -> English name, as in the benchmark's ``lang.json`` plus English.
LANGUAGES: dict[str, str] = {
    "en": "English", "af": "Afrikaans", "ar": "Arabic", "az": "Azerbaijani",
    "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "ceb": "Cebuano", "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German",
    "el": "Greek", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician", "he": "Hebrew",
    "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "hy": "Armenian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ka": "Georgian",
    "ko": "Korean", "la": "Latin", "lt": "Lithuanian", "lv": "Latvian", "ms": "Malay",
    "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian",
    "sr": "Serbian", "sv": "Swedish", "ta": "Tamil", "th": "Thai", "tr": "Turkish",
    "vi": "Vietnamese", "uk": "Ukrainian", "ur": "Urdu", "zh": "Chinese",
}

#: The 52 target languages of the paper (every language but English).
TARGET_LANGUAGES: tuple[str, ...] = tuple(code for code in LANGUAGES if code != "en")

#: ISO 639-2 (terminology, then bibliographic where it differs) and ISO 639-3 codes of
#: the 53 languages (``arb``, ``cmn``, ``zsm``: the individual languages of the data).
ISO_639_3: dict[str, tuple[str, ...]] = {
    "en": ("eng",), "af": ("afr",), "ar": ("ara", "arb"), "az": ("aze", "azj"),
    "be": ("bel",), "bg": ("bul",), "bn": ("ben",), "ca": ("cat",), "ceb": ("ceb",),
    "cs": ("ces", "cze"), "cy": ("cym", "wel"), "da": ("dan",), "de": ("deu", "ger"),
    "el": ("ell", "gre"), "es": ("spa",), "et": ("est", "ekk"), "eu": ("eus", "baq"),
    "fa": ("fas", "per", "pes"), "fi": ("fin",), "fr": ("fra", "fre"), "ga": ("gle",),
    "gl": ("glg",), "he": ("heb",), "hi": ("hin",), "hr": ("hrv",), "hu": ("hun",),
    "hy": ("hye", "arm"), "id": ("ind",), "it": ("ita",), "ja": ("jpn",),
    "ka": ("kat", "geo"), "ko": ("kor",), "la": ("lat",), "lt": ("lit",),
    "lv": ("lav", "lvs"), "ms": ("msa", "may", "zsm"), "nl": ("nld", "dut"),
    "pl": ("pol",), "pt": ("por",), "ro": ("ron", "rum"), "ru": ("rus",),
    "sk": ("slk", "slo"), "sl": ("slv",), "sq": ("sqi", "alb"), "sr": ("srp",),
    "sv": ("swe",), "ta": ("tam",), "th": ("tha",), "tr": ("tur",), "vi": ("vie",),
    "uk": ("ukr",), "ur": ("urd",), "zh": ("zho", "chi", "cmn"),
}

# Test files say ``zh``; demonstration and training-pool files say ``zh-cn``.
_ALIASES = {"zh-cn": "zh", "zh_cn": "zh", "zh-hans": "zh",
            **{alias: code for code, aliases in ISO_639_3.items() for alias in aliases}}
_DEMO_CODES = {"zh": "zh-cn"}
_BY_NAME = {name.lower(): code for code, name in LANGUAGES.items()}


def normalize_language(code: str) -> str:
    """The canonical code of a language, accepting the aliases the data uses, ISO
    639-2/3 codes and English names.

    >>> [normalize_language(name) for name in ("zh-cn", "deu", "ger", "German")]
    ['zh', 'de', 'de', 'de']
    """
    key = code.strip().lower()
    canonical = _ALIASES.get(key) or _BY_NAME.get(key) or key
    if canonical not in LANGUAGES:
        spellings = {**{c: c for c in LANGUAGES}, **_BY_NAME, **_ALIASES}
        near = [spellings[s] for s in difflib.get_close_matches(key, spellings, n=1)]
        hint = "".join(f" Did you mean {c!r} ({LANGUAGES[c]})?" for c in near)
        raise ConfigError(f"Unknown language {code!r}.{hint} Valid codes: "
                          f"{', '.join(LANGUAGES)} (ISO 639-2/3 codes and English names "
                          "work too).")
    return canonical


def demo_code(code: str) -> str:
    """The key a language has in the demonstration (``*_multi.json``) files."""
    return _DEMO_CODES.get(code, code)


def parse_languages(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Languages from ``"all"``, ``"targets"`` (the 52 non-English), or a comma list."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item == "all":
            out.extend(LANGUAGES)
        elif item == "targets":
            out.extend(TARGET_LANGUAGES)
        else:
            out.append(normalize_language(item))
    if not out:  # "," or "": a run of nothing would end "successfully"
        raise ConfigError(f"No language in {spec!r}: give a comma list of codes such as "
                          "de,fr, or 'targets' or 'all'.")
    return tuple(dict.fromkeys(out))
