"""Prefix caching: keys and values of prompt blocks, reused by later prompts that begin the same way.

A prompt is cut into blocks of `block_size` tokens. Block j's key hashes (block j-1's key, its
token ids, its role ids), so a stored block is found only when everything before it matches too
(vLLM's automatic prefix caching). A stored block holds its keys and values for every layer;
once the blocks' bytes pass the budget, the least recently used go first. A look-up never covers
a prompt's last token: its logits are what the prefill must compute.

    cache = PrefixCache(config, max_bytes=256 * 2**20)
    n, kv = cache.lookup(ids)          # kv: [2, n_layer, n_kv_head, n, d_head] (None when n == 0)
    cache.insert(ids, None, keys, values)   # keys[layer]: [n_kv_head, len(ids), d_head]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from instructgen.model.transformer import ModelConfig

__all__ = ["PrefixCache"]


@dataclass
class _Block:
    """One stored block: what its key hashed (checked on look-up) and its keys and values."""

    parent: int | None
    tokens: tuple[int, ...]
    roles: tuple[int, ...] | None
    kv: torch.Tensor  # [2, n_layer, n_kv_head, block_size, d_head]


# a block of a prompt: its key, its parent's key, its token ids and its role ids
_Link = tuple[int, int | None, tuple[int, ...], tuple[int, ...] | None]


class PrefixCache:
    """Blocks of prompt keys and values by chained hash, least recently used evicted first."""

    def __init__(
        self,
        config: ModelConfig,
        max_bytes: int,
        *,
        block_size: int = 16,
        dtype: torch.dtype = torch.float32,
    ):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size, self.max_bytes = block_size, max_bytes
        item = torch.empty(0, dtype=dtype).element_size()
        self.block_bytes = 2 * config.n_layer * config.n_kv_head * block_size * config.d_head * item
        self._blocks: OrderedDict[int, _Block] = OrderedDict()  # least recently used first
        self.queries = 0  # prompt tokens looked up (see count)
        self.hits = 0  # of those, tokens whose keys and values were reused

    @property
    def bytes(self) -> int:
        """Bytes the stored blocks' keys and values take."""
        return len(self._blocks) * self.block_bytes

    def __len__(self) -> int:
        return len(self._blocks)

    def count(self, queried: int, reused: int) -> None:
        """Record one prompt's look-up: its tokens, and how many were taken from the cache."""
        self.queries += queried
        self.hits += reused

    def _chain(self, ids: Sequence[int], roles: Sequence[int] | None, blocks: int) -> list[_Link]:
        """(key, parent key, tokens, roles) of the prompt's first `blocks` blocks."""
        links, parent, b = [], None, self.block_size
        for j in range(blocks):
            tokens = tuple(ids[j * b : (j + 1) * b])
            role = tuple(roles[j * b : (j + 1) * b]) if roles is not None else None
            key = hash((parent, tokens, role))
            links.append((key, parent, tokens, role))
            parent = key
        return links

    def _find(self, link: _Link) -> _Block | None:
        key, parent, tokens, roles = link
        block = self._blocks.get(key)
        if block is None or (block.parent, block.tokens, block.roles) != (parent, tokens, roles):
            return None  # absent, or a hash collision
        return block

    def _touch(self, keys: list[int]) -> None:
        """Mark a chain used, its first block most recently: a prefix outlives its extensions."""
        for key in reversed(keys):
            self._blocks.move_to_end(key)

    def lookup(
        self, ids: Sequence[int], roles: Sequence[int] | None = None
    ) -> tuple[int, torch.Tensor | None]:
        """(n, keys and values [2, n_layer, n_kv_head, n, d_head]) of the longest stored block
        prefix of the prompt, its last token excluded; (0, None) when none is stored."""
        found: list[_Block] = []
        keys: list[int] = []
        for link in self._chain(ids, roles, (len(ids) - 1) // self.block_size):
            block = self._find(link)
            if block is None:
                break
            found.append(block)
            keys.append(link[0])
        if not found:
            return 0, None
        self._touch(keys)
        return len(found) * self.block_size, torch.cat([b.kv for b in found], dim=3)

    def insert(
        self,
        ids: Sequence[int],
        roles: Sequence[int] | None,
        keys: Sequence[torch.Tensor],
        values: Sequence[torch.Tensor],
    ) -> None:
        """Store the prompt's full blocks; keys[layer], values[layer]: [n_kv_head, >= len(ids),
        d_head], the prompt's own keys and values (position 0 first). Stored blocks are kept."""
        if self.block_bytes > self.max_bytes:
            return
        chain = self._chain(ids, roles, len(ids) // self.block_size)
        for j, link in enumerate(chain):
            key, parent, tokens, role = link
            if self._find(link) is None:
                span = slice(j * self.block_size, (j + 1) * self.block_size)
                kv = torch.stack(
                    [torch.stack([t[:, span] for t in part]) for part in (keys, values)]
                )
                self._blocks[key] = _Block(parent, tokens, role, kv)
        self._touch([link[0] for link in chain])
        self._evict()

    def _evict(self) -> None:
        while self.bytes > self.max_bytes:
            self._blocks.popitem(last=False)
