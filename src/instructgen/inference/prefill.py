"""One prefill batch: prompts left-padded together, after the keys and values the prefix cache
already holds for their beginnings.

The prompts (lengths L_i) are right-aligned on a timeline of width W = max L_i. The model
computes its last T columns for every row, T = max_i (L_i - c_i) where c_i is the prompt's
cached prefix; the first P = W - T columns are copied from the prefix cache. Row i thus reuses
u_i = max(0, L_i - T) <= c_i tokens: a row with a shorter cached prefix than the longest new
part recomputes a few tokens it could have reused, and the batch stays one left-padded block that
SlotCache.add_rows takes as it is. Positions count from each row's first real token, so learned
positions and RoPE see the same numbers as without the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from instructgen.inference.prefix_cache import PrefixCache
from instructgen.model.transformer import KVCache, ModelConfig

__all__ = ["PrefillBatch", "build_prefill"]


@dataclass
class PrefillBatch:
    """The model's inputs for one prefill and the cache it fills."""

    ids: torch.Tensor  # [B, T]: the tokens the model computes, left-padded
    inputs: dict[str, torch.Tensor]  # attention_mask, position_ids, role_ids (as needed)
    cache: KVCache  # W columns; the first W - T hold the reused keys and values
    pads: list[int]  # padding before each prompt, over the whole width W
    roles: list[list[int] | None]  # each prompt's role ids (None: the model has no roles)

    @property
    def width(self) -> int:
        return self.cache.max_len

    @property
    def past(self) -> int:
        """Columns taken from the prefix cache (the same for every row; padding included)."""
        return self.width - self.ids.size(1)

    def computed_pad(self, row: int) -> int:
        """Padding before the row's first computed token (its hidden states start there)."""
        return self.pads[row] - self.past

    def store(self, prompts: Sequence[Sequence[int]], prefix_cache: PrefixCache) -> None:
        """Give the prompts' full blocks to the prefix cache (after the forward pass)."""
        c = self.cache
        for i, (ids, roles) in enumerate(zip(prompts, self.roles)):
            p = self.pads[i]
            prefix_cache.insert(ids, roles, [k[i, :, p:] for k in c.k], [v[i, :, p:] for v in c.v])


def _reuse(
    prefix_cache: PrefixCache | None,
    prompts: Sequence[Sequence[int]],
    roles: Sequence[list[int] | None],
    reuse: Sequence[bool],
) -> list[tuple[int, torch.Tensor | None]]:
    """(cached tokens, their keys and values) per prompt; (0, None) where not looked up."""
    if prefix_cache is None:
        return [(0, None)] * len(prompts)
    return [
        prefix_cache.lookup(ids, role) if ok else (0, None)
        for ids, role, ok in zip(prompts, roles, reuse)
    ]


def _fill_past(cache: KVCache, found: list, used: list[int], past: int) -> None:
    """Copy each row's first used[i] reused tokens to columns past - used[i] .. past - 1."""
    for i, (kv, u) in enumerate(zip(found, used)):
        for layer in range(len(cache.k)) if u else ():
            cache.k[layer][i, :, past - u : past] = kv[0, layer, :, :u]
            cache.v[layer][i, :, past - u : past] = kv[1, layer, :, :u]
    cache.length = past


def build_prefill(
    config: ModelConfig,
    prompts: Sequence[Sequence[int]],
    role_ids: Sequence[Sequence[int] | None],
    *,
    with_roles: bool = False,
    prefix_cache: PrefixCache | None = None,
    reuse: Sequence[bool] | None = None,
    pad_id: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PrefillBatch:
    """The batch for these prompts. with_roles: the model has role embeddings, and role_ids[i]
    are prompt i's (None: all 0); reuse[i] False: compute prompt i whole (its prompt logprobs
    need every position)."""
    reuse = reuse if reuse is not None else [True] * len(prompts)
    roles = [list(r or [0] * len(t)) if with_roles else None for t, r in zip(prompts, role_ids)]
    found = _reuse(prefix_cache, prompts, roles, reuse)
    lengths = [len(ids) for ids in prompts]
    width = max(lengths)
    new = max(n - hit for n, (hit, _) in zip(lengths, found))  # T
    past = width - new  # P
    used = [max(0, n - new) for n in lengths]
    if prefix_cache is not None:
        for n, u, ok in zip(lengths, used, reuse):
            if ok:
                prefix_cache.count(n, u)
    cache = KVCache(config, len(prompts), width, device=device, dtype=dtype)
    _fill_past(cache, [kv for _, kv in found], used, past)
    pads = [width - n for n in lengths]
    ids = [[pad_id] * (p - past + u) + list(t[u:]) for p, u, t in zip(pads, used, prompts)]
    inputs: dict[str, torch.Tensor] = {}
    if any(pads):
        mask = torch.tensor([[0] * p + [1] * (width - p) for p in pads], device=device)
        inputs["attention_mask"] = mask
        inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
    if with_roles:
        inputs["role_ids"] = torch.tensor(
            [[0] * (p - past + u) + list(r[u:]) for p, u, r in zip(pads, used, roles)],
            device=device,
        )
    return PrefillBatch(torch.tensor(ids, device=device), inputs, cache, pads, roles)
