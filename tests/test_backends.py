"""One interface over three backends: native engine, transformers generate, an OpenAI-compatible
API (a real HTTP server on loopback, driven through the official SDK)."""

from __future__ import annotations

import shutil

import pytest

import instructgen
from instructgen.errors import ConfigError, ModelDirError, UserError
from instructgen.inference import load
from instructgen.inference.backends import NativeLLM
from tests.openai_server import free_port, serve

MESSAGES = [{"role": "user", "content": "Write a haiku about spring."}]
GREEDY = {"temperature": 0, "max_tokens": 12, "ignore_eos": True}


@pytest.fixture(scope="module")
def native(llama_dir):
    return load(llama_dir)


@pytest.fixture(scope="module")
def hf(llama_dir):
    return load(llama_dir, backend="hf")


@pytest.fixture(scope="module")
def remote(native):
    with serve(native) as url:
        llm = load(url)
        yield llm
        llm.close()


def test_design_python_api(llama_dir):
    llm = load(str(llama_dir))
    assert llm.backend == "native"
    out = llm.generate("请用中文写一首关于春天的诗。", max_tokens=16, seed=0)
    assert isinstance(out.text, str) and out.usage.completion_tokens <= 16
    deltas = list(llm.stream(MESSAGES, max_tokens=16, seed=0))
    assert all(isinstance(d, str) and d for d in deltas)


def test_top_level_load(llama_dir):
    llm = instructgen.load(str(llama_dir))
    assert llm.generate("hi", max_tokens=4).usage.completion_tokens <= 4


def test_backend_choice(tmp_path, gpt2_dir, tokenizer_dir):
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    assert load(gpt2_dir).backend == "native"
    assert load("http://127.0.0.1:9/v1").backend == "openai"  # nothing is sent yet
    neo = tmp_path / "neo"  # the brief's GPT-Neo family has no native implementation
    config = GPTNeoConfig(
        vocab_size=600,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        attention_types=[[["global", "local"], 1]],
        max_position_embeddings=64,
    )
    GPTNeoForCausalLM(config).save_pretrained(neo)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, neo / name)
    llm = load(neo)
    assert llm.backend == "hf"
    assert llm.generate("春天", max_tokens=5, temperature=0).usage.completion_tokens <= 5


