"""The files of a model directory by name, and how each is read, written and published.

    config.json, model.safetensors (or shards + model.safetensors.index.json)   the model
    tokenizer.json, tokenizer_config.json          the tokenizer (tokenizer.py writes them)
    generation_config.json                         ids that start, end and pad a generation
    instructgen.json                               provenance: how the model was made
    adapter_config.json, adapter_model.safetensors a LoRA adapter, in PEFT's format
    adapter_state.safetensors                      the adapter's trainable tensors, for resume

checkpoint.py maps instructgen's Transformer onto these files; this module holds their names,
the small files, weight-file reading, the directories that transformers and peft write (full
fine-tunes, LoRA adapters), and `publish`, which makes a training checkpoint the output model
with its weights hard-linked rather than written again. Nothing else in instructgen names them.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from instructgen.errors import ModelDirError
from instructgen.files import atomic_dir
from instructgen.tokenizer import TOKENIZER_FILES, Tokenizer

if TYPE_CHECKING:
    from torch import nn

    from instructgen.model.transformer import ModelConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
WEIGHTS_SUFFIX = ".safetensors"
TOKENIZER_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.json"  # a slow (pre-tokenizers) Hugging Face tokenizer's vocabulary
GENERATION_CONFIG_FILE = "generation_config.json"
PROVENANCE_FILE = "instructgen.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_STATE_FILE = "adapter_state.safetensors"
ADAPTER_FILES = (ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, ADAPTER_STATE_FILE)
ADAPTER_SUBDIR = "adapter"  # where merge_adapter keeps the adapter it folded in
# the files whose bytes decide what a model directory computes (besides its weights)
BEHAVIOUR_FILES = (CONFIG_FILE, GENERATION_CONFIG_FILE, *TOKENIZER_FILES)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# weights


def write_safetensors(
    tensors: dict[str, torch.Tensor], path: Path, *, pt_format: bool = True
) -> None:
    """Write tensors as one safetensors file (pt_format: with {"format": "pt"} in its header,
    which transformers expects of model weights)."""
    from safetensors.torch import save_file

    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        str(path),
        metadata={"format": "pt"} if pt_format else None,
    )


def weight_files(model_dir: Path) -> list[Path]:
    """model.safetensors, else every *.safetensors file (the shards) of a directory."""
    single = model_dir / WEIGHTS_FILE
    return [single] if single.is_file() else sorted(model_dir.glob("*" + WEIGHTS_SUFFIX))


def read_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    """Every weight of a directory: model.safetensors, or the shards its index names."""
    index = model_dir / WEIGHTS_INDEX_FILE
    if (model_dir / WEIGHTS_FILE).is_file():
        return load_safetensors(model_dir / WEIGHTS_FILE)
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        weights: dict[str, torch.Tensor] = {}
        for shard in shards:
            weights.update(load_safetensors(model_dir / shard))
        return weights
    if any(model_dir.glob("*.bin")) or any(model_dir.glob("*.pt")):
        raise ModelDirError(
            "holds only pickle weights (*.bin/*.pt), which instructgen never loads; convert them to safetensors",
            file=str(model_dir),
        )
    raise ModelDirError(f"no {WEIGHTS_FILE} found", file=str(model_dir))


def safetensors_header(file: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, after checking that the file holds every byte the
    header points at (a truncated or corrupt file is a ModelDirError naming it, not a crash)."""
    total = file.stat().st_size
    with file.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        try:
            if total < 8 or 8 + size > total:
                raise ValueError("shorter than its header says")
            header = json.loads(f.read(size))
            ends = [m["data_offsets"][1] for k, m in header.items() if k != "__metadata__"]
            if max(ends, default=0) != total - 8 - size:
                raise ValueError("its tensors do not cover the file (truncated?)")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise ModelDirError(
                f"corrupt or truncated safetensors file: {exc}", file=str(file)
            ) from None
    return header


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


