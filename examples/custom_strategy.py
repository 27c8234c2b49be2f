"""Register a prompt strategy from a user script and evaluate with it.

    python examples/custom_strategy.py --data-dir ../shared/bmike53

or from the command line, which imports this file first::

    mike --include examples/custom_strategy.py eval --strategy instructed-zero-shot \
        --tasks zsre --languages de,zh --limit 3 --data-dir ../shared/bmike53
"""

from __future__ import annotations

import argparse

from mike_sdk import (
    STRATEGIES,
    Abilities,
    GenerationRequest,
    PromptCase,
    PromptStrategy,
    evaluate,
    load_backend,
)


@STRATEGIES.register("instructed-zero-shot")
class InstructedZeroShot(PromptStrategy):
    """Zero-shot with a one-line instruction that names the answer language."""

    def render(self, case: PromptCase, abilities: Abilities) -> GenerationRequest:
        prompt = (f"Answer in the language of the question.\n"
                  f'New Fact: "{case.edit.statement}"\n'
                  f'Question: "{case.question.text}" Answer: "')
        return GenerationRequest(prompt=prompt, stop=('"',), max_new_tokens=15)

    def extract(self, request: GenerationRequest, text: str) -> str:
        return text.split('"')[0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    summary = evaluate(load_backend("hf"), run_dir="runs/instructed-zero-shot",
                       data_dir=args.data_dir, strategy="instructed-zero-shot",
                       tasks=("zsre",), languages=("de", "zh"), limit=3)
    for group in summary.results:
        print(group.task, group.target_lang, group.metric, group.token_f1)
