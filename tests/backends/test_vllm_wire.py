"""The vLLM stand-in itself (tests/vllm_wire.py), through plain HTTP: real log-probabilities
from the embedded Gemma model, and vLLM's rules on the wire."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from vllm_wire import MAX_LOGPROBS, VllmWire

pytestmark = pytest.mark.model

PROMPT = "The capital of France is"


def post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url, json=body, timeout=120)


def complete(wire: VllmWire, **body: Any) -> dict[str, Any]:
    reply = post(f"{wire.base_url}/completions", {"model": wire.model_name, "temperature": 0,
                                                  **body})
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def refusal(reply: httpx.Response, status: int = 400) -> dict[str, Any]:
    """The error object of a refusal, in vLLM's shape."""
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status
    return error


def generated_then_echoed(wire: VllmWire) -> tuple[dict[str, Any], dict[str, Any]]:
    """4 greedy tokens with logprobs, then the prompt + those tokens echoed with logprobs."""
    generated = complete(wire, prompt=PROMPT, max_tokens=4, logprobs=1)["choices"][0]
    echoed = complete(wire, prompt=PROMPT + generated["text"], max_tokens=1, logprobs=1,
                      echo=True)
    return generated, echoed


def test_echoed_prompt_logprobs_equal_the_generated_ones(vllm_wire: VllmWire) -> None:
    generated, echoed = generated_then_echoed(vllm_wire)
    assert generated["finish_reason"] == "length"
    gen = generated["logprobs"]
    assert len(gen["tokens"]) == 4 and "".join(gen["tokens"]) == generated["text"]
    assert gen["text_offset"][0] == 0 and all(lp < 0 for lp in gen["token_logprobs"])

    choice, usage = echoed["choices"][0], echoed["usage"]
    n = usage["prompt_tokens"]
    assert usage["completion_tokens"] == 1 and usage["total_tokens"] == n + 1
    lp = choice["logprobs"]
    assert choice["text"].startswith(PROMPT + generated["text"])
    assert len(lp["tokens"]) == n + 1
    # The BOS token comes first, unscored; the offsets add up the token strings, <bos> included.
    assert lp["tokens"][0] == "<bos>" and lp["token_logprobs"][0] is None
    assert lp["top_logprobs"][0] is None
    assert lp["text_offset"][1] == len("<bos>")
    assert all(b - a == len(t) for a, b, t in zip(lp["text_offset"], lp["text_offset"][1:],
                                                   lp["tokens"], strict=False))
    assert lp["tokens"][n - 4:n] == gen["tokens"]
    assert lp["token_logprobs"][n - 4:n] == pytest.approx(gen["token_logprobs"], abs=1e-4)
    # With echo, prompt_logprobs defaults to logprobs: the same numbers, vLLM's other shape.
    prompt_lp = choice["prompt_logprobs"]
    assert len(prompt_lp) == n and prompt_lp[0] is None
    assert [next(iter(e.values()))["logprob"] for e in prompt_lp[1:]] == lp["token_logprobs"][1:n]


def test_a_broken_server_echoes_other_logprobs(vllm_wire_broken: VllmWire) -> None:
    generated, echoed = generated_then_echoed(vllm_wire_broken)
    n = echoed["usage"]["prompt_tokens"]
    echoed_lp = echoed["choices"][0]["logprobs"]["token_logprobs"][n - 4:n]
    assert echoed_lp != pytest.approx(generated["logprobs"]["token_logprobs"], abs=0.1)


def test_echo_with_max_tokens_0_returns_the_prompt_only(vllm_wire: VllmWire) -> None:
    result = complete(vllm_wire, prompt=PROMPT, max_tokens=0, logprobs=0, echo=True)
    choice = result["choices"][0]
    assert choice["text"] == PROMPT
    assert len(choice["logprobs"]["tokens"]) == result["usage"]["prompt_tokens"]
    # vLLM runs (and counts) one hidden generation step.
    assert result["usage"]["completion_tokens"] == 1
    assert all(len(top) == 1 for top in choice["logprobs"]["top_logprobs"][1:])


def test_prompt_logprobs_shape(vllm_wire: VllmWire) -> None:
    choice = complete(vllm_wire, prompt=PROMPT, max_tokens=1, prompt_logprobs=2,
                      return_token_ids=True)["choices"][0]
    ids, prompt_lp = choice["prompt_token_ids"], choice["prompt_logprobs"]
    assert choice["logprobs"] is None and len(prompt_lp) == len(ids) and prompt_lp[0] is None
    for token_id, entry in zip(ids[1:], prompt_lp[1:], strict=True):
        keys = list(entry)
        assert keys[0] == str(token_id) and 2 <= len(keys) <= 3  # the token, then the top 2
        assert all(set(v) == {"logprob", "rank", "decoded_token"} for v in entry.values())
        by_rank = {v["rank"]: v["logprob"] for v in entry.values()}
        assert {1, 2} <= set(by_rank) and by_rank[1] >= by_rank[2]
        assert entry[keys[0]]["rank"] >= 1 and entry[keys[0]]["logprob"] <= 0


