"""One decode step of the Transformer (model/transformer.py), fused for speed.

The math is the model's, written as flat tensor calls: pre-norm blocks
x ← x + W_o·Attention(norm(x)), x ← x + FFN(norm(x)), with q, k, v from one fused matmul
[W_q; W_k; W_v] and SwiGLU's gate and up from one [W_gate; W_up]. RoPE angles come from a
table, keys and values go straight into the SlotCache. Prefill still runs the model's own
forward; only the one-token steps, where per-call overhead dominates, take this path. A single
running row of a GPT-2- or Llama-family model on one CPU thread goes further, to one call of a C
function (inference/native_step.py) where it can be built.

Logits equal the model's forward up to float rounding (~1e-7: fused matmuls, fused
multiply-adds); with several rows the matmuls run through oneDNN with pre-packed weights
(see _Linear), which sums in another order (~1e-6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from instructgen.inference import native_step
from instructgen.inference.cache import SlotCache
from instructgen.model.transformer import ACTIVATIONS, RMSNorm, Transformer

__all__ = ["FastDecoder"]

_ROLE_ASSISTANT = 3
# the batched path keeps a oneDNN-packed second copy of each weight (see _Linear), for models
# whose weights take at most this many bytes: above it, the copy's memory costs more than its speed
PACK_LIMIT = 2 * 2**30


def _fuse(modules: list[nn.Linear], share: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One weight [Σ out, in] (and bias) for several linears on the same input.

    share=True points the modules' parameters at slices of the fused tensor, so the model and
    the decoder hold one copy of the weights.
    """
    weight = torch.cat([m.weight for m in modules])
    biases = [m.bias for m in modules]
    bias = torch.cat(biases) if all(b is not None for b in biases) else None
    if share:
        offset = 0
        for m in modules:
            rows = m.weight.size(0)
            m.weight = nn.Parameter(weight[offset : offset + rows], requires_grad=False)
            if bias is not None:
                m.bias = nn.Parameter(bias[offset : offset + rows], requires_grad=False)
            offset += rows
    return weight, bias


