"""The Transformer of brief chapters 3.1 and 4.1, written so that the math stays visible.

Two families share every piece below and differ only by configuration:
  gpt2:  learned positions, LayerNorm, biases, FFN(x) = act(xW1 + b1)W2 + b2 with act relu or gelu
  llama: rotary positions (RoPE), RMSNorm, SwiGLU feed-forward, grouped-query attention,
         optional q/k/v biases (the Qwen2 variant)

The module names follow the formulas (W_q, W_k, W_v, W_o, W_1, W_2); model/checkpoint.py maps
them to and from Hugging Face names, so a saved model loads in `transformers` unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from instructgen.errors import ConfigError
from instructgen.model.cross_entropy import linear_cross_entropy

MaskKind = Literal["causal", "bidirectional", "prefix"]


@dataclass
class ModelConfig:
    arch: Literal["gpt2", "llama"] = "gpt2"
    vocab_size: int = 8192
    d_model: int = 256
    n_layer: int = 4
    n_head: int = 8
    n_kv_head: int | None = None  # llama only: grouped-query attention (None = n_head)
    d_head: int | None = None  # None = d_model // n_head
    d_ff: int | None = None  # None = 4 * d_model (gpt2) or the SwiGLU size (llama)
    max_seq_len: int = 512
    activation: str | None = (
        None  # None = gelu_new (gpt2, GPT-2's tanh gelu) or silu (llama's SwiGLU)
    )
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    qkv_bias: bool = False  # llama only (gpt2 always has biases)
    o_bias: bool = False  # llama only
    mlp_bias: bool = False  # llama only
    tie_embeddings: bool = True
    dropout: float = 0.0
    n_roles: int = (
        0  # >0 adds learned role/segment embeddings ("instruction embedding", brief 4.3.1)
    )
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None

    def __post_init__(self) -> None:
        if self.arch not in ("gpt2", "llama"):
            raise ConfigError(f"unknown arch {self.arch!r}; choose gpt2 or llama", field="arch")
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.d_head is None:
            if self.d_model % self.n_head:
                raise ConfigError(
                    f"d_model {self.d_model} is not divisible by n_head {self.n_head}",
                    field="d_model",
                )
            self.d_head = self.d_model // self.n_head
        if self.n_head % self.n_kv_head:
            raise ConfigError(
                f"n_head {self.n_head} is not a multiple of n_kv_head {self.n_kv_head}",
                field="n_kv_head",
            )
        if self.arch == "gpt2" and self.n_kv_head != self.n_head:
            raise ConfigError(
                "grouped-query attention (n_kv_head) needs arch llama", field="n_kv_head"
            )
        if self.arch == "llama" and self.d_head % 2:
            raise ConfigError("rotary embeddings need an even head size", field="d_head")
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model if self.arch == "gpt2" else _swiglu_size(self.d_model)
        if self.activation is None:
            self.activation = "gelu_new" if self.arch == "gpt2" else "silu"
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"unknown activation {self.activation!r}; choose {', '.join(ACTIVATIONS)}",
                field="activation",
            )


def _swiglu_size(d_model: int) -> int:
    """Llama's hidden size: 2/3 of 4·d_model, rounded up to a multiple of 64."""
    return 64 * math.ceil(int(8 * d_model / 3) / 64)


ACTIVATIONS = {
    "relu": F.relu,  # max(0, x), the brief's FFN
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
}


