"""Server load: continuous batching against one-at-a-time, and a soak with bad and aborted requests.

A random Llama model (d_model 512, 8 layers by default: big enough that the model, not HTTP,
dominates a decode step) is served by `python -m instructgen.serve` on 127.0.0.1.

1. The same 32 streaming completions (64 tokens each, ignore_eos) are sent one at a time, then
   all at once: aggregate generated tokens/s of both, and their time to first token.
2. A soak of 2,000 requests from 32 concurrent clients: 10% malformed (bad JSON, wrong types,
   overlong prompts ...), 5% streams the client abandons after the first chunk, the rest short
   chat and completion requests, streamed or not. Counted: responses with a 5xx status; the
   server's health afterwards (and that its queue emptied); its resident memory growth over the
   soak (after a warm-up).

    python benchmarks/serve_load.py [--clients 32] [--tokens 64] [--soak 2000]

Traffic goes only to 127.0.0.1; every phase is bounded in count and time. Ends with one
`name=value` line per figure: serve_concurrency_ratio, ttft_p50_s, ttft_p99_s, soak_5xx,
rss_growth_pct (and the growth beyond what the prefix cache holds), ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

CORPUS = [
    "春天来了，花开了，小鸟在树上唱歌。我们一起去公园散步吧。",
    "The quick brown fox jumps over the lazy dog. Spring is the season of new beginnings.",
    "Write a short poem about the sea. The waves roll in and the gulls cry above the shore.",
    "客服：您好！我们的退货期限是30天，运费由我们承担。Returns are free within 30 days.",
    "Numbers: 12 + 30 = 42, 7 * 6 = 42, 100 - 58 = 42. 数字：一二三四五六七八九十。",
]
PHASE_TIMEOUT = 900  # seconds, per phase


def build_model(out: Path, d_model: int, layers: int) -> Path:
    import torch

    from instructgen.model.checkpoint import save_model
    from instructgen.model.transformer import ModelConfig, Transformer
    from instructgen.tokenizer import Tokenizer, train_tokenizer

    corpus = out / "corpus.txt"
    corpus.write_text("\n\n".join(CORPUS * 40), encoding="utf-8")
    tok = Tokenizer.from_dir(train_tokenizer([corpus], 1024, out / "tok", show_progress=False))
    config = ModelConfig(
        arch="llama",
        vocab_size=len(tok),
        d_model=d_model,
        n_layer=layers,
        n_head=8,
        n_kv_head=4,
        max_seq_len=512,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
        bos_token_id=tok.bos_id,
    )
    torch.manual_seed(0)
    return save_model(Transformer(config), out / "model", tokenizer=tok)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, clients: int, *flags: str) -> tuple[subprocess.Popen, str]:
    """`python -m instructgen.serve` on a free loopback port, with these extra flags."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "instructgen.serve", "--model", str(model), "--port", str(port)]
        + ["--max-batch", str(clients), "--max-queue", "256", "--log-level", "error", *flags],
        env=dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become healthy in 120 s")


