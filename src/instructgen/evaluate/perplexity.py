"""Perplexity of a model on a text file, with a sliding window (the native model).

    PPL = exp(−(1/N) Σ_{t=1..N} log P(x_t | x_{b(t)..t−1}))

over the N = L − 1 tokens after the first of the tokenized text (L tokens). Windows of seq_len
tokens start every `stride` tokens; each token is scored once, in the first window that reaches
it, so it sees at least seq_len − stride tokens of context (all of them when the text fits one
window). stride = seq_len gives disjoint windows (cheapest, least context).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError, DataError


def read_text(path: str | Path) -> str:
    """The whole file; a .jsonl file's `text` fields joined by blank lines."""
    from instructgen.evaluate.metrics import read_lines

    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        return "\n\n".join(read_lines(path))
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 (byte {exc.start})", file=str(path)) from None
    if not text.strip():
        raise DataError("file is empty", file=str(path))
    return text


def perplexity(
    model_dir: str | Path,
    text_file: str | Path,
    *,
    seq_len: int | None = None,
    stride: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool = False,
    quantize: str | None = None,
) -> dict[str, Any]:
    """PPL of the model in model_dir on text_file (see the module docstring for the formula).

    seq_len defaults to the model's context length, stride to seq_len // 2. Also reports the mean
    NLL in nats per token and bits per UTF-8 byte, bpb = Σ NLL / (ln 2 · bytes): a number that
    does not depend on the tokenizer, so models with different vocabularies compare.
    quantize="int8" scores the model with the engine's int8 weights (inference/quantize.py)."""
    import torch
    from tqdm import tqdm

    from instructgen.inference.quantize import quantize_model
    from instructgen.model.checkpoint import load_model
    from instructgen.tokenizer import Tokenizer

    text = read_text(text_file)
    model = quantize_model(load_model(model_dir, dtype=dtype, device=device), quantize)
    context = model.config.max_seq_len
    seq_len = context if seq_len is None else seq_len
    if not 2 <= seq_len <= context:
        raise ConfigError(
            f"must be between 2 and the model's context length {context}, got {seq_len}",
            field="seq_len",
        )
    stride = max(1, seq_len // 2) if stride is None else stride
    if not 1 <= stride <= seq_len:
        raise ConfigError(
            f"must be between 1 and seq_len ({seq_len}), got {stride}", field="stride"
        )
    ids = Tokenizer.from_dir(model_dir).encode(text)
    if len(ids) < 2:
        raise DataError("the text has fewer than 2 tokens", file=str(text_file))

    tokens = torch.tensor(ids, device=model.tok_emb.weight.device)
    total, scored, next_target, windows = 0.0, 0, 1, 0
    starts = range(0, len(ids) - 1, stride)
    with torch.inference_mode():
        for begin in tqdm(starts, desc="perplexity", unit="window", disable=not progress):
            end = min(begin + seq_len, len(ids))
            first = max(next_target, begin + 1)  # the first token this window scores
            if first < end:
                logits = model(tokens[begin:end].unsqueeze(0))[0].float()
                logp = torch.log_softmax(logits[first - begin - 1 : end - begin - 1], dim=-1)
                targets = tokens[first:end].unsqueeze(1)
                total -= float(logp.gather(1, targets).sum())
                scored += end - first
                windows += 1
            next_target = end
            if end == len(ids):
                break
    mean = total / scored
    return {
        "perplexity": math.exp(mean),
        "nll_per_token": mean,
        "bits_per_byte": total / (math.log(2) * len(text.encode("utf-8"))),
        "tokens": len(ids),
        "scored_tokens": scored,
        "windows": windows,
        "seq_len": seq_len,
        "stride": stride,
        "file": str(text_file),
        "model": str(model_dir),
    }
