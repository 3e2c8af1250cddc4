"""Training throughput: instructgen's trainer vs a Hugging Face GPT2LMHeadModel training step.

Both train the same GPT-2 configuration on the same random batches, measured in this run. The
Hugging Face step is the plain loop a user writes (or the Trainer runs): loss, backward,
clipping, and `torch.optim.AdamW` as the Trainer builds it by default (`adamw_torch`); it is
timed once more with instructgen's optimizer (fused AdamW), to show how much of the gap is the
optimizer. Figures: both at the same precision (fp32, and bf16 autocast only where the CPU has
native bf16 matmuls), the trainer's default precision against a plain fp32 Hugging Face step,
and the same-precision ratio again with one core busy (a second process spinning). Model FLOPs
utilisation (MFU) is 6·N + 12·L·T·d FLOPs per token over a matmul peak of the same precision
measured on the spot.

    python benchmarks/train_throughput.py [--steps 20] [--d-model 256] [--layers 6] [--seq-len 256]

Ends with one `name=value` line per figure (train_throughput_ratio_fp32, ..._busy, mfu, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import torch

from instructgen.model.transformer import ModelConfig, Transformer
from instructgen.train.distributed import Dist
from instructgen.train.loop import TrainConfig, cpu_has_native_bf16, make_optimizer, train
from instructgen.train.objectives import clm_batch
from instructgen.train.state import ModelIO


class RandomTokens:
    """Uniform random token windows: sample i is seeded by i."""

    name = "random"

    def __init__(self, vocab: int, seq_len: int):
        self.vocab, self.seq_len = vocab, seq_len

    def windows(self, first: int, count: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(first)
        return torch.randint(0, self.vocab, (count, self.seq_len + 1), generator=g)

    def train_batch(self, first_sample, batch_size, generator):
        return clm_batch(self.windows(first_sample, batch_size))

    def val_batches(self, batch_size, max_batches):
        return iter(())


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an n×n matmul, the practical peak of this machine for `dtype`."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def ours(config: ModelConfig, args, dtype: str) -> float:
    torch.manual_seed(0)
    model = Transformer(config)
    source = RandomTokens(config.vocab_size, args.seq_len)
    steps = args.warmup + args.steps
    train_config = TrainConfig(
        max_steps=steps,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        lr=3e-4,
        warmup_steps=5,
        eval_every=10**9,
        save_every=10**9,
        log_every=args.warmup,
        dtype=dtype,
    )
    io = ModelIO(save=lambda state, path: None, load_state=lambda path: {})
    with tempfile.TemporaryDirectory() as out:
        summary = train(
            model,
            {"random": (source, 1.0)},
            train_config,
            out,
            io=io,
            dist=Dist(),
            show_progress=False,
        )
    rows = [r for r in summary["metrics"] if "tokens_per_s" in r][1:]  # the first window is warmup
    return sum(r["tokens_per_s"] for r in rows) / len(rows)


def default_adamw(model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer Hugging Face's Trainer builds by default (optim="adamw_torch")."""
    return torch.optim.AdamW(model.parameters(), lr=3e-4)


def ours_adamw(model: torch.nn.Module) -> torch.optim.Optimizer:
    return make_optimizer(model, TrainConfig(lr=3e-4))


