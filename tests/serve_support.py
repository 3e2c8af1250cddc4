"""Start the real server (`python -m instructgen.serve`) as a subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """The server's base URL; .log() is what it has logged so far."""

    log_path: str

    def log(self) -> str:
        return Path(self.log_path).read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def server(model_dir: Path, *args: str, timeout: float = 90, cli: bool = False) -> Iterator[str]:
    """Run the server until the block ends; yields its base URL (http://127.0.0.1:PORT).

    cli=True runs `python -m instructgen serve` (which has the --support-* flags) instead of
    `python -m instructgen.serve`. Waits for /health to answer 200; the server's log is shown
    if it fails to come up."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    entry = ["instructgen", "serve"] if cli else ["instructgen.serve"]
    proc = subprocess.Popen(
        [sys.executable, "-m", *entry, "--model", str(model_dir)]
        + ["--port", str(port), "--log-level", "warning", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.log_path = log.name
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}): {_read(log.name)}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not come up: {_read(log.name)}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        os.unlink(log.name)


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")[-4000:]


def sse_events(response: httpx.Response) -> list[str]:
    """The `data:` payloads of a server-sent-events response, in order."""
    events = []
    for block in response.text.split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            events.append(block[len("data: ") :])
    return events