def load_safetensors(file: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, read into memory of its own. Not memory-mapped: the
    pages of a mapped file count in the process's resident memory for as long as any tensor
    views them, so a model would hold its weights twice (the file's pages and its copies)."""
    header = safetensors_header(file)
    tensors: dict[str, torch.Tensor] = {}
    with file.open("rb") as f:
        data = 8 + int.from_bytes(f.read(8), "little")
        for name, meta in header.items():
            if name != "__metadata__":
                tensors[name] = _read_tensor(f, data, meta, file)
    return tensors


_HUGE_PAGE = 2**21
_MADV_HUGEPAGE = 14  # Linux


def _advise_huge_pages(tensor: torch.Tensor) -> None:
    """Ask Linux for transparent huge pages under a large tensor's memory before its first
    write, where the kernel grants them on request (the usual `madvise` setting). A decode step
    streams every weight once: with 2 MiB pages instead of 4 KiB ones the CPU's prefetchers and
    TLB keep up, and memory reads run ~25% faster. Elsewhere, or if refused, nothing changes."""
    if tensor.nbytes < 2 * _HUGE_PAGE or sys.platform != "linux":
        return
    start = -(-tensor.data_ptr() // _HUGE_PAGE) * _HUGE_PAGE
    end = (tensor.data_ptr() + tensor.nbytes) // _HUGE_PAGE * _HUGE_PAGE
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_HUGEPAGE)
    except (OSError, AttributeError):
        pass


def _read_tensor(f, data: int, meta: dict[str, Any], file: Path) -> torch.Tensor:
    """One tensor of a safetensors file at byte `data` + its offsets."""
    try:
        dtype, shape = _SAFETENSORS_DTYPES[meta["dtype"]], [int(n) for n in meta["shape"]]
        begin, end = (int(n) for n in meta["data_offsets"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelDirError(f"corrupt safetensors header entry: {exc!r}", file=str(file)) from None
    tensor = torch.empty(shape, dtype=dtype)
    if end - begin != tensor.numel() * tensor.element_size():
        raise ModelDirError(
            f"corrupt safetensors file: tensor of shape {shape} spans {end - begin} bytes",
            file=str(file),
        )
    if tensor.numel():
        _advise_huge_pages(tensor)
        f.seek(data + begin)
        buffer = memoryview(tensor.reshape(-1).view(torch.uint8).numpy())
        if f.readinto(buffer) != len(buffer):
            raise ModelDirError("corrupt or truncated safetensors file", file=str(file))
    return tensor


# ----------------------------------------------------------------------------------------------
# tokenizer, generation config, provenance


def has_tokenizer(model_dir: Path) -> bool:
    return (model_dir / TOKENIZER_FILE).is_file() or (model_dir / VOCAB_FILE).is_file()


def copy_tokenizer_files(src: str | Path, dst: str | Path) -> None:
    src = Path(src)
    if not (src / TOKENIZER_FILE).is_file():
        raise ModelDirError(f"no {TOKENIZER_FILE}: not a tokenizer directory", file=str(src))
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, Path(dst) / name)


def generation_config(config: ModelConfig, tokenizer: Tokenizer | None) -> dict[str, Any]:
    """generation_config.json of an instructgen model: ids that start, end and pad a generation."""
    stop = tokenizer.stop_ids if tokenizer is not None else [config.eos_token_id]
    stop = [i for i in stop if i is not None]
    data: dict[str, Any] = {
        "bos_token_id": config.bos_token_id,
        "pad_token_id": config.pad_token_id,
    }
    data["eos_token_id"] = stop[0] if len(stop) == 1 else stop or None
    return {k: v for k, v in data.items() if v is not None}


def _tokenizer_generation_config(tokenizer: Tokenizer) -> dict[str, Any]:
    """generation_config.json of a transformers model we tuned: the tokenizer's ids."""
    stop = tokenizer.stop_ids
    data = {"eos_token_id": stop[0] if len(stop) == 1 else stop, "pad_token_id": tokenizer.pad_id}
    if tokenizer.bos_id is not None:
        data["bos_token_id"] = tokenizer.bos_id
    return data


def write_generation_config(
    model_dir: Path, tokenizer: Tokenizer | None, config: ModelConfig | None = None
) -> None:
    """generation_config.json from an instructgen model's `config`, else from `tokenizer` alone."""
    data = (
        generation_config(config, tokenizer)
        if config is not None
        else _tokenizer_generation_config(tokenizer)
    )
    write_json(model_dir / GENERATION_CONFIG_FILE, data)


def read_generation_eos(model_dir: str | Path) -> list[int]:
    """The eos ids generation_config.json names ([] without one)."""
    path = Path(model_dir) / GENERATION_CONFIG_FILE
    if not path.is_file():
        return []
    eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
    return eos if isinstance(eos, list) else [eos] if isinstance(eos, int) else []


def read_provenance(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / PROVENANCE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_provenance(model_dir: Path, record: dict[str, Any]) -> None:
    write_json(model_dir / PROVENANCE_FILE, record)


def provenance_history(model_dir: str | Path) -> list[dict[str, Any]]:
    """The stages that made a model (init, pretrain, finetune ...), oldest first."""
    record = read_provenance(model_dir)
    if not record:
        return []
    return record.get("history") or [{k: v for k, v in record.items() if k != "history"}]


# ----------------------------------------------------------------------------------------------
# publishing a training checkpoint


def publish(
    checkpoint: Path,
    out_dir: Path,
    *,
    provenance: dict[str, Any],
    exclude: Collection[str] = (),
) -> None:
    """Make the files of `checkpoint` (all but `exclude`) the model in out_dir, leaving out_dir's
    other files (checkpoints/, metrics) in place, with `provenance` added to its record.

    Weight files are hard-linked (copied only where the filesystem cannot link), so publishing
    writes no weights; they get the mode a copy would (safetensors writes 0600 files). The small
    files are copied, so that rewriting one in out_dir never reaches into the checkpoint. Each
    file lands by an atomic rename.
    """
    with atomic_dir(out_dir, keep_other_files=True) as tmp:
        write_provenance(tmp, {**read_provenance(checkpoint), **provenance})
        fresh_mode = (tmp / PROVENANCE_FILE).stat().st_mode & 0o777  # a new file's, by the umask
        for item in checkpoint.iterdir():
            if not item.is_file() or item.name in exclude or item.name == PROVENANCE_FILE:
                continue
            if item.name.endswith(WEIGHTS_SUFFIX):
                link_or_copy(item, tmp / item.name)
                os.chmod(tmp / item.name, fresh_mode)
            else:
                shutil.copyfile(item, tmp / item.name)


def link_or_copy(src: Path, dst: Path) -> None:
    """dst becomes a hard link to src, or a copy of it where the filesystem cannot link."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# ----------------------------------------------------------------------------------------------
# directories that transformers and peft write


def load_hf_model(model_dir: Path) -> nn.Module:
    """A transformers causal LM from a directory, in float32, from safetensors weights only."""
    from transformers import AutoModelForCausalLM

    if not (model_dir / CONFIG_FILE).is_file():
        raise ModelDirError(f"no {CONFIG_FILE}: not a model directory", file=str(model_dir))
    if not any(model_dir.glob("*" + WEIGHTS_SUFFIX)):
        raise ModelDirError(
            "no *.safetensors weights (instructgen never loads pickle files)", file=str(model_dir)
        )
    return AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, use_safetensors=True
    )


def write_hf_model(
    model: nn.Module,
    model_dir: Path,
    *,
    state: dict[str, torch.Tensor],
    tokenizer: Tokenizer,
    provenance: dict[str, Any],
) -> None:
    """A transformers model (weights `state`) as a model directory, into the existing model_dir."""
    model.save_pretrained(model_dir, state_dict=state, safe_serialization=True)
    tokenizer.save(model_dir)
    write_generation_config(model_dir, tokenizer)
    write_provenance(model_dir, provenance)


def read_hf_state(model_dir: Path) -> dict[str, torch.Tensor]:
    """The weights write_hf_model wrote (tied weights appear once)."""
    state: dict[str, torch.Tensor] = {}
    for file in sorted(model_dir.glob("model*" + WEIGHTS_SUFFIX)):
        state.update(load_safetensors(file))
    return state


def write_lora_adapter(
    model: nn.Module,
    model_dir: Path,
    *,
    state: dict[str, torch.Tensor],
    tokenizer: Tokenizer,
    provenance: dict[str, Any],
) -> None:
    """A peft LoRA model as an adapter directory (PEFT's adapter_config.json and
    adapter_model.safetensors), plus the trainable tensors of `state` for resume."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    model.save_pretrained(model_dir)
    write_safetensors(
        {k: v for k, v in state.items() if k in trainable},
        model_dir / ADAPTER_STATE_FILE,
        pt_format=False,
    )
    tokenizer.save(model_dir)
    write_generation_config(model_dir, tokenizer)
    write_provenance(model_dir, provenance)


def read_lora_state(model_dir: Path) -> dict[str, torch.Tensor]:
    """The trainable tensors write_lora_adapter wrote."""
    return load_safetensors(model_dir / ADAPTER_STATE_FILE)


def merge_adapter(adapter_dir: Path, tokenizer: Tokenizer) -> None:
    """Fold the LoRA adapter into the base weights: adapter_dir becomes a plain model directory
    (the adapter itself moves to adapter_dir/adapter)."""
    from peft import AutoPeftModelForCausalLM

    merged = AutoPeftModelForCausalLM.from_pretrained(
        adapter_dir, dtype=torch.float32
    ).merge_and_unload()
    adapter = adapter_dir / ADAPTER_SUBDIR
    adapter.mkdir(exist_ok=True)
    for name in ADAPTER_FILES:
        if (adapter_dir / name).is_file():
            shutil.move(str(adapter_dir / name), adapter / name)
    copy_tokenizer_files(adapter_dir, adapter)
    merged.save_pretrained(adapter_dir, safe_serialization=True)
    write_generation_config(adapter_dir, tokenizer)
