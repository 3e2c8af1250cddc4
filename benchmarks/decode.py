"""Decode speed: instructgen's native engine vs Hugging Face `generate`, same weights, one run.

Greedy decoding of 128 new tokens after a 32-token prompt, at batch 1 and batch 8, on two
models built here with random weights and saved as one model directory that both load:
the quickstart's model (instructgen/quickstart.py FULL plan) and a GPT-2-small-shaped model
(124M parameters). Runs alternate between the two implementations and the best of --repeats
counts, so a noisy neighbour on a shared CPU hurts both alike. Hugging Face runs at torch's
default thread count and at one thread, and its faster setting is the one compared; the
engine uses its own defaults. Decode time is the whole generation minus a one-token run
(the prefill). Both must produce the same tokens.

    python benchmarks/decode.py [--repeats 3] [--skip-gpt2]

Ends with one `name=value` line per figure; decode_bs1_ratio and decode_bs8_ratio are the
quickstart model's.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import torch

from instructgen.inference import Engine, SamplingParams
from instructgen.model.checkpoint import save_model
from instructgen.model.transformer import ModelConfig, Transformer
from instructgen.quickstart import FULL
from instructgen.tokenizer import train_tokenizer

PROMPT, NEW = 32, 128
GPT2_SMALL = dict(arch="gpt2", d_model=768, n_layer=12, n_head=12, max_seq_len=1024)


def peak_rss_reset() -> None:
    """Start a new peak-memory window (Linux: /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    except (OSError, AttributeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(config: dict, vocab_size: int, root: Path) -> Path:
    """A random model directory (with a small tokenizer for the engine's bookkeeping)."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. 春天来了。\n" * 50)
    tok = train_tokenizer([corpus], 300, root / "tok", show_progress=False)
    torch.manual_seed(0)
    model = Transformer(ModelConfig(**config, vocab_size=vocab_size))
    return save_model(model, root / "model", tokenizer=tok)


class Hf:
    def __init__(self, model_dir: Path):
        from transformers import AutoModelForCausalLM, GenerationConfig

        self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self.config = GenerationConfig

    def run(self, prompts: torch.Tensor, new: int, threads: int | None) -> torch.Tensor:
        config = self.config(max_new_tokens=new, do_sample=False, eos_token_id=None, pad_token_id=0)
        old = torch.get_num_threads()
        torch.set_num_threads(threads or old)
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    prompts, attention_mask=torch.ones_like(prompts), generation_config=config
                )
        finally:
            torch.set_num_threads(old)
        return out[:, prompts.size(1) :]


class Ours:
    def __init__(self, model_dir: Path):
        self.engine = Engine.from_dir(model_dir, max_batch_size=8)

    def run(self, prompts: torch.Tensor, new: int) -> torch.Tensor:
        params = SamplingParams(temperature=0, max_tokens=new, ignore_eos=True)
        requests = self.engine.generate(prompts.tolist(), params)
        return torch.tensor([r.sequences[0].output_ids for r in requests])


def timed(fn, *args) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def measure(name: str, model_dir: Path, vocab: int, repeats: int) -> dict[str, float]:
    hf, ours = Hf(model_dir), Ours(model_dir)
    figures: dict[str, float] = {}
    for bs in (1, 8):
        prompts = torch.randint(0, vocab, (bs, PROMPT), generator=torch.Generator().manual_seed(bs))
        hf.run(prompts, 4, None), ours.run(prompts, 4)  # warm up
        best = {k: float("inf") for k in ("hf", "hf1", "hf_pre", "ours", "ours_pre")}
        peaks = {"hf": 0.0, "ours": 0.0}
        same = True
        for _ in range(repeats):
            peak_rss_reset()
            t, hf_out = timed(hf.run, prompts, NEW, None)
            best["hf"] = min(best["hf"], t)
            best["hf1"] = min(best["hf1"], timed(hf.run, prompts, NEW, 1)[0])
            best["hf_pre"] = min(best["hf_pre"], timed(hf.run, prompts, 1, None)[0], timed(hf.run, prompts, 1, 1)[0])
            peaks["hf"] = max(peaks["hf"], peak_rss_mb())
            peak_rss_reset()
            t, our_out = timed(ours.run, prompts, NEW)
            best["ours"] = min(best["ours"], t)
            best["ours_pre"] = min(best["ours_pre"], timed(ours.run, prompts, 1)[0])
            peaks["ours"] = max(peaks["ours"], peak_rss_mb())
            same &= bool(torch.equal(hf_out, our_out))
        hf_total = min(best["hf"], best["hf1"])
        hf_threads = "default" if best["hf"] <= best["hf1"] else "1"
        hf_decode = bs * (NEW - 1) / max(hf_total - best["hf_pre"], 1e-9)
        our_decode = bs * (NEW - 1) / max(best["ours"] - best["ours_pre"], 1e-9)
        ratio = our_decode / hf_decode
        print(
            f"{name:10s} bs={bs}  decode tok/s: ours {our_decode:8.1f}  hf {hf_decode:8.1f} "
            f"(threads {hf_threads})  ratio {ratio:5.2f}x | end-to-end {bs * NEW / best['ours']:7.1f} "
            f"vs {bs * NEW / hf_total:7.1f} tok/s | prefill ms: ours {1e3 * best['ours_pre']:6.1f} "
            f"hf {1e3 * best['hf_pre']:6.1f} | peak RSS MB: ours {peaks['ours']:6.0f} hf "
            f"{peaks['hf']:6.0f} | same tokens: {'yes' if same else 'NO'}"
        )
        figures.update(
            {
                f"decode_bs{bs}_ratio": ratio,
                f"decode_bs{bs}_tok_s": our_decode,
                f"hf_decode_bs{bs}_tok_s": hf_decode,
                f"prefill_bs{bs}_ms": 1e3 * best["ours_pre"],
                f"hf_prefill_bs{bs}_ms": 1e3 * best["hf_pre"],
                f"peak_rss_bs{bs}_mb": peaks["ours"],
                f"hf_peak_rss_bs{bs}_mb": peaks["hf"],
                f"same_tokens_bs{bs}": float(same),
            }
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-gpt2", action="store_true", help="only the quickstart model")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        quick = build(FULL.model, FULL.vocab_size, Path(tmp) / "quickstart")
        params = sum(p.numel() for p in Transformer(ModelConfig(**FULL.model, vocab_size=FULL.vocab_size)).parameters())
        print(f"quickstart model: {FULL.model}, vocab {FULL.vocab_size}, {params / 1e6:.1f}M parameters")
        figures = measure("quickstart", quick, FULL.vocab_size, args.repeats)
        gpt2 = {}
        if not args.skip_gpt2:
            small = build(GPT2_SMALL, 50257, Path(tmp) / "gpt2")
            print("gpt2-small-shaped model: 124M parameters, vocab 50257")
            gpt2 = measure("gpt2-small", small, 50257, args.repeats)
    for key, value in figures.items():
        print(f"{key}={value:.3f}")
    for key, value in gpt2.items():
        print(f"gpt2_small_{key}={value:.3f}")


if __name__ == "__main__":
    main()
