"""The decode step in C: the torch step's logits (one row and several, on one thread and two),
HF-equal greedy tokens, weights shared with the model, and a clean fallback to the torch path
where it cannot be built."""

from __future__ import annotations

import contextlib

import pytest
import torch

from instructgen.inference import native_step
from instructgen.inference.cache import SlotCache
from instructgen.inference.decoder import FastDecoder
from instructgen.inference.engine import Engine
from instructgen.inference.sampling import SamplingParams
from instructgen.model.checkpoint import load_model
from instructgen.model.transformer import KVCache
from tests.conftest import make_model_dir

pytestmark = pytest.mark.skipif(native_step.load() is None, reason="no C compiler here")

VARIANTS = {
    "llama gqa": dict(arch="llama", n_head=4, n_kv_head=2),
    "llama mha, biases, roles": dict(arch="llama", n_head=4, n_kv_head=4, qkv_bias=True, o_bias=True, mlp_bias=True, n_roles=4),
    "llama one kv head, gelu": dict(arch="llama", n_head=4, n_kv_head=1, d_model=96, activation="gelu"),
    "gpt2": dict(arch="gpt2"),
    "gpt2 relu, roles": dict(arch="gpt2", activation="relu", n_roles=4),
    "gpt2 exact gelu": dict(arch="gpt2", activation="gelu", d_model=96, n_head=3),
}  # fmt: skip


@contextlib.contextmanager
def restore_threads():
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def batch_cache(model, prompts: list[list[int]]) -> SlotCache:
    """A SlotCache with one row per prompt, each prefilled alone, so rows start at different
    columns of the timeline (as the engine's continuous batching leaves them)."""
    cache = SlotCache(model.config, max_rows=len(prompts), max_len=model.config.max_seq_len)
    for prompt in prompts:
        temp = KVCache(model.config, 1, len(prompt))
        with torch.no_grad():
            model(torch.tensor([prompt]), cache=temp)
        cache.add_rows(temp, [0], [0])
    return cache


def step_c_and_torch(
    model, prompts: list[list[int]], *, threads: int, steps: int, atol: float
) -> list[SlotCache]:
    """Decode greedily from `prompts` with the C step and the torch step side by side on
    `threads` threads, asserting equal logits at every step; returns (C, torch) caches."""
    native, plain = FastDecoder(model), FastDecoder(model)
    plain._native = False
    caches = [batch_cache(model, prompts) for _ in range(2)]
    tokens = torch.tensor([p[-1] for p in prompts])
    with torch.inference_mode(), restore_threads():
        torch.set_num_threads(threads)
        for _ in range(steps):
            for cache in caches:
                cache.make_room()
            fast, slow = native.step(tokens, caches[0]), plain.step(tokens, caches[1])
            assert native._native_step() is not None
            torch.testing.assert_close(fast, slow, atol=atol, rtol=1e-4)
            tokens = fast.argmax(-1)
    return caches


