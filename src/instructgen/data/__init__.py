"""Data: corpora → shards (corpus), instruction formats, templates, the built-in task world, Self-Instruct, dedup.

Submodules load on first use: `instructgen.data.NAME` works after `import instructgen`.
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