def test_backend_errors(gpt2_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown backend 'vllm'"):
        load(gpt2_dir, backend="vllm")
    with pytest.raises(ConfigError, match="URL"):
        load(gpt2_dir, backend="openai")
    with pytest.raises(ConfigError, match="not a URL"):
        load("http://127.0.0.1:9/v1", backend="native")
    with pytest.raises(ModelDirError, match="not found"):
        load(tmp_path / "missing", backend="native")
    with pytest.raises(ModelDirError, match="cannot load"):
        load(tmp_path / "missing")  # not a directory, URL or offline hub model


def test_bad_requests_fail_the_same_way_everywhere(native, hf):
    offline = load("http://127.0.0.1:9/v1", model="m")
    for llm in (native, hf, offline):
        with pytest.raises(ConfigError, match="top_p"):
            llm.generate("hi", top_p=1.5)
        with pytest.raises(ConfigError, match="temperature"):
            llm.generate("hi", temperature=-1)
        with pytest.raises(ConfigError, match="messages"):
            llm.generate([{"role": "user"}])
    for llm in (native, hf):
        with pytest.raises(UserError, match="context window"):
            llm.generate("hello " * 200, max_tokens=4)


def test_hf_backend_matches_native(native, hf):
    for prompt in ("春天来了", MESSAGES):
        a, b = native.generate(prompt, **GREEDY), hf.generate(prompt, **GREEDY)
        assert a.choices[0].token_ids == b.choices[0].token_ids
        assert a.text == b.text and a.usage == b.usage
    a = native.generate("hi", temperature=0, max_tokens=5, logprobs=2, ignore_eos=True)
    b = hf.generate("hi", temperature=0, max_tokens=5, logprobs=2, ignore_eos=True)
    assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert list(a.choices[0].top_logprobs[0]) == list(b.choices[0].top_logprobs[0])


def test_hf_sampling_controls(hf):
    out = hf.generate("春天", max_tokens=10, seed=4, n=2, temperature=1.0, top_k=20, min_p=0.01)
    again = hf.generate("春天", max_tokens=10, seed=4, n=2, temperature=1.0, top_k=20, min_p=0.01)
    assert [c.text for c in out.choices] == [c.text for c in again.choices]
    full = hf.generate("春天", **GREEDY)
    stop = full.text[3:5]
    cut = hf.generate("春天", stop=[stop], **GREEDY)
    assert cut.finish_reason == "stop" and cut.text == full.text[: full.text.index(stop)]
    deltas = list(hf.stream("春天", seed=4, max_tokens=10))
    assert "".join(deltas) == hf.generate("春天", seed=4, max_tokens=10).text
    penalised = hf.generate("春天", frequency_penalty=2.0, **GREEDY)
    assert len(set(penalised.choices[0].token_ids)) >= len(set(full.choices[0].token_ids))


def test_openai_backend_against_a_real_server(native, remote):
    assert remote.backend == "openai" and remote.model_name == "test-model"
    for prompt in ("春天来了", MESSAGES):
        local, far = native.generate(prompt, **GREEDY), remote.generate(prompt, **GREEDY)
        assert far.text == local.text
        assert far.usage == local.usage
        assert "".join(remote.stream(prompt, **GREEDY)) == local.text
    two = remote.generate("春天", n=2, seed=3, max_tokens=8)
    assert [c.text for c in two.choices] == [
        c.text for c in native.generate("春天", n=2, seed=3, max_tokens=8).choices
    ]
    full = native.generate("春天", **GREEDY).text
    stop = full[2:4]
    assert remote.generate("春天", stop=[stop], **GREEDY).text == full[: full.index(stop)]
    scored = remote.generate("hi", logprobs=2, **GREEDY)
    assert scored.logprobs == pytest.approx(native.generate("hi", logprobs=2, **GREEDY).logprobs)
    chat_scored = remote.generate(MESSAGES, logprobs=2, **GREEDY)
    assert len(chat_scored.logprobs) == len(chat_scored.tokens) > 0
    batch = remote.generate_batch(["a", MESSAGES], **GREEDY)
    assert [c.text for c in batch] == [native.generate(p, **GREEDY).text for p in ("a", MESSAGES)]


def test_openai_backend_json_schema(remote):
    import json

    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    out = remote.generate(MESSAGES, json_schema=schema, max_tokens=20, seed=1)
    assert isinstance(json.loads(out.text)["ok"], bool)


def test_openai_backend_errors(native):
    dead = load(f"http://127.0.0.1:{free_port()}/v1", max_retries=0, timeout=5)
    with pytest.raises(UserError, match="cannot reach"):
        dead.generate("hi", max_tokens=2)
    with serve(native, api_key="secret") as url:
        with pytest.raises(UserError, match="401"):
            load(url, api_key="wrong", max_retries=0).generate("hi", max_tokens=2)
        ok = load(url, api_key="secret")
        assert ok.generate("hi", max_tokens=2).usage.completion_tokens <= 2
        with pytest.raises(UserError, match="400"):
            ok.generate("hello " * 200, max_tokens=2)  # the server's own context error


def test_native_llm_reports_role_ids_for_role_models(tmp_path, tokenizer_dir):
    from tests.conftest import make_model_dir

    llm = NativeLLM(make_model_dir(tmp_path / "r", tokenizer_dir, "llama", n_roles=4))
    ids, roles = llm.encode(MESSAGES)
    assert len(ids) == len(roles) and set(roles) >= {2, 3}
    assert llm.generate(MESSAGES, max_tokens=4).usage.completion_tokens <= 4


def test_room_and_budget_on_every_backend(native, hf, llama_dir):
    """room(): what the context leaves after a prompt, the same through the native and HF
    backends and through the OpenAI backend against instructgen's server (its /tokenize);
    budget() caps max_tokens by it, so a long wanted answer still gets a 200."""
    from tests.serve_support import server

    context = native.context_length
    for prompt in ("春天来了", MESSAGES):
        ids, _ = native.encode(prompt)
        assert native.room(prompt) == hf.room(prompt) == context - len(ids)
    with server(llama_dir) as base:
        remote = load(base + "/v1")
        for prompt in ("春天来了", MESSAGES):
            assert remote.room(prompt) == native.room(prompt)
            budget = remote.budget(prompt, 10 * context)
            assert budget == native.room(prompt)
            assert (
                remote.generate(prompt, max_tokens=budget, temperature=0).usage.total_tokens
                <= context
            )
        assert remote.budget("hi", 3) == 3
        remote.close()


def test_room_is_unknown_where_the_server_has_no_tokenize(remote):
    assert remote.room("hi") is None and remote.budget("hi", 7) == 7
