"""Memory and time of the training loss: the fused output layer + cross-entropy against logits.

One forward and backward of a GPT-2-shaped model at a large vocabulary (the default, 50,304,
is GPT-2's padded one), each way in a fresh process so that its peak resident memory is its
own: `model(ids, labels=labels)` (model/cross_entropy.linear_cross_entropy: the logits of one
chunk of labelled rows at a time) against `loss_and_count(model(ids), labels)` (the full
[tokens × vocabulary] logits, then the chunked cross-entropy). With `--labelled F` only that
share of the positions carries a label, as an instruction's answer does.

    python benchmarks/loss_memory.py [--vocab 50304] [--batch 8] [--seq-len 512] [--labelled 1.0]

Ends with `loss_peak_mb_fused=`, `loss_peak_mb_logits=`, `loss_memory_ratio=`, `loss_ms_fused=`,
`loss_ms_logits=` and `loss_speed_ratio=`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import torch

from instructgen.model.cross_entropy import IGNORE
from instructgen.model.transformer import ModelConfig, Transformer
from instructgen.train.objectives import loss_and_count


def measure(fused: bool, args: argparse.Namespace) -> tuple[float, float]:
    """(peak resident MB above the model and its batch, seconds of the last of 3 passes)."""
    torch.manual_seed(0)
    config = ModelConfig(
        arch="gpt2",
        vocab_size=args.vocab,
        d_model=args.d_model,
        n_layer=args.layers,
        n_head=8,
        max_seq_len=args.seq_len,
    )
    model = Transformer(config)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq_len))
    labels = torch.where(torch.rand(ids.shape) < args.labelled, ids.roll(-1, 1), IGNORE)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3):
        start = time.perf_counter()
        if fused:
            loss = model(ids, labels=labels)
        else:
            loss = loss_and_count(model(ids), labels)[0]
        loss.backward()
        seconds = time.perf_counter() - start
        model.zero_grad(set_to_none=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return (peak - before) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--labelled", type=float, default=1.0, help="share of labelled positions")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    results = {}
    for fused in (True, False):
        with spawn.Pool(1) as pool:
            results[fused] = pool.apply(measure, (fused, args))
    (fused_mb, fused_s), (logits_mb, logits_s) = results[True], results[False]
    print(
        f"vocab {args.vocab}, {args.batch} x {args.seq_len} tokens, {args.labelled:.0%} labelled: "
        f"fused {fused_mb:,.0f} MB {fused_s * 1e3:,.0f} ms; logits {logits_mb:,.0f} MB "
        f"{logits_s * 1e3:,.0f} ms (forward + backward, peak above the model)"
    )
    print(f"loss_peak_mb_fused={fused_mb:.0f}")
    print(f"loss_peak_mb_logits={logits_mb:.0f}")
    print(f"loss_memory_ratio={logits_mb / max(fused_mb, 1):.2f}")
    print(f"loss_ms_fused={fused_s * 1e3:.0f}")
    print(f"loss_ms_logits={logits_s * 1e3:.0f}")
    print(f"loss_speed_ratio={logits_s / fused_s:.2f}")


if __name__ == "__main__":
    main()
