"""Training checkpoints: a model directory plus the optimizer and trainer state, written atomically.

    checkpoints/step_0000200/   config.json, model.safetensors, tokenizer files ... (a model directory)
                                optimizer.safetensors   AdamW moments, by parameter name
                                trainer_state.json      step, samples seen, best metric, config, RNG

Everything is safetensors or JSON: resuming never unpickles anything. The model's files are
model/'s to name and write: each recipe's ModelIO binds one of its writers, and the published
output links the chosen checkpoint's weights instead of writing them again.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instructgen.files import atomic_dir
from instructgen.model.checkpoint import read_model_state, write_model_files
from instructgen.model.model_dir import publish as publish_checkpoint
from instructgen.model.model_dir import (
    read_hf_state,
    read_lora_state,
    write_hf_model,
    write_lora_adapter,
)
from instructgen.tokenizer import Tokenizer

STEP_DIR = re.compile(r"^step_(\d+)$")
SaveModelDir = Callable[[dict[str, torch.Tensor], Path], None]
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_STATE_FILE = "trainer_state.json"
TRAINER_FILES = (OPTIMIZER_FILE, TRAINER_STATE_FILE)


@dataclass
class ModelIO:
    """How a training recipe writes and reads its model inside a checkpoint directory.

    save(state, dir): write the model (a full state dict) into dir, as a loadable model directory
    load_state(dir) -> the state dict to resume from (strict: must cover every parameter)
    publish: which checkpoint becomes the output, "last" or "best" (lowest validation loss)
    """

    save: SaveModelDir
    load_state: Callable[[Path], dict[str, torch.Tensor]]
    publish: str = "last"
    strict: bool = True

    @staticmethod
    def publish_dir(checkpoint: Path, out_dir: Path, provenance: dict[str, Any]) -> None:
        """Make a checkpoint's model files the model in out_dir (leaving checkpoints/ and metrics
        in place); its weights are linked, not written again (model_dir.publish)."""
        publish_checkpoint(checkpoint, out_dir, provenance=provenance, exclude=TRAINER_FILES)


def native_io(
    model: nn.Module,
    tokenizer: Tokenizer | str | Path,
    provenance: dict[str, Any],
    *,
    publish: str = "last",
) -> ModelIO:
    """Checkpoint I/O of an instructgen Transformer: every checkpoint is a model directory."""

    def save(state: dict[str, torch.Tensor], path: Path) -> None:
        write_model_files(model, path, tokenizer=tokenizer, state=state, provenance=provenance)

    return ModelIO(save=save, load_state=read_model_state, publish=publish)


def hf_io(model: nn.Module, tokenizer: Tokenizer, provenance: dict[str, Any]) -> ModelIO:
    """Checkpoint I/O of a full fine-tune of a transformers model (tied weights stored once)."""

    def save(state: dict[str, torch.Tensor], path: Path) -> None:
        write_hf_model(model, path, state=state, tokenizer=tokenizer, provenance=provenance)

    return ModelIO(save=save, load_state=read_hf_state, publish="best", strict=False)


def lora_io(model: nn.Module, tokenizer: Tokenizer, provenance: dict[str, Any]) -> ModelIO:
    """Checkpoint I/O of a LoRA run: the adapter in PEFT's format, plus its raw tensors for resume."""

    def save(state: dict[str, torch.Tensor], path: Path) -> None:
        write_lora_adapter(model, path, state=state, tokenizer=tokenizer, provenance=provenance)

    return ModelIO(save=save, load_state=read_lora_state, publish="best", strict=False)


def gather_full_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Full (unsharded) model and optimizer state dicts, keyed by parameter name, on the CPU.

    Collective under FSDP: every rank must call it; rank 0 gets the full tensors.
    """
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options), get_optimizer_state_dict(
        model, optimizer, options=options
    )


def restore_full_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_state: dict,
    optim_state: dict,
    *,
    strict: bool = True,
) -> None:
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False, strict=strict)
    set_model_state_dict(model, model_state, options=options)
    set_optimizer_state_dict(model, optimizer, optim_state, options=options)


def _flatten_optimizer(optim_state: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for name, slots in optim_state["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}|{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{name}|{key}"] = value
    return tensors, {"param_groups": optim_state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    state: dict[str, dict[str, Any]] = {}
    for flat, value in [*tensors.items(), *meta["scalars"].items()]:
        name, key = flat.rsplit("|", 1)
        state.setdefault(name, {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    root: Path,
    step: int,
    *,
    model_state: dict,
    optim_state: dict,
    trainer_state: dict,
    save_model_dir: SaveModelDir,
) -> Path:
    """Write checkpoints/step_N atomically: a crash mid-write leaves the previous ones intact."""
    from safetensors.torch import save_file

    tensors, meta = _flatten_optimizer(optim_state)
    target = root / f"step_{step:07d}"
    with atomic_dir(target) as tmp:
        save_model_dir(model_state, tmp)
        save_file(tensors, str(tmp / OPTIMIZER_FILE))
        state = dict(trainer_state, optimizer=meta, rng=_rng_state())
        (tmp / TRAINER_STATE_FILE).write_text(
            json.dumps(state, indent=1, default=_jsonable), encoding="utf-8"
        )
    return target


def load_checkpoint(path: Path) -> tuple[dict, dict, dict]:
    """(optimizer state dict, trainer state, recorded RNG info) of a checkpoint."""
    from safetensors.torch import load_file

    state = json.loads((path / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    optim_state = _unflatten_optimizer(
        load_file(str(path / OPTIMIZER_FILE)), state.pop("optimizer")
    )
    return optim_state, state, state.pop("rng", {})


def find_latest(root: Path) -> Path | None:
    """The newest complete checkpoint (incomplete ones never got their final name)."""
    steps = checkpoint_steps(root)
    return root / f"step_{steps[-1]:07d}" if steps else None


def checkpoint_steps(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(
        int(m.group(1))
        for p in root.iterdir()
        if (m := STEP_DIR.match(p.name)) and (p / TRAINER_STATE_FILE).is_file()
    )


def prune(root: Path, keep_last: int, keep: set[int]) -> None:
    """Delete old checkpoints, keeping the last `keep_last` and the steps in `keep` (the best)."""
    steps = checkpoint_steps(root)
    for step in steps[: max(0, len(steps) - keep_last)]:
        if step not in keep:
            shutil.rmtree(root / f"step_{step:07d}", ignore_errors=True)


def _rng_state() -> dict[str, Any]:
    """Recorded for inspection; training reseeds from (seed, rank, step) so it never needs them."""
    return {"python": random.getstate()[1][:4], "torch_initial_seed": torch.initial_seed()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")
