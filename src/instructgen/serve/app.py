"""The OpenAI-compatible HTTP server: FastAPI app factory, errors, access control, and `run`.

    app = create_app("runs/quickstart/model", api_keys=["sk-local"])   # ASGI app
    run("runs/quickstart/model", port=8000)                           # uvicorn on 127.0.0.1

Applications add their routes and pages through `extensions` (serve.extensions.Extension).

Every error is OpenAI's shape {"error": {"message", "type", "param", "code"}}: validation 400
(not FastAPI's 422), bad or missing key 401, unknown route or model 404, body too large 413,
queue full 429 (with Retry-After), model loading 503. The model loads on a background thread
after the socket opens; /health answers 503 until it is ready. Request bodies and keys are
never logged.
"""

from __future__ import annotations

import hmac
import logging
import re
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from instructgen import __version__, pages
from instructgen.errors import UserError
from instructgen.inference.engine import Engine, check_model_dir
from instructgen.inference.quantize import check_quantize
from instructgen.serve import completions as api
from instructgen.serve.extensions import Extension
from instructgen.serve.metrics import Metrics
from instructgen.serve.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    DetokenizeRequest,
    DetokenizeResponse,
    ErrorInfo,
    ErrorResponse,
    ModelCard,
    ModelList,
    TokenizeRequest,
    TokenizeResponse,
)
from instructgen.serve.scheduler import Scheduler
from instructgen.serve.state import ServerState

__all__ = ["create_app", "run", "error_response"]

log = logging.getLogger("instructgen.serve")

_UNION_TAG = re.compile(r"(constrained-)?(str|int|float|bool)|.*\[.*\]|function-.*")
# reachable without a key: the chat page (its API calls send the key), the load balancer's
# probe, the extensions' public paths, and with public_metrics the metrics
_OPEN_PATHS = ("/", "/health")
_METRICS_PATHS = ("/metrics", "/openapi.json")  # open too with public_metrics
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}
_ERROR_CODES = {
    401: "invalid_api_key",
    408: "request_timeout",
    413: "request_too_large",
    429: "rate_limit_exceeded",
}


# a file of the server's own code or a library's, as an exception message may quote it
_SOURCE_PATH = re.compile(
    r"(?:[A-Za-z]:)?(?:[/\\][\w.+-]+){2,}\.(?:pyx|py|cpp|cc|c|hpp|h|rs)\b(?::\d+)?"
)


def error_response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    retry_after: int | None = None,
) -> JSONResponse:
    """An OpenAI-shaped error response (source paths in a library's message are cut out)."""
    info = ErrorInfo(
        message=_SOURCE_PATH.sub("<source>", message),
        type=_ERROR_TYPES.get(status, "invalid_request_error"),
        param=param,
        code=code or _ERROR_CODES.get(status),
    )
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse(ErrorResponse(error=info).model_dump(), status_code=status, headers=headers)


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


def _location(loc: Sequence[Any]) -> str | None:
    """A validation error's field path: messages.0.content (no "body", no union member tags
    such as "str" or "list[int]")."""
    parts = [str(p) for p in loc if p != "body" and not _UNION_TAG.fullmatch(str(p))]
    return ".".join(parts) or None


