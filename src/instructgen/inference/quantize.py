"""Weight-only int8 quantization for decoding: every linear layer of the blocks and the output
head as int8 values with one float32 scale per output channel (symmetric; llama.cpp's Q8_0 is
the same rule over blocks of 32 inputs).

    w[o, i] ≈ scale[o] · q[o, i],   scale[o] = max_i |w[o, i]| / 127,   q[o, i] = round(w[o, i] / scale[o])
    y = x·Wᵀ + b ≈ scale ⊙ (x·qᵀ) + b

A token then reads a quarter of the weight bytes; activations, norms and embeddings stay float
(a tied output head gets its own int8 copy; the embedding table stays as it is). The engine's C
step (inference/native/decode_step.c) widens q to float in registers; elsewhere (prefill, GPUs,
no compiler) `int8_linear` dequantizes a block of rows at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from instructgen.errors import ConfigError

__all__ = [
    "QUANTIZE",
    "Int8Linear",
    "check_quantize",
    "int8_linear",
    "quantize_int8",
    "quantize_model",
]

QUANTIZE = ("int8",)  # the methods --quantize accepts ("none" or no flag: float weights)
ROWS_PER_BLOCK = 4096  # output rows dequantized together by the torch path


def check_quantize(method: str | None) -> str | None:
    """The method to apply: None for float weights (None or "none"), else one of QUANTIZE."""
    if method is None or method == "none":
        return None
    if method not in QUANTIZE:
        raise ConfigError(
            f"unknown quantization {method!r}; choose {', '.join(('none', *QUANTIZE))}",
            field="quantize",
        )
    return method


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 [out, in], scale float32 [out]): scale[o] = max|w[o,:]| / 127, q = round(w / scale).

    An all-zero row gets scale 1 (its q is 0), so no division by zero."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=1) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def int8_linear(
    x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """y = scale ⊙ (x·qᵀ) + b, with q dequantized ROWS_PER_BLOCK output rows at a time."""
    blocks = [
        F.linear(x, q[start : start + ROWS_PER_BLOCK].to(x.dtype))
        * scale[start : start + ROWS_PER_BLOCK].to(x.dtype)
        for start in range(0, q.size(0), ROWS_PER_BLOCK)
    ]
    y = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=-1)
    return y if bias is None else y + bias.to(x.dtype)


class Int8Linear(nn.Module):
    """nn.Linear with an int8 weight: buffers q [out, in] and scale [out], a float bias."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)
        self.bias = None if bias is None else nn.Parameter(bias.detach(), requires_grad=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        q, scale = quantize_int8(linear.weight)
        return cls(q, scale, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return int8_linear(x, self.q, self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def quantize_model(model: nn.Module, method: str | None) -> nn.Module:
    """Replace (in place) the nn.Linear layers of every block and the output head by Int8Linear
    for method "int8"; None or "none" leaves the model as it is. Returns the model."""
    if check_quantize(method) is None:
        return model
    with torch.no_grad():
        for block in model.blocks:
            for parent in block.modules():
                for name, child in list(parent.named_children()):
                    if isinstance(child, nn.Linear):
                        setattr(parent, name, Int8Linear.from_linear(child))
        model.lm_head = Int8Linear.from_linear(model.lm_head)
    return model
