"""Prefix caching: time to first token with a 300-token shared system prompt, with and without.

serve_load.py's model (a random Llama, d_model 512, 8 layers) is served by
`python -m instructgen.serve` on 127.0.0.1 twice, one server after the other: without the prefix
cache (--prefix-cache-mb 0), then with it (the default, 256). Both get the same streamed greedy
completions, each a 300-token system prompt followed by its own short question: a warm-up (which
also fills the cache), --requests one at a time, then --concurrent new ones at once.

    python benchmarks/prefix_cache.py [--requests 16] [--concurrent 8] [--system 300]

Ends with one `name=value` line per figure: ttft_prefix_uncached_s and ttft_prefix_cached_s
(medians, one at a time), prefix_cache_ttft_ratio (uncached / cached), the same at once
(ttft_prefix_concurrent_*), prefix_cache_hit_rate (hit tokens / looked-up tokens, from the
cached server's /metrics) and prefix_cache_same_text (1: both servers wrote the same text for
every request).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import CORPUS, build_model, gauge, start_server, stream_completion  # noqa: E402

PHASE_TIMEOUT = 300  # seconds, per phase


def prompts(model: Path, system: int, count: int, first: int) -> list[list[int]]:
    """`count` prompts as token ids: the same `system` tokens, then question `first`, `first`+1..."""
    from instructgen.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(model)
    shared = tok.encode(" ".join(CORPUS * 40))[:system]
    assert len(shared) == system, "the corpus is too short for the system prompt"
    return [
        shared + tok.encode(f"\nQuestion {i}: what is {i} + {i}?")
        for i in range(first, first + count)
    ]


def body(prompt: list[int]) -> dict:
    return {"prompt": prompt, "max_tokens": 8, "temperature": 0, "ignore_eos": True, "stream": True}


async def run(url: str, batches: list[list[list[int]]], concurrent: list[bool]) -> list[list]:
    """(ttft, tokens, text) per prompt, batch by batch: one at a time or all at once."""
    results = []
    async with httpx.AsyncClient(base_url=url, timeout=PHASE_TIMEOUT) as client:
        for batch, together in zip(batches, concurrent):
            jobs = [stream_completion(client, body(p)) for p in batch]
            if together:
                results.append(await asyncio.gather(*jobs))
            else:
                results.append([await job for job in jobs])
    return results


def serve_and_measure(model: Path, batches: list, cache_mb: float) -> tuple[list, float]:
    """The results of every batch on a fresh server, and its prefix cache hit rate."""
    proc, url = start_server(model, 32, "--prefix-cache-mb", str(cache_mb))
    try:
        results = asyncio.run(run(url, batches, [False, False, True]))
        queries = gauge(url, "instructgen_prefix_cache_queries_total")
        hits = gauge(url, "instructgen_prefix_cache_hits_total")
    finally:
        proc.terminate()
        proc.wait(30)
    return results, hits / queries if queries else 0.0


def median_ttft(results: list) -> float:
    return round(statistics.median(r[0] for r in results if r[0] is not None), 4)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--system", type=int, default=300, help="shared system prompt tokens")
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp), args.d_model, args.layers)
        batches = [
            prompts(model, args.system, 1, 0),  # warm-up
            prompts(model, args.system, args.requests, 1),
            prompts(model, args.system, args.concurrent, 1 + args.requests),
        ]
        uncached, _ = serve_and_measure(model, batches, 0)
        cached, hit_rate = serve_and_measure(model, batches, 256)

    texts = [[r[2] for r in batch] for batch in uncached]
    figures = {
        "ttft_prefix_uncached_s": median_ttft(uncached[1]),
        "ttft_prefix_cached_s": median_ttft(cached[1]),
        "prefix_cache_ttft_ratio": round(median_ttft(uncached[1]) / median_ttft(cached[1]), 2),
        "ttft_prefix_concurrent_uncached_s": median_ttft(uncached[2]),
        "ttft_prefix_concurrent_cached_s": median_ttft(cached[2]),
        "prefix_cache_hit_rate": round(hit_rate, 3),
        "prefix_cache_same_text": int(texts == [[r[2] for r in batch] for batch in cached]),
    }
    for name, value in figures.items():
        print(f"{name}={value}")
    if not figures["prefix_cache_same_text"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