class _Guard:
    """ASGI middleware: API keys (Authorization: Bearer), the body size limit, and counting
    responses by status. The body is read here (at most max_body_bytes) and replayed."""

    def __init__(
        self,
        app: Any,
        *,
        api_keys: Sequence[str],
        max_body_bytes: int,
        metrics: Metrics,
        body_timeout: float = 30.0,
        public_metrics: bool = False,
        public_paths: Sequence[str] = (),
    ):
        self.app = app
        self.keys = [k.encode() for k in api_keys]
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.body_timeout = body_timeout
        metrics_paths = _METRICS_PATHS if public_metrics else ()
        self.open_paths = (*_OPEN_PATHS, *public_paths, *metrics_paths)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        token = token.strip()
        return any(hmac.compare_digest(token, key) for key in self.keys)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        head = scope["method"] == "HEAD"
        if head:  # HEAD is GET without the body (same status and headers)
            scope = dict(scope, method="GET")
        started = False

        async def counted(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self.metrics.responses.labels(str(message["status"])).inc()
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        if self.keys and scope["path"] not in self.open_paths and not self._authorized(scope):
            reply = error_response(
                401,
                "Incorrect or missing API key: send 'Authorization: Bearer YOUR_KEY'.",
            )
            await reply(scope, receive, counted)
            return
        too_large = error_response(
            413, f"the request body is larger than {self.max_body_bytes} bytes"
        )
        length = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body_bytes:
            await too_large(scope, receive, counted)
            return
        body, size = [], 0
        deadline = anyio.current_time() + self.body_timeout
        while True:
            with anyio.move_on_after(deadline - anyio.current_time()) as waited:
                message = await receive()
            if waited.cancelled_caught:  # a client that trickles its body holds a connection
                timeout = error_response(
                    408, f"the request body did not arrive within {self.body_timeout:g} s"
                )
                await timeout(scope, receive, counted)
                return
            if message["type"] != "http.request":
                return  # the client went away while sending
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await too_large(scope, receive, counted)
                return
            body.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(body), "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, counted)
        except Exception:
            if not started:  # Starlette's outermost middleware answers 500, outside this one
                self.metrics.responses.labels("500").inc()
            raise


def create_app(
    model_dir: str | Path,
    *,
    api_keys: Sequence[str] = (),
    served_model_name: str | None = None,
    aliases: Sequence[str] = (),
    max_batch: int = 32,
    max_queue: int = 256,
    max_body_bytes: int = 8 * 2**20,
    threads: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    moderation: str | Path | None = None,
    body_timeout: float = 30.0,
    public_metrics: bool = False,
    extensions: Sequence[Extension] = (),
    prefix_cache_mb: float = 256,
    quantize: str | None = None,
) -> FastAPI:
    """The server app for one model directory, with the extensions' routes after its own. The
    model loads when the app starts (lifespan); a directory that is not a model raises
    ModelDirError here, before anything listens (and before any extension's router is built)."""
    model_dir = Path(model_dir)
    config = check_model_dir(model_dir)  # a truncated weight file fails here, not per request
    _check_limits(max_batch=max_batch, max_queue=max_queue, prefix_cache_mb=prefix_cache_mb)
    check_quantize(quantize)
    metrics = Metrics()
    scheduler = Scheduler(
        lambda: Engine.from_dir(
            model_dir,
            dtype=dtype,
            device=device,
            max_batch_size=max_batch,
            prefix_cache_mb=prefix_cache_mb,
            quantize=quantize,
        ),
        max_queue=max_queue,
        threads=threads,
        observer=metrics.observe,
    )
    metrics.track(scheduler)
    state = ServerState(
        scheduler,
        metrics,
        served_model_name or model_dir.resolve().name,
        tuple(aliases),
        strict_names=bool(served_model_name or aliases),
        context_length=config.max_seq_len,
        policy=_policy(moderation),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scheduler.start()
        yield
        scheduler.close()

    app = FastAPI(
        title="instructgen OpenAI-compatible API",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = state
    app.add_middleware(
        _Guard,
        api_keys=list(api_keys),
        max_body_bytes=max_body_bytes,
        metrics=metrics,
        body_timeout=body_timeout,
        public_metrics=public_metrics,
        public_paths=[path for ext in extensions for path in ext.public_paths],
    )
    _add_error_handlers(app)
    _add_routes(app, state)
    for ext in extensions:
        app.include_router(ext.router())
    return app


def _check_limits(*, max_batch: int, max_queue: int, prefix_cache_mb: float) -> None:
    for name, value, least in (
        ("max_batch", max_batch, 1),
        ("max_queue", max_queue, 1),
        ("prefix_cache_mb", prefix_cache_mb, 0),
    ):
        if value < least:
            raise UserError(f"must be >= {least}, got {value}", field=name)


def _policy(path: str | Path | None):
    """The moderation policy of --moderation F (YAML; see instructgen.safety.Policy), or None."""
    if path is None:
        return None
    from instructgen.safety import load_policy

    return load_policy(path)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: HTTPRequest, exc: RequestValidationError) -> JSONResponse:
        return _validation_error(exc.errors())

    @app.exception_handler(ValidationError)
    async def invalid_model(request: HTTPRequest, exc: ValidationError) -> JSONResponse:
        return _validation_error(exc.errors())

    @app.exception_handler(HTTPException)
    async def http_error(request: HTTPRequest, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and exc.detail == "Not Found":  # no such route
            message = f"Invalid URL ({request.method} {request.url.path})"
        return error_response(exc.status_code, message)

    @app.exception_handler(UserError)
    async def user_error(request: HTTPRequest, exc: UserError) -> JSONResponse:
        return error_response(
            exc.status_code,
            str(exc),
            param=exc.field,
            code=getattr(exc, "code", None),
            retry_after=getattr(exc, "retry_after", None),
        )

    @app.exception_handler(api.ClientGone)
    async def client_gone(request: HTTPRequest, exc: Exception) -> Response:
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def crashed(request: HTTPRequest, exc: Exception) -> JSONResponse:
        if not isinstance(exc, api.ServerError):
            log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, f"internal server error: {type(exc).__name__}")


def _validation_error(errors: Sequence[dict[str, Any]]) -> JSONResponse:
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":  # its loc is ("body", character offset), no field
        where = [p for p in first.get("loc", ()) if isinstance(p, int)]
        at = f" at character {where[0]}" if where else ""
        return error_response(400, f"the request body is not valid JSON{at}: {first['msg']}")
    param = _location(first.get("loc", ()))
    message = "; ".join(
        (f"{_location(e.get('loc', ()))}: " if _location(e.get("loc", ())) else "") + e["msg"]
        for e in errors[:5]
    )
    return error_response(400, message or "invalid request", param=param)


def _add_routes(app: FastAPI, state: ServerState) -> None:
    """Every route of the server itself, in matching order."""
    _add_page_routes(app, state)
    _add_model_routes(app, state)
    _add_completion_routes(app, state)
    _add_token_routes(app, state)


def _add_page_routes(app: FastAPI, state: ServerState) -> None:
    """The chat page, the health probe and the Prometheus metrics."""
    page = pages.page("instructgen.serve", "index.html")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/health")
    async def health() -> JSONResponse:
        scheduler = state.scheduler
        if scheduler.ready:
            return JSONResponse({"status": "ok"})
        status = "error" if scheduler.error else "loading"
        body = {"status": status, "message": scheduler.error or "the model is loading"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)


def _add_model_routes(app: FastAPI, state: ServerState) -> None:
    """GET /v1/models and /v1/models/{name}: the served model and its aliases."""

    def card(name: str) -> ModelCard:
        return ModelCard(id=name, root=state.served_model_name, max_model_len=state.context_length)

    @app.get("/v1/models", response_model=ModelList)
    async def models() -> Response:
        return _json(ModelList(data=[card(n) for n in state.names]))

    @app.get("/v1/models/{model:path}", response_model=ModelCard)
    async def model(model: str) -> Response:
        return _json(card(state.model_name(model)))


def _warn_ignored(body: Any) -> None:
    """Log the request's unknown fields (their names only, never their values)."""
    ignored = body.ignored_fields()
    if ignored:  # a client's field names, escaped (no forged lines) and cut (no 200 KB lines)
        names = ", ".join(ascii(n if len(n) <= 40 else n[:40] + "...") for n in ignored[:10])
        more = f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
        log.warning("ignoring unknown request fields: %s%s", names, more)


def _add_completion_routes(app: FastAPI, state: ServerState) -> None:
    """The OpenAI generation endpoints: completions (and the legacy engines route) and chat."""

    @app.post("/v1/completions", response_model=api.CompletionResponse)
    async def completions(body: CompletionRequest, request: HTTPRequest) -> Any:
        _warn_ignored(body)
        return _answer(await api.completion(state, body, request))

    @app.post("/v1/engines/{engine}/completions", response_model=api.CompletionResponse)
    async def engine_completions(engine: str, body: CompletionRequest, request: HTTPRequest) -> Any:
        _warn_ignored(body)
        state.model_name(engine, param="engine")
        body.model = body.model or engine
        return _answer(await api.completion(state, body, request))

    @app.post("/v1/chat/completions", response_model=api.ChatCompletionResponse)
    async def chat_completions(body: ChatCompletionRequest, request: HTTPRequest) -> Any:
        _warn_ignored(body)
        return _answer(await api.chat_completion(state, body, request))


def _add_token_routes(app: FastAPI, state: ServerState) -> None:
    """POST /tokenize and /detokenize (vLLM's extras)."""

    @app.post("/tokenize", response_model=TokenizeResponse)
    async def tokenize(body: TokenizeRequest) -> Response:
        state.model_name(body.model)
        engine = state.engine
        if (body.prompt is None) == (body.messages is None):
            raise UserError("give exactly one of 'prompt' and 'messages'", field="prompt")

        def encode() -> list[int]:
            if body.prompt is not None:
                return engine.tokenizer.encode(
                    body.prompt, add_special_tokens=body.add_special_tokens
                )
            messages = api.chat_messages(body.messages or [], None, engine.tokenizer.chat_template)
            return engine.tokenizer.encode_chat(
                messages, add_generation_prompt=body.add_generation_prompt
            ).ids

        ids = await anyio.to_thread.run_sync(encode)
        return _json(
            TokenizeResponse(tokens=ids, count=len(ids), max_model_len=state.context_length)
        )

    @app.post("/detokenize", response_model=DetokenizeResponse)
    async def detokenize(body: DetokenizeRequest) -> Response:
        state.model_name(body.model)
        engine = state.engine
        vocab = engine.config.vocab_size
        bad = next((i for i, t in enumerate(body.tokens) if not 0 <= t < vocab), None)
        if bad is not None:
            raise UserError(
                f"token id {body.tokens[bad]} is outside the vocabulary (0..{vocab - 1})",
                field=f"tokens.{bad}",
            )
        text = await anyio.to_thread.run_sync(
            lambda: engine.tokenizer.decode(body.tokens, skip_special_tokens=False)
        )
        return _json(DetokenizeResponse(prompt=text))


def _answer(result: Any) -> Response:
    return _json(result) if isinstance(result, BaseModel) else result


def _check_port(host: str, port: int) -> None:
    """Fail with a clear message (exit 2) when the address cannot be bound, before loading."""
    if not 0 <= port <= 65535:
        raise UserError(f"must be a port number from 0 to 65535, got {port}", field="port")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot listen on {host}:{port}: {exc.strerror}", field="port"
            ) from None


def _graceful_server(config: Any, grace: float, end_streams: Callable[[], None]) -> Any:
    """A uvicorn server whose shutdown (SIGTERM, Ctrl-C) stops accepting, lets running requests
    finish for `grace` seconds, then ends the rest with an error event and [DONE] (end_streams)
    before uvicorn's own shutdown, which would cut them."""
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            for listener in self.servers:
                listener.close()
            for connection in list(self.server_state.connections):
                connection.shutdown()  # idle keep-alive connections close now, busy ones after
            deadline = time.monotonic() + grace
            while self.server_state.connections and not self.force_exit:
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.1)
            end_streams()
            await super().shutdown(sockets)

    return Server(config)


