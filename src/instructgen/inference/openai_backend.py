"""The `openai` backend: any OpenAI-compatible base URL through the official SDK (brief 5.2).

A string prompt goes to /v1/completions, chat messages to /v1/chat/completions. Sampling
fields OpenAI does not define (top_k, min_p, repetition_penalty, min_tokens, ignore_eos,
stop_token_ids) are sent in the request body only when set, as vLLM and our server accept
them. The key comes from api_key= or OPENAI_API_KEY; a local server needs none.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from instructgen.errors import UserError
from instructgen.inference.backends import LLM, Choice, Completion, Prompt, Usage
from instructgen.inference.sampling import SamplingParams

__all__ = ["OpenAILLM", "RemoteError"]


class RemoteError(UserError):
    """The remote API could not be reached or refused the request."""


class OpenAILLM(LLM):
    backend = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
    ):
        import openai

        self.base_url = base_url.rstrip("/")
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=timeout,
            max_retries=max_retries,
        )
        self._model = model
        self._no_tokenize = False  # the server has no /tokenize: room() cannot say

    @property
    def model_name(self) -> str:  # type: ignore[override]
        """The model named at load, else the first one the server lists."""
        if self._model is None:
            models = self._call(lambda: list(self.client.models.list()))
            if not models:
                raise RemoteError(f"{self.base_url} serves no models")
            self._model = models[0].id
        return self._model

    def room(self, prompt: Prompt) -> int | None:
        """From the server's POST /tokenize (instructgen's and vLLM's: the prompt's token count
        and max_model_len); None where the server has no such route (OpenAI's API)."""
        if self._no_tokenize:
            return None
        import httpx

        body: dict[str, Any] = {"model": self.model_name}
        body["prompt" if isinstance(prompt, str) else "messages"] = prompt
        url = self.base_url.removesuffix("/v1") + "/tokenize"
        try:
            r = httpx.post(
                url,
                json=body,
                headers={"Authorization": f"Bearer {self.client.api_key}"},
                timeout=30,
            )
            answer = r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            answer = None
        if not isinstance(answer, dict) or not all(
            isinstance(answer.get(k), int) for k in ("count", "max_model_len")
        ):
            self._no_tokenize = True
            return None
        return answer["max_model_len"] - answer["count"]

    def close(self) -> None:
        self.client.close()

    def _call(self, request: Any) -> Any:
        """Run one SDK call, turning its failures into one-line UserErrors."""
        import openai

        try:
            return request()
        except openai.APIConnectionError as exc:
            raise RemoteError(f"cannot reach {self.base_url} ({exc.__cause__ or exc})") from None
        except openai.APIStatusError as exc:
            message = exc.message
            if isinstance(exc.body, dict):
                message = exc.body.get("message", message)
            raise RemoteError(f"{self.base_url} answered {exc.status_code}: {message}") from None

    # -- requests ------------------------------------------------------------------------------

    def _body(self, params: SamplingParams, chat: bool) -> dict[str, Any]:
        body: dict[str, Any] = dict(
            model=self.model_name,
            temperature=params.temperature,
            top_p=params.top_p,
            n=params.n,
        )
        if params.max_tokens is not None:
            body["max_tokens"] = params.max_tokens
        if params.stop:
            body["stop"] = params.stop
        for name in ("seed", "presence_penalty", "frequency_penalty"):
            if getattr(params, name):
                body[name] = getattr(params, name)
        if params.logprobs is not None:
            if chat:
                body.update(logprobs=True, top_logprobs=params.logprobs)
            else:
                body["logprobs"] = params.logprobs
        if params.json_schema is not None:
            schema = params.json_schema
            if isinstance(schema, str):
                import json

                schema = json.loads(schema)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema},
            }
        elif params.json_mode:
            body["response_format"] = {"type": "json_object"}
        extra = {
            k: getattr(params, k)
            for k, off in (
                ("top_k", 0),
                ("min_p", 0.0),
                ("repetition_penalty", 1.0),
                ("min_tokens", 0),
                ("ignore_eos", False),
                ("stop_token_ids", []),
            )
            if getattr(params, k) not in (off, -1)
        }
        if not chat and "response_format" in body:
            extra["response_format"] = body.pop("response_format")
        if extra:
            body["extra_body"] = extra
        return body

    def _generate(self, prompts: list[Prompt], params: SamplingParams) -> list[Completion]:
        """One request per prompt, sent concurrently (the server batches them)."""
        from concurrent.futures import ThreadPoolExecutor

        if len(prompts) == 1:
            return [self._one(prompts[0], params)]
        with ThreadPoolExecutor(max_workers=min(8, len(prompts))) as pool:
            return list(pool.map(lambda p: self._one(p, params), prompts))

    def _one(self, prompt: Prompt, params: SamplingParams) -> Completion:
        if isinstance(prompt, str):
            body = self._body(params, chat=False)
            response = self._call(lambda: self.client.completions.create(prompt=prompt, **body))
            choices = [_completion_choice(c) for c in sorted(response.choices, key=_index)]
        else:
            body = self._body(params, chat=True)
            response = self._call(
                lambda: self.client.chat.completions.create(messages=prompt, **body)
            )
            choices = [_chat_choice(c) for c in sorted(response.choices, key=_index)]
        usage = response.usage
        return Completion(
            choices,
            Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(0, 0),
            response.model,
        )

    def _stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[str]:
        chat = not isinstance(prompt, str)
        body = self._body(params, chat=chat)
        if chat:
            stream = self._call(
                lambda: self.client.chat.completions.create(messages=prompt, stream=True, **body)
            )
        else:
            stream = self._call(
                lambda: self.client.completions.create(prompt=prompt, stream=True, **body)
            )
        return self._deltas(stream, chat)

    def _deltas(self, stream: Any, chat: bool) -> Iterator[str]:
        import openai

        try:
            for chunk in stream:
                for c in chunk.choices:
                    text = (c.delta.content if chat else c.text) or ""
                    if text:
                        yield text
        except openai.APIError as exc:
            raise RemoteError(f"{self.base_url}: the stream failed ({exc})") from None
        finally:
            stream.close()


def _index(choice: Any) -> int:
    return choice.index


def _completion_choice(c: Any) -> Choice:
    lp = c.logprobs
    if lp is None or lp.tokens is None:
        return Choice(c.text, c.finish_reason or "length")
    return Choice(
        c.text,
        c.finish_reason or "length",
        list(lp.tokens),
        None,
        list(lp.token_logprobs or []),
        [dict(t or {}) for t in (lp.top_logprobs or [])],
    )


def _chat_choice(c: Any) -> Choice:
    text = c.message.content or ""
    content = c.logprobs.content if c.logprobs is not None else None
    if not content:
        return Choice(text, c.finish_reason or "length")
    return Choice(
        text,
        c.finish_reason or "length",
        [t.token for t in content],
        None,
        [t.logprob for t in content],
        [{a.token: a.logprob for a in t.top_logprobs} for t in content],
    )
