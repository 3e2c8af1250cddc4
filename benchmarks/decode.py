"""Decode speed: instructgen's native engine vs Hugging Face `generate`, same weights, one run.

Greedy decoding of 128 new tokens after a 32-token prompt, at batch 1 and batch 8, on two
models built here with random weights and saved as one model directory that both load:
the quickstart's model (the shape of the shipped base it fine-tunes) and a GPT-2-small-shaped model
(124M parameters). Runs alternate between the two implementations and the best of --repeats
counts, so a noisy neighbour on a shared CPU hurts both alike. Memory is each one's peak
resident growth from loading through its first generations (weights, caches, buffers). Each runs at torch's default
thread count and at one thread, and each one's faster setting is compared. Decode time runs
from the first generated token to the last (timestamps from a generate() streamer and from
the engine's steps); prefill is the time to the first token. Both must produce the same tokens.
On one thread the engine's batch-1 steps run in C
(inference/native_step.py) where a C compiler is found; the header says whether it is in use
(INSTRUCTGEN_NATIVE=0 measures the torch path instead).

    python benchmarks/decode.py [--repeats 8] [--skip-gpt2]

Ends with one `name=value` line per figure; decode_bs1_ratio and decode_bs8_ratio are the
quickstart model's.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import GenerationConfig
from transformers.generation.streamers import BaseStreamer

from instructgen.inference import Engine, SamplingParams, native_step
from instructgen.model.checkpoint import load_config, save_model
from instructgen.model.transformer import ModelConfig, Transformer
from instructgen.quickstart import SHIPPED_BASE
from instructgen.tokenizer import train_tokenizer

PROMPT, NEW = 32, 128
GPT2_SMALL = dict(arch="gpt2", d_model=768, n_layer=12, n_head=12, max_seq_len=1024)
_TOKEN_IDS = ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")


def quickstart_shape() -> tuple[dict, int]:
    """(ModelConfig values, vocabulary size) of the model the quickstart trains."""
    values = asdict(load_config(SHIPPED_BASE))
    vocab = values["vocab_size"]
    return {k: v for k, v in values.items() if k not in _TOKEN_IDS}, vocab


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or at its peak since the last reset (VmHWM), Linux only."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")


def peak_window() -> float:
    """Start a new peak-memory window; returns the resident memory at its start."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return rss_mb()


