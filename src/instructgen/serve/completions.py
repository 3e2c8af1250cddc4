"""/v1/completions and /v1/chat/completions: request → engine submissions → response or SSE.

Each prompt of a request becomes one engine request with n samples; choice i*n + j is sample j
of prompt i. Streams follow OpenAI's server-sent events: `data: {json}` chunks (several tokens
that arrive in one step go out as one chunk), one finish_reason per choice, an optional usage
chunk with no choices, then `data: [DONE]`. A failure after the stream began is sent as a
`data: {"error": ...}` event followed by `[DONE]`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
from fastapi import Request as HTTPRequest
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from instructgen.chat_template import ROLE_IDS, tool_conversation
from instructgen.errors import ConfigError, UserError
from instructgen.inference.engine import Request as EngineRequest
from instructgen.inference.engine import StepOutput
from instructgen.inference.sampling import SamplingParams
from instructgen.serve.logprobs import LegacyLogprobs, chat_logprobs, echo_prompt
from instructgen.serve.protocol import (
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatLogprobs,
    ChatMessage,
    ChatStreamChoice,
    CompletionChoice,
    CompletionChunk,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    DeltaMessage,
    ErrorInfo,
    ErrorResponse,
    OutputMessage,
    Sampling,
    ToolCall,
    UsageInfo,
    new_id,
    now,
)
from instructgen.serve.scheduler import Item, NotReady, Stream, Submission
from instructgen.serve.state import ServerState
from instructgen.serve.tools import ToolPlan, ToolStream, plan_tools

__all__ = ["chat_completion", "completion", "chat_messages", "ServerError", "sampling_params"]

DONE = "data: [DONE]\n\n"
# JSON leaves these raw inside strings, but line readers that follow str.splitlines() (httpx's
# aiter_lines among them) would cut an event there
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_CONTEXT_TAIL = 6  # prompt tokens the stream detokenizer decodes with (the engine's choice)


class ServerError(Exception):
    """Generation failed inside the server (not the client's fault): 500."""


class ContextLengthExceeded(UserError):
    code = "context_length_exceeded"


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


# -- requests → engine submissions -------------------------------------------------------------


def sampling_params(
    req: Sampling,
    *,
    max_tokens: int | None,
    logprobs: int | None = None,
    prompt_logprobs: int | None = None,
    **extra: Any,
) -> SamplingParams:
    """SamplingParams of an OpenAI request (OpenAI's defaults where the request is silent)."""
    if req.logit_bias:
        raise UserError("logit_bias is not supported by this server", field="logit_bias")
    if req.stream_options is not None and not req.stream:
        raise UserError(
            "stream_options is only allowed when stream is true", field="stream_options"
        )
    return SamplingParams.from_kwargs(
        max_tokens=max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        min_p=req.min_p,
        repetition_penalty=req.repetition_penalty,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        seed=req.seed,
        n=req.n,
        stop=[req.stop] if isinstance(req.stop, str) else req.stop,
        stop_token_ids=req.stop_token_ids,
        min_tokens=req.min_tokens,
        ignore_eos=req.ignore_eos,
        logprobs=logprobs,
        prompt_logprobs=prompt_logprobs,
        **extra,
    )


def check_context(prompt_tokens: int, max_tokens: int | None, context: int, param: str) -> None:
    """prompt + max_tokens must fit the context window (OpenAI's wording, both counts named)."""
    wanted = prompt_tokens + (max_tokens or 0)
    if wanted > context or prompt_tokens >= context:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{wanted} tokens ({prompt_tokens} in the prompt, {max_tokens or 0} for the "
            f"completion). Please reduce the length of the prompt or max_tokens.",
            field=param,
        )


def check_prompt_chars(state: ServerState, texts: Sequence[str], param: str) -> None:
    """Refuse, before tokenizing it, text that cannot fit the context whatever its tokens: more
    characters than context × the most characters one token stands for. Tokenizing megabytes
    would hold a core (and the GIL) for seconds first."""
    chars = sum(len(t) for t in texts)
    bound = state.context_length * state.engine.tokenizer.max_token_chars
    if chars > bound:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {state.context_length} tokens, which no "
            f"text of more than {bound} characters fits; this one has {chars}. Please reduce "
            "the length of the prompt.",
            field=param,
        )


