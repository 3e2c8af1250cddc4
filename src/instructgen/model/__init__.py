"""The Transformer (transformer.py), presets, and model directories (checkpoint.py)."""

from instructgen.model.checkpoint import load_config, load_model, model_info, save_model
from instructgen.model.transformer import KVCache, ModelConfig, Transformer, attention, build_mask

__all__ = [
    "KVCache",
    "ModelConfig",
    "Transformer",
    "attention",
    "build_mask",
    "load_config",
    "load_model",
    "model_info",
    "save_model",
]