def hugging_face(
    config: ModelConfig,
    args,
    dtype: str,
    optimizer_for: Callable[[torch.nn.Module], torch.optim.Optimizer] = default_adamw,
) -> float:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=config.vocab_size,
            n_positions=config.max_seq_len,
            n_embd=config.d_model,
            n_layer=config.n_layer,
            n_head=config.n_head,
            activation_function=config.activation,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=0,
            eos_token_id=0,
        )
    )
    hf.train()
    optimizer = optimizer_for(hf)
    source = RandomTokens(config.vocab_size, args.seq_len)
    amp = dtype == "bf16"
    elapsed = tokens = 0.0
    for step in range(args.warmup + args.steps):
        windows = source.windows(step * args.batch_size, args.batch_size)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = hf(input_ids=windows[:, :-1], labels=windows[:, :-1]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= args.warmup:
            elapsed += time.perf_counter() - start
            tokens += args.batch_size * args.seq_len
    return tokens / elapsed


@contextlib.contextmanager
def one_core_busy() -> Iterator[None]:
    """A second process spinning on the CPU for as long as the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """6·N + 12·L·T·d: forward and backward matmuls, N without the position table."""
    n = sum(
        p.numel() for name, p in Transformer(config).named_parameters() if name != "pos_emb.weight"
    )
    return 6 * n + 12 * config.n_layer * seq_len * config.d_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=8192)
    args = parser.parse_args()
    config = ModelConfig(
        arch="gpt2",
        vocab_size=args.vocab,
        d_model=args.d_model,
        n_layer=args.layers,
        n_head=args.heads,
        max_seq_len=args.seq_len,
    )
    print(
        f"GPT-2 config: d_model={args.d_model} layers={args.layers} heads={args.heads} vocab={args.vocab}; batch {args.batch_size} x {args.seq_len} tokens; {torch.get_num_threads()} threads"
    )
    tokens_per_s = {}
    default = "bf16" if cpu_has_native_bf16() else "fp32"
    precisions = {"fp32": torch.float32}
    if default == "bf16":
        precisions["bf16"] = torch.bfloat16
    else:  # emulated bf16 is slower than fp32 and takes minutes: nobody trains that way here
        print("bf16: not timed (this CPU has no native bf16 matmuls; the trainer uses fp32)")
    figures: dict[str, float] = {}
    for dtype, torch_dtype in precisions.items():
        peak = matmul_peak(torch_dtype)
        o, h = ours(config, args, dtype), hugging_face(config, args, dtype)
        h_fused = hugging_face(config, args, dtype, ours_adamw)
        tokens_per_s[dtype] = (o, h, peak)
        mfu = o * flops_per_token(config, args.seq_len) / peak
        print(
            f"{dtype}: instructgen {o:,.0f} tokens/s, Hugging Face {h:,.0f} tokens/s (with instructgen's optimizer {h_fused:,.0f}), same-precision ratio {o / h:.2f} ({o / h_fused:.2f} against the latter); {dtype} matmul peak {peak / 1e9:.0f} GFLOP/s, MFU {mfu:.1%}"
        )
        figures[f"train_throughput_ratio_{dtype}"] = round(o / h, 3)
        figures[f"train_throughput_ratio_{dtype}_same_optimizer"] = round(o / h_fused, 3)
    # every step is ~10x slower with a core taken: fewer of them (the ratio is what counts)
    busy_args = argparse.Namespace(**{**vars(args), "steps": max(3, args.steps // 4), "warmup": 2})
    with one_core_busy():
        o, h = ours(config, busy_args, default), hugging_face(config, busy_args, default)
    print(
        f"{default} with one core busy: instructgen {o:,.0f} tokens/s, Hugging Face {h:,.0f} tokens/s, ratio {o / h:.2f}"
    )
    figures[f"train_throughput_ratio_{default}_busy"] = round(o / h, 3)
    ours_default, _, peak = tokens_per_s[default]
    hf_plain = tokens_per_s["fp32"][1]
    print(
        f"trainer default here ({default} autocast where supported) vs a plain Hugging Face step (fp32): {ours_default / hf_plain:.2f}x"
    )
    figures |= {
        "train_tokens_per_s": round(ours_default),
        "hf_train_tokens_per_s": round(hf_plain),
        "train_throughput_ratio": round(ours_default / hf_plain, 3),
        "mfu": round(ours_default * flops_per_token(config, args.seq_len) / peak, 4),
    }
    for name, value in figures.items():
        print(f"{name}={value}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