# ----------------------------------------------------------------------------------------------
# Attention(Q, K, V) = softmax(QKᵀ / √d_k) V


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Attention(Q,K,V) = softmax(QKᵀ/√d_k)V, the reference path; mask is True where a query may look."""
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v


def fast_attention(q, k, v, mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
    """The same function through torch's fused scaled_dot_product_attention.

    On a CPU, bf16/fp16 inputs without a mask are attended in float32 and the result cast back:
    there torch's flash attention backward is 1.5× slower in bf16 than in fp32 (with a mask, as
    packed fine-tuning rows have, bf16 is the faster one: measured on a 2-core AMX CPU).
    """
    if mask is None and q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        with torch.autocast("cpu", enabled=False):
            heads = fast_attention(q.float(), k.float(), v.float(), mask, is_causal)
        return heads.to(q.dtype)
    return F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=mask,
        is_causal=is_causal and mask is None,
        enable_gqa=k.size(1) != q.size(1),
    )


def build_mask(
    kind: MaskKind,
    query_positions: torch.Tensor,
    key_length: int,
    *,
    padding: torch.Tensor | None = None,
    prefix_lengths: torch.Tensor | None = None,
    segment_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean mask [B|1, 1, T_q, T_k]: True where query i may attend to key j.

    causal: j <= i · bidirectional: every j · prefix: j <= i or j < prefix length (prefix-LM);
    padding [B, T_k] (1 = real token) hides pad keys; segment_ids [B, T_k] (packed examples)
    keep attention inside one example. Positions are absolute (with a KV cache, queries start
    after the cached keys). Every query may always see itself, so no row is empty.
    """
    i = query_positions.view(-1, 1)  # [T_q, 1]
    j = torch.arange(key_length, device=i.device).view(1, -1)  # [1, T_k]
    if kind == "bidirectional":
        allowed = torch.ones(i.size(0), key_length, dtype=torch.bool, device=i.device)
    else:
        allowed = j <= i
    allowed = allowed.view(1, 1, *allowed.shape)
    if kind == "prefix":
        if prefix_lengths is None:
            raise ValueError("a prefix mask needs prefix_lengths")
        allowed = allowed | (j < prefix_lengths.view(-1, 1, 1, 1))
    elif kind not in ("causal", "bidirectional"):
        raise ValueError(f"unknown mask kind {kind!r}")
    if padding is not None:
        allowed = allowed & padding.bool().view(padding.size(0), 1, 1, key_length)
    if segment_ids is not None:
        seg_q = segment_ids[:, query_positions].unsqueeze(-1)  # [B, T_q, 1]
        allowed = allowed & (seg_q == segment_ids.unsqueeze(1)).unsqueeze(1)
    return allowed | (j == i)


# ----------------------------------------------------------------------------------------------
# Positions: learned (gpt2) or rotary (llama)