def chat_messages(
    messages: list[ChatMessage], plan: ToolPlan | None = None, template: str = ""
) -> list[dict[str, Any]]:
    """Messages as the chat template takes them: text content, developer → system; tool calls
    and results passed on to a template that renders tools itself (one that names `tools`),
    else written out in the ChatML tool convention (chat_template.tool_conversation)."""
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        content = message.content
        if isinstance(content, list):
            parts = []
            for j, part in enumerate(content):
                if part.type != "text" or part.text is None:
                    raise UserError(
                        f"only text content parts are supported, got {part.type!r}",
                        field=f"messages.{i}.content.{j}",
                    )
                parts.append(part.text)
            content = "".join(parts)
        role = "system" if message.role == "developer" else message.role
        item: dict[str, Any] = {"role": role, "content": content or ""}
        if message.tool_calls:
            if message.role != "assistant":
                raise UserError("only assistant messages make tool calls", field=f"messages.{i}")
            item["tool_calls"] = [
                {"id": c.id, "type": "function", "function": _called(c, f"messages.{i}", j)}
                for j, c in enumerate(message.tool_calls)
            ]
        if message.role == "tool":
            if message.content is None:
                raise UserError(
                    "a tool message holds the tool's result", field=f"messages.{i}.content"
                )
            item["tool_call_id"] = message.tool_call_id or ""
        out.append(item)
    if renders_tools(template):
        return out
    return tool_conversation(out, plan.tools if plan is not None else None)


def _called(call: ToolCall, where: str, j: int) -> dict[str, Any]:
    """{"name", "arguments": dict} of a call in a request's conversation."""
    try:
        arguments = json.loads(call.function.arguments)
    except json.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise UserError(
            "must be a JSON object, as a string", field=f"{where}.tool_calls.{j}.function.arguments"
        )
    return {"name": call.function.name, "arguments": arguments}


def renders_tools(template: str | None) -> bool:
    """Whether a chat template renders tool definitions and calls itself (it names `tools`)."""
    return "tools" in (template or "")


def encode_chat(
    state: ServerState, messages: list[dict[str, Any]], plan: ToolPlan | None = None
) -> tuple[list[int], Any]:
    """Token ids of the conversation rendered by the chat template (given the tools, where the
    template renders them), then the opening of a forced call; role ids too if the model has
    role embeddings."""
    import jinja2

    engine = state.engine
    tokenizer = engine.tokenizer
    extra: dict[str, Any] = {}
    if plan is not None and plan.tools and renders_tools(tokenizer.chat_template):
        extra["tools"] = plan.tools
    prefix = tokenizer.encode(plan.prefix) if plan is not None and plan.prefix else []
    try:
        if engine.config.n_roles:  # role ids need the per-message spans (slower rendering)
            chat = tokenizer.encode_chat(messages, add_generation_prompt=True, **extra)
            roles = chat.role_ids + [ROLE_IDS["assistant"]] * len(prefix)
            return engine.encode(chat.ids + prefix), roles
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, **extra)
    except jinja2.TemplateError as exc:
        raise UserError(
            f"the chat template rejected the messages: {exc}", field="messages"
        ) from None
    return engine.encode(tokenizer.encode(text) + prefix), None


def _prompts(prompt: Any) -> list[str | list[int]]:
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise UserError("the prompt list is empty", field="prompt")
    if isinstance(prompt[0], int):
        return [prompt]
    return list(prompt)


async def _submit(state: ServerState, encode: Callable[[], list[Submission]]) -> Stream:
    """Encode (off the event loop) and queue; input too deep for the tokenizer, the template
    or the JSON-schema compiler is the client's mistake."""
    try:
        return await state.scheduler.submit(await anyio.to_thread.run_sync(encode))
    except RecursionError:
        raise UserError("the request is nested too deeply") from None


# -- /v1/completions -----------------------------------------------------------------------------


