"""instructgen: instruction-following generation with large language models, end to end."""

from __future__ import annotations

import importlib
from typing import Any

from instructgen.version import __version__ as __version__

_SUBMODULES = {
    "config",
    "errors",
    "model",
    "tokenizer",
    "data",
    "train",
    "inference",
    "serve",
    "evaluate",
    "apps",
    "safety",
    "text",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"instructgen.{name}")
    if name == "load":
        from instructgen.inference import load

        return load
    raise AttributeError(f"module 'instructgen' has no attribute {name!r}")
