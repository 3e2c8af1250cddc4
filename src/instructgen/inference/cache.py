"""The engine's KV cache: one row per running sequence on a shared, left-padded timeline.

Every row's keys and values sit at positions start[r] .. length-1 of the same timeline, so one
decode step appends one column for all rows at `length` (one write, one attention call). Rows
join (their prefilled keys copied in, right-aligned), leave (the last row moves into the hole)
and the timeline shifts left when it is full but every row has free room at its start. The
buffers are preallocated and grow by doubling, so a decode step allocates nothing.
"""

from __future__ import annotations

import torch

from instructgen.model.transformer import KVCache, ModelConfig

__all__ = ["SlotCache"]


class SlotCache(KVCache):
    """k[layer], v[layer]: [row capacity, n_kv_head, length capacity, d_head]."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        max_rows: int,
        max_len: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.config, self.device, self.dtype = config, torch.device(device), dtype
        self.row_limit, self.len_limit = max_rows, max_len
        self.rows = 0  # running rows: 0 .. rows-1
        self.length = 0  # timeline columns in use
        self.starts: list[int] = []  # first real position of each row
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.max_len = 0
        self.valid = torch.zeros(0, 0, dtype=torch.bool, device=self.device)
        self._alloc(1, 16)

    # -- capacity ------------------------------------------------------------------------------

    @property
    def row_capacity(self) -> int:
        return self.valid.size(0)

    def _alloc(self, rows: int, length: int) -> None:
        c = self.config
        shape = (rows, c.n_kv_head, length, c.d_head)
        old_k, old_v, old_valid = self.k, self.v, self.valid
        self.k = [
            torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(c.n_layer)
        ]
        self.v = [
            torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(c.n_layer)
        ]
        self.valid = torch.zeros(rows, length, dtype=torch.bool, device=self.device)
        n, t = self.rows, self.length
        for layer in range(len(old_k)):
            self.k[layer][:n, :, :t] = old_k[layer][:n, :, :t]
            self.v[layer][:n, :, :t] = old_v[layer][:n, :, :t]
        if old_valid.numel():
            self.valid[:n, :t] = old_valid[:n, :t]
        self.max_len = length

    def reserve(self, rows: int, length: int) -> None:
        """Make room for `rows` rows and `length` timeline columns (both within their limits)."""
        rows, length = min(rows, self.row_limit), min(length, self.len_limit)
        if rows > self.row_capacity or length > self.max_len:
            grow_rows = max(rows, min(2 * self.row_capacity, self.row_limit))
            grow_len = max(length, min(2 * self.max_len, self.len_limit))
            self._alloc(
                grow_rows if rows > self.row_capacity else self.row_capacity,
                grow_len if length > self.max_len else self.max_len,
            )

    def make_room(self) -> None:
        """Ensure one free column at `length`: grow, or shift the timeline left."""
        if self.length < self.max_len:
            return
        if self.max_len < self.len_limit:
            self.reserve(self.rows, self.length + 1)
            return
        shift = min(self.starts[: self.rows], default=0)
        if shift == 0:
            raise RuntimeError("KV cache full: a row reached the context window")
        self.shift(-shift)

    def shift(self, by: int) -> None:
        """Move every row `by` columns along the timeline (negative: left)."""
        n, t = self.rows, self.length
        src = slice(max(0, -by), t)
        dst = slice(max(0, by), t + by)
        if by > 0:
            self.reserve(n, t + by)
        for buf in (*self.k, *self.v):
            buf[:n, :, dst] = buf[:n, :, src].clone()
        self.valid[:n, dst] = self.valid[:n, src].clone()
        if by > 0:
            self.valid[:n, :by] = False
        self.length = t + by
        self.starts = [s + by for s in self.starts]

    # -- rows ----------------------------------------------------------------------------------

    @property
    def padded(self) -> bool:
        """Whether any row starts after column 0 (decode then needs an attention mask)."""
        return any(self.starts)

    def add_rows(self, source: KVCache, source_rows: list[int], pads: list[int]) -> list[int]:
        """Copy rows of a prefilled cache (left-padded to source.length) into new rows.

        pads[i] is the padding of source row source_rows[i]; returns the new row indices.
        """
        width = source.length
        if width > self.length:
            self.shift(width - self.length)
        new_rows = list(range(self.rows, self.rows + len(source_rows)))
        self.reserve(self.rows + len(source_rows), self.length)
        index = torch.tensor(source_rows, device=self.device)
        cols = slice(self.length - width, self.length)
        first, last = new_rows[0], new_rows[-1] + 1
        for layer in range(self.config.n_layer):
            self.k[layer][first:last, :, cols] = source.k[layer][index, :, :width]
            self.v[layer][first:last, :, cols] = source.v[layer][index, :, :width]
        self.valid[first:last] = False
        for row, pad in zip(new_rows, pads):
            self.valid[row, self.length - width + pad : self.length] = True
            self.starts.append(self.length - width + pad)
        self.rows += len(source_rows)
        return new_rows

    def remove_row(self, row: int) -> int | None:
        """Free `row`; the last row moves into it. Returns the index that moved (or None)."""
        last = self.rows - 1
        moved = None
        if row != last:
            t = self.length
            for buf in (*self.k, *self.v):
                buf[row, :, :t] = buf[last, :, :t]
            self.valid[row, :t] = self.valid[last, :t]
            self.starts[row] = self.starts[last]
            moved = last
        self.starts.pop()
        self.rows -= 1
        if self.rows == 0:
            self.length = 0
        return moved

    def row_tokens(self, row: int) -> int:
        """Tokens held by `row` (prompt and output so far)."""
        return self.length - self.starts[row]

    # -- the model's KVCache interface (a forward pass over all running rows) ------------------

    def update(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, start, end = self.rows, self.length, self.length + k.size(2)
        self.k[layer][:n, :, start:end] = k
        self.v[layer][:n, :, start:end] = v
        return self.k[layer][:n, :, :end], self.v[layer][:n, :, :end]
