"""A scripted OpenAI-compatible server for the evaluation tests: real HTTP on 127.0.0.1, the real
protocol (/v1/models, /v1/chat/completions, /v1/completions, with `usage`), answers chosen by a
Python function of the request. A function may raise Refuse(status) to answer with an error."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class Refuse(Exception):
    def __init__(self, status: int = 400, message: str = "refused"):
        super().__init__(message)
        self.status, self.message = status, message


def _tokens(text: str) -> int:
    return len(text.split())


def make_app(respond: Callable[[Any], str], name: str = "stub-model") -> FastAPI:
    """respond(messages or prompt string) -> the answer text."""
    app = FastAPI()
    app.state.requests = 0

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": "test"}],
        }

    async def answer(request: Request, chat: bool):
        body = await request.json()
        app.state.requests += 1
        prompt = body["messages"] if chat else body["prompt"]
        try:
            text = respond(prompt)
        except Refuse as exc:
            error = {
                "message": exc.message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            return JSONResponse({"error": error}, status_code=exc.status)
        seen = " ".join(m["content"] for m in prompt) if chat else prompt
        usage = {"prompt_tokens": _tokens(seen), "completion_tokens": _tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if chat:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": [choice],
            "usage": usage,
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await answer(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await answer(request, chat=False)

    return app


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run `app` on a free loopback port in a thread; yields the base URL (…/v1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("stub server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
