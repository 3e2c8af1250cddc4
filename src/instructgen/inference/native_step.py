"""The batch-1 decode step in C (inference/native/decode_step.c), built on first use.

FastDecoder hands a step to it when one row is running on one CPU thread on a float32 GPT-2-
or Llama-family model (with or without biases and role embeddings). On Linux, the library is
compiled once per machine with the system C compiler (`cc -O3 -march=native`) into
~/.cache/instructgen/native (or $INSTRUCTGEN_CACHE/native) and loaded with ctypes. Without a
compiler, when the build fails (logged once), or with INSTRUCTGEN_NATIVE=0, `load()` returns
None and the torch path runs: the same math, slower at batch 1.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

__all__ = ["NativeStep", "load"]

SOURCE = Path(__file__).with_name("native") / "decode_step.c"
FLAGS = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c11"]

# the C enum of activations, by the model config's names (model/transformer.py ACTIVATIONS)
ACTIVATIONS = {"silu": 0, "gelu_new": 1, "gelu_pytorch_tanh": 1, "gelu": 2, "relu": 3}

_log = logging.getLogger(__name__)
_P = ctypes.POINTER(ctypes.c_float)
_PP = ctypes.POINTER(_P)


class _Model(ctypes.Structure):
    """The C `Model` struct, field for field."""

    _fields_ = [
        *[
            (name, ctypes.c_int)
            for name in (
                "n_layer", "d", "n_head", "n_kv", "dh", "d_ff", "vocab", "len_cap", "max_pos",
                "layernorm", "gated", "act",
            )
        ],
        ("eps", ctypes.c_float),
        *[
            (name, _P)
            for name in ("tok_emb", "pos_emb", "role", "norm_f", "norm_f_b", "lm_head", "cos", "sin")
        ],
        *[
            (name, _PP)
            for name in (
                "norm1", "norm1_b", "wqkv", "bqkv", "wo", "bo",
                "norm2", "norm2_b", "wgu", "bgu", "wdown", "bdown",
                "k_cache", "v_cache",
            )
        ],
        ("scratch", _P),
    ]  # fmt: skip


def _cache_dir() -> Path:
    root = os.environ.get("INSTRUCTGEN_CACHE") or Path.home() / ".cache" / "instructgen"
    return Path(root) / "native"


def _machine_key() -> str:
    """Source, flags and this CPU: -march=native code must not run on another processor."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = "".join(line for line in f if line.startswith(("model name", "flags")))
    except OSError:
        cpu = platform.processor()
    text = (
        SOURCE.read_bytes() + " ".join(FLAGS).encode() + platform.machine().encode() + cpu.encode()
    )
    return hashlib.sha256(text).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def load() -> ctypes.CDLL | None:
    """The compiled library (building it if needed), or None where it cannot be had."""
    if os.environ.get("INSTRUCTGEN_NATIVE", "1") == "0" or platform.system() != "Linux":
        return None
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    library = _cache_dir() / f"decode_step-{_machine_key()}.so"
    try:
        if not library.is_file():
            if compiler is None:
                return None
            library.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=library.parent) as tmp:
                built = Path(tmp) / library.name
                subprocess.run(
                    [compiler, *FLAGS, "-o", str(built), str(SOURCE), "-lm"],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                os.replace(built, library)  # atomic: a concurrent build never sees half a file
        lib = ctypes.CDLL(str(library))
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        _log.warning(
            "the C decode step could not be built (%s%s); decoding uses the torch path",
            e,
            (": " + detail.decode(errors="replace").strip()[:300]) if detail else "",
        )
        return None
    lib.decode_step.argtypes = [
        ctypes.POINTER(_Model),
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        _P,
    ]
    lib.decode_step.restype = ctypes.c_int
    return lib


def _ptr(t: torch.Tensor | None) -> _P:
    return ctypes.cast(t.data_ptr(), _P) if t is not None else _P()


class NativeStep:
    """decode_step for one row, over the weights of a FastDecoder and its SlotCache."""

    def __init__(self, lib: ctypes.CDLL, decoder, model) -> None:
        c = model.config
        self.lib, self.model = lib, model
        layers = decoder.layers  # (norm_1, qkv, o, norm_2, up, down) per block
        self._keep: list = []  # everything the struct points into stays alive with it
        if model.rope is not None:
            self._keep += [t.contiguous() for t in model.rope(torch.arange(c.max_seq_len))]
        m = _Model(
            n_layer=c.n_layer,
            d=c.d_model,
            n_head=c.n_head,
            n_kv=c.n_kv_head,
            dh=c.d_head,
            d_ff=layers[0][5].weight.size(1),
            vocab=decoder.lm_head.weight.size(0),
            max_pos=c.max_seq_len,
            layernorm=int(not decoder.llama),
            gated=int(decoder.llama),
            act=ACTIVATIONS[c.activation],
            eps=model.norm_f.eps,
        )
        m.tok_emb, m.role = _ptr(model.tok_emb.weight), _ptr(decoder.role)
        m.pos_emb = _ptr(model.pos_emb.weight if model.pos_emb is not None else None)
        m.norm_f, m.norm_f_b = _ptr(model.norm_f.weight), _ptr(getattr(model.norm_f, "bias", None))
        m.lm_head = _ptr(decoder.lm_head.weight)
        m.cos, m.sin = (_ptr(t) for t in self._keep) if self._keep else (_P(), _P())
        columns = {
            "norm1": [layer[0].weight for layer in layers],
            "norm1_b": [getattr(layer[0], "bias", None) for layer in layers],
            "norm2": [layer[3].weight for layer in layers],
            "norm2_b": [getattr(layer[3], "bias", None) for layer in layers],
        }
        for name, index in (("qkv", 1), ("o", 2), ("gu", 4), ("down", 5)):
            columns[f"w{name}"] = [layer[index].weight for layer in layers]
            columns[f"b{name}"] = [layer[index].bias for layer in layers]
        for name, tensors in columns.items():
            array = (_P * c.n_layer)(*map(_ptr, tensors))
            self._keep += [array, *tensors]
            setattr(m, name, ctypes.cast(array, _PP))
        self.m = m
        self._cache_ptrs: tuple[int, ...] = ()
        self._k = (_P * c.n_layer)()
        self._v = (_P * c.n_layer)()
        m.k_cache, m.v_cache = ctypes.cast(self._k, _PP), ctypes.cast(self._v, _PP)

    @staticmethod
    def supports(decoder, model) -> bool:
        """GPT-2 (LayerNorm, learned positions) or Llama (RMSNorm, RoPE) family, an activation
        the C code knows, float32 contiguous weights on the CPU."""
        from instructgen.model.transformer import RMSNorm

        c = model.config
        norm = RMSNorm if decoder.llama else torch.nn.LayerNorm
        norms = [model.norm_f] + [n for layer in decoder.layers for n in (layer[0], layer[3])]
        tensors = [model.tok_emb.weight, decoder.lm_head.weight]
        tensors += [t for n in norms for t in (n.weight, getattr(n, "bias", None)) if t is not None]
        for _, qkv, o, _, up, down in decoder.layers:
            for linear in (qkv, o, up, down):
                tensors += [t for t in (linear.weight, linear.bias) if t is not None]
        if model.pos_emb is not None:
            tensors.append(model.pos_emb.weight)
        return (
            c.activation in ACTIVATIONS
            and all(isinstance(n, norm) and n.weight is not None for n in norms)
            and (model.rope is not None) == decoder.llama
            and c.n_head % c.n_kv_head == 0
            and c.d_head % 2 == 0
            and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
            and all(t.is_contiguous() for t in tensors)
        )

    def _bind(self, cache) -> None:
        """Point the struct at the cache's buffers (they move when the cache grows)."""
        ptrs = tuple(t.data_ptr() for t in (*cache.k, *cache.v)) + (cache.max_len,)
        if ptrs == self._cache_ptrs:
            return
        for i, (k, v) in enumerate(zip(cache.k, cache.v)):
            if not (k.is_contiguous() and v.is_contiguous() and k.dtype == torch.float32):
                raise ValueError("the KV cache must be contiguous float32")
            self._k[i], self._v[i] = _ptr(k), _ptr(v)
        c = self.model.config
        self._scratch = torch.empty(
            2 * c.d_model
            + (c.n_head + 2 * c.n_kv_head) * c.d_head
            + c.n_head * c.d_head
            + cache.max_len
            + 2 * self.m.d_ff
        )
        self.m.scratch, self.m.len_cap = _ptr(self._scratch), cache.max_len
        self._cache_ptrs = ptrs

    def step(self, token: int, cache) -> torch.Tensor | None:
        """Logits [1, vocab] for row 0's next token, its keys/values written at cache.length;
        None when the position is beyond the rotary table (the caller falls back)."""
        self._bind(cache)
        t, start = cache.length, cache.starts[0]
        logits = torch.empty(1, self.m.vocab)
        if self.lib.decode_step(ctypes.byref(self.m), token, t - start, start, t, _ptr(logits)):
            return None
        return logits
