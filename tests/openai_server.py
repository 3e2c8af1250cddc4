"""A small OpenAI-compatible HTTP server for tests: /v1/models, /v1/completions and
/v1/chat/completions (with server-sent-event streaming), backed by an instructgen LLM.

It speaks the real protocol, so the official `openai` SDK and our `openai` backend talk to it
unchanged. It serves one request at a time (the engine is not shared across threads here).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from instructgen.errors import UserError
from instructgen.inference.backends import LLM, Completion
from instructgen.inference.sampling import SamplingParams

_SAMPLING = (
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "top_k",
    "min_p",
    "repetition_penalty",
    "min_tokens",
    "ignore_eos",
    "stop_token_ids",
)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


def _sampling(body: dict[str, Any], chat: bool) -> dict[str, Any]:
    kwargs = {k: body[k] for k in _SAMPLING if body.get(k) is not None}
    kwargs["max_tokens"] = body.get("max_tokens", None if chat else 16)
    if chat and body.get("logprobs"):
        kwargs["logprobs"] = body.get("top_logprobs") or 0
    elif not chat and body.get("logprobs") is not None:
        kwargs["logprobs"] = body["logprobs"]
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        kwargs["json_schema"] = fmt["json_schema"]["schema"]
    elif fmt.get("type") == "json_object":
        kwargs["json_mode"] = True
    return kwargs


def _usage(c: Completion) -> dict[str, int]:
    u = c.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }


def make_app(llm: LLM, name: str = "test-model", api_key: str | None = None) -> FastAPI:
    app = FastAPI()
    lock = threading.Lock()

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return _error(401, "Incorrect API key provided.", "authentication_error")
        return await call_next(request)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        model = {"id": name, "object": "model", "created": 0, "owned_by": "instructgen"}
        return {"object": "list", "data": [model]}

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await request.json()
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        return _respond(body, prompts, chat=False)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        return _respond(body, [body["messages"]], chat=True)

    def _respond(body: dict[str, Any], prompts: list[Any], chat: bool):
        try:
            kwargs = _sampling(body, chat)
            if body.get("stream"):
                if len(prompts) != 1:
                    return _error(400, "stream one prompt at a time")
                SamplingParams.from_kwargs(**kwargs)  # bad values: 400 before the stream starts
                events = _events(prompts[0], kwargs, chat)
                return StreamingResponse(events, media_type="text/event-stream")
            with lock:
                done = llm.generate_batch(prompts, **kwargs)
        except UserError as exc:
            return _error(400, str(exc))
        return _completion_body(done, chat, kwargs.get("logprobs") is not None)

    def _completion_body(done: list[Completion], chat: bool, logprobs: bool) -> dict[str, Any]:
        choices = []
        for p, completion in enumerate(done):
            for j, c in enumerate(completion.choices):
                index = p * len(completion.choices) + j
                if chat:
                    lp = None
                    if logprobs and c.tokens is not None:
                        lp = {"content": [_chat_logprob(c, i) for i in range(len(c.tokens))]}
                    message = {"role": "assistant", "content": c.text}
                    choices.append(
                        {
                            "index": index,
                            "message": message,
                            "logprobs": lp,
                            "finish_reason": c.finish_reason,
                        }
                    )
                else:
                    lp = None
                    if logprobs and c.tokens is not None:
                        offsets = [sum(len(t) for t in c.tokens[:i]) for i in range(len(c.tokens))]
                        lp = {
                            "tokens": c.tokens,
                            "token_logprobs": c.logprobs,
                            "top_logprobs": c.top_logprobs,
                            "text_offset": offsets,
                        }
                    choices.append(
                        {
                            "index": index,
                            "text": c.text,
                            "logprobs": lp,
                            "finish_reason": c.finish_reason,
                        }
                    )
        usage = {
            k: sum(_usage(c)[k] for c in done)
            for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": usage,
        }

    def _events(prompt: Any, kwargs: dict[str, Any], chat: bool) -> Iterator[str]:
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(text: str | None, finish: str | None, first: bool = False) -> str:
            if chat:
                delta = {"role": "assistant", "content": ""} if first else {}
                if text:
                    delta["content"] = text
                choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
            data = {
                "id": ident,
                "object": kind,
                "created": created,
                "model": name,
                "choices": [choice],
            }
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        with lock:
            if chat:
                yield chunk(None, None, first=True)
            for delta in llm.stream(prompt, **kwargs):
                yield chunk(delta, None)
            yield chunk(None, "stop")
            yield "data: [DONE]\n\n"

    return app


def _chat_logprob(c: Any, i: int) -> dict[str, Any]:
    top = [
        {"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in c.top_logprobs[i].items()
    ]
    token = c.tokens[i]
    return {
        "token": token,
        "logprob": c.logprobs[i],
        "bytes": list(token.encode()),
        "top_logprobs": top,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(llm: LLM, *, api_key: str | None = None) -> Iterator[str]:
    """Serve `llm` on a free loopback port in a thread; yields the base URL (…/v1)."""
    port = free_port()
    config = uvicorn.Config(
        make_app(llm, api_key=api_key), host="127.0.0.1", port=port, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
