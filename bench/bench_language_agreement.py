"""What the third-language check's memory buys: labels of cheaper identifiers against the
shipped one, on answers whose language is known.

The shipped check asks lingua's high-accuracy models of every BMIKE-53 language written in
the answer's script (33 for Latin: about 870 MB in the lingua worker). Each variant here
needs less memory and labels some answers differently:

* ``trigrams``: the same 33 languages in lingua's low-accuracy mode (about 45 MB);
* ``pair``: no third-language check within a script the pair uses: only the pair's models;
* ``major``: the pair, English and five large European languages (es, fr, de, pt, it).

Cases, from the real data: for sampled zsRE and CounterFact items and each target
language, the golds of *another* item (so that an answer is never a copy of its own gold,
which the labeller decides without identifying anything) in the target language, in English
(the source) and in a random third language. A label is counted right when it names the
answer's language (``target``, ``source``, ``other``); ``neutral`` is neither right nor
wrong. Peak memory is the process's, with the models every target needs loaded.

    python bench/bench_language_agreement.py [DATA_DIR] [--items 30] [--variant full]

Measured (30 items per task, 28,013 cases; right = label names the answer's language):
full 14,833 right; major 14,577 (2,828 labels changed); pair 14,322 (2,121); trigrams
13,390 (5,688: 1,426 of 9,345 English answers became ``other``). docs/evaluation.md
gives the table and the decision.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from mike_sdk.data.languages import LANGUAGES
from mike_sdk.scoring import confusion
from mike_sdk.scoring.lingua_worker import detector

Case = tuple[str, str, str, str]  # answer, target, its gold, the answer's true language
_MAJOR = frozenset({"en", "es", "fr", "de", "pt", "it"})


def cases(data_dir: Path, items: int, seed: int = 0) -> list[Case]:
    rng = random.Random(seed)
    langs = sorted(LANGUAGES)
    found: list[Case] = []
    for task, stem in (("CounterFact", "counterfact"), ("zsRE", "zsre")):
        folder = data_dir / "data" / "BMIKE53" / task
        data = {lang: json.loads((folder / f"{stem}_test_{lang}.json").read_text("utf-8"))
                for lang in langs}
        for index in rng.sample(range(700), items):
            for target in langs:
                if target == "en" or target not in data[target][index]:
                    continue
                third = rng.choice([lang for lang in langs if lang not in ("en", target)])
                for field in ("alt", "loc_ans", "port_ans"):
                    gold = data[target][index][target].get(field, "")
                    other = rng.randrange(700)
                    for lang in (target, "en", third):
                        row = data[lang][other].get(lang) if other < len(data[lang]) else None
                        if row and row.get(field):
                            found.append((row[field], target, gold, lang))
    return found


def variant(name: str) -> Callable[[str, str, str], tuple[frozenset[str] | None,
                                                          frozenset[str] | None]]:
    """``confusion._language_sets`` as the variant chooses the third-language candidates."""
    shipped = confusion._language_sets.__wrapped__

    def sets(script: str, target: str, source: str
             ) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        wide, pair = shipped(script, target, source)
        if wide is None or name in ("full", "trigrams"):
            return wide, pair
        keep = {target, source} | (_MAJOR if name == "major" else set())
        narrow = frozenset(wide & keep)
        return (narrow if len(narrow) > 1 else None), pair

    return sets


def trigram_verdicts(codes: frozenset[str], texts: list[str]) -> list[tuple[str, float] | None]:
    """:func:`~mike_sdk.scoring.lingua_worker.verdicts_of`, in low-accuracy mode for the
    script-wide identifiers (more than two languages)."""
    if len(codes) <= 2:
        return confusion.verdicts_of(codes, texts)
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    langs = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in sorted(codes)]
    low = LanguageDetectorBuilder.from_languages(*langs).with_low_accuracy_mode().build()
    out: list[tuple[str, float] | None] = []
    for values in low.compute_language_confidence_values_in_parallel(texts):
        best = values[0] if values else None
        out.append(None if best is None
                   else (best.language.iso_code_639_1.name.lower(), float(best.value)))
    return out


def labels(found: list[Case], name: str) -> list[str]:
    confusion._language_sets = variant(name)  # type: ignore[assignment]
    identifier = confusion.LanguageIdentifier(store=None)
    if name == "trigrams":
        identifier._identify_many = lambda texts, codes: identifier._keep(  # type: ignore[method-assign]
            codes, dict(zip(texts, trigram_verdicts(codes, texts), strict=True)))
    identifier.prefetch([(answer, target, "en") for answer, target, _, _ in found])
    return [identifier.label(answer, target, "en", gold).label
            for answer, target, gold, _ in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default=os.environ.get("MIKE_DATA_DIR",
                                                                       "../shared/bmike53"))
    parser.add_argument("--items", type=int, default=30, help="items sampled per task")
    parser.add_argument("--variant", default="full",
                        choices=("full", "trigrams", "pair", "major"))
    parser.add_argument("--against", type=Path, help="labels of the shipped check (JSON) "
                        "written by an earlier --variant full --out")
    parser.add_argument("--out", type=Path, help="write this variant's labels here (JSON)")
    args = parser.parse_args()
    detector.cache_clear()
    found = cases(Path(args.data_dir), args.items)
    started = time.perf_counter()
    got = labels(found, args.variant)
    right = {"target": "target", "english": "source", "third": "other"}
    by_origin: dict[str, Counter[str]] = {}
    for (_, target, _, lang), label in zip(found, got, strict=True):
        origin = "target" if lang == target else "english" if lang == "en" else "third"
        by_origin.setdefault(origin, Counter())[label] += 1
    correct = sum(counts[right[origin]] for origin, counts in by_origin.items())
    report: dict[str, object] = {
        "variant": args.variant, "cases": len(found), "right": correct,
        "by answer language": {o: dict(c) for o, c in sorted(by_origin.items())},
        "seconds": round(time.perf_counter() - started, 1),
        "peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
    if args.against is not None:
        shipped = json.loads(args.against.read_text())
        report["changed vs full"] = sum(a != b for a, b in zip(shipped, got, strict=True))
    if args.out is not None:
        args.out.write_text(json.dumps(got))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