async def completion(state: ServerState, req: CompletionRequest, http: HTTPRequest) -> Any:
    name = state.model_name(req.model)
    if req.suffix:
        raise UserError("suffix is not supported by this server", field="suffix")
    if req.best_of is not None and req.best_of != req.n:
        raise UserError("best_of must equal n (candidates are not ranked)", field="best_of")
    params = sampling_params(
        req,
        max_tokens=req.max_tokens,
        logprobs=req.logprobs,
        prompt_logprobs=req.logprobs if req.echo and req.logprobs is not None else None,
    )
    texts = [p for p in _prompts(req.prompt) if isinstance(p, str)]
    for text in texts:
        check_prompt_chars(state, [text], "prompt")
    state.moderate(texts, "prompt")
    engine = state.engine

    def encode() -> list[Submission]:
        subs = []
        for prompt in _prompts(req.prompt):
            ids = engine.encode(prompt)
            check_context(len(ids), req.max_tokens, state.context_length, "prompt")
            subs.append(Submission(ids, params))
        return subs

    stream = await _submit(state, encode)
    reply = _Reply(state, stream, name, "cmpl", req.n, req.include_usage)
    if req.stream:
        return reply.respond(_completion_events(reply, req))
    await reply.wait(http)
    return await anyio.to_thread.run_sync(_completion_response, reply, req)


def _choice_logprobs(
    reply: _Reply, req: CompletionRequest, request: EngineRequest
) -> tuple[str, CompletionLogprobs | None, LegacyLogprobs | None]:
    """A choice's echo prefix, its logprobs, and the builder of the generated tokens' logprobs."""
    texts = reply.state.texts
    echo, echo_lp = "", None
    if req.echo:
        echo, echo_lp = echo_prompt(
            texts, request.prompt_ids, request.prompt_logprobs, req.logprobs is not None
        )
    builder = None
    if req.logprobs is not None:
        context = request.prompt_ids if req.echo else request.prompt_ids[-_CONTEXT_TAIL:]
        builder = LegacyLogprobs(texts, start=len(echo), context=context)
    return echo, echo_lp, builder


def _merge(first: CompletionLogprobs | None, second: CompletionLogprobs | None) -> Any:
    if first is None or second is None:
        return first or second
    return CompletionLogprobs(
        text_offset=first.text_offset + second.text_offset,
        token_logprobs=first.token_logprobs + second.token_logprobs,
        tokens=first.tokens + second.tokens,
        top_logprobs=first.top_logprobs + second.top_logprobs,
    )


def _completion_response(reply: _Reply, req: CompletionRequest) -> CompletionResponse:
    choices = []
    for p, request in enumerate(reply.stream.requests):
        for out in request.outputs(reply.state.engine.tokenizer):
            echo, echo_lp, builder = _choice_logprobs(reply, req, request)
            generated = builder.add(out.token_ids, out.logprobs) if builder else None
            choices.append(
                CompletionChoice(
                    index=p * req.n + out.index,
                    text=echo + out.text,
                    logprobs=_merge(echo_lp, generated),
                    finish_reason=out.finish_reason,
                )
            )
    return CompletionResponse(
        id=reply.id, created=reply.created, model=reply.model, choices=choices, usage=reply.usage()
    )


async def _completion_events(reply: _Reply, req: CompletionRequest) -> AsyncIterator[str]:
    builders: dict[int, LegacyLogprobs | None] = {}

    def chunk(index: int, text: str, logprobs: Any = None, finish: str | None = None) -> str:
        choice = CompletionChoice(index=index, text=text, logprobs=logprobs, finish_reason=finish)
        return reply.sse(
            CompletionChunk(id=reply.id, created=reply.created, model=reply.model, choices=[choice])
        )

    async for outputs in reply.outputs():
        events = []
        for index, parts in outputs.items():
            text, logprobs = "", None
            if index not in builders:
                text, logprobs, builders[index] = _choice_logprobs(reply, req, parts[0].request)
            builder = builders[index]
            finish = None
            for out in parts:
                text += out.text
                if builder is not None:
                    logprobs = _merge(logprobs, builder.add(out.token_ids, out.logprobs))
                finish = out.finish_reason or finish
            if text or (logprobs is not None and logprobs.tokens):
                events.append(chunk(index, text, logprobs))
            if finish is not None:
                events.append(chunk(index, "", None, finish))
        if events:
            yield "".join(events)
    async for tail in reply.tail():
        yield tail


