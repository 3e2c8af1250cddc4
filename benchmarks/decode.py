"""Decode speed: instructgen's native engine vs Hugging Face `generate`, same weights, one run;
each figure also as a fraction of its memory-bandwidth roofline; and int8 weight-only decoding.

Greedy decoding after a 32-token prompt (128 new tokens on the quickstart model, 64 on GPT-2-small),
at batch 1 and batch 8, on two models built here with random weights and saved as one model
directory that all load: the quickstart's model (the shape of the shipped base it fine-tunes)
and a GPT-2-small-shaped model (124M parameters). Runs alternate between the implementations
and the best of --repeats counts, so a noisy neighbour on a shared CPU hurts all alike. Each runs
at torch's default thread count and at one thread, and each one's faster setting is compared.
Decode time runs from the first generated token to the last; prefill is the time to the first
token. Ours and HF must produce the same tokens. The engine's steps run in C
(inference/native_step.py) where a C compiler is found (INSTRUCTGEN_NATIVE=0: the torch path).

Memory is each implementation's peak resident growth from loading through its first batch-1 and
batch-8 generations (weights, caches, buffers).

Roofline: a decode step reads every weight once for all the rows of its batch, so

    fraction = weight bytes per step × steps/s / bandwidth,   steps/s = tokens/s / batch

with the bandwidth of a STREAM-style copy measured in this run: bytes read + written / time,
over two arrays of 2 × L3 each, best of 5, at torch's thread count and at one thread (the larger
is the roofline). A fraction near 1 means decoding runs at the memory's speed; above 1, part of
the weights came from cache (a small model's, or an int8 one's) or read faster than a copy
writes (a copy moves its written bytes twice; the engine's weights sit on huge pages).

int8: the engine with weight-only int8 linear layers (`--quantize int8`, inference/quantize.py)
on the same model, in the same alternation: its tokens/s and ratio to the float32 engine.
Perplexity: the shipped base model on the built-in val split (`data builtin`, seed 0), float32 vs
int8 (evaluate/perplexity.py, disjoint windows), and their relative difference.

    python benchmarks/decode.py [--repeats 8] [--skip-gpt2]

Ends with one `name=value` line per figure; decode_bs1_ratio and decode_bs8_ratio are the
quickstart model's, gpt2_small_* the GPT-2-small model's.
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

PROMPT = 32
GPT2_SMALL = dict(arch="gpt2", d_model=768, n_layer=12, n_head=12, max_seq_len=1024)
_TOKEN_IDS = ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")
IMPLS = ("hf", "ours", "int8")


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


# ----------------------------------------------------------------------------------------------
# memory bandwidth (the roofline)


def _l3_bytes() -> int:
    """The last-level cache's size from sysfs (32 MiB where it cannot be read)."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip()
            scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1], 1)
            sizes.append(int(text.rstrip("KMG")) * scale)
        except (OSError, ValueError, IndexError):
            continue
    return max(sizes, default=32 * 2**20)


def _available_bytes() -> int:
    try:
        text = Path("/proc/meminfo").read_text()
        return int(re.search(r"MemAvailable:\s+(\d+)", text).group(1)) * 1024
    except (OSError, AttributeError):
        return 4 * 2**30


