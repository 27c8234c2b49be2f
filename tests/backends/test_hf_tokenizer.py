"""The ``hf`` backend's scoring tokenizer: the folder's ``tokenizer.json`` through the Rust
``tokenizers`` library, giving the ids ``AutoTokenizer`` gives, without importing
``transformers`` or ``torch``."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mike_sdk.backends.embedded import embedded_model_dir
from mike_sdk.backends.hf import HFBackend, HFTokenizer
from mike_sdk.data.benchmark import Benchmark
from mike_sdk.records import METRICS

# Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai, Georgian, Han, Kana, Hangul.
LANGUAGES = ("en", "de", "ru", "el", "ar", "he", "hi", "th", "ka", "zh", "ja", "ko")
EDGES = ["", " ", "  Paris ", "Philadelphia\" Question", "a\nb\tc", "<bos>Paris<eos>",
         "<start_of_turn>user", "🙂 emoji ✓", "ﬁ ligature Ａ", "naïve café", "e\u0301",
         "1,000.5 km²", "\u200bzero width", "Sankt-Peterburg / Санкт-Петербург"]


def gold_strings(benchmark: Benchmark, per_language: int = 12) -> list[str]:
    """Gold answers of the real data (all metrics, old answers too), several scripts."""
    texts: list[str] = []
    for task in ("zsre", "counterfact", "wikifactdiff"):
        for lang in LANGUAGES:
            for item in benchmark.items(task, lang, limit=per_language).items:
                texts.extend(item.target.answer(metric) for metric in METRICS)
                texts.append(item.target.old or "")
    return list(dict.fromkeys(texts))


@pytest.mark.model  # needs the converted embedded folder (converting loads the model)
def test_file_tokenizer_gives_the_auto_tokenizer_ids(benchmark: Benchmark) -> None:
    backend = HFBackend()
    tokenizer = backend.get_tokenizer()
    assert tokenizer.fast is not None and not tokenizer.hf_loaded
    texts = gold_strings(benchmark) + EDGES
    assert len(texts) > 400
    ids = tokenizer.encode_batch(texts)
    assert [tokenizer.encode(t) for t in texts] == ids
    # The transformers tokenizer, loaded now (the model needs it), encodes the same.
    auto = tokenizer.hf
    assert tokenizer.hf_loaded and auto.pad_token_id is not None
    assert [list(auto.encode(t, add_special_tokens=False)) for t in texts] == ids
    assert type(auto).__name__ != "Tokenizer"  # a transformers tokenizer, not the Rust one
    assert backend.get_tokenizer() is tokenizer


@pytest.mark.model
def test_scoring_needs_neither_transformers_nor_torch() -> None:
    embedded_model_dir()  # converted beforehand (that does import them)
    code = ("import sys; from mike_sdk.backend import BACKENDS; b = BACKENDS.create('hf'); "
            "b.identity; t = b.get_tokenizer(); print(t.encode_batch(['Philadelphia', '费城'])); "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)), t.hf_loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    lines = out.stdout.splitlines()
    assert lines[1] == "[] False"
    assert json.loads(lines[0])[0]


def folder_with(tmp_path: Path, config: dict[str, Any] | str | None,
                tokenizer_json: bool = True) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    if tokenizer_json:
        (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (folder / "tokenizer_config.json").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("config", "tokenizer_json", "uses_file"), [
    ({"tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>"}, True, True),
    (None, True, True),
    ({"tokenizer_class": "GemmaTokenizer"}, False, False),
    ({"add_prefix_space": True}, True, False),
    ({"from_slow": True}, True, False),
    ({"legacy": False}, True, False),
    ({"auto_map": {"AutoTokenizer": ["x.Tok", None]}}, True, False),
    ({"added_tokens_decoder": {"5": {"content": "<x>"}}}, True, False),
    ("{not json", True, False),
])
def test_which_folders_score_with_their_tokenizer_json(
        tmp_path: Path, config: dict[str, Any] | str | None, tokenizer_json: bool,
        uses_file: bool) -> None:
    folder = folder_with(tmp_path, config, tokenizer_json)
    found = HFBackend(str(folder))._tokenizer_file()
    assert found == (folder / "tokenizer.json" if uses_file else None)


def test_gguf_remote_code_and_hub_ids_keep_auto_tokenizer(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {})
    assert HFBackend(str(folder), gguf_file="m.gguf")._tokenizer_file() is None
    assert HFBackend(str(folder), trust_remote_code=True)._tokenizer_file() is None
    assert HFBackend("google/gemma-3-270m")._tokenizer_file() is None


class FakeEncoding:
    def __init__(self, ids: list[int]) -> None:
        self.ids = ids


class FakeRust:
    def encode(self, text: str, add_special_tokens: bool = True) -> FakeEncoding:
        assert not add_special_tokens
        return FakeEncoding([ord(c) for c in text])

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True
                     ) -> list[FakeEncoding]:
        return [self.encode(t, add_special_tokens) for t in texts]


class FakeSlow:
    is_fast = False

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert not add_special_tokens
        return [len(word) for word in text.split()]


class FakeFast(FakeSlow):
    is_fast = True
    backend_tokenizer = FakeRust()


def test_wrapper_encodes_with_whatever_it_has() -> None:
    slow = HFTokenizer(FakeSlow())
    assert slow.fast is None and slow.hf_loaded
    assert slow.encode_batch(["ab c", ""]) == [[2, 1], []] and slow.encode_batch([]) == []
    fast = HFTokenizer(FakeFast())
    assert fast.encode_batch(["ab"]) == [[97, 98]] == [fast.encode("ab")]
    loads: list[int] = []

    def load() -> FakeSlow:
        loads.append(1)
        return FakeSlow()

    lazy = HFTokenizer(fast=FakeRust(), load=load)
    assert lazy.encode("ab") == [97, 98] and not lazy.hf_loaded and not loads
    assert isinstance(lazy.hf, FakeSlow) and lazy.hf is lazy.hf and loads == [1]
    with pytest.raises(ValueError):
        HFTokenizer()


def test_a_tokenizer_sent_to_a_helper_encodes_the_same(tmp_path: Path) -> None:
    """Pickled (for a helper process): the file's path where there is one, else the Rust
    tokenizer itself; never the loader of the model's tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    rust = Tokenizer(models.WordLevel({"[UNK]": 0, "Paris": 1, "is": 2, "big": 3},
                                      unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.Whitespace()
    rust.save(str(tmp_path / "tokenizer.json"))
    from_file = HFTokenizer(fast=Tokenizer.from_file(str(tmp_path / "tokenizer.json")),
                            load=lambda: pytest.fail("loaded"), file=str(tmp_path / "tokenizer.json"))
    in_memory = HFTokenizer(fast=rust, load=lambda: pytest.fail("loaded"))
    sent = pickle.dumps(from_file)
    assert len(sent) < 500  # the path, not the vocabulary
    for tokenizer in (pickle.loads(sent), pickle.loads(pickle.dumps(in_memory))):
        assert tokenizer.encode("Paris is big today") == [1, 2, 3, 0]
        with pytest.raises(RuntimeError, match="sent to another process"):
            tokenizer.hf  # noqa: B018 - reading it would load it
