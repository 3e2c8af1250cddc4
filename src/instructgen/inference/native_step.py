"""The decode step in C (inference/native/decode_step.c), built on first use.

FastDecoder hands every CPU step to it for a GPT-2- or Llama-family model with float32 or
int8-quantized (inference/quantize.py) weights, with or without biases and role embeddings; it
runs on as many threads as torch is set to for the step (inference/threads.py). On Linux, the
library is compiled once per machine with the system C compiler (`cc -O3 -march=native`) into
~/.cache/instructgen/native (or $INSTRUCTGEN_CACHE/native) and loaded with ctypes. Without a
compiler, when the build fails (logged once), or with INSTRUCTGEN_NATIVE=0, `load()` returns
None and the torch path runs: the same math, slower at small batches.
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
FLAGS = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c11", "-ffp-contract=fast", "-pthread"]

# the C enum of activations, by the model config's names (model/transformer.py ACTIVATIONS)
ACTIVATIONS = {"silu": 0, "gelu_new": 1, "gelu_pytorch_tanh": 1, "gelu": 2, "relu": 3}

_log = logging.getLogger(__name__)
_P = ctypes.POINTER(ctypes.c_float)
_PP = ctypes.POINTER(_P)
_I8 = ctypes.POINTER(ctypes.c_int8)


class _LinearC(ctypes.Structure):
    """The C `Linear` struct: a float32 weight w, or int8 q with per-row scales; a bias or NULL."""

    _fields_ = [
        ("w", _P),
        ("q", _I8),
        ("scale", _P),
        ("b", _P),
        ("rows", ctypes.c_int),
        ("cols", ctypes.c_int),
    ]


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
        *[(name, _P) for name in ("tok_emb", "pos_emb", "role", "norm_f", "norm_f_b", "cos", "sin")],
        *[(name, _PP) for name in ("norm1", "norm1_b", "norm2", "norm2_b")],
        *[(name, ctypes.POINTER(_LinearC)) for name in ("qkv", "o", "gu", "down", "lm_head")],
        ("k_cache", _PP),
        ("v_cache", _PP),
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
    _int_array = ctypes.POINTER(ctypes.c_int)
    lib.decode_step.argtypes = [
        ctypes.POINTER(_Model),
        ctypes.c_int,  # rows
        _int_array,  # tokens
        _int_array,  # positions
        _int_array,  # first cache column of each row
        ctypes.c_int,  # the column written
        _P,  # logits [rows, vocab]
        ctypes.c_int,  # threads
    ]
    lib.decode_step.restype = ctypes.c_int
    return lib


def _ptr(t: torch.Tensor | None) -> _P:
    return ctypes.cast(t.data_ptr(), _P) if t is not None else _P()


def _linear_struct(linear) -> _LinearC:
    """The C view of a decoder _Linear (float32 weight, or int8 q and scale)."""
    q = ctypes.cast(linear.q.data_ptr(), _I8) if linear.q is not None else _I8()
    return _LinearC(
        w=_ptr(linear.weight),
        q=q,
        scale=_ptr(linear.scale),
        b=_ptr(linear.bias),
        rows=linear.rows,
        cols=linear.cols,
    )


def _linear_tensors(linear) -> list[torch.Tensor]:
    return [t for t in (linear.weight, linear.q, linear.scale, linear.bias) if t is not None]


class NativeStep:
    """decode_step for the running rows, over the weights of a FastDecoder and its SlotCache."""

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
            d_ff=layers[0][5].cols,
            vocab=decoder.lm_head.rows,
            max_pos=c.max_seq_len,
            layernorm=int(not decoder.llama),
            gated=int(decoder.llama),
            act=ACTIVATIONS[c.activation],
            eps=model.norm_f.eps,
        )
        m.tok_emb, m.role = _ptr(model.tok_emb.weight), _ptr(decoder.role)
        m.pos_emb = _ptr(model.pos_emb.weight if model.pos_emb is not None else None)
        m.norm_f, m.norm_f_b = _ptr(model.norm_f.weight), _ptr(getattr(model.norm_f, "bias", None))
        m.cos, m.sin = (_ptr(t) for t in self._keep) if self._keep else (_P(), _P())
        for name, index in (("norm1", 0), ("norm2", 3)):
            for suffix, attr in (("", "weight"), ("_b", "bias")):
                tensors = [getattr(layer[index], attr, None) for layer in layers]
                array = (_P * c.n_layer)(*map(_ptr, tensors))
                self._keep += [array, *tensors]
                setattr(m, name + suffix, ctypes.cast(array, _PP))
        for name, index in (("qkv", 1), ("o", 2), ("gu", 4), ("down", 5)):
            array = (_LinearC * c.n_layer)(*(_linear_struct(layer[index]) for layer in layers))
            self._keep += [array, *(t for layer in layers for t in _linear_tensors(layer[index]))]
            setattr(m, name, ctypes.cast(array, ctypes.POINTER(_LinearC)))
        self._head = _linear_struct(decoder.lm_head)
        self._keep += _linear_tensors(decoder.lm_head)
        m.lm_head = ctypes.pointer(self._head)
        self.m = m
        self._cache_ptrs: tuple[int, ...] = ()
        self._k = (_P * c.n_layer)()
        self._v = (_P * c.n_layer)()
        m.k_cache, m.v_cache = ctypes.cast(self._k, _PP), ctypes.cast(self._v, _PP)

    @staticmethod
    def supports(decoder, model) -> bool:
        """GPT-2 (LayerNorm, learned positions) or Llama (RMSNorm, RoPE) family, an activation
        the C code knows, float32 (or int8-quantized linear) contiguous weights on the CPU."""
        from instructgen.model.transformer import RMSNorm

        c = model.config
        norm = RMSNorm if decoder.llama else torch.nn.LayerNorm
        norms = [model.norm_f] + [n for layer in decoder.layers for n in (layer[0], layer[3])]
        floats = [model.tok_emb.weight]
        floats += [t for n in norms for t in (n.weight, getattr(n, "bias", None)) if t is not None]
        linears = [decoder.lm_head] + [
            x for layer in decoder.layers for x in layer[1:3] + layer[4:]
        ]
        for linear in linears:
            floats += [t for t in (linear.weight, linear.scale, linear.bias) if t is not None]
        if model.pos_emb is not None:
            floats.append(model.pos_emb.weight)
        ints = [linear.q for linear in linears if linear.q is not None]
        return (
            c.activation in ACTIVATIONS
            and all(isinstance(n, norm) and n.weight is not None for n in norms)
            and (model.rope is not None) == decoder.llama
            and c.n_head % c.n_kv_head == 0
            and c.d_head % 2 == 0
            and all(t.dtype == torch.float32 for t in floats)
            and all(t.dtype == torch.int8 for t in ints)
            and all(t.device.type == "cpu" and t.is_contiguous() for t in floats + ints)
        )

    def _bind(self, cache) -> None:
        """Point the struct at the cache's buffers (they move when the cache grows) and size the
        scratch space for its row capacity."""
        ptrs = tuple(t.data_ptr() for t in (*cache.k, *cache.v)) + (cache.max_len,)
        if ptrs == self._cache_ptrs:
            return
        for i, (k, v) in enumerate(zip(cache.k, cache.v)):
            if not (k.is_contiguous() and v.is_contiguous() and k.dtype == torch.float32):
                raise ValueError("the KV cache must be contiguous float32")
            self._k[i], self._v[i] = _ptr(k), _ptr(v)
        c = self.model.config
        per_row = 2 * c.d_model + (2 * c.n_head + 2 * c.n_kv_head) * c.d_head + 2 * self.m.d_ff
        self._scratch = torch.empty(cache.k[0].size(0) * per_row + cache.max_len)
        self.m.scratch, self.m.len_cap = _ptr(self._scratch), cache.max_len
        self._cache_ptrs = ptrs

    def step(self, tokens: list[int], cache, threads: int = 1) -> torch.Tensor | None:
        """Logits [rows, vocab] for the running rows' next tokens, their keys/values written at
        cache.length; None when a position is beyond the rotary table (the caller falls back)."""
        self._bind(cache)
        n, t = len(tokens), cache.length
        starts = cache.starts[:n]
        logits = torch.empty(n, self.m.vocab)
        ints = ctypes.c_int * n
        failed = self.lib.decode_step(
            ctypes.byref(self.m),
            n,
            ints(*tokens),
            ints(*(t - s for s in starts)),
            ints(*starts),
            t,
            _ptr(logits),
            threads,
        )
        return None if failed else logits