def run(
    model_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_keys: Sequence[str] = (),
    served_model_name: str | None = None,
    aliases: Sequence[str] = (),
    max_batch: int = 32,
    max_queue: int = 256,
    max_body_mb: float = 8,
    threads: int | None = None,
    log_level: str = "info",
    moderation: str | Path | None = None,
    extensions: Sequence[Extension] = (),
    body_timeout: float = 30.0,
    header_timeout: float = 10.0,
    public_metrics: bool = False,
    shutdown_grace: float = 10.0,
    prefix_cache_mb: float = 256,
    quantize: str | None = None,
) -> None:
    """Serve a model directory with uvicorn until interrupted (Ctrl-C).

    extensions add their routes and pages (the CLI mounts the customer-service bot so)."""
    import uvicorn

    from instructgen.safety import install_log_redaction
    from instructgen.serve.connection import protocol_with_header_timeout

    _check_port(host, port)
    app = create_app(
        model_dir,
        api_keys=api_keys,
        served_model_name=served_model_name,
        aliases=aliases,
        max_batch=max_batch,
        max_queue=max_queue,
        max_body_bytes=int(max_body_mb * 2**20),
        threads=threads,
        moderation=moderation,
        body_timeout=body_timeout,
        public_metrics=public_metrics,
        extensions=extensions,
        prefix_cache_mb=prefix_cache_mb,
        quantize=quantize,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol_with_header_timeout(header_timeout),
        timeout_graceful_shutdown=5,  # after shutdown_grace: for the error events to go out
    )  # configures uvicorn's loggers; the redaction filter goes on after that
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(message)s")
    install_log_redaction()
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    log.info("OpenAI API at http://%s:%d/v1, chat page at http://%s:%d/", shown, port, shown, port)
    for ext in extensions:
        for what, path in ext.pages.items():
            log.info("%s page at http://%s:%d%s", what, shown, port, path)
    _graceful_server(config, shutdown_grace, app.state.server.scheduler.close).run()
