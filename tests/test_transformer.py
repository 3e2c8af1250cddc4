"""The Transformer: the reference path equals the fast path, masks, KV cache, configs."""

from __future__ import annotations

import pytest
import torch

from instructgen.errors import ConfigError
from instructgen.model.transformer import KVCache, ModelConfig, Transformer, attention, build_mask

CONFIGS = {
    "gpt2-gelu": dict(arch="gpt2"),
    "gpt2-relu": dict(arch="gpt2", activation="relu", tie_embeddings=False),
    "llama-gqa": dict(arch="llama", n_kv_head=2),
    "llama-qkv-bias": dict(arch="llama", n_kv_head=1, qkv_bias=True),
}


def tiny(**overrides) -> Transformer:
    torch.manual_seed(0)
    values = dict(vocab_size=101, d_model=32, n_layer=2, n_head=4, max_seq_len=64)
    values.update(overrides)
    model = Transformer(ModelConfig(**values)).eval()
    with torch.no_grad():  # larger weights than the init make disagreements visible
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def both_paths(model: Transformer, x: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        model.reference_attention = False
        fast = model(x, **kwargs)
        model.reference_attention = True
        reference = model(x, **kwargs)
        model.reference_attention = False
    return fast, reference


def test_attention_is_the_formula():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 5, 8).unbind(0)
    weights = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    assert torch.allclose(attention(q, k, v, None), weights @ v, atol=1e-6)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("mask", ["causal", "bidirectional", "prefix"])
def test_reference_and_fast_attention_agree(name, mask):
    model = tiny(**CONFIGS[name])
    x = torch.randint(0, 101, (3, 12))
    padding = torch.ones(3, 12, dtype=torch.long)
    padding[1, :4] = 0  # a left-padded row
    kwargs = dict(mask=mask, attention_mask=padding)
    if mask == "prefix":
        kwargs["prefix_lengths"] = torch.tensor([3, 6, 0])
    fast, reference = both_paths(model, x, **kwargs)
    real = padding.bool()
    assert torch.allclose(fast[real], reference[real], atol=1e-5)


def test_plain_causal_paths_agree():
    model = tiny(arch="llama", n_kv_head=2)
    fast, reference = both_paths(model, torch.randint(0, 101, (2, 16)))
    assert torch.allclose(fast, reference, atol=1e-5)


def test_causal_mask_hides_the_future():
    model = tiny()
    x = torch.randint(0, 101, (1, 10))
    y = x.clone()
    y[0, 6:] = (y[0, 6:] + 1) % 101
    with torch.no_grad():
        assert torch.allclose(model(x)[0, :6], model(y)[0, :6], atol=1e-6)
        assert not torch.allclose(
            model(x, mask="bidirectional")[0, :6], model(y, mask="bidirectional")[0, :6]
        )


def test_prefix_mask_by_hand():
    mask = build_mask("prefix", torch.arange(4), 4, prefix_lengths=torch.tensor([2]))
    expected = torch.tensor(
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(mask[0, 0], expected)


def test_padding_and_segment_masks_by_hand():
    padding = torch.tensor([[0, 1, 1, 1]])
    mask = build_mask("causal", torch.arange(4), 4, padding=padding)[0, 0]
    assert mask[:, 0].tolist() == [True, False, False, False]  # a pad query sees only itself
    segments = torch.tensor([[0, 0, 1, 1]])
    mask = build_mask("causal", torch.arange(4), 4, segment_ids=segments)[0, 0]
    assert mask.int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]


def test_packed_segments_equal_separate_sequences():
    model = tiny(arch="llama", n_kv_head=2)
    a, b = torch.randint(0, 101, (1, 5)), torch.randint(0, 101, (1, 7))
    packed = torch.cat([a, b], dim=1)
    segments = torch.tensor([[0] * 5 + [1] * 7])
    positions = torch.tensor([list(range(5)) + list(range(7))])
    with torch.no_grad():
        out = model(packed, segment_ids=segments, position_ids=positions)
        assert torch.allclose(out[:, :5], model(a), atol=1e-5)
        assert torch.allclose(out[:, 5:], model(b), atol=1e-5)


@pytest.mark.parametrize("name", CONFIGS)
def test_kv_cache_matches_full_forward(name):
    model = tiny(**CONFIGS[name])
    x = torch.randint(0, 101, (2, 15))
    with torch.no_grad():
        full = model(x)
        cache = KVCache(model.config, batch_size=2, max_len=32)
        steps = [model(x[:, :6], cache=cache)]  # prefill, then one token at a time, then a chunk
        steps += [model(x[:, t : t + 1], cache=cache) for t in range(6, 11)]
        steps.append(model(x[:, 11:], cache=cache))
    assert cache.length == 15
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_kv_cache_with_left_padding():
    model = tiny(arch="llama", n_kv_head=2)
    short, long = torch.randint(0, 101, (1, 4)), torch.randint(0, 101, (1, 7))
    x = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
    padding = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1] * 7])
    positions = (padding.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        cache = KVCache(model.config, 2, 16)
        model(x, cache=cache, attention_mask=padding, position_ids=positions)
        nxt = torch.randint(0, 101, (2, 1))
        padding = torch.cat([padding, torch.ones(2, 1, dtype=torch.long)], 1)
        step = model(nxt, cache=cache, attention_mask=padding, position_ids=positions[:, -1:] + 1)
        alone = model(torch.cat([short, nxt[:1]], 1))
    assert torch.allclose(step[0, -1], alone[0, -1], atol=1e-5)


def test_config_errors_are_user_errors():
    with pytest.raises(ConfigError, match="arch"):
        ModelConfig(arch="bert")
    with pytest.raises(ConfigError, match="divisible"):
        ModelConfig(d_model=30, n_head=4)
    with pytest.raises(ConfigError, match="n_kv_head"):
        ModelConfig(arch="gpt2", n_head=4, n_kv_head=2)
    with pytest.raises(ConfigError, match="activation"):
        ModelConfig(activation="tanh")


def test_training_step_reduces_loss():
    model = tiny(arch="llama", n_kv_head=2)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randint(0, 101, (4, 16))
    losses = []
    for _ in range(10):
        logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 101), x[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("causal", [True, False])
def test_bf16_attention_on_cpu_runs_in_float32(causal):
    """bf16 queries, keys and values without a mask are attended in float32, then cast back."""
    from instructgen.model.transformer import fast_attention

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 9, 8).unbind(0)
    mask = None
    low = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        heads = fast_attention(*low, mask, causal)
    assert heads.dtype == torch.bfloat16
    exact = fast_attention(*(t.bfloat16().float() for t in (q, k, v)), mask, causal)
    assert torch.equal(heads, exact.bfloat16())
    heads.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in low)
