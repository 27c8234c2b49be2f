"""The built-in MIKE strategies render the protocol's prompts byte for byte.

Expected prompts are assembled here straight from the raw JSON, following the
protocol page, independently of the SDK's loaders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mike_sdk.backend import Abilities, GenerationRequest
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.records import MetricName, TaskName
from mike_sdk.strategy import STRATEGIES, PromptCase, get_strategy

COMPLETION = Abilities(completion=True)
FILES = {"zsre": ("zsRE/zsre", "zsre"), "counterfact": ("CounterFact/counterfact", "mcounterfact"),
         "wikifactdiff": ("WikiFactDiff/wfd", "wfd")}
QUESTION = {"reliability": "src", "generality": "rephrase", "locality": "loc", "portability": "port"}


def expected_prompt(data_dir: Path, task: str, lang: str, index: int, metric: str,
                    demo_ids: list[int]) -> str:
    test_stem, demo_stem = FILES[task]
    rows = json.loads((data_dir / "data" / "BMIKE53" / f"{test_stem}_test_{lang}.json").read_text())
    demos = json.loads((data_dir / "data" / "manual_prompts" / f"{demo_stem}_multi.json").read_text())
    # English demonstrations are the English ``prompt``; Chinese is keyed zh-cn there.
    key = {"zh": "zh-cn", "en": "prompt"}.get(lang, lang)
    block = "".join(f"{demos[i - 1]['new_fact']}\n{demos[i - 1][key]}\n\n" for i in demo_ids)
    en, tgt = rows[index]["en"], rows[index][lang]
    return block + f'New Fact: "{en["src"]} {en["alt"]}"\nQuestion: "{tgt[QUESTION[metric]]}" Answer: "'


def render(benchmark: Benchmark, strategy: str, task: TaskName, lang: str, index: int,
           metric: MetricName, abilities: Abilities = COMPLETION) -> GenerationRequest:
    item = next(i for i in benchmark.items(task, lang).items if i.index == index)
    case = PromptCase(edit=item.edit, question=item.question(metric),
                      demonstrations=benchmark.demonstrations(task), task=task, index=index)
    return get_strategy(strategy).render(case, abilities)


def test_metric_specific_locality_prompt_in_chinese(benchmark: Benchmark, data_dir: Path) -> None:
    request = render(benchmark, "8-shot-metric-specific", "counterfact", "zh", 0, "locality")
    assert request.prompt == expected_prompt(data_dir, "counterfact", "zh", 0, "locality",
                                             [5, 6, 13, 14, 21, 22, 29, 30])
    assert request.prompt.endswith('New Fact: "Where does Spike Hughes originate from? '
                                   'Philadelphia"\nQuestion: "凯瑟琳·纽顿出生在哪个城市？" Answer: "')
    assert request.stop == ('"',) and request.max_new_tokens == 15


def test_one_shot_prompt_in_hindi_is_byte_identical(benchmark: Benchmark) -> None:
    request = render(benchmark, "one-shot", "zsre", "hi", 0, "portability")
    assert request.prompt == (
        "Of what did Earl Hooker die? tuberculosis\nअर्ल हुकर मौत का कारण क्या था?तपेदिक\n\n"
        'New Fact: "When was the inception of IAAF Combined Events Challenge? 2006"\n'
        'Question: "IAAF संयुक्त इवेंट्स चैलेंज, जो 2006 में स्थापित हुआ था, किस प्रकार की '
        'खेल प्रतियोगिता है?" Answer: "')


@pytest.mark.parametrize(("strategy", "metric", "ids"), [
    ("zero-shot", "reliability", []),
    ("one-shot", "locality", [2]),
    ("8-shot-mixed", "portability", [8, 7, 6, 5, 4, 3, 2, 1]),
    ("8-shot-metric-specific", "reliability", [1, 2, 9, 10, 17, 18, 25, 26]),
    ("8-shot-metric-specific", "generality", [1, 2, 9, 10, 17, 18, 25, 26]),
    ("8-shot-metric-specific", "portability", [7, 8, 15, 16, 23, 24, 31, 32]),
])
def test_paper_configurations(benchmark: Benchmark, data_dir: Path, strategy: str,
                              metric: MetricName, ids: list[int]) -> None:
    for task, lang, index in (("wikifactdiff", "ja", 4), ("zsre", "de", 10), ("counterfact", "en", 7)):
        request = render(benchmark, strategy, task, lang, index, metric)  # type: ignore[arg-type]
        assert request.prompt == expected_prompt(data_dir, task, lang, index, metric, ids)


def test_answer_is_cut_at_the_first_quote() -> None:
    strategy = get_strategy("zero-shot")
    request = GenerationRequest(prompt="x", stop=('"',))
    assert strategy.extract(request, 'Philadelphia" Question: "') == "Philadelphia"
    assert strategy.extract(request, " no quote at all") == " no quote at all"


def test_chat_only_backends_get_messages(benchmark: Benchmark) -> None:
    completion = render(benchmark, "one-shot", "zsre", "de", 0, "reliability")
    chat = render(benchmark, "one-shot", "zsre", "de", 0, "reliability", Abilities(completion=False, chat=True))
    assert chat.prompt is None and chat.messages is not None
    assert chat.messages[0].role == "system" and "language of the question" in chat.messages[0].content
    assert chat.messages[1].content == completion.prompt
    assert get_strategy("one-shot").extract(chat, ' "Berlin"\nBecause...') == "Berlin"


def test_unknown_strategy_suggests_the_closest() -> None:
    with pytest.raises(Exception, match=r"Did you mean '8-shot-mixed'"):
        get_strategy("8-shot-mixd")
    assert set(STRATEGIES.names()) >= {"zero-shot", "one-shot", "8-shot-mixed", "8-shot-metric-specific"}


def test_one_shot_demonstration_is_configurable(benchmark: Benchmark, data_dir: Path) -> None:
    item = benchmark.items("zsre", "fr").items[0]
    case = PromptCase(edit=item.edit, question=item.question("reliability"),
                      demonstrations=benchmark.demonstrations("zsre"))
    prompt = get_strategy("one-shot", demonstration=5).render(case, COMPLETION).prompt
    assert prompt == expected_prompt(data_dir, "zsre", "fr", 0, "reliability", [5])
    with pytest.raises(Exception, match=r"1\.\.32"):
        get_strategy("one-shot", demonstration=40)