class FastDecoder:
    """Decode one token for every running row of a SlotCache: logits [rows, vocab]."""

    def __init__(self, model: Transformer, *, share_weights: bool = False):
        c = model.config
        self.model, self.config = model, c
        self.llama = c.arch == "llama"
        self.h, self.kv, self.dh, self.d = c.n_head, c.n_kv_head, c.d_head, c.d_model
        self.act = ACTIVATIONS[c.activation]
        pack = sum(p.numel() * p.element_size() for p in model.parameters()) <= PACK_LIMIT
        with torch.no_grad():
            self.layers = []
            for block in model.blocks:
                a, f = block.attn, block.ffn
                qkv = _Linear(*_fuse([a.W_q, a.W_k, a.W_v], share_weights), pack=pack)
                if self.llama:
                    up = _Linear(*_fuse([f.W_gate, f.W_up], share_weights), pack=pack)
                    down = _Linear(f.W_down.weight, f.W_down.bias, pack=pack)
                else:
                    up = _Linear(f.W_1.weight, f.W_1.bias, pack=pack)
                    down = _Linear(f.W_2.weight, f.W_2.bias, pack=pack)
                o = _Linear(a.W_o.weight, a.W_o.bias, pack=pack)
                self.layers.append((block.norm_1, qkv, o, block.norm_2, up, down))
            self.lm_head = _Linear(model.lm_head.weight, None, pack=pack)
        self.role = (
            model.role_emb.weight[_ROLE_ASSISTANT].detach() if model.role_emb is not None else None
        )
        self._cos = self._sin = None
        self._native: native_step.NativeStep | None | bool = None  # made on the first 1-row step

    def _native_step(self) -> native_step.NativeStep | None:
        """The C step for one row (inference/native_step.py) where this model and machine allow."""
        if self._native is None:
            supported = native_step.NativeStep.supports(self, self.model)
            lib = native_step.load() if supported else None
            self._native = (
                native_step.NativeStep(lib, self, self.model) if lib is not None else False
            )
        return self._native or None

    def _norm(self, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if isinstance(norm, RMSNorm) and x.dtype == torch.float32:  # one fused op, same result
            return F.rms_norm(x, (self.d,), norm.weight, norm.eps)
        if isinstance(norm, RMSNorm):  # the model's RMSNorm, op for op
            x32 = x.float()
            return norm.weight * (
                x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + norm.eps)
            ).to(x.dtype)
        return F.layer_norm(x, (self.d,), norm.weight, norm.bias, norm.eps)

    def _rope_table(self, upto: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sign-folded sin per position: rotate_half(x)·sin = swap_halves(x)·[−sin, sin]."""
        if self._cos is None or self._cos.size(0) < upto:
            size = max(upto, 256, 2 * (0 if self._cos is None else self._cos.size(0)))
            positions = torch.arange(size, device=self.model.rope.inv_freq.device)
            cos, sin = self.model.rope(positions)  # the model's own angles
            half = self.dh // 2
            self._cos, self._sin = cos, torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)
        return self._cos, self._sin

    def step(self, tokens: torch.Tensor, cache: SlotCache) -> torch.Tensor:
        """tokens [rows] → logits [rows, vocab]; writes the keys/values at column cache.length."""
        m, n, t = self.model, cache.rows, cache.length
        # the C step is single-threaded: it takes the one-row steps that run on one thread
        # anyway (inference/threads.py), where per-op overhead is most of the time
        if n == 1 and torch.get_num_threads() == 1 and (native := self._native_step()) is not None:
            cache.valid[0, t] = True
            if (logits := native.step(int(tokens[0]), cache)) is not None:
                cache.length = t + 1
                return logits
        h, kv, dh = self.h, self.kv, self.dh
        positions = t - torch.tensor(cache.starts, device=tokens.device)
        x = F.embedding(tokens, m.tok_emb.weight)  # [n, d]: one token per row
        if m.pos_emb is not None:
            x = x + F.embedding(positions, m.pos_emb.weight)
        if self.role is not None:
            x = x + self.role
        if self.llama:
            cos_t, sin_t = self._rope_table(t + 1)
            cos, sin = cos_t[positions].view(n, 1, dh), sin_t[positions].view(n, 1, dh)
        cache.valid[:n, t] = True
        mask = cache.valid[:n, : t + 1].view(n, 1, 1, t + 1) if cache.padded else None
        for i, (norm_1, qkv, o, norm_2, up, down) in enumerate(self.layers):
            y = qkv(self._norm(norm_1, x))
            if self.llama:
                qk = y[:, : (h + kv) * dh].view(n, h + kv, dh)
                swapped = qk.view(n, h + kv, 2, dh // 2).flip(2).view(n, h + kv, dh)
                qk = torch.addcmul(qk * cos, swapped, sin).to(y.dtype)  # float32 angles
            else:
                qk = y[:, : (h + kv) * dh].view(n, h + kv, dh)
            kc, vc = cache.k[i], cache.v[i]
            kc[:n, :, t] = qk[:, h:]
            vc[:n, :, t] = y[:, (h + kv) * dh :].view(n, kv, dh)
            heads = F.scaled_dot_product_attention(
                qk[:, :h].unsqueeze(2),
                kc[:n, :, : t + 1],
                vc[:n, :, : t + 1],
                attn_mask=mask,
                enable_gqa=h != kv,
            )
            x = o.residual(x, heads.view(n, h * dh))
            y = self._norm(norm_2, x)
            if self.llama:
                gate, upv = up(y).chunk(2, dim=-1)
                x = down.residual(x, self.act(gate) * upv)
            else:
                x = down.residual(x, self.act(up(y)))
        cache.length = t + 1
        return self.lm_head(self._norm(m.norm_f, x))


class _Linear:
    """y = x·Wᵀ + b for a batch of rows.

    One row: torch's own matmul, exactly what nn.Linear computes. Several rows: oneDNN with the
    weight packed once (a second copy, made on first use), several times faster on CPUs where
    torch's default BLAS re-packs the weight at every small-batch call; the same products,
    summed in another order (differences ~1e-6 relative).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, pack: bool = True):
        self.weight, self.bias, self.weight_t = weight, bias, weight.t()
        self._packed: torch.Tensor | None | bool = None if pack else False  # False: no packing

    def _pack(self) -> torch.Tensor | None:
        if self._packed is None:
            self._packed = False
            w = self.weight
            if w.device.type == "cpu" and w.dtype == torch.float32 and _onednn_available():
                with torch.no_grad():
                    self._packed = torch.ops.mkldnn._reorder_linear_weight(w.detach())
        return None if self._packed is False else self._packed

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(0) > 1 and (packed := self._pack()) is not None:
            return torch.ops.mkldnn._linear_pointwise(x, packed, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def residual(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """x + a·Wᵀ (+ b); one addmm for a single row without bias."""
        if a.size(0) == 1 and self.bias is None:
            return torch.addmm(x, a, self.weight_t)
        return x + self(a)


def _onednn_available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(
            torch.ops.mkldnn, "_linear_pointwise"
        )
    except (AttributeError, RuntimeError):
        return False
