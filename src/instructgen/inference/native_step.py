"""The batch-1 decode step in C (inference/native/decode_step.c), built on first use.

FastDecoder hands a step to it when one row is running on a CPU float32 Llama-family model
(RMSNorm, RoPE, SiLU-gated FFN, with or without biases and role embeddings). The library is
compiled once per machine with the system C compiler (`cc -O3 -march=native`) into
~/.cache/instructgen/native (or $INSTRUCTGEN_CACHE/native) and loaded with ctypes. Without a
compiler, when the build fails, or with INSTRUCTGEN_NATIVE=0, `load()` returns None and the
torch path runs: the same math, slower at batch 1.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
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

_P = ctypes.POINTER(ctypes.c_float)
_PP = ctypes.POINTER(_P)


class _Model(ctypes.Structure):
    """The C `Model` struct, field for field."""

    _fields_ = [
        *[
            (name, ctypes.c_int)
            for name in ("n_layer", "d", "n_head", "n_kv", "dh", "d_ff", "vocab", "len_cap", "max_pos")
        ],
        ("eps", ctypes.c_float),
        *[(name, _P) for name in ("tok_emb", "role", "norm_f", "lm_head", "cos", "sin")],
        *[
            (name, _PP)
            for name in (
                "norm1", "wqkv", "bqkv", "wo", "bo", "norm2", "wgu", "bgu", "wdown", "bdown",
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
    except (OSError, subprocess.SubprocessError):
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
        self.lib, self.layers = lib, decoder.layers
        max_pos = c.max_seq_len
        cos, sin = model.rope(torch.arange(max_pos))  # the model's own angles
        d_ff = self.layers[0][5].weight.size(1)
        self._keep = [cos.contiguous(), sin.contiguous()]
        m = _Model(
            n_layer=c.n_layer,
            d=c.d_model,
            n_head=c.n_head,
            n_kv=c.n_kv_head,
            dh=c.d_head,
            d_ff=d_ff,
            vocab=c.vocab_size,
            len_cap=0,
            max_pos=max_pos,
            eps=model.norm_f.eps,
        )
        m.tok_emb, m.norm_f = _ptr(model.tok_emb.weight), _ptr(model.norm_f.weight)
        m.lm_head, m.cos, m.sin = _ptr(decoder.lm_head.weight), *map(_ptr, self._keep)
        m.role = _ptr(decoder.role)
        columns = {
            "norm1": [n1.weight for n1, *_ in self.layers],
            "wqkv": [layer[1].weight for layer in self.layers],
            "bqkv": [layer[1].bias for layer in self.layers],
            "wo": [layer[2].weight for layer in self.layers],
            "bo": [layer[2].bias for layer in self.layers],
            "norm2": [layer[3].weight for layer in self.layers],
            "wgu": [layer[4].weight for layer in self.layers],
            "bgu": [layer[4].bias for layer in self.layers],
            "wdown": [layer[5].weight for layer in self.layers],
            "bdown": [layer[5].bias for layer in self.layers],
        }
        for name, tensors in columns.items():
            array = (_P * c.n_layer)(*map(_ptr, tensors))
            self._keep += [array, *tensors]
            setattr(m, name, ctypes.cast(array, _PP))
        self.m, self.model = m, model
        self._cache_ptrs: tuple[int, ...] = ()
        self._k = (_P * c.n_layer)()
        self._v = (_P * c.n_layer)()
        m.k_cache, m.v_cache = ctypes.cast(self._k, _PP), ctypes.cast(self._v, _PP)

    @staticmethod
    def supports(decoder, model) -> bool:
        """Llama-family, SiLU, float32, contiguous weights on the CPU."""
        from instructgen.model.transformer import RMSNorm

        c = model.config
        tensors = [model.tok_emb.weight, decoder.lm_head.weight]
        for norm_1, qkv, o, norm_2, up, down in decoder.layers:
            if not (isinstance(norm_1, RMSNorm) and isinstance(norm_2, RMSNorm)):
                return False
            tensors += [norm_1.weight, norm_2.weight]
            for linear in (qkv, o, up, down):
                tensors += [t for t in (linear.weight, linear.bias) if t is not None]
        return (
            decoder.llama
            and c.activation == "silu"
            and isinstance(model.norm_f, RMSNorm)
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
