"""Tables that ship as package data: JSON files (UTF-8) next to the module that reads them, read
once through importlib.resources, so that data lives in data files and code in code.

JSON has no tuples; `tuples` turns a table's lists back into the tuples its module declares.
Stdlib only, so that every layer (safety/ included) may use it.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.cache
def load_json(package: str, *path: str) -> Any:
    """The parsed JSON file at `path` (folder and file names) inside `package`, read once."""
    file = resources.files(package)
    for name in path:
        file = file.joinpath(name)
    return json.loads(file.read_text(encoding="utf-8"))


def tuples(value: Any) -> Any:
    """`value` with every list, at any depth, turned into a tuple (dicts stay dicts)."""
    if isinstance(value, list):
        return tuple(tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: tuples(v) for k, v in value.items()}
    return value
