"""Named model sizes for `instructgen model init --preset NAME`."""

from __future__ import annotations

from typing import Any

from instructgen.errors import ConfigError

# name: (d_model, n_layer, n_head, max_seq_len); llama presets use n_kv_head = n_head // 2
_SIZES = {
    "tiny": (64, 2, 4, 256),
    "mini": (128, 4, 4, 512),
    "small": (256, 6, 8, 512),
    "medium": (512, 8, 8, 1024),
    "base": (768, 12, 12, 1024),
}


def preset(arch: str, name: str) -> dict[str, Any]:
    """Config values of preset `name` for `arch` (gpt2 | llama)."""
    if name not in _SIZES:
        raise ConfigError(f"unknown preset {name!r}; choose {', '.join(_SIZES)}", field="preset")
    d_model, n_layer, n_head, ctx = _SIZES[name]
    values: dict[str, Any] = {
        "arch": arch,
        "d_model": d_model,
        "n_layer": n_layer,
        "n_head": n_head,
        "max_seq_len": ctx,
    }
    if arch == "llama":
        values.update(n_kv_head=max(1, n_head // 2))
    return values


def preset_names() -> list[str]:
    return list(_SIZES)