async def stream_completion(client: httpx.AsyncClient, body: dict) -> tuple[float | None, int, str]:
    """(seconds to the first generated text, completion tokens, the text) of one streamed
    completion."""
    start = time.perf_counter()
    first, tokens, text = None, 0, ""
    async with client.stream("POST", "/v1/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            delta = "".join(c.get("text") or "" for c in chunk.get("choices", []))
            if first is None and delta:
                first = time.perf_counter() - start
            text += delta
    return first, tokens, text


def requests_for(count: int, tokens: int) -> list[dict]:
    return [
        {
            "prompt": CORPUS[i % len(CORPUS)],
            "max_tokens": tokens,
            "temperature": 0.8,
            "seed": i,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        for i in range(count)
    ]


async def throughput(url: str, bodies: list[dict], concurrent: bool) -> dict:
    limits = httpx.Limits(max_connections=len(bodies) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        start = time.perf_counter()
        if concurrent:
            results = await asyncio.gather(*(stream_completion(client, b) for b in bodies))
        else:
            results = [await stream_completion(client, b) for b in bodies]
        wall = time.perf_counter() - start
    ttfts = sorted(r[0] for r in results if r[0] is not None)
    tokens = sum(r[1] for r in results)
    return {"tok_s": tokens / wall, "tokens": tokens, "wall": wall, "ttfts": ttfts}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


MALFORMED = [
    b"{not json",
    b"[" * 5000,
    json.dumps({"prompt": "x", "max_tokens": "many"}).encode(),
    json.dumps({"prompt": "x", "temperature": -1}).encode(),
    json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode(),
    json.dumps({"messages": []}).encode(),
    json.dumps({"prompt": "x " * 600, "max_tokens": 16}).encode(),
    json.dumps({"prompt": [10**7], "max_tokens": 1}).encode(),
    json.dumps({"prompt": "x", "n": 10**6}).encode(),
    b'{"prompt": "x", "top_p": NaN}',
]


async def soak_one(client: httpx.AsyncClient, rng: random.Random, statuses: list[int]) -> None:
    roll = rng.random()
    chat = rng.random() < 0.5
    path = "/v1/chat/completions" if chat else "/v1/completions"
    if roll < 0.10:
        raw = rng.choice(MALFORMED)
        path = "/v1/chat/completions" if b"messages" in raw else "/v1/completions"
        r = await client.post(path, content=raw, headers={"Content-Type": "application/json"})
        statuses.append(r.status_code)
        return
    prompt = rng.choice(CORPUS)
    body: dict = {"max_tokens": rng.randint(4, 16), "temperature": rng.choice([0, 0.7])}
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    if roll < 0.15:  # abandoned mid-stream
        body.update(stream=True, max_tokens=200, ignore_eos=True)
        async with client.stream("POST", path, json=body) as r:
            statuses.append(r.status_code)
            async for line in r.aiter_lines():
                if line.startswith("data: ") and '"choices":[{' in line:
                    break
        return
    body["stream"] = rng.random() < 0.5
    if body["stream"]:
        async with client.stream("POST", path, json=body) as r:
            statuses.append(r.status_code)
            async for _ in r.aiter_lines():
                pass
    else:
        r = await client.post(path, json=body)
        statuses.append(r.status_code)


async def soak(url: str, count: int, clients: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    statuses: list[int] = []
    jobs = iter(range(count))
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            for _ in jobs:
                try:
                    await soak_one(client, rng, statuses)
                except httpx.HTTPError:
                    statuses.append(-1)  # a transport failure: counted apart from 5xx

        await asyncio.gather(*(worker() for _ in range(clients)))
    return statuses


def gauge(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--soak", type=int, default=2000)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp), args.d_model, args.layers)
        proc, url = start_server(model, args.clients)
        try:
            server = psutil.Process(proc.pid)
            bodies = requests_for(args.clients, args.tokens)
            asyncio.run(asyncio.wait_for(throughput(url, bodies[:2], False), 120))  # warm-up
            one = asyncio.run(asyncio.wait_for(throughput(url, bodies, False), PHASE_TIMEOUT))
            ttft_sum = gauge(url, "instructgen_time_to_first_token_seconds_sum")
            ttft_count = gauge(url, "instructgen_time_to_first_token_seconds_count")
            many = asyncio.run(asyncio.wait_for(throughput(url, bodies, True), PHASE_TIMEOUT))
            server_ttft = (gauge(url, "instructgen_time_to_first_token_seconds_sum") - ttft_sum) / (
                gauge(url, "instructgen_time_to_first_token_seconds_count") - ttft_count
            )
            # warm-up with the soak's own mix: the KV cache grows to the soak's sequence lengths
            # once (by doubling, never shrinking); growth after that would be a leak
            asyncio.run(
                asyncio.wait_for(soak(url, args.soak // 10, args.clients, 1), PHASE_TIMEOUT)
            )
            time.sleep(1.0)
            rss_before = server.memory_info().rss
            cache_before = gauge(url, "instructgen_prefix_cache_bytes")
            started = time.perf_counter()
            statuses = asyncio.run(
                asyncio.wait_for(soak(url, args.soak, args.clients), PHASE_TIMEOUT)
            )
            soak_s = time.perf_counter() - started
            time.sleep(1.0)  # let aborted requests leave the batch
            rss_after = server.memory_info().rss
            cache_growth = gauge(url, "instructgen_prefix_cache_bytes") - cache_before
            healthy = httpx.get(url + "/health").status_code == 200
            running = gauge(url, "instructgen_requests_running")
            waiting = gauge(url, "instructgen_requests_waiting")
        finally:
            proc.terminate()
            proc.wait(30)

    kinds = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"one at a time: {one['tokens']} tokens in {one['wall']:.1f} s")
    print(f"{args.clients} at once: {many['tokens']} tokens in {many['wall']:.1f} s")
    print(f"soak: {len(statuses)} responses in {soak_s:.1f} s, by status {kinds}")
    figures = {
        "serve_sequential_tok_s": round(one["tok_s"], 1),
        "serve_concurrent_tok_s": round(many["tok_s"], 1),
        "serve_concurrency_ratio": round(many["tok_s"] / one["tok_s"], 2),
        "ttft_p50_s": round(percentile(many["ttfts"], 0.5), 4),
        "ttft_p99_s": round(percentile(many["ttfts"], 0.99), 4),
        "ttft_sequential_p50_s": round(percentile(one["ttfts"], 0.5), 4),
        "ttft_server_mean_s": round(server_ttft, 4),
        "soak_requests": len(statuses),
        "soak_5xx": sum(1 for s in statuses if s >= 500),
        "soak_transport_errors": statuses.count(-1),
        "soak_healthy_after": int(healthy and running == 0 and waiting == 0),
        "rss_growth_pct": round(100 * (rss_after - rss_before) / rss_before, 2),
        # the prefix cache fills up to its bound (--prefix-cache-mb) by design: growth beyond it
        "rss_growth_beyond_prefix_cache_pct": round(
            100 * (rss_after - rss_before - cache_growth) / rss_before, 2
        ),
    }
    for name, value in figures.items():
        print(f"{name}={value}")
    if figures["soak_5xx"] or not figures["soak_healthy_after"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
