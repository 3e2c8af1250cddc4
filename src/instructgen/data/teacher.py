"""A teacher LLM behind any OpenAI-compatible endpoint, with retries that never drop a request.

The official `openai` client does the protocol (its own retries are off); `Teacher.complete` retries
connection errors, timeouts, 429 and 5xx with exponential backoff and jitter, honouring the
server's Retry-After, and raises TeacherError once `max_retries` retries have failed.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from instructgen.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")


PROMPT_OVERHEAD = 32  # tokens a chat template adds around one user message


class TeacherError(UserError):
    """The teacher endpoint is down, refuses our requests, or keeps failing after all retries."""

    status_code = 502


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested wait, from `retry-after-ms` or `retry-after` (seconds or HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Teacher:
    """Completions from an OpenAI-compatible server, through the chat or the completions API."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        api: str = "chat",
        max_retries: int = 6,
        timeout: float = 60.0,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        seed: int = 0,
    ) -> None:
        import openai

        if api not in ("chat", "completions"):
            raise UserError(f"unknown API {api!r}; use 'chat' or 'completions'", field="api")
        self.url, self.api, self.max_retries = url, api, max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        if not url.startswith(("http://", "https://")):
            raise UserError(f"must start with http:// or https://, got {url!r}", field="teacher")
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = openai.OpenAI(base_url=url, api_key=api_key, max_retries=0, timeout=timeout)
        self.calls = self.retries = 0
        self._rng = random.Random(f"teacher-jitter:{seed}")
        self._lock = threading.Lock()
        self.context: int | None = None  # the served model's context, where /v1/models says it
        self.model = model or self._first_model()

    def complete(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | None = None,
        presence_penalty: float = 0.0,
    ) -> tuple[str, str]:
        """(text, finish_reason) of one completion of `prompt`, sent as a user message for 'chat'.
        Where the teacher says its context (max_model_len), max_tokens is cut to what is left of
        it after the prompt, counted as its UTF-8 bytes (no byte-level BPE token is shorter)."""
        left = self.room(prompt)
        if left is not None:
            max_tokens = max(1, min(max_tokens, left))
        args = dict(model=self.model, max_tokens=max_tokens, temperature=temperature, top_p=top_p, presence_penalty=presence_penalty)  # fmt: skip
        if stop:
            args["stop"] = list(stop)
        if self.api == "chat":
            messages = [{"role": "user", "content": prompt}]
            resp = self._with_retries(
                lambda: self.client.chat.completions.create(messages=messages, **args)
            )
            choice = resp.choices[0]
            return choice.message.content or "", choice.finish_reason or "stop"
        resp = self._with_retries(lambda: self.client.completions.create(prompt=prompt, **args))
        choice = resp.choices[0]
        return choice.text or "", choice.finish_reason or "stop"

    def room(self, prompt: str) -> int | None:
        """Tokens the teacher's context leaves after `prompt` (None where it does not say):
        context − UTF-8 bytes of the prompt − the chat template's overhead."""
        if not self.context:
            return None
        return self.context - len(prompt.encode("utf-8")) - PROMPT_OVERHEAD

    def _first_model(self) -> str:
        models = self._with_retries(lambda: list(self.client.models.list()))
        if not models:
            raise TeacherError(
                f"the teacher at {self.url} lists no models; pass the model name (--model)"
            )
        context = (models[0].model_extra or {}).get("max_model_len")
        self.context = context if isinstance(context, int) and context > 0 else None
        return models[0].id

    def _with_retries(self, call: Callable[[], T]) -> T:
        """Run `call`; on a retryable failure wait min(backoff_max, backoff_base · 2^attempt) ·
        U(0.5, 1) seconds, or the server's Retry-After, and try again, up to max_retries times."""
        import openai

        attempt = 0
        while True:
            with self._lock:
                self.calls += 1
            try:
                return call()
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status != 429 and status < 500 and status != 408:
                    raise TeacherError(self._refusal(exc)) from None
                wait, why = retry_after_seconds(exc.response.headers), f"HTTP {status}"
                last: Exception = exc
            except openai.APIConnectionError as exc:
                wait, why, last = None, _connection_reason(exc), exc
            if attempt >= self.max_retries:
                raise TeacherError(
                    f"the teacher at {self.url} failed after {self.max_retries} retries: {_describe(last)}"
                ) from None
            if wait is None:
                with self._lock:
                    jitter = 0.5 + 0.5 * self._rng.random()
                wait = min(self.backoff_max, self.backoff_base * 2**attempt) * jitter
            attempt += 1
            with self._lock:
                self.retries += 1
            log.warning("teacher: %s; retry %d/%d in %.1fs", why, attempt, self.max_retries, wait)
            time.sleep(wait)

    def _refusal(self, exc: Any) -> str:
        hint = {401: " (check --api-key or OPENAI_API_KEY)", 403: " (check --api-key or OPENAI_API_KEY)",
                404: " (check --model and that the URL ends in /v1)"}.get(exc.status_code, "")  # fmt: skip
        return f"the teacher at {self.url} refused the request: {_describe(exc)}{hint}"


def _connection_reason(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    cause = exc.__cause__ or exc.__context__
    while cause is not None and (cause.__cause__ or cause.__context__) is not None:
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect ({cause})" if cause is not None else "cannot connect"


def _describe(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        message = getattr(exc, "message", "") or ""
        return f"HTTP {exc.status_code}: {message}"[:300]
    if isinstance(exc, openai.APIConnectionError):
        return _connection_reason(exc)
    return str(exc)[:300]
