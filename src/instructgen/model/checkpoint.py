"""Model directories: a Hugging Face checkpoint, always.

    config.json              model_type gpt2 | llama | qwen2, read by transformers' AutoConfig
    model.safetensors        weights under Hugging Face names (sharded *.safetensors + index read too)
    tokenizer.json, tokenizer_config.json (with chat_template)
    generation_config.json   bos / eos / pad ids, so generation stops where an answer ends
    instructgen.json         provenance: how the model was made (data, steps, metrics)

This module maps our module names (model/transformer.py) to Hugging Face's and back; the
files' names, the small files and publishing live beside it in model_dir.py. Weights are read
with safetensors only: nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from instructgen.config import from_dict
from instructgen.errors import ModelDirError
from instructgen.files import atomic_dir
from instructgen.model.model_dir import (
    BEHAVIOUR_FILES,
    CONFIG_FILE,
    PROVENANCE_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    WEIGHTS_SUFFIX,
    copy_tokenizer_files,
    generation_config,
    has_tokenizer,
    provenance_history,
    read_provenance,
    read_weights,
    safetensors_header,
    weight_files,
    write_generation_config,
    write_json,
    write_provenance,
    write_safetensors,
)
from instructgen.model.transformer import ModelConfig, RotaryEmbedding, Transformer
from instructgen.tokenizer import Tokenizer

__all__ = [
    "save_model",
    "write_model_files",
    "load_model",
    "read_model_state",
    "load_config",
    "check_model_dir",
    "hf_config_dict",
    "config_from_hf",
    "model_info",
    "model_digest",
    "PROVENANCE_FILE",
    # model_dir.py's, imported from here before it existed
    "copy_tokenizer_files",
    "generation_config",
    "provenance_history",
    "read_provenance",
    "write_safetensors",
]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_digests: dict[tuple, str] = {}  # (path, size, mtime, inode) of every file -> model_digest


def model_digest(model_dir: str | Path) -> str:
    """sha256 over the bytes of every weight file, the config, the generation config and the
    tokenizer files of a model directory: any change to any weight changes it. Memoised per
    process on the files' (size, mtime, inode), so asking again costs a stat per file."""
    path = _require_dir(model_dir)
    files = [path / n for n in BEHAVIOUR_FILES if (path / n).is_file()]
    files += sorted(path.glob("*" + WEIGHTS_SUFFIX))
    key = tuple((f.name, s.st_size, s.st_mtime_ns, s.st_ino) for f in files for s in [f.stat()]) + (
        str(path.resolve()),
    )
    if key not in _digests:
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode() + b"\0")
            with file.open("rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
        _digests[key] = digest.hexdigest()
    return _digests[key]


# ----------------------------------------------------------------------------------------------
# config.json <-> ModelConfig


def hf_config_dict(config: ModelConfig) -> dict[str, Any]:
    """The config.json that transformers reads for `config`."""
    common = {
        "vocab_size": config.vocab_size,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
    }
    if config.arch == "gpt2":
        from transformers import GPT2Config

        hf = GPT2Config(
            n_positions=config.max_seq_len,
            n_embd=config.d_model,
            n_layer=config.n_layer,
            n_head=config.n_head,
            n_inner=config.d_ff,
            activation_function=config.activation,
            layer_norm_epsilon=config.norm_eps,
            resid_pdrop=config.dropout,
            embd_pdrop=config.dropout,
            attn_pdrop=config.dropout,
            **common,
        )
        architecture = "GPT2LMHeadModel"
    else:
        llama_args = dict(
            hidden_size=config.d_model,
            intermediate_size=config.d_ff,
            num_hidden_layers=config.n_layer,
            num_attention_heads=config.n_head,
            num_key_value_heads=config.n_kv_head,
            head_dim=config.d_head,
            max_position_embeddings=config.max_seq_len,
            rms_norm_eps=config.norm_eps,
            rope_theta=config.rope_theta,
            hidden_act=config.activation,
            attention_dropout=config.dropout,
            **common,
        )
        if config.qkv_bias and not config.o_bias and not config.mlp_bias:
            from transformers import Qwen2Config  # q/k/v biases without an o bias: Qwen2's layout

            hf, architecture = Qwen2Config(**llama_args), "Qwen2ForCausalLM"
        elif config.qkv_bias != config.o_bias:
            raise ModelDirError(
                "llama models have biases on all of q/k/v/o (attention_bias) or on q/k/v only (qwen2)"
            )
        else:
            from transformers import LlamaConfig

            hf = LlamaConfig(attention_bias=config.qkv_bias, mlp_bias=config.mlp_bias, **llama_args)
            architecture = "LlamaForCausalLM"
    data = hf.to_dict()
    data["architectures"] = [architecture]
    data["rope_theta"] = (
        config.rope_theta if config.arch == "llama" else None
    )  # older transformers read it here
    if data["rope_theta"] is None:
        del data["rope_theta"]
    data["dtype"] = "float32"
    if config.n_roles:
        data["instructgen_n_roles"] = config.n_roles
    return data


def config_from_hf(data: dict[str, Any], *, source: str = CONFIG_FILE) -> ModelConfig:
    """Our ModelConfig for a Hugging Face config.json (gpt2, llama, qwen2 and mistral types)."""
    model_type = data.get("model_type")
    common = dict(
        vocab_size=data["vocab_size"],
        bos_token_id=_first(data.get("bos_token_id")),
        eos_token_id=_first(data.get("eos_token_id")),
        pad_token_id=_first(data.get("pad_token_id")),
        n_roles=data.get("instructgen_n_roles", 0),
    )
    if model_type == "gpt2":
        if (
            data.get("scale_attn_by_inverse_layer_idx")
            or data.get("reorder_and_upcast_attn")
            or data.get("scale_attn_weights") is False
        ):
            raise NotNative(
                "this GPT-2 variant scales attention differently; use --backend hf", file=source
            )
        values = dict(
            arch="gpt2",
            d_model=data["n_embd"],
            n_layer=data["n_layer"],
            n_head=data["n_head"],
            d_ff=data.get("n_inner") or 4 * data["n_embd"],
            max_seq_len=data["n_positions"],
            activation=data.get("activation_function", "gelu_new"),
            norm_eps=data.get("layer_norm_epsilon", 1e-5),
            tie_embeddings=data.get("tie_word_embeddings", True),
            dropout=float(data.get("resid_pdrop", 0.0)),
            **common,
        )
    elif model_type in ("llama", "qwen2", "mistral"):
        rope = data.get("rope_parameters") or data.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in ("default", None):
            raise NotNative(
                f"rope scaling {rope_type!r} is not supported natively; use --backend hf",
                file=source,
            )
        if _sliding_window(model_type, data):
            raise NotNative(
                "sliding-window attention is not supported natively; use --backend hf", file=source
            )
        qwen2 = model_type == "qwen2"
        values = dict(
            arch="llama",
            d_model=data["hidden_size"],
            n_layer=data["num_hidden_layers"],
            n_head=data["num_attention_heads"],
            n_kv_head=data.get("num_key_value_heads") or data["num_attention_heads"],
            d_head=data.get("head_dim") or data["hidden_size"] // data["num_attention_heads"],
            d_ff=data["intermediate_size"],
            max_seq_len=data.get("max_position_embeddings", 2048),
            activation=data.get("hidden_act", "silu"),
            norm_eps=data.get("rms_norm_eps", 1e-6),
            rope_theta=float(rope.get("rope_theta", data.get("rope_theta", 10000.0))),
            qkv_bias=True if qwen2 else bool(data.get("attention_bias", False)),
            o_bias=False if qwen2 else bool(data.get("attention_bias", False)),
            mlp_bias=bool(data.get("mlp_bias", False)),
            tie_embeddings=data.get("tie_word_embeddings", False),
            dropout=float(data.get("attention_dropout", 0.0)),
            **common,
        )
    else:
        raise ModelDirError(
            f"model_type {model_type!r} has no native implementation (gpt2, llama, qwen2, mistral do); use --backend hf",
            file=source,
        )
    return from_dict(ModelConfig, values, source=source)


class NotNative(ModelDirError):
    """A checkpoint of a family we implement, using a feature we do not: the hf backend runs it."""


def _sliding_window(model_type: str, data: dict[str, Any]) -> bool:
    """Whether some layer attends through a window shorter than the context: Mistral's
    `sliding_window`; Qwen2's with `use_sliding_window`, on layers from `max_window_layers` on
    (or as `layer_types` says)."""
    window = data.get("sliding_window")
    if not window or window >= data.get("max_position_embeddings", 0):
        return False
    if model_type == "mistral":
        return True
    if model_type != "qwen2" or not data.get("use_sliding_window"):
        return False
    if isinstance(data.get("layer_types"), list):
        return "sliding_attention" in data["layer_types"]
    return data.get("max_window_layers", 28) < data["num_hidden_layers"]


def _first(value: Any) -> int | None:
    return (
        value[0] if isinstance(value, list) and value else value if isinstance(value, int) else None
    )


def load_config(model_dir: str | Path) -> ModelConfig:
    path = _require_dir(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise ModelDirError(f"no {CONFIG_FILE}: not a model directory", file=str(model_dir))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelDirError(f"invalid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    return config_from_hf(data, source=str(path))


# ----------------------------------------------------------------------------------------------
# weights: our names <-> Hugging Face names


def _gpt2_pairs(config: ModelConfig) -> list[tuple[str, str, str]]:
    """(our name, HF name, how) with how = 'copy' | 'T' (HF Conv1D stores [in, out])."""
    pairs = [
        ("tok_emb.weight", "transformer.wte.weight", "copy"),
        ("pos_emb.weight", "transformer.wpe.weight", "copy"),
    ]
    for i in range(config.n_layer):
        ours, hf = f"blocks.{i}.", f"transformer.h.{i}."
        for p in ("weight", "bias"):
            pairs += [
                (ours + f"norm_1.{p}", hf + f"ln_1.{p}", "copy"),
                (ours + f"norm_2.{p}", hf + f"ln_2.{p}", "copy"),
                (ours + f"attn.W_o.{p}", hf + f"attn.c_proj.{p}", "T"),
                (ours + f"ffn.W_1.{p}", hf + f"mlp.c_fc.{p}", "T"),
                (ours + f"ffn.W_2.{p}", hf + f"mlp.c_proj.{p}", "T"),
            ]
    pairs += [
        ("norm_f.weight", "transformer.ln_f.weight", "copy"),
        ("norm_f.bias", "transformer.ln_f.bias", "copy"),
    ]
    return pairs


def _llama_pairs(config: ModelConfig) -> list[tuple[str, str, str]]:
    pairs = [
        ("tok_emb.weight", "model.embed_tokens.weight", "copy"),
        ("norm_f.weight", "model.norm.weight", "copy"),
    ]
    for i in range(config.n_layer):
        ours, hf = f"blocks.{i}.", f"model.layers.{i}."
        pairs += [
            (ours + "norm_1.weight", hf + "input_layernorm.weight", "copy"),
            (ours + "norm_2.weight", hf + "post_attention_layernorm.weight", "copy"),
        ]
        for w, h in (("W_q", "q_proj"), ("W_k", "k_proj"), ("W_v", "v_proj"), ("W_o", "o_proj")):
            pairs.append((ours + f"attn.{w}.weight", hf + f"self_attn.{h}.weight", "copy"))
            if config.qkv_bias if w != "W_o" else config.o_bias:
                pairs.append((ours + f"attn.{w}.bias", hf + f"self_attn.{h}.bias", "copy"))
        for w, h in (("W_gate", "gate_proj"), ("W_up", "up_proj"), ("W_down", "down_proj")):
            pairs.append((ours + f"ffn.{w}.weight", hf + f"mlp.{h}.weight", "copy"))
            if config.mlp_bias:
                pairs.append((ours + f"ffn.{w}.bias", hf + f"mlp.{h}.bias", "copy"))
    return pairs


def _pairs(config: ModelConfig) -> list[tuple[str, str, str]]:
    pairs = _gpt2_pairs(config) if config.arch == "gpt2" else _llama_pairs(config)
    if not config.tie_embeddings:
        pairs.append(("lm_head.weight", "lm_head.weight", "copy"))
    if config.n_roles:
        pairs.append(("role_emb.weight", "instructgen.role_emb.weight", "copy"))
    return pairs


def to_hf_state_dict(config: ModelConfig, ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our weights under Hugging Face names (GPT-2's fused c_attn = [W_q; W_k; W_v]ᵀ)."""
    out = {}
    for name, hf, how in _pairs(config):
        out[hf] = ours[name].t() if how == "T" else ours[name]
    if config.arch == "gpt2":
        for i in range(config.n_layer):
            a = f"blocks.{i}.attn."
            out[f"transformer.h.{i}.attn.c_attn.weight"] = torch.cat(
                [ours[a + "W_q.weight"], ours[a + "W_k.weight"], ours[a + "W_v.weight"]]
            ).t()
            out[f"transformer.h.{i}.attn.c_attn.bias"] = torch.cat(
                [ours[a + "W_q.bias"], ours[a + "W_k.bias"], ours[a + "W_v.bias"]]
            )
    return {k: v.detach().contiguous() for k, v in out.items()}


def from_hf_state_dict(
    config: ModelConfig, weights: dict[str, torch.Tensor], *, source: str
) -> dict[str, torch.Tensor]:
    """Our state dict from Hugging Face weights; a missing tensor raises ModelDirError."""
    weights = _normalise_prefixes(config, weights)
    ours = {}

    def take(hf: str) -> torch.Tensor:
        if hf not in weights:
            raise ModelDirError(f"weight {hf!r} is missing", file=source)
        return weights[hf]

    for name, hf, how in _pairs(config):
        ours[name] = take(hf).t() if how == "T" else take(hf)
    if config.arch == "gpt2":
        d = config.d_model
        for i in range(config.n_layer):
            w, b = (
                take(f"transformer.h.{i}.attn.c_attn.weight").t(),
                take(f"transformer.h.{i}.attn.c_attn.bias"),
            )
            for j, proj in enumerate(("W_q", "W_k", "W_v")):
                ours[f"blocks.{i}.attn.{proj}.weight"] = w[j * d : (j + 1) * d]
                ours[f"blocks.{i}.attn.{proj}.bias"] = b[j * d : (j + 1) * d]
    return ours


def _normalise_prefixes(
    config: ModelConfig, weights: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Accept checkpoints saved from the bare base model (no 'transformer.' / 'model.' prefix)."""
    base = "transformer." if config.arch == "gpt2" else "model."
    if any(k.startswith(base) for k in weights):
        return weights
    return {
        k if k.startswith(("lm_head.", "instructgen.")) else base + k: v for k, v in weights.items()
    }


# ----------------------------------------------------------------------------------------------
# the directory


def _require_dir(model_dir: str | Path) -> Path:
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelDirError("model directory not found", file=str(path))
    return path


def load_model(
    model_dir: str | Path,
    *,
    dtype: str | torch.dtype | None = "float32",
    device: str | torch.device = "cpu",
) -> Transformer:
    """Read a model directory (ours or any HF GPT-2 / Llama / Qwen2 checkpoint) into a Transformer.

    dtype: a torch dtype or its name; "auto" keeps the dtype stored in the file.
    """
    path = _require_dir(model_dir)
    config = load_config(path)
    state = from_hf_state_dict(config, read_weights(path), source=str(path))
    if dtype == "auto":
        dtype = next(iter(state.values())).dtype
    elif isinstance(dtype, str):
        dtype = _DTYPES[dtype]
    if config.tie_embeddings:
        state["lm_head.weight"] = state["tok_emb.weight"]
    with torch.device("meta"):  # no random init: every tensor comes from the file
        model = Transformer(config, init_weights=False)
    model.load_state_dict(state, strict=True, assign=True)
    del state  # the parameters now hold the only references to the loaded tensors
    _contiguous_in_place(model)  # GPT-2's Conv1D weights arrive transposed ([in, out])
    if config.tie_embeddings:
        model.lm_head.weight = model.tok_emb.weight
    if model.rope is not None:  # a buffer computed, not stored: build it on a real device
        model.rope = RotaryEmbedding(config.d_head, config.rope_theta)
    return model.to(device=device, dtype=dtype).eval()


def _contiguous_in_place(model: Transformer) -> None:
    """Make every parameter contiguous within the memory it already views (the parameters that
    view one tensor of the file are laid out one after another in it). Copying each into new
    memory instead would leave the freed originals as holes the allocator keeps: the process
    would hold GPT-2's weights almost twice. Only temporaries are allocated, one tensor's worth."""
    groups: dict[int, list[nn.Parameter]] = {}
    for p in model.parameters():
        if not p.is_contiguous():
            groups.setdefault(p.untyped_storage().data_ptr(), []).append(p)
    for params in groups.values():
        storage = params[0].untyped_storage()
        whole = sum(p.numel() * p.element_size() for p in params) == storage.nbytes()
        if not whole or len({p.dtype for p in params}) > 1:  # shared with something else
            for p in params:
                p.data = p.data.contiguous()
            continue
        flat = torch.empty(0, dtype=params[0].dtype).set_(storage)
        copies = [p.data.contiguous() for p in params]
        offset = 0
        for p, copy in zip(params, copies):
            view = flat[offset : offset + copy.numel()]
            p.data = view.copy_(copy.view(-1)).view(copy.shape)
            offset += copy.numel()


def read_model_state(model_dir: str | Path) -> dict[str, torch.Tensor]:
    """Our state dict of a model directory (what a training run resumes from)."""
    return load_model(model_dir).state_dict()


def save_model(
    model: Transformer,
    out_dir: str | Path,
    *,
    tokenizer: Tokenizer | str | Path | None = None,
    provenance: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    state: dict[str, torch.Tensor] | None = None,
    keep_other_files: bool = False,
) -> Path:
    """Write `model` (or its `state` dict, e.g. gathered from shards) as a Hugging Face model directory.

    The directory is written whole in a temporary place and renamed, so readers never see half a
    model; keep_other_files=True replaces only the model files, leaving e.g. checkpoints/ in place.
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, keep_other_files=keep_other_files) as tmp:
        write_model_files(
            model, tmp, tokenizer=tokenizer, provenance=provenance, dtype=dtype, state=state
        )
    return out_dir


def write_model_files(
    model: Transformer,
    model_dir: Path,
    *,
    tokenizer: Tokenizer | str | Path | None = None,
    provenance: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    state: dict[str, torch.Tensor] | None = None,
) -> None:
    """The files of save_model, written into the existing model_dir as they are: callers write
    into a temporary directory that they rename (save_model, a training checkpoint)."""
    config = model.config
    state = to_hf_state_dict(config, state if state is not None else model.state_dict())
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    write_safetensors(state, model_dir / WEIGHTS_FILE)
    hf = hf_config_dict(config)
    if dtype is not None:
        hf["dtype"] = str(dtype).removeprefix("torch.")
    write_json(model_dir / CONFIG_FILE, hf)
    tok = None
    if isinstance(tokenizer, Tokenizer):
        tokenizer.save(model_dir)
        tok = tokenizer
    elif tokenizer is not None:
        copy_tokenizer_files(tokenizer, model_dir)
        tok = Tokenizer.from_dir(model_dir)
    write_generation_config(model_dir, tok, config)
    parameters = sum(v.numel() for k, v in state.items())
    record = {
        "instructgen_version": _version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parameters": parameters,
    }
    record.update(provenance or {})
    if tok is not None:
        record.setdefault("tokenizer_fingerprint", tok.fingerprint())
    write_provenance(model_dir, record)


def check_model_dir(model_dir: str | Path) -> ModelConfig:
    """The config of a model directory that generation can run, after checking it whole without
    loading weights: config.json parses, every weight file holds every byte its header names,
    and a tokenizer is there. A ModelDirError naming the file otherwise."""
    path = _require_dir(model_dir)
    config = load_config(path)
    model_info(path)
    if not has_tokenizer(path):
        raise ModelDirError(
            f"no {TOKENIZER_FILE}: generation needs the model's tokenizer", file=str(path)
        )
    return config


def model_info(model_dir: str | Path) -> dict[str, Any]:
    """Architecture, parameter count, context length, vocabulary and dtype, without loading weights."""
    path = _require_dir(model_dir)
    config = load_config(path)
    params, dtypes = 0, set()
    files = weight_files(path)
    if not files:
        read_weights(path)  # raises the right error
    for file in files:
        header = safetensors_header(file)
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in meta["shape"]:
                count *= dim
            params += count
            dtypes.add(meta["dtype"])
    raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    return {
        "path": str(path),
        "model_type": raw.get("model_type"),
        "arch": config.arch,
        "parameters": params,
        "layers": config.n_layer,
        "d_model": config.d_model,
        "heads": config.n_head,
        "kv_heads": config.n_kv_head,
        "context_length": config.max_seq_len,
        "vocab_size": config.vocab_size,
        "dtype": ",".join(sorted(dtypes)),
        "tied_embeddings": config.tie_embeddings,
        "tokenizer": (path / TOKENIZER_FILE).is_file(),
        "chat_template": bool(Tokenizer.from_dir(path).chat_template)
        if (path / TOKENIZER_FILE).is_file()
        else False,
        "provenance": read_provenance(path),
    }


def _version() -> str:
    from instructgen.version import __version__

    return __version__
