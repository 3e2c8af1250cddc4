"""Prefix caching: the same tokens with and without it, LRU within the byte bound, /metrics."""

from __future__ import annotations

import httpx
import pytest
import torch

from instructgen.inference.engine import Engine
from instructgen.inference.prefix_cache import PrefixCache
from instructgen.inference.sampling import SamplingParams
from instructgen.model.transformer import ModelConfig
from tests.conftest import make_model_dir
from tests.serve_support import server

SYSTEM = (
    "You are a helpful assistant. Answer briefly and politely. 春天来了，花开了。"
    "The quick brown fox jumps over the lazy dog. "
)
QUESTIONS = ["Hello!", "写一首诗", "def add(a, b):", "1 + 1 =", "The fox"]
GREEDY = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True, logprobs=1)


@pytest.fixture(scope="module")
def pairs(gpt2_dir, llama_dir):
    """(without, with the prefix cache) engines per architecture."""
    return {
        arch: (Engine.from_dir(d), Engine.from_dir(d, prefix_cache_mb=4))
        for arch, d in (("gpt2", gpt2_dir), ("llama", llama_dir))
    }


def _prompts(engine: Engine) -> list[list[int]]:
    """The shared system prompt with each question; its first three blocks exactly; itself."""
    system = engine.encode(SYSTEM)
    assert len(system) >= 48
    return [engine.encode(SYSTEM + q) for q in QUESTIONS] + [system[:48], system]


def _outputs(requests) -> list[tuple[list[int], list[float]]]:
    return [
        (r.sequences[0].output_ids, [lp.logprob for lp in r.sequences[0].logprobs])
        for r in requests
    ]


def _assert_same(cached, plain) -> None:
    for (ids, lps), (ref_ids, ref_lps) in zip(cached, plain, strict=True):
        assert ids == ref_ids
        assert lps == pytest.approx(ref_lps, abs=1e-4)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_tokens_are_the_same_with_and_without(pairs, arch):
    plain, cached = pairs[arch]
    prompts = _prompts(plain)
    reference = _outputs(plain.generate(prompts, GREEDY))
    hits = cached.prefix_cache.hits
    _assert_same(_outputs(cached.generate(prompts[:1], GREEDY)), reference[:1])  # fills the cache
    assert cached.prefix_cache.hits == hits
    _assert_same(_outputs(cached.generate(prompts, GREEDY)), reference)  # admitted together
    assert cached.prefix_cache.hits >= hits + 32 * len(prompts)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_joining_mid_flight_reuses_the_prefix(pairs, arch):
    plain, cached = pairs[arch]
    prompts = _prompts(plain)[:3]
    reference = _outputs(plain.generate(prompts, GREEDY))
    requests = [cached.add_request(prompts[0], GREEDY)]
    while cached.has_unfinished() or len(requests) < len(prompts):
        cached.step()
        if len(requests) < len(prompts):
            requests.append(cached.add_request(prompts[len(requests)], GREEDY))
    _assert_same(_outputs(requests), reference)


def test_prompt_logprobs_are_computed_whole(pairs):
    plain, cached = pairs["llama"]
    prompt = _prompts(plain)[1]
    params = SamplingParams(temperature=0, max_tokens=0, prompt_logprobs=0)
    cached.generate([prompt], GREEDY)
    hits = cached.prefix_cache.hits
    both = [e.generate([prompt, prompt], params)[0].prompt_logprobs for e in (plain, cached)]
    assert cached.prefix_cache.hits == hits
    assert [lp and lp.logprob for lp in both[1]] == pytest.approx(
        [lp and lp.logprob for lp in both[0]], abs=1e-4
    )


def test_seeded_sampling_is_the_same_with_and_without(pairs):
    plain, cached = pairs["gpt2"]
    prompts = _prompts(plain)[:3]
    params = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=16, seed=7, n=2)
    reference = [[s.output_ids for s in r.sequences] for r in plain.generate(prompts, params)]
    for _ in range(2):  # cold, then warm
        out = [[s.output_ids for s in r.sequences] for r in cached.generate(prompts, params)]
        assert out == reference


