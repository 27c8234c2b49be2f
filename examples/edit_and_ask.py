"""Edit a fact in English and ask about it in other languages, in one call each.

    python examples/edit_and_ask.py --data-dir ../shared/bmike53
"""

from __future__ import annotations

import argparse

from mike_sdk import Benchmark, Edit, ask, ask_many, load_backend

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    model = load_backend("hf")  # the embedded Gemma 3 270M; pass model="path/or/hub-id"
    bench = Benchmark(args.data_dir)
    fact = Edit(question="Where does Spike Hughes originate from?", answer="Philadelphia")

    # One question in Chinese, with the paper's best strategy (metric-specific demonstrations).
    print(ask(model, fact, "斯派克·休斯来自哪里？", language="zh", task="counterfact",
              benchmark=bench).answer)
    # Several German questions in one batch, zero-shot (no benchmark data needed).
    for answer in ask_many(model, fact, ["Woher stammt Spike Hughes?",
                                         "Was ist die Heimatstadt von Spike Hughes?"],
                           language="de", strategy="zero-shot"):
        print(repr(answer.answer))