class RotaryEmbedding(nn.Module):
    """RoPE: rotate each pair (x_m, x_{m+d/2}) by angle p·θ^(-2m/d) for position p."""

    def __init__(self, d_head: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=torch.float32) / d_head))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = positions.float().unsqueeze(-1) * self.inv_freq  # [..., T, d/2]
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x·cos + rotate_half(x)·sin, with rotate_half(x1, x2) = (-x2, x1)."""
    x1, x2 = x.chunk(2, dim=-1)
    return (x * cos + torch.cat((-x2, x1), dim=-1) * sin).to(x.dtype)


class RMSNorm(nn.Module):
    """RMSNorm(x) = x / sqrt(mean(x²) + ε) · g"""

    def __init__(self, d: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(
            x.dtype
        )


def make_norm(config: ModelConfig) -> nn.Module:
    if config.arch == "gpt2":
        return nn.LayerNorm(config.d_model, eps=config.norm_eps)
    return RMSNorm(config.d_model, config.norm_eps)


# ----------------------------------------------------------------------------------------------
# KV cache


class KVCache:
    """Preallocated keys and values of every layer: [B, n_kv_head, max_len, d_head] each.

    `length` counts the positions already written; a forward pass with the cache writes the
    new positions after them and then advances `length`.
    """

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        max_len: int,
        *,
        device=None,
        dtype=torch.float32,
    ):
        shape = (batch_size, config.n_kv_head, max_len, config.d_head)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.max_len = max_len
        self.length = 0

    def update(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length, self.length + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; {end} requested")
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


# ----------------------------------------------------------------------------------------------
# MultiHead(Q,K,V) = Concat(head_1, ..., head_h) W^O,   head_i = Attention(Q W^Q_i, K W^K_i, V W^V_i)


class MultiHeadAttention(nn.Module):
    """MultiHead(Q,K,V) = Concat(head_1..head_h)W^O with head_i = Attention(QW^Q_i, KW^K_i, VW^V_i).

    W_q holds the h per-head matrices W^Q_1..W^Q_h side by side (d_model × h·d_head), so one
    matmul computes every QW^Q_i; the same for W_k and W_v. With grouped-query attention
    (llama), n_kv_head < h heads of keys and values are each shared by h / n_kv_head query heads.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        gpt2 = config.arch == "gpt2"
        self.n_head, self.n_kv_head, self.d_head = config.n_head, config.n_kv_head, config.d_head
        self.W_q = nn.Linear(
            config.d_model, self.n_head * self.d_head, bias=gpt2 or config.qkv_bias
        )
        self.W_k = nn.Linear(
            config.d_model, self.n_kv_head * self.d_head, bias=gpt2 or config.qkv_bias
        )
        self.W_v = nn.Linear(
            config.d_model, self.n_kv_head * self.d_head, bias=gpt2 or config.qkv_bias
        )
        self.W_o = nn.Linear(self.n_head * self.d_head, config.d_model, bias=gpt2 or config.o_bias)
        self.dropout = config.dropout

    def forward(
        self,
        x,
        *,
        rope=None,
        mask=None,
        is_causal=False,
        cache: KVCache | None = None,
        layer: int = 0,
        reference: bool = False,
    ):
        B, T, _ = x.shape
        # [B, T, h·d_head] -> [B, h, T, d_head]: head i reads columns i·d_head ... (i+1)·d_head
        q = self.W_q(x).view(B, T, self.n_head, self.d_head).transpose(1, 2)
        k = self.W_k(x).view(B, T, self.n_kv_head, self.d_head).transpose(1, 2)
        v = self.W_v(x).view(B, T, self.n_kv_head, self.d_head).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if reference:
            group = self.n_head // self.n_kv_head
            heads = attention(
                q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), mask
            )
        else:
            heads = fast_attention(q, k, v, mask, is_causal)
        if self.training and self.dropout > 0:
            heads = F.dropout(heads, self.dropout)
        concat = heads.transpose(1, 2).reshape(
            B, T, self.n_head * self.d_head
        )  # Concat(head_1..head_h)
        return self.W_o(concat)


# ----------------------------------------------------------------------------------------------
# Feed-forward networks


