"""One decode step of the Transformer (model/transformer.py), fused for speed.

The math is the model's, written as flat tensor calls: pre-norm blocks
x ← x + W_o·Attention(norm(x)), x ← x + FFN(norm(x)), with q, k, v from one fused matmul
[W_q; W_k; W_v] and SwiGLU's gate and up from one [W_gate; W_up]. RoPE angles come from a
table, keys and values go straight into the SlotCache. Prefill still runs the model's own
forward; only the one-token steps, where per-call overhead dominates, take this path. On a CPU,
a GPT-2- or Llama-family model's step goes further, to one call of a C function
(inference/native_step.py) where it can be built, for every running row at once.

The fused weights are the model's own storage (share_weights=True points the model's
parameters at slices of them), so the decoder holds no second copy of any weight. Linear
layers quantized by inference/quantize.py (int8 q, per-row scale) are fused the same way.
Logits equal the model's forward up to float rounding (~1e-6: fused matmuls, fused
multiply-adds, sums in another order).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from instructgen.inference import native_step
from instructgen.inference.cache import SlotCache
from instructgen.inference.quantize import Int8Linear, int8_linear
from instructgen.model.transformer import ACTIVATIONS, RMSNorm, Transformer

__all__ = ["FastDecoder"]

_ROLE_ASSISTANT = 3


class _Linear:
    """y = x·Wᵀ + b for a batch of rows: W float32 (`weight`), or int8 (`q`, `scale`) with
    y = scale ⊙ (x·qᵀ) + b (inference/quantize.py)."""

    def __init__(
        self,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        *,
        q: torch.Tensor | None = None,
        scale: torch.Tensor | None = None,
    ):
        self.weight, self.bias, self.q, self.scale = weight, bias, q, scale
        self.weight_t = weight.t() if weight is not None else None
        self.rows, self.cols = (weight if weight is not None else q).shape

    @classmethod
    def fuse(cls, modules: list[nn.Module], share: bool) -> _Linear:
        """One linear [Σ out, in] for several nn.Linear or Int8Linear layers on the same input.

        share=True points the modules' tensors at slices of the fused ones, so the model and the
        decoder hold one copy of the weights."""
        names = ("q", "scale") if isinstance(modules[0], Int8Linear) else ("weight",)
        if all(m.bias is not None for m in modules):
            names += ("bias",)
        fused = {n: _cat([getattr(m, n) for m in modules]) for n in names}
        if share and len(modules) > 1:
            offset = 0
            for m in modules:
                rows = m.out_features
                for name, tensor in fused.items():
                    _assign(m, name, tensor[offset : offset + rows])
                offset += rows
        return cls(
            fused.get("weight"), fused.get("bias"), q=fused.get("q"), scale=fused.get("scale")
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.q is not None:
            return int8_linear(x, self.q, self.scale, self.bias)
        return F.linear(x, self.weight, self.bias)

    def residual(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """x + a·Wᵀ (+ b); one addmm for a single float row without bias."""
        if a.size(0) == 1 and self.bias is None and self.weight is not None:
            return torch.addmm(x, a, self.weight_t)
        return x + self(a)


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat along dim 0, or a view where the tensors already lie end to end in one memory
    block (GPT-2's W_q, W_k, W_v as model/checkpoint.py loads them): no copy, no freed originals."""
    tensors = [t.detach() for t in tensors]
    first = tensors[0]
    if all(t.is_contiguous() for t in tensors) and all(
        a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
        and a.data_ptr() + a.nbytes == b.data_ptr()
        for a, b in zip(tensors, tensors[1:])
    ):
        rows = sum(t.size(0) for t in tensors)
        return first.new_empty(0).set_(
            first.untyped_storage(), first.storage_offset(), (rows, *first.shape[1:])
        )
    return torch.cat(tensors)


def _assign(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """module.name = tensor, as a frozen Parameter where it was a Parameter (else a buffer)."""
    if isinstance(getattr(module, name), nn.Parameter):
        tensor = nn.Parameter(tensor, requires_grad=False)
    setattr(module, name, tensor)


class FastDecoder:
    """Decode one token for every running row of a SlotCache: logits [rows, vocab]."""

    def __init__(self, model: Transformer, *, share_weights: bool = False):
        c = model.config
        self.model, self.config = model, c
        self.llama = c.arch == "llama"
        self.h, self.kv, self.dh, self.d = c.n_head, c.n_kv_head, c.d_head, c.d_model
        self.act = ACTIVATIONS[c.activation]
        with torch.no_grad():
            self.layers = []
            for block in model.blocks:
                a, f = block.attn, block.ffn
                qkv = _Linear.fuse([a.W_q, a.W_k, a.W_v], share_weights)
                if self.llama:
                    up = _Linear.fuse([f.W_gate, f.W_up], share_weights)
                    down = _Linear.fuse([f.W_down], share_weights)
                else:
                    up, down = (_Linear.fuse([w], share_weights) for w in (f.W_1, f.W_2))
                o = _Linear.fuse([a.W_o], share_weights)
                self.layers.append((block.norm_1, qkv, o, block.norm_2, up, down))
            self.lm_head = _Linear.fuse([model.lm_head], share_weights)
        self.role = (
            model.role_emb.weight[_ROLE_ASSISTANT].detach() if model.role_emb is not None else None
        )
        self._cos = self._sin = None
        self._native: native_step.NativeStep | None | bool = None  # made on the first CPU step

    def _native_step(self) -> native_step.NativeStep | None:
        """The C step (inference/native_step.py) where this model and machine allow."""
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
        # the C step runs on the threads torch is set to for this step (inference/threads.py)
        if tokens.device.type == "cpu" and (native := self._native_step()) is not None:
            cache.valid[:n, t] = True
            logits = native.step(tokens.tolist(), cache, torch.get_num_threads())
            if logits is not None:
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