# -- /v1/chat/completions ------------------------------------------------------------------------


async def chat_completion(state: ServerState, req: ChatCompletionRequest, http: HTTPRequest) -> Any:
    name = state.model_name(req.model)
    plan = plan_tools(req)
    if req.top_logprobs is not None and not req.logprobs:
        raise UserError("top_logprobs requires logprobs: true", field="top_logprobs")
    max_tokens = (
        req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    )
    extra: dict[str, Any] = {}
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_object":
        extra["json_mode"] = True
    elif fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None or fmt.json_schema.schema_ is None:
            raise ConfigError(
                "response_format json_schema needs {'json_schema': {'name': ..., 'schema': {...}}}",
                field="response_format.json_schema",
            )
        extra["json_schema"] = fmt.json_schema.schema_
    if plan is not None and plan.schema is not None:
        if extra:
            raise UserError(
                "response_format cannot be combined with a tool_choice that forces a call",
                field="response_format",
            )
        extra["json_schema"] = plan.schema
    params = sampling_params(
        req,
        max_tokens=max_tokens,
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        **extra,
    )
    messages = chat_messages(req.messages, plan, state.engine.tokenizer.chat_template)
    check_prompt_chars(state, [m["content"] for m in messages], "messages")
    state.moderate([m["content"] for m in messages if m["role"] == "user"], "messages")

    def encode() -> list[Submission]:
        ids, roles = encode_chat(state, messages, plan)
        check_context(len(ids), max_tokens, state.context_length, "messages")
        return [Submission(ids, params, roles)]

    stream = await _submit(state, encode)
    reply = _Reply(state, stream, name, "chatcmpl", req.n, req.include_usage)
    if req.stream:
        return reply.respond(_chat_events(reply, req, plan))
    await reply.wait(http)
    return await anyio.to_thread.run_sync(_chat_response, reply, req, plan)


def _chat_response(
    reply: _Reply, req: ChatCompletionRequest, plan: ToolPlan | None
) -> ChatCompletionResponse:
    choices = []
    texts = reply.state.texts
    for out in reply.stream.requests[0].outputs(reply.state.engine.tokenizer):
        logprobs = None
        if req.logprobs:
            logprobs = ChatLogprobs(content=chat_logprobs(texts, out.logprobs or []))
        content, calls = plan.calls(out.text) if plan is not None else (out.text, [])
        choices.append(
            ChatChoice(
                index=out.index,
                message=OutputMessage(content=content, tool_calls=calls or None),
                logprobs=logprobs,
                finish_reason="tool_calls" if calls else out.finish_reason,
            )
        )
    return ChatCompletionResponse(
        id=reply.id, created=reply.created, model=reply.model, choices=choices, usage=reply.usage()
    )


async def _chat_events(
    reply: _Reply, req: ChatCompletionRequest, plan: ToolPlan | None
) -> AsyncIterator[str]:
    texts = reply.state.texts
    tools = {i: ToolStream(plan) for i in range(req.n)} if plan is not None else {}

    def chunk(index: int, delta: DeltaMessage, logprobs: Any = None, finish: Any = None) -> str:
        choice = ChatStreamChoice(index=index, delta=delta, logprobs=logprobs, finish_reason=finish)
        return reply.sse(
            ChatCompletionChunk(
                id=reply.id, created=reply.created, model=reply.model, choices=[choice]
            )
        )

    yield "".join(chunk(i, DeltaMessage(role="assistant", content="")) for i in range(req.n))
    async for outputs in reply.outputs():
        events = []
        for index, parts in outputs.items():
            text = "".join(out.text for out in parts)
            finish = next((out.finish_reason for out in parts if out.finish_reason), None)
            logprobs = None
            if req.logprobs:
                content = chat_logprobs(texts, [lp for out in parts for lp in out.logprobs])
                logprobs = ChatLogprobs(content=content) if content else None
            calls: list[Any] = []
            if index in tools:
                text, calls = tools[index].feed(text)
                if finish is not None:
                    rest, more = tools[index].finish()
                    text, calls = text + rest, calls + more
            if text or logprobs is not None:
                events.append(chunk(index, DeltaMessage(content=text), logprobs))
            if calls:
                events.append(chunk(index, DeltaMessage(tool_calls=calls)))
            if finish is not None:
                if index in tools and tools[index].calls:
                    finish = "tool_calls"
                events.append(chunk(index, DeltaMessage(), None, finish))
        if events:
            yield "".join(events)
    async for tail in reply.tail():
        yield tail


