"""How many CPU threads a forward pass gets.

A pass over few tokens of a small model is a chain of tiny ops: more threads make it no faster,
and on a busy machine every op waits at a barrier for a core another process holds (a 2-core
laptop running a server and a browser slows down tens of times). Such passes run on one
thread; larger ones keep torch's setting. `threads` overrides the rule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["cpu_threads", "SMALL_PASS"]

# tokens × parameters: a millisecond or two of work on one core. A decode step of GPT-2-small
# (124 M parameters) is above it: it reads 0.5 GB of weights, and one core alone cannot draw the
# memory bandwidth two do (25 against 41 tokens/s on a 2-core CPU)
SMALL_PASS = 2**26


def cpu_threads(
    device: torch.device, tokens: int, parameters: int, threads: int | None = None
) -> contextlib.AbstractContextManager:
    """Context for a pass over `tokens` tokens of a model with `parameters` parameters."""
    if device.type != "cpu":
        return contextlib.nullcontext()
    if threads is None and tokens * parameters <= SMALL_PASS:
        threads = 1
    return _set_threads(threads)


@contextlib.contextmanager
def _set_threads(n: int | None) -> Iterator[None]:
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