def _prefilled(model, prompt: list[int], shift: int) -> SlotCache:
    """A one-row SlotCache holding `prompt`'s keys and values, `shift` columns from the left."""
    temp = KVCache(model.config, 1, len(prompt))
    with torch.no_grad():
        model(torch.tensor([prompt]), cache=temp)
    cache = SlotCache(model.config, max_rows=1, max_len=model.config.max_seq_len)
    cache.add_rows(temp, [0], [0])
    if shift:
        cache.shift(shift)
    return cache


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_native_step_equals_the_torch_step(tmp_path, tokenizer_dir, variant):
    model = load_model(make_model_dir(tmp_path / "m", tokenizer_dir, seed=3, **VARIANTS[variant]))
    if model.role_emb is not None:  # a trained-looking role table, not the zero-ish init
        torch.nn.init.normal_(model.role_emb.weight, std=0.5)
    native, plain = FastDecoder(model), FastDecoder(model)
    plain._native = False  # the torch path
    prompt = list(range(5, 14))
    # the timeline starts 3 columns in; 30 steps grow the cache's length twice (16 → 32 → 64)
    caches = [_prefilled(model, prompt, shift=3) for _ in range(2)]
    token = torch.tensor([prompt[-1]])
    with torch.inference_mode(), restore_threads():
        torch.set_num_threads(1)
        for _ in range(30):
            for cache in caches:
                cache.make_room()
            fast = native.step(token, caches[0])
            slow = plain.step(token, caches[1])
            assert native._native_step() is not None
            torch.testing.assert_close(fast, slow, atol=2e-5, rtol=1e-4)
            token = fast.argmax(-1)
    assert caches[0].max_len > 16 and caches[0].length == caches[1].length
    for k_fast, k_slow in zip(caches[0].k, caches[1].k):
        torch.testing.assert_close(k_fast[:1], k_slow[:1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("variant", ["llama gqa", "llama mha, biases, roles", "gpt2"])
@pytest.mark.parametrize("threads", [1, 2])
def test_native_batch_step_equals_the_torch_step(tmp_path, tokenizer_dir, variant, threads):
    """Several rows at different positions in one C step, its products split over threads."""
    model = load_model(make_model_dir(tmp_path / "m", tokenizer_dir, seed=4, **VARIANTS[variant]))
    prompts = [list(range(5, 14)), list(range(20, 23)), list(range(30, 47)), [7]]
    caches = step_c_and_torch(model, prompts, threads=threads, steps=20, atol=2e-5)
    for k_fast, k_slow in zip(caches[0].k, caches[1].k):
        torch.testing.assert_close(k_fast[:4], k_slow[:4], atol=1e-5, rtol=1e-4)


def test_decoder_shares_the_models_weights(gpt2_dir, llama_dir):
    """The engine's decoder holds no second copy of a weight: its fused matrices are the model's
    parameters' memory (GPT-2's W_q, W_k, W_v lie end to end as loaded, so fusing copies none)."""
    for model_dir in (gpt2_dir, llama_dir):
        engine = Engine.from_dir(model_dir)
        model, decoder = engine.model, engine.decoder
        for block, layer in zip(model.blocks, decoder.layers):
            a = block.attn
            assert a.W_q.weight.data_ptr() == layer[1].weight.data_ptr()
            assert a.W_k.weight.data_ptr() == layer[1].weight[a.W_q.weight.size(0) :].data_ptr()
            assert a.W_o.weight.data_ptr() == layer[2].weight.data_ptr()
            up = block.ffn.W_gate if model.config.arch == "llama" else block.ffn.W_1
            assert up.weight.data_ptr() == layer[4].weight.data_ptr()
        assert decoder.lm_head.weight.data_ptr() == model.lm_head.weight.data_ptr()
    gpt2 = load_model(gpt2_dir).blocks[0].attn
    assert gpt2.W_k.weight.data_ptr() == gpt2.W_q.weight.data_ptr() + gpt2.W_q.weight.nbytes


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_batch_one_greedy_equals_transformers_generate(arch, gpt2_dir, llama_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    model_dir = {"gpt2": gpt2_dir, "llama": llama_dir}[arch]
    calls = []
    step = native_step.NativeStep.step
    monkeypatch.setattr(
        native_step.NativeStep, "step", lambda self, *a: calls.append(1) or step(self, *a)
    )
    engine = Engine.from_dir(model_dir)
    hf = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    params = SamplingParams(temperature=0, max_tokens=40, ignore_eos=True)
    for prompt in ["春天来了", "The quick brown fox jumps over the lazy"]:
        ours = engine.generate([prompt], params)[0].sequences[0].output_ids
        assert len(calls) >= 39  # every step after the first token ran in C
        calls.clear()
        ids = torch.tensor([engine.encode(prompt)])
        with torch.no_grad():
            out = hf.generate(ids, max_new_tokens=40, do_sample=False, eos_token_id=None)
        assert ours == out[0, ids.size(1) :].tolist()


def test_without_a_compiler_the_torch_path_runs(llama_dir, tmp_path, monkeypatch):
    params = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
    expected = Engine.from_dir(llama_dir).generate(["春天来了"], params)[0].sequences[0].output_ids
    monkeypatch.setenv("INSTRUCTGEN_CACHE", str(tmp_path / "cache"))  # nothing built there yet
    monkeypatch.setenv("PATH", str(tmp_path))  # and no compiler to build it with
    monkeypatch.delenv("CC", raising=False)
    native_step.load.cache_clear()
    try:
        assert native_step.load() is None
        engine = Engine.from_dir(llama_dir)
        assert engine.generate(["春天来了"], params)[0].sequences[0].output_ids == expected
        assert engine.decoder._native is False
    finally:
        native_step.load.cache_clear()
    monkeypatch.undo()
    monkeypatch.setenv("INSTRUCTGEN_NATIVE", "0")  # switched off, with the library built
    native_step.load.cache_clear()
    try:
        assert native_step.load() is None
    finally:
        monkeypatch.undo()
        native_step.load.cache_clear()