class FeedForward(nn.Module):
    """FFN(x) = max(0, xW1 + b1)W2 + b2 (gelu in place of max(0, ·) when configured)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.W_1 = nn.Linear(config.d_model, config.d_ff)
        self.W_2 = nn.Linear(config.d_ff, config.d_model)
        self.act = ACTIVATIONS[config.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.W_2(self.act(self.W_1(x)))


class SwiGLU(nn.Module):
    """FFN_SwiGLU(x) = (silu(xW_gate) ⊙ xW_up) W_down, llama's feed-forward."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.W_gate = nn.Linear(config.d_model, config.d_ff, bias=config.mlp_bias)
        self.W_up = nn.Linear(config.d_model, config.d_ff, bias=config.mlp_bias)
        self.W_down = nn.Linear(config.d_ff, config.d_model, bias=config.mlp_bias)
        self.act = ACTIVATIONS[config.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.W_down(self.act(self.W_gate(x)) * self.W_up(x))


class Block(nn.Module):
    """x + MultiHead(norm(x)), then x + FFN(norm(x)) (pre-norm residual block)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm_1 = make_norm(config)
        self.attn = MultiHeadAttention(config)
        self.norm_2 = make_norm(config)
        self.ffn = FeedForward(config) if config.arch == "gpt2" else SwiGLU(config)
        self.dropout = config.dropout

    def forward(self, x, **attn_args):
        x = x + self._drop(self.attn(self.norm_1(x), **attn_args))
        return x + self._drop(self.ffn(self.norm_2(x)))

    def _drop(self, x):
        return F.dropout(x, self.dropout) if self.training and self.dropout > 0 else x


# ----------------------------------------------------------------------------------------------
# The language model


class Transformer(nn.Module):
    """Token (+ position / role) embeddings → n_layer blocks → final norm → logits over the vocabulary."""

    def __init__(self, config: ModelConfig, *, init_weights: bool = True):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = (
            nn.Embedding(config.max_seq_len, config.d_model) if config.arch == "gpt2" else None
        )
        self.role_emb = nn.Embedding(config.n_roles, config.d_model) if config.n_roles else None
        self.rope = (
            RotaryEmbedding(config.d_head, config.rope_theta) if config.arch == "llama" else None
        )
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm_f = make_norm(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self.reference_attention = False  # True: the explicit softmax(QKᵀ/√d_k)V path
        if init_weights:  # skipped when every weight is about to be loaded from a file
            self.apply(self._init_weights)
            for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
                if name.endswith(("W_o.weight", "W_2.weight", "W_down.weight")):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding table (the name transformers and peft look for)."""
        return self.tok_emb

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        mask: MaskKind = "causal",
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        prefix_lengths: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        role_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        return_hidden: bool = False,
        labels: torch.Tensor | None = None,
        loss_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [B, T, vocab] for input_ids [B, T]; given labels [B, T] (IGNORE where none),
        the loss instead: their mean negative log-likelihood (or its sum weighted by
        loss_weights [B, T]), computed from the hidden states without the logits.

        attention_mask [B, past + T] marks real tokens (1) and padding (0); position_ids [B, T]
        default to past .. past+T-1; segment_ids [B, T] keep packed examples apart; with a
        cache the new keys/values are appended and `cache.length` advances by T.
        """
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        query_positions = torch.arange(past, past + T, device=input_ids.device)
        if position_ids is None:
            position_ids = query_positions.unsqueeze(0)
        if past + T > self.config.max_seq_len and self.pos_emb is not None:
            raise ValueError(
                f"sequence of {past + T} tokens exceeds the context length {self.config.max_seq_len}"
            )

        x = self.tok_emb(input_ids)
        if self.pos_emb is not None:
            x = x + self.pos_emb(position_ids)
        if self.role_emb is not None and role_ids is not None:
            x = x + self.role_emb(role_ids)
        if self.training and self.config.dropout > 0:
            x = F.dropout(x, self.config.dropout)

        attn_mask, is_causal = None, False
        if (
            attention_mask is None
            and segment_ids is None
            and mask != "prefix"
            and (mask == "bidirectional" or T == 1 or past == 0)
        ):
            is_causal = mask == "causal" and T > 1  # SDPA's built-in causal mask is all we need
            if is_causal and self.reference_attention:
                attn_mask = build_mask("causal", query_positions, T)
        else:
            attn_mask = build_mask(
                mask,
                query_positions,
                past + T,
                padding=attention_mask,
                prefix_lengths=prefix_lengths,
                segment_ids=segment_ids,
            )
        rope = None
        if self.rope is not None:
            cos, sin = self.rope(position_ids)  # [B|1, T, d_head]
            rope = (cos.unsqueeze(1), sin.unsqueeze(1))

        for layer, block in enumerate(self.blocks):
            x = block(
                x,
                rope=rope,
                mask=attn_mask,
                is_causal=is_causal,
                cache=cache,
                layer=layer,
                reference=self.reference_attention,
            )
        if cache is not None:
            cache.length += T
        x = self.norm_f(x)
        if labels is not None:
            flat = None if loss_weights is None else loss_weights.reshape(-1)
            hidden = x.reshape(-1, x.size(-1))
            return linear_cross_entropy(hidden, self.lm_head.weight, labels.reshape(-1), flat)
        return x if return_hidden else self.lm_head(x)