def bandwidth() -> dict[str, float]:
    """GB/s of a copy between two arrays of 2 × L3 each (read + written bytes over the best of 5
    times), at torch's thread count and at one thread."""
    size = min(max(2 * _l3_bytes(), 64 * 2**20), _available_bytes() // 8)
    src = torch.ones(size // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch
    default = torch.get_num_threads()
    figures = {}
    for threads, key in ((default, "bandwidth_gb_s"), (1, "bandwidth_1thr_gb_s")):
        torch.set_num_threads(threads)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            dst.copy_(src)
            times.append(time.perf_counter() - start)
        figures[key] = 2 * src.nbytes / min(times) / 1e9
    torch.set_num_threads(default)
    print(
        f"memory bandwidth (copy of 2 x {size / 2**20:.0f} MiB): "
        f"{figures['bandwidth_gb_s']:.1f} GB/s at {default} threads, "
        f"{figures['bandwidth_1thr_gb_s']:.1f} GB/s at 1 thread"
    )
    return figures


def weight_bytes(engine: Engine) -> int:
    """Bytes of the weights a decode step reads: every linear layer and the output head."""
    linears = [x for layer in engine.decoder.layers for x in (layer[1], layer[2], *layer[4:])]
    tensors = [
        t
        for x in [*linears, engine.decoder.lm_head]
        for t in (x.weight, x.q, x.scale, x.bias)
        if t is not None
    ]
    return sum(t.nbytes for t in tensors)


# ----------------------------------------------------------------------------------------------
# the runs


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


def run_hf(model, prompts: torch.Tensor, new: int) -> tuple[float, float, torch.Tensor]:
    """(prefill seconds, decode seconds, new tokens) of one greedy generate()."""
    config = GenerationConfig(
        max_new_tokens=new, do_sample=False, eos_token_id=None, pad_token_id=0
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


def run_ours(engine: Engine, prompts: torch.Tensor, new: int) -> tuple[float, float, torch.Tensor]:
    params = SamplingParams(temperature=0, max_tokens=new, ignore_eos=True)
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


def load_all(model_dir: Path, prompts: dict[int, torch.Tensor], new: int) -> tuple[dict, dict]:
    """({impl: loaded model or engine}, memory figures): each one's peak resident growth from
    loading it through its first batch-1 and batch-8 generations (int8: resident growth after
    them, as it loads the float32 weights first)."""
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(model_dir)  # import transformers' model code first
    loaders = {
        "hf": lambda: AutoModelForCausalLM.from_pretrained(model_dir).eval(),
        "ours": lambda: Engine.from_dir(model_dir, max_batch_size=8),
        "int8": lambda: Engine.from_dir(model_dir, max_batch_size=8, quantize="int8"),
    }
    loaded, memory = {}, {}
    for impl, loader in loaders.items():
        start = peak_window()
        loaded[impl] = loader()
        for bs in (1, 8):
            (run_hf if impl == "hf" else run_ours)(loaded[impl], prompts[bs], new)
        memory[impl] = rss_mb("VmRSS" if impl == "int8" else "VmHWM") - start
    return loaded, memory


def best_times(
    loaded: dict, prompts: torch.Tensor, new: int, repeats: int
) -> tuple[dict[tuple[str, int], list[float]], dict[str, float]]:
    """({(impl, threads): best [prefill, decode] seconds}, {check: fraction}): the runs alternate
    implementations and thread counts. Checks: ours == hf tokens, int8's tokens equal to ours."""
    best: dict[tuple[str, int], list[float]] = {}
    same, agree = True, []
    default = torch.get_num_threads()
    for _ in range(repeats):
        for threads in sorted({default, 1}):
            torch.set_num_threads(threads)
            outs = {}
            for impl in IMPLS:
                if impl == "hf":
                    pre, dec, outs[impl] = run_hf(loaded[impl], prompts, new)
                else:
                    loaded[impl].threads = threads
                    pre, dec, outs[impl] = run_ours(loaded[impl], prompts, new)
                old = best.setdefault((impl, threads), [pre, dec])
                best[(impl, threads)] = [min(old[0], pre), min(old[1], dec)]
            same &= bool(torch.equal(outs["ours"], outs["hf"]))
            agree.append((outs["int8"] == outs["ours"]).float().mean().item())
    torch.set_num_threads(default)
    return best, {"same_tokens": float(same), "int8_same_tokens": min(agree)}


def measure(
    name: str, model_dir: Path, vocab: int, repeats: int, new: int, bandwidth_gb_s: float
) -> dict[str, float]:
    """Decode and prefill figures at batch 1 and 8, roofline fractions, and memory."""
    prompts = warm_prompts(vocab)
    loaded, memory = load_all(model_dir, prompts, new)
    step_bytes = {"hf": weight_bytes(loaded["ours"]), "ours": weight_bytes(loaded["ours"])}
    step_bytes["int8"] = weight_bytes(loaded["int8"])
    print(
        f"{name:10s} memory MB: ours {memory['ours']:.0f}  hf {memory['hf']:.0f}  "
        f"(ratio {memory['ours'] / memory['hf']:.2f}x)  int8 engine {memory['int8']:.0f} "
        f"resident | weight MB read per step: float32 {step_bytes['ours'] / 1e6:.0f}, "
        f"int8 {step_bytes['int8'] / 1e6:.0f}"
    )
    figures = {
        "memory_mb": memory["ours"],
        "hf_memory_mb": memory["hf"],
        "memory_ratio": memory["ours"] / memory["hf"],
        "int8_memory_mb": memory["int8"],
    }
    for bs in (1, 8):
        best, checks = best_times(loaded, prompts[bs], new, repeats)
        row = {}
        for impl in IMPLS:
            threads = min((t for i, t in best if i == impl), key=lambda t: best[(impl, t)][1])
            pre, dec = best[(impl, threads)]
            tok_s = bs * (new - 1) / dec
            roofline = step_bytes[impl] * tok_s / bs / (bandwidth_gb_s * 1e9)
            row[impl] = (tok_s, 1e3 * pre, threads, roofline)
        print_row(name, bs, row, checks)
        figures.update(row_figures(bs, row, checks))
    return figures


def print_row(name: str, bs: int, row: dict, checks: dict[str, float]) -> None:
    (ours, pre, thr, roof), (hf, hf_pre, hf_thr, hf_roof) = row["ours"], row["hf"]
    q8, q8_pre, q8_thr, q8_roof = row["int8"]
    print(
        f"{name:10s} bs={bs}  decode tok/s: ours {ours:8.1f} ({thr} thr, {roof:.0%} of roofline)"
        f"  hf {hf:8.1f} ({hf_thr} thr, {hf_roof:.0%})  ratio {ours / hf:5.2f}x | prefill ms: "
        f"ours {pre:6.1f} hf {hf_pre:6.1f} | same tokens: "
        f"{'yes' if checks['same_tokens'] else 'NO'}\n"
        f"{'':10s} bs={bs}  int8 tok/s: {q8:8.1f} ({q8_thr} thr, {q8_roof:.0%} of roofline)  "
        f"{q8 / ours:5.2f}x the float32 engine | prefill ms: {q8_pre:6.1f} | same tokens as "
        f"float32: {checks['int8_same_tokens']:.0%}"
    )


def row_figures(bs: int, row: dict, checks: dict[str, float]) -> dict[str, float]:
    (ours, pre, _, roof), (hf, hf_pre, _, hf_roof), q8 = row["ours"], row["hf"], row["int8"]
    return {
        f"decode_bs{bs}_ratio": ours / hf,
        f"decode_bs{bs}_tok_s": ours,
        f"hf_decode_bs{bs}_tok_s": hf,
        f"decode_bs{bs}_roofline": roof,
        f"hf_decode_bs{bs}_roofline": hf_roof,
        f"prefill_bs{bs}_ms": pre,
        f"hf_prefill_bs{bs}_ms": hf_pre,
        f"same_tokens_bs{bs}": checks["same_tokens"],
        f"int8_decode_bs{bs}_tok_s": q8[0],
        f"int8_prefill_bs{bs}_ms": q8[1],
        f"int8_decode_bs{bs}_ratio": q8[0] / ours,
        f"int8_decode_bs{bs}_roofline": q8[3],
        f"int8_same_tokens_bs{bs}": checks["int8_same_tokens"],
    }


def perplexities() -> dict[str, float]:
    """The shipped base model's perplexity on the built-in val split, float32 and int8."""
    from instructgen.data.builtin import generate
    from instructgen.evaluate.perplexity import perplexity

    splits, _ = generate(seed=0)
    records = splits["val"]
    text = "\n\n".join("\n".join(m["content"] for m in r["messages"]) for r in records)
    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # a 3.5M-parameter model: one thread is fastest, and calm on a busy CPU
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "val.txt"
        path.write_text(text, encoding="utf-8")
        seq_len = load_config(SHIPPED_BASE).max_seq_len
        fp32, int8 = (
            perplexity(SHIPPED_BASE, path, stride=seq_len, quantize=q)["perplexity"]
            for q in (None, "int8")
        )
    torch.set_num_threads(threads)
    diff = int8 / fp32 - 1
    print(
        f"perplexity of the shipped base on the builtin val split ({len(records)} records): "
        f"float32 {fp32:.3f}  int8 {int8:.3f}  ({diff:+.2%})"
    )
    return {"ppl_fp32": fp32, "ppl_int8": int8, "ppl_int8_rel_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=6, help="timed rounds (the GPT-2-small model runs a third)"
    )
    parser.add_argument("--skip-gpt2", action="store_true", help="only the quickstart model")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    native = native_step.load() is not None
    print(f"decode step in C: {'yes' if native else 'no (torch path)'}")
    figures = bandwidth()
    figures.update(perplexities())
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
        figures.update(
            measure("quickstart", quick, vocab, args.repeats, 128, figures["bandwidth_gb_s"])
        )
        gpt2 = {}
        if not args.skip_gpt2:
            small = build(GPT2_SMALL, 50257, Path(tmp) / "gpt2")
            print("gpt2-small-shaped model: 124M parameters, vocab 50257")
            repeats = max(1, args.repeats // 3)
            gpt2 = measure("gpt2-small", small, 50257, repeats, 64, figures["bandwidth_gb_s"])
    for key, value in figures.items():
        print(f"{key}={value:.4g}")
    for key, value in gpt2.items():
        print(f"gpt2_small_{key}={value:.4g}")


if __name__ == "__main__":
    main()