def test_tokenize_counts_at_the_root(vllm_wire: VllmWire) -> None:
    before = vllm_wire.counts["/tokenize"]
    with_bos = post(f"{vllm_wire.root}/tokenize", {"model": vllm_wire.model_name,
                                                   "prompt": PROMPT}).json()
    without = post(f"{vllm_wire.root}/tokenize", {"prompt": PROMPT, "add_special_tokens": False,
                                                  "return_token_strs": True}).json()
    assert set(with_bos) == {"count", "max_model_len", "tokens", "token_strs"}
    assert with_bos["count"] == len(with_bos["tokens"]) == without["count"] + 1
    assert with_bos["tokens"][1:] == without["tokens"] and without["token_strs"][0] == "The"
    assert with_bos["max_model_len"] == 32768
    usage = complete(vllm_wire, prompt=PROMPT, max_tokens=1)["usage"]
    assert usage["prompt_tokens"] == with_bos["count"]
    assert vllm_wire.counts["/tokenize"] == before + 2
    assert post(f"{vllm_wire.base_url}/tokenize", {"prompt": PROMPT}).status_code == 404


def test_stop_strings_cut_the_text(vllm_wire: VllmWire) -> None:
    choice = complete(vllm_wire, prompt=PROMPT, max_tokens=8, stop=[" capital"],
                      logprobs=0)["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == " capital"
    assert " capital" not in choice["text"]
    assert choice["logprobs"]["tokens"][-1] == " capital"  # vLLM keeps the stop token's logprob


def test_logprobs_above_the_maximum_are_refused(vllm_wire: VllmWire) -> None:
    url = f"{vllm_wire.base_url}/completions"
    error = refusal(post(url, {"prompt": PROMPT, "temperature": 0,
                               "logprobs": MAX_LOGPROBS + 1}))
    assert error["type"] == "BadRequestError" and error["param"] == "logprobs"
    assert "greater than max allowed: 20" in error["message"]
    error = refusal(post(url, {"prompt": PROMPT, "temperature": 0, "max_tokens": 1,
                               "prompt_logprobs": 50}))
    assert error["param"] == "prompt_logprobs"
    assert refusal(post(url, {"prompt": PROMPT, "logprobs": -1}))["param"] == "logprobs"
    assert refusal(post(url, {"prompt": PROMPT, "logprobs": -2}))["type"] == "Bad Request"
    ok = complete(vllm_wire, prompt=PROMPT, max_tokens=1, logprobs=MAX_LOGPROBS)
    assert len(ok["choices"][0]["logprobs"]["top_logprobs"][0]) == MAX_LOGPROBS


def test_wrong_model_and_unknown_paths(vllm_wire: VllmWire) -> None:
    models = httpx.get(f"{vllm_wire.base_url}/models", timeout=30).json()
    assert [m["id"] for m in models["data"]] == [vllm_wire.model_name]
    error = refusal(post(f"{vllm_wire.base_url}/completions",
                         {"model": "gpt-4o", "prompt": PROMPT, "temperature": 0}), 404)
    assert error == {"message": "The model `gpt-4o` does not exist.", "type": "NotFoundError",
                     "param": "model", "code": 404}
    refusal(post(f"{vllm_wire.root}/tokenize", {"model": "gpt-4o", "prompt": PROMPT}), 404)
    assert post(f"{vllm_wire.base_url}/chat/completions", {}).status_code == 404
    assert httpx.get(f"{vllm_wire.root}/nothing", timeout=30).status_code == 404


def test_vllm_rules_and_stand_in_limits(vllm_wire: VllmWire) -> None:
    url = f"{vllm_wire.base_url}/completions"
    # vLLM's own rules come first ...
    error = refusal(post(url, {"prompt": PROMPT, "stream": True, "prompt_logprobs": 1}))
    assert error["message"] == "`prompt_logprobs` are not available when `stream=True`."
    assert refusal(post(url, {"prompt": "", "temperature": 0}))["param"] == "prompt"
    assert refusal(post(url, {"prompt": PROMPT, "temperature": 0, "max_tokens": 0}))[
        "param"] == "max_tokens"
    assert "empty string" in refusal(post(url, {"prompt": PROMPT, "temperature": 0,
                                                "stop": [""]}))["message"]
    # ... then what the stand-in does not do, said as such.
    for body in ({"prompt": PROMPT, "temperature": 0, "stream": True},
                 {"prompt": PROMPT},  # vLLM would sample at temperature 1
                 {"prompt": [PROMPT, PROMPT], "temperature": 0},
                 {"prompt": PROMPT, "temperature": 0, "presence_penalty": 0.5}):
        assert refusal(post(url, body))["message"].startswith("vLLM stand-in:")
    # Unknown fields are ignored, as vLLM does.
    assert complete(vllm_wire, prompt=PROMPT, max_tokens=1, foo="bar")["choices"][0]["text"]
