"""Depth up-scaling: a deeper model that starts out computing exactly what a trained one computes.

Every block i of an L-layer model is followed by a copy i′ of itself whose output projections
(attention W^O and the FFN's W_2) are zero:

    blocks [0, 1, …, L−1]  →  [0, 0′, 1, 1′, …, L−1, (L−1)′]      (factor 2)
    x + block_i′(x) = x + Attn(·)·0 + FFN(·)·0 = x                  at the start

so the grown model's outputs equal the original's, token for token, until training moves the
zeroed projections (their gradients are not zero: the inputs to W^O and W_2 are not). Training
then only has to use the new depth, not recover what the smaller model already knew (the
"stacking" of Gong et al., 2019, and SOLAR's depth up-scaling, made function-preserving).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instructgen.errors import ConfigError
from instructgen.model.checkpoint import load_model, provenance_history, save_model
from instructgen.model.transformer import Block, SwiGLU, Transformer


def output_projections(block: Block) -> list[nn.Linear]:
    """The layers that write into the residual stream: attention W^O and the FFN's last matrix."""
    ffn = block.ffn
    return [block.attn.W_o, ffn.W_down if isinstance(ffn, SwiGLU) else ffn.W_2]


def check_factor(factor: Any) -> None:
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise ConfigError(f"must be an integer >= 2, got {factor!r}", field="factor")


def grow_depth(model: Transformer, factor: int) -> Transformer:
    """A model with `factor` × the layers of `model`: each block, then factor − 1 copies of it
    with zero output projections (the same function as `model`)."""
    check_factor(factor)
    grown = copy.deepcopy(model)
    blocks = []
    for block in grown.blocks:
        blocks.append(block)
        for _ in range(factor - 1):
            twin = copy.deepcopy(block)
            with torch.no_grad():
                for projection in output_projections(twin):
                    projection.weight.zero_()
                    if projection.bias is not None:
                        projection.bias.zero_()
            blocks.append(twin)
    grown.blocks = nn.ModuleList(blocks)
    grown.config = replace(model.config, n_layer=len(blocks))
    return grown


def grow_model_dir(model_dir: str | Path, out_dir: str | Path, factor: int) -> dict[str, Any]:
    """Write `model_dir` grown `factor` times deeper to `out_dir` (a model directory with the
    same tokenizer, its history extended by this stage); returns the stage record."""
    model = load_model(model_dir)
    grown = grow_depth(model, factor)
    stage = {
        "stage": "grow",
        "base_model": str(model_dir),
        "factor": factor,
        "layers": [model.config.n_layer, grown.config.n_layer],
    }
    history = provenance_history(model_dir) + [stage]
    save_model(grown, out_dir, tokenizer=Path(model_dir), provenance={"history": history})
    return stage