def test_role_ids_are_part_of_a_blocks_key(tmp_path, tokenizer_dir):
    model_dir = make_model_dir(tmp_path / "roles", tokenizer_dir, "llama", n_roles=4)
    plain, cached = Engine.from_dir(model_dir), Engine.from_dir(model_dir, prefix_cache_mb=1)
    prompt = plain.encode(SYSTEM)
    system, user = [1] * len(prompt), [2] * len(prompt)
    cached.generate([prompt], GREEDY, role_ids=[system])
    hits = cached.prefix_cache.hits
    for roles in (user, system):
        mine = _outputs(cached.generate([prompt], GREEDY, role_ids=[roles]))
        _assert_same(mine, _outputs(plain.generate([prompt], GREEDY, role_ids=[roles])))
    assert cached.prefix_cache.hits > hits
    assert cached.prefix_cache.hits - hits <= len(prompt)  # the user-role prompt found nothing


# -- the store ---------------------------------------------------------------------------------

TINY = ModelConfig(arch="llama", vocab_size=64, d_model=16, n_layer=2, n_head=2, max_seq_len=64)


def _kv(n: int) -> list[torch.Tensor]:
    return [torch.randn(TINY.n_kv_head, n, TINY.d_head) for _ in range(TINY.n_layer)]


def test_least_recently_used_blocks_go_first_within_the_bound():
    store = PrefixCache(TINY, max_bytes=0, block_size=4)
    store.max_bytes = 3 * store.block_bytes
    a, b = list(range(8)), list(range(10, 18))
    keys = _kv(8)
    store.insert(a, None, keys, keys)
    n, kv = store.lookup(a + [1])
    assert n == 8 and torch.equal(kv[0, 1], keys[1])
    assert store.lookup(a)[0] == 4  # a prompt's last token is never reused
    store.insert(b, None, _kv(8), _kv(8))  # a's second block is the least recently used
    assert len(store) == 3 and store.bytes <= store.max_bytes
    assert store.lookup(a + [1])[0] == 4
    assert store.lookup(b + [1])[0] == 8
    store.insert(list(range(20, 32)), None, _kv(12), _kv(12))
    assert store.bytes == 3 * store.block_bytes
    assert store.lookup(a + [1])[0] == store.lookup(b + [1])[0] == 0


def test_a_chain_matches_only_after_the_same_prefix():
    store = PrefixCache(TINY, max_bytes=2**20, block_size=4)
    store.insert(list(range(8)), None, _kv(8), _kv(8))
    assert store.lookup([9, 9, 9, 9, 4, 5, 6, 7, 1])[0] == 0  # block 2 alone is not a prefix
    assert store.lookup(list(range(8)) + [1], [0] * 9)[0] == 0  # other roles, other keys
    tiny = PrefixCache(TINY, max_bytes=1, block_size=4)  # less than one block: stores nothing
    tiny.insert(list(range(8)), None, _kv(8), _kv(8))
    assert len(tiny) == 0


def test_the_engine_stays_within_its_bound(gpt2_dir):
    engine = Engine.from_dir(gpt2_dir, prefix_cache_mb=0.05)
    bound = engine.prefix_cache.max_bytes
    params = SamplingParams(temperature=0, max_tokens=2)
    for question in QUESTIONS:
        engine.generate([question * 4 + SYSTEM], params)
        assert 0 < engine.prefix_cache.bytes <= bound


# -- the server --------------------------------------------------------------------------------


def _metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not in /metrics")


def test_metrics_count_prefix_cache_hits(gpt2_dir):
    with server(gpt2_dir) as url:
        assert _metric(url, "instructgen_prefix_cache_hits_total") == 0
        body = {"prompt": SYSTEM + "Hello!", "max_tokens": 2, "temperature": 0}
        texts = [httpx.post(url + "/v1/completions", json=body, timeout=60) for _ in range(2)]
        assert all(r.status_code == 200 for r in texts)
        assert texts[0].json()["choices"] == texts[1].json()["choices"]
        assert _metric(url, "instructgen_prefix_cache_hits_total") >= 32
        assert _metric(url, "instructgen_prefix_cache_queries_total") >= 2 * 48
        assert _metric(url, "instructgen_prefix_cache_bytes") > 0
