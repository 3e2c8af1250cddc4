"""One request never harms another: sampling at the edges of what validation accepts, and a
sequence that fails alone, while other requests stream beside it."""

from __future__ import annotations

import concurrent.futures
import json

import httpx
import pytest

from instructgen.inference.engine import Engine
from instructgen.inference.sampling import SamplingParams

from .serve_support import server

EDGES = [
    {"top_p": 1e-300},
    {"temperature": 1e-300},
    {"temperature": 2, "top_p": 1e-300, "min_p": 1.0},
    {"repetition_penalty": 1e-300, "temperature": 1},
    {"top_k": 1, "min_p": 1.0, "temperature": 2},
]


@pytest.fixture(scope="module")
def url(llama_dir):
    with server(llama_dir) as base:
        yield base


def _stream(url: str) -> tuple[int, list[str]]:
    body = {"prompt": "a b c", "max_tokens": 40, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", url + "/v1/completions", json=body, timeout=60) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    return r.status_code, lines


@pytest.mark.parametrize("edge", EDGES, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_edge_sampling_values_answer_and_leave_other_streams_alone(url, edge):
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        others = [pool.submit(_stream, url) for _ in range(3)]
        odd = httpx.post(
            url + "/v1/completions",
            json={"prompt": "x", "max_tokens": 3, **edge},
            timeout=60,
        )
        assert odd.status_code == 200, odd.text
        assert odd.json()["choices"][0]["finish_reason"] in ("stop", "length")
        for future in others:
            status, lines = future.result()
            assert status == 200 and lines[-1] == "data: [DONE]"
            assert not any('"error"' in line for line in lines)
            assert json.loads(lines[-2][6:])["choices"][0]["finish_reason"] == "length"


def test_a_sequence_whose_sampling_fails_ends_alone(llama_dir):
    """A request whose settings break sampling (here: corrupted after validation, as a bug in a
    new sampling rule would) ends with finish_reason "error"; the batch around it goes on."""
    engine = Engine.from_dir(llama_dir)
    good = [
        engine.add_request("a b", SamplingParams(max_tokens=6, temperature=0.8, seed=i))
        for i in range(2)
    ]
    bad_params = SamplingParams(max_tokens=6, temperature=0.8, top_k=5)
    bad_params.top_k = "five"  # type: ignore[assignment]
    bad = engine.add_request("a b", bad_params)
    while engine.has_unfinished():
        engine.step()
    assert [s.finish_reason for s in bad.sequences] == ["error"] and bad.error
    for request in good:
        assert [s.finish_reason for s in request.sequences] == ["length"]
        assert request.sequences[0].num_generated == 6


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/completions", '{"prompt": "a\\ud800b", "max_tokens": 2}', "prompt"),
        (
            "/v1/chat/completions",
            '{"messages": [{"role": "user", "content": "a\\ud800b"}], "max_tokens": 2}',
            "messages.0.content",
        ),
        ("/tokenize", '{"prompt": "a\\udc00"}', "prompt"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(url, path, body, field):
    r = httpx.post(url + path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == field and "surrogate" in error["message"]
    assert httpx.get(url + "/health").status_code == 200


def test_a_prompt_too_long_for_any_tokenization_is_refused_before_tokenizing(url):
    """Megabytes of prompt are a 400 at once (a character bound), and /health stays quick."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        big = pool.submit(
            httpx.post,
            url + "/v1/completions",
            json={"prompt": "word " * 1_500_000, "max_tokens": 1},
            timeout=60,
        )
        health = httpx.get(url + "/health", timeout=60)
        assert health.status_code == 200
        r = big.result()
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert "characters" in r.json()["error"]["message"]
    chat = httpx.post(
        url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x" * 2_000_000}], "max_tokens": 1},
        timeout=60,
    )
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "messages"


@pytest.mark.parametrize(
    ("path", "extra", "field"),
    [
        ("/v1/chat/completions", {"tool_choice": "auto"}, "tool_choice"),
        ("/v1/chat/completions", {"stream_options": {"include_usage": True}}, "stream_options"),
        ("/v1/completions", {"stream_options": {"include_usage": True}}, "stream_options"),
        (
            "/v1/chat/completions",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "n",
                        "schema": {"type": "string", "minLength": 3, "maxLength": 1},
                    },
                }
            },
            "json_schema",
        ),
    ],
)
def test_requests_openai_refuses_are_refused(url, path, extra, field):
    base = {"messages": [{"role": "user", "content": "hi"}]} if "chat" in path else {"prompt": "hi"}
    r = httpx.post(url + path, json={**base, "max_tokens": 2, **extra}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == field


def test_error_messages_do_not_show_source_paths():
    from instructgen.serve.app import error_response

    body = error_response(400, "bad grammar at /opt/lib/python3.11/site-packages/x/y.py:12").body
    assert b"site-packages" not in body and b"<source>" in body


def test_slow_bodies_are_closed_and_metrics_can_be_public(llama_dir):
    import socket
    import time

    with server(llama_dir, "--api-key", "k", "--public-metrics", "--body-timeout", "1") as base:
        assert httpx.get(base + "/metrics").status_code == 200  # no key needed
        host, port = base.removeprefix("http://").split(":")
        slow = []
        for _ in range(20):  # clients that send part of a body and then nothing
            conn = socket.create_connection((host, int(port)))
            conn.sendall(
                b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt"'
            )
            slow.append(conn)
        started = time.monotonic()
        for conn in slow:
            conn.settimeout(10)
            reply = conn.recv(4096)
            assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
            conn.close()
        assert time.monotonic() - started < 8
        ok = httpx.post(
            base + "/v1/completions",
            json={"prompt": "a", "max_tokens": 2},
            headers={"Authorization": "Bearer k"},
            timeout=30,
        )
        assert ok.status_code == 200
        metrics = httpx.get(base + "/metrics").text
        assert 'instructgen_http_responses_total{status="408"} 20.0' in metrics


def test_slow_headers_are_closed(llama_dir):
    """Slowloris: 300 connections that send half a request line and headers, then a byte now
    and then, get 408 and are closed after --header-timeout; so is a keep-alive connection
    trickling its second request; the server keeps answering everyone else meanwhile."""
    import socket
    import time

    with server(llama_dir, "--header-timeout", "1") as base:
        host, port = base.removeprefix("http://").split(":")
        slow = []
        for _ in range(300):
            conn = socket.create_connection((host, int(port)))
            conn.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(conn)
        kept = socket.create_connection((host, int(port)))
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        kept.settimeout(10)
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += kept.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        for _ in range(3):  # a byte at a time keeps neither connection alive
            for conn in (*slow[:10], kept):
                conn.sendall(b"a")
            assert httpx.get(base + "/health", timeout=5).status_code == 200
            time.sleep(0.3)
        for conn in (*slow, kept):
            conn.settimeout(10)
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
            assert b"request headers did not arrive within 1 s" in reply
            conn.close()
        assert time.monotonic() - started < 12
        ok = httpx.post(base + "/v1/completions", json={"prompt": "a", "max_tokens": 2}, timeout=30)
        assert ok.status_code == 200


def test_client_field_names_cannot_forge_or_flood_log_lines(url):
    body = '{"prompt": "x", "max_tokens": 1, "a\\nINFO:     forged line": 1, "%s": 1}' % (
        "k" * 200_000
    )
    r = httpx.post(
        url + "/v1/completions", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    lines = url.log().splitlines()
    assert not any(line.startswith("INFO:     forged") for line in lines)
    assert max(map(len, lines)) < 2000
    assert any("ignoring unknown request fields" in line for line in lines)


def test_sigterm_lets_streams_finish_then_ends_the_rest_with_an_error_event(
    tokenizer_dir, tmp_path
):
    """Within the grace period a short stream completes normally; a stream that would run past
    it ends with an error event and [DONE], never a cut body; new connections are refused."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    from .conftest import make_model_dir
    from .serve_support import free_port

    model = make_model_dir(
        tmp_path / "long", tokenizer_dir, "llama", d_model=128, n_layer=4, max_seq_len=4096
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "instructgen.serve", "--model", str(model), "--port", str(port)]
        + ["--shutdown-grace", "1", "--log-level", "warning", "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        results = {}

        def stream(name: str, tokens: int) -> None:
            body = {"prompt": "a", "max_tokens": tokens, "stream": True, "ignore_eos": True}
            with httpx.stream("POST", base + "/v1/completions", json=body, timeout=60) as r:
                results[name] = [line for line in r.iter_lines() if line.startswith("data: ")]

        threads = [
            threading.Thread(target=stream, args=("short", 10)),
            threading.Thread(target=stream, args=("long", 4000)),
        ]
        for t in threads:
            t.start()
        time.sleep(0.5)  # both streaming
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):
            httpx.get(base + "/health", timeout=2)
        for t in threads:
            t.join(30)
        assert results["short"][-1] == "data: [DONE]"
        assert '"finish_reason":"length"' in results["short"][-2].replace(" ", "")
        assert results["long"][-1] == "data: [DONE]"
        assert '"error"' in results["long"][-2]
        assert proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught
    finally:
        if proc.poll() is None:
            proc.kill()