def build(config: dict, vocab_size: int, root: Path) -> Path:
    """A random model directory (with a small tokenizer for the engine's bookkeeping)."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. 春天来了。\n" * 50)
    tok = train_tokenizer([corpus], 300, root / "tok", show_progress=False)
    torch.manual_seed(0)
    model = Transformer(ModelConfig(**config, vocab_size=vocab_size))
    return save_model(model, root / "model", tokenizer=tok)


class _Clock(BaseStreamer):
    """Timestamps generate() hands over: the prompt, then each new token."""

    def __init__(self):
        self.times: list[float] = []

    def put(self, value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def run_hf(model, prompts: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """(prefill seconds, decode seconds, new tokens) of one greedy generate()."""
    config = GenerationConfig(
        max_new_tokens=NEW, do_sample=False, eos_token_id=None, pad_token_id=0
    )
    clock = _Clock()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            prompts,
            attention_mask=torch.ones_like(prompts),
            generation_config=config,
            streamer=clock,
        )
    first, last = clock.times[1], clock.times[-1]  # times[0]: the prompt
    return first - start, last - first, out[:, prompts.size(1) :]


def run_ours(engine: Engine, prompts: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    params = SamplingParams(temperature=0, max_tokens=NEW, ignore_eos=True)
    start = time.perf_counter()
    requests = [engine.add_request(p, params) for p in prompts.tolist()]
    engine.step()  # prefill and the first token
    first = time.perf_counter()
    while engine.has_unfinished():
        engine.step()
    last = time.perf_counter()
    return first - start, last - first, torch.tensor([r.sequences[0].output_ids for r in requests])


def warm_prompts(vocab: int) -> dict[int, torch.Tensor]:
    return {
        bs: torch.randint(0, vocab, (bs, PROMPT), generator=torch.Generator().manual_seed(bs))
        for bs in (1, 8)
    }


def measure(name: str, model_dir: Path, vocab: int, repeats: int) -> dict[str, float]:
    """Decode and prefill figures at batch 1 and 8, and each implementation's memory: the peak
    resident growth from loading it through its first batch-1 and batch-8 generations."""
    from transformers import AutoModelForCausalLM

    prompts = warm_prompts(vocab)
    AutoModelForCausalLM.from_pretrained(model_dir)  # import transformers' model code first
    start = peak_window()
    hf = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    for bs in (1, 8):
        run_hf(hf, prompts[bs])
    memory = {"hf": rss_mb("VmHWM") - start}
    start = peak_window()
    engine = Engine.from_dir(model_dir, max_batch_size=8)
    for bs in (1, 8):
        run_ours(engine, prompts[bs])
    memory["ours"] = rss_mb("VmHWM") - start
    print(
        f"{name:10s} memory MB (weights, caches, buffers): ours {memory['ours']:.0f}  hf {memory['hf']:.0f}"
    )
    default_threads = torch.get_num_threads()
    figures: dict[str, float] = {"memory_mb": memory["ours"], "hf_memory_mb": memory["hf"]}
    for bs in (1, 8):
        best: dict[tuple[str, int], list[float]] = {}  # (impl, threads): best [prefill, decode]
        same = True
        for _ in range(repeats):
            for threads in sorted({default_threads, 1}):
                torch.set_num_threads(threads)
                engine.threads = threads
                hf_pre, hf_dec, hf_out = run_hf(hf, prompts[bs])
                pre, dec, out = run_ours(engine, prompts[bs])
                same &= bool(torch.equal(out, hf_out))
                for impl, times in (("hf", (hf_pre, hf_dec)), ("ours", (pre, dec))):
                    old = best.setdefault((impl, threads), list(times))
                    best[(impl, threads)] = [min(a, b) for a, b in zip(old, times)]
        torch.set_num_threads(default_threads)
        row = {}
        for impl in ("hf", "ours"):
            threads = min((t for i, t in best if i == impl), key=lambda t: best[(impl, t)][1])
            pre, dec = best[(impl, threads)]
            row[impl] = (bs * (NEW - 1) / dec, 1e3 * pre, threads)
        ratio = row["ours"][0] / row["hf"][0]
        print(
            f"{name:10s} bs={bs}  decode tok/s: ours {row['ours'][0]:8.1f} ({row['ours'][2]} thr)  "
            f"hf {row['hf'][0]:8.1f} ({row['hf'][2]} thr)  ratio {ratio:5.2f}x | prefill ms: "
            f"ours {row['ours'][1]:6.1f} hf {row['hf'][1]:6.1f} | same tokens: "
            f"{'yes' if same else 'NO'}"
        )
        figures.update(
            {
                f"decode_bs{bs}_ratio": ratio,
                f"decode_bs{bs}_tok_s": row["ours"][0],
                f"hf_decode_bs{bs}_tok_s": row["hf"][0],
                f"prefill_bs{bs}_ms": row["ours"][1],
                f"hf_prefill_bs{bs}_ms": row["hf"][1],
                f"same_tokens_bs{bs}": float(same),
            }
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=8, help="timed rounds (the GPT-2-small model runs a quarter)"
    )
    parser.add_argument("--skip-gpt2", action="store_true", help="only the quickstart model")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    native = native_step.load() is not None
    print(f"batch-1 decode step in C: {'yes' if native else 'no (torch path)'}")
    with tempfile.TemporaryDirectory() as tmp:
        shape, vocab = quickstart_shape()
        quick = build(shape, vocab, Path(tmp) / "quickstart")
        params = sum(
            p.numel() for p in Transformer(ModelConfig(**shape, vocab_size=vocab)).parameters()
        )
        print(
            f"quickstart model: d_model {shape['d_model']} x {shape['n_layer']} layers, "
            f"vocab {vocab}, {params / 1e6:.1f}M parameters"
        )
        figures = measure("quickstart", quick, vocab, args.repeats)
        gpt2 = {}
        if not args.skip_gpt2:
            small = build(GPT2_SMALL, 50257, Path(tmp) / "gpt2")
            print("gpt2-small-shaped model: 124M parameters, vocab 50257")
            gpt2 = measure("gpt2-small", small, 50257, max(1, args.repeats // 4))
    for key, value in figures.items():
        print(f"{key}={value:.3f}")
    for key, value in gpt2.items():
        print(f"gpt2_small_{key}={value:.3f}")


if __name__ == "__main__":
    main()