# -- one response: waiting, streaming, usage -------------------------------------------------------


class _Reply:
    """The answer to one HTTP request: its id, the engine stream, and how it is sent."""

    def __init__(
        self,
        state: ServerState,
        stream: Stream,
        model: str,
        prefix: str,
        n: int,
        include_usage: bool,
    ):
        self.state, self.stream, self.model, self.n = state, stream, model, n
        self.include_usage = include_usage
        self.id, self.created = new_id(prefix), now()
        self.prompt_tokens = self.completion_tokens = 0
        self.error: Item | None = None

    def usage(self) -> UsageInfo:
        requests = [r for r in self.stream.requests if r is not None]
        prompt = sum(len(r.prompt_ids) for r in requests)
        completion = sum(s.num_generated for r in requests for s in r.sequences)
        return UsageInfo(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    def sse(self, chunk: BaseModel) -> str:
        return event(chunk, exclude=None if self.include_usage else {"usage"})

    def _check(self, items: list[Item]) -> None:
        for item in items:
            if item.kind == "error" and self.error is None:
                self.error = item

    async def wait(self, http: HTTPRequest) -> None:
        """Until every request ended; abort them if the client disconnects first."""
        watcher = asyncio.ensure_future(_disconnected(http))
        try:
            while not self.stream.exhausted:
                getter = asyncio.ensure_future(self.stream.get())
                done, _ = await asyncio.wait({getter, watcher}, return_when="FIRST_COMPLETED")
                if getter not in done:
                    getter.cancel()
                    self.state.scheduler.cancel(self.stream)
                    raise ClientGone
                self._check(getter.result())
                if self.error is not None:
                    if self.error.status == 503:
                        raise NotReady(self.error.error)
                    raise ServerError(self.error.error)
        finally:
            watcher.cancel()
            self.state.scheduler.cancel(self.stream)

    async def outputs(self) -> AsyncIterator[dict[int, list[StepOutput]]]:
        """Each delivery's step outputs grouped by choice index."""
        while not self.stream.exhausted:
            items = await self.stream.get()
            self._check(items)
            grouped: dict[int, list[StepOutput]] = {}
            for item in items:
                if item.kind == "output":
                    index = item.prompt * self.n + item.output.index
                    grouped.setdefault(index, []).append(item.output)
            if grouped:
                yield grouped
            if self.error is not None:
                return

    async def tail(self) -> AsyncIterator[str]:
        """The end of a stream: the error event or the usage chunk, then [DONE]."""
        if self.error is not None:
            kind = "service_unavailable" if self.error.status == 503 else "server_error"
            yield event(ErrorResponse(error=ErrorInfo(message=self.error.error or "", type=kind)))
        elif self.include_usage:
            cls = CompletionChunk if self.id.startswith("cmpl") else ChatCompletionChunk
            usage = cls(
                id=self.id, created=self.created, model=self.model, choices=[], usage=self.usage()
            )
            yield event(usage)
        yield DONE

    def respond(self, events: AsyncIterator[str]) -> StreamingResponse:
        return _EventStream(events, lambda: self.state.scheduler.cancel(self.stream))


class _EventStream(StreamingResponse):
    """text/event-stream whose requests are aborted however the response ends (finished, client
    gone, server stopping)."""

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], None]):
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


def event(chunk: BaseModel, exclude: set[str] | None = None) -> str:
    """One server-sent event: `data: {json}` and a blank line."""
    return f"data: {chunk.model_dump_json(exclude=exclude).translate(_LINE_BREAKS)}\n\n"


async def _disconnected(http: HTTPRequest) -> None:
    while (await http.receive())["type"] != "http.disconnect":
        pass
