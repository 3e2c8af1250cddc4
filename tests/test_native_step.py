"""The batch-1 decode step in C: the torch step's logits, HF-equal greedy tokens, and a clean
fallback to the torch path where it cannot be built."""

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
def _restore_threads(threads: int):
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the C step takes one-thread steps only
    with torch.inference_mode(), _restore_threads(threads):
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
