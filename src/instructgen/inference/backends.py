"""One interface for every model: a native instructgen engine, a Hugging Face model, a remote API.

    llm = load("runs/quickstart/model")            # native engine (our / HF GPT-2, Llama, Qwen2 dirs)
    llm = load("EleutherAI/gpt-neo-1.3B")          # transformers generate (brief 5.1)
    llm = load("http://127.0.0.1:8000/v1")         # any OpenAI-compatible API (brief 5.2)
    llm.generate("请用中文写一首关于春天的诗。", max_tokens=64).text
    for delta in llm.stream([{"role": "user", "content": "Hi"}]): print(delta, end="")

A string prompt is used as it is; a list of messages is rendered with the model's chat template
and ends where the assistant's answer begins. Sampling keywords are SamplingParams fields and
are checked the same way for every backend.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError, ModelDirError, UserError
from instructgen.inference.sampling import SamplingParams, TokenLogprob

__all__ = [
    "LLM",
    "Completion",
    "Choice",
    "Usage",
    "NativeLLM",
    "load",
    "BACKENDS",
    "Prompt",
]

log = logging.getLogger("instructgen.inference")

BACKENDS = ("native", "hf", "openai")
Prompt = str | list[dict[str, Any]]


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Choice:
    """One sample. logprobs[i] is log P(tokens[i]); top_logprobs[i] maps alternatives to theirs."""

    text: str
    finish_reason: str  # "stop" | "length"
    tokens: list[str] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    top_logprobs: list[dict[str, float]] | None = None


@dataclass
class Completion:
    """The answer to one prompt: its n choices and token usage (first choice's fields inline)."""

    choices: list[Choice]
    usage: Usage
    model: str = ""
    prompt_logprobs: list[TokenLogprob | None] | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return self.choices[0].text

    @property
    def finish_reason(self) -> str:
        return self.choices[0].finish_reason

    @property
    def tokens(self) -> list[str] | None:
        return self.choices[0].tokens

    @property
    def logprobs(self) -> list[float] | None:
        return self.choices[0].logprobs

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what `instructgen generate --json` prints)."""
        return {
            "model": self.model,
            "choices": [
                {"index": i, "text": c.text, "finish_reason": c.finish_reason}
                for i, c in enumerate(self.choices)
            ],
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
                "total_tokens": self.usage.total_tokens,
            },
        }


class LLM:
    """The interface: generate, generate_batch, stream and chat, with SamplingParams keywords."""

    backend = ""
    model_name = ""

    def generate(self, prompt: Prompt, **sampling: Any) -> Completion:
        """Complete one prompt (a string, or chat messages ending where the answer starts)."""
        return self.generate_batch([prompt], **sampling)[0]

    def chat(self, messages: list[dict[str, Any]], **sampling: Any) -> Completion:
        """The assistant's next message for a conversation."""
        return self.generate(check_prompt(list(messages)), **sampling)

    def generate_batch(self, prompts: Sequence[Prompt], **sampling: Any) -> list[Completion]:
        """Complete several prompts together (batched where the backend can)."""
        params = SamplingParams.from_kwargs(**sampling)
        return self._generate(check_prompts(prompts), params)

    def stream(self, prompt: Prompt, **sampling: Any) -> Iterator[str]:
        """Text deltas of one answer as it is generated (whole UTF-8 characters, stops cut out)."""
        params = SamplingParams.from_kwargs(**sampling)
        if params.n != 1:
            raise ConfigError("streaming returns one answer; use n=1", field="n")
        return self._stream(check_prompt(prompt), params)

    def room(self, prompt: Prompt) -> int | None:
        """Tokens the model's context leaves for an answer after `prompt` (context − prompt
        tokens, negative when the prompt does not fit); None where the backend cannot say."""
        return None

    def budget(self, prompt: Prompt, wanted: int) -> int:
        """max_tokens for an answer to `prompt`: `wanted`, or what the context leaves when that
        is less (at least 1; the request then says the prompt itself is too long)."""
        room = self.room(prompt)
        return wanted if room is None else max(1, min(wanted, room))

    def close(self) -> None:
        """Release the model or connection."""

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _generate(self, prompts: list[Prompt], params: SamplingParams) -> list[Completion]:
        raise NotImplementedError

    def _stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[str]:
        raise NotImplementedError


def check_prompt(prompt: Any) -> Prompt:
    """A string, or a non-empty list of {"role": str, "content": str} messages."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt:
        for i, message in enumerate(prompt):
            if not (
                isinstance(message, dict)
                and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)
            ):
                raise ConfigError(
                    f"message {i} must be an object with string 'role' and 'content'",
                    field="messages",
                )
        return prompt
    raise ConfigError("a prompt is a string or a non-empty list of chat messages", field="prompt")


def check_prompts(prompts: Sequence[Any]) -> list[Prompt]:
    if isinstance(prompts, str):
        raise ConfigError("generate_batch takes a list of prompts", field="prompts")
    return [check_prompt(p) for p in prompts]


def choice_logprobs(
    logprobs: list[TokenLogprob] | None, token_text: Any
) -> tuple[list[float] | None, list[dict[str, float]] | None]:
    """TokenLogprob records as OpenAI's parallel lists (alternatives keyed by token text)."""
    if logprobs is None:
        return None, None
    return (
        [lp.logprob for lp in logprobs],
        [{token_text(t): v for t, v in lp.top} for lp in logprobs],
    )


# ----------------------------------------------------------------------------------------------
# native: the engine


class NativeLLM(LLM):
    """instructgen model directories and HF GPT-2 / Llama / Qwen2 checkpoints, on our engine."""

    backend = "native"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        max_batch_size: int = 32,
        prefix_cache_mb: float = 0,
        quantize: str | None = None,
    ):
        """prefix_cache_mb: memory for prompt prefixes reused across prompts (0: off);
        quantize: "int8" for weight-only int8 linear layers (inference/quantize.py)."""
        from instructgen.inference.engine import Engine

        self.engine = Engine.from_dir(
            model_dir,
            dtype=dtype,
            device=device,
            max_batch_size=max_batch_size,
            prefix_cache_mb=prefix_cache_mb,
            quantize=quantize,
        )
        self.tokenizer = self.engine.tokenizer
        self.model_name = Path(model_dir).resolve().name
        self.context_length = self.engine.config.max_seq_len

    def encode(self, prompt: Prompt) -> tuple[list[int], list[int] | None]:
        """Token ids of a prompt and, for models with role embeddings, a role id per token."""
        if isinstance(prompt, str):
            return self.engine.encode(prompt), None
        chat = self.tokenizer.encode_chat(prompt, add_generation_prompt=True)
        roles = chat.role_ids if self.engine.config.n_roles else None
        return self.engine.encode(chat.ids), roles

    def room(self, prompt: Prompt) -> int | None:
        return self.context_length - len(self.encode(check_prompt(prompt))[0])

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def _generate(self, prompts: list[Prompt], params: SamplingParams) -> list[Completion]:
        encoded = [self.encode(p) for p in prompts]
        requests = self.engine.generate(
            [ids for ids, _ in encoded], params, role_ids=[roles for _, roles in encoded]
        )
        completions = []
        for request in requests:
            choices = []
            for out in request.outputs(self.tokenizer):
                logprobs, top = choice_logprobs(out.logprobs, self.token_text)
                choices.append(
                    Choice(
                        out.text,
                        out.finish_reason,
                        [self.token_text(t) for t in out.token_ids],
                        out.token_ids,
                        logprobs,
                        top,
                    )
                )
            generated = sum(s.num_generated for s in request.sequences)
            completions.append(
                Completion(
                    choices,
                    Usage(len(request.prompt_ids), generated),
                    self.model_name,
                    request.prompt_logprobs,
                )
            )
        return completions

    def _stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[str]:
        ids, roles = self.encode(prompt)
        return self.engine.stream(ids, params, role_ids=roles)


# ----------------------------------------------------------------------------------------------
# choosing a backend


def load(
    path_or_url: str | Path,
    backend: str | None = None,
    *,
    api_key: str | None = None,
    **options: Any,
) -> LLM:
    """An LLM for a model directory, a Hugging Face model name or an OpenAI-compatible base URL.

    backend None picks: an http(s) URL → openai; a directory whose config.json we implement
    (gpt2, llama, qwen2, mistral) → native; anything else → hf. `options` go to the backend
    (dtype, device, max_batch_size, prefix_cache_mb, quantize; model, timeout for openai);
    api_key is used by openai only; quantize ("int8") is for the native backend only.
    """
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(
            f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}", field="backend"
        )
    target = str(path_or_url)
    is_url = target.startswith(("http://", "https://"))
    if backend is None:
        backend = "openai" if is_url else "native" if _native_dir(target) else "hf"
    from instructgen.inference.quantize import check_quantize

    quantize = check_quantize(options.pop("quantize", None))
    if quantize is not None and backend != "native":
        raise ConfigError(f"runs on the native backend only, not {backend}", field="quantize")
    if backend == "openai":
        if not is_url:
            raise ConfigError(
                f"the openai backend needs an http(s) base URL, got {target!r}", field="model"
            )
        from instructgen.inference.openai_backend import OpenAILLM

        return OpenAILLM(target, api_key=api_key, **options)
    if is_url:
        raise ConfigError(
            f"the {backend} backend needs a model directory, not a URL", field="model"
        )
    if backend == "native":
        if not Path(target).is_dir():
            raise ModelDirError("model directory not found", file=target)
        return NativeLLM(target, quantize=quantize, **options)
    from instructgen.inference.hf_backend import HFLLM

    return HFLLM(target, **options)


def _native_dir(path: str) -> bool:
    """Whether the native engine runs this directory; a checkpoint of a family it implements
    that uses a feature it does not (sliding windows, rope scaling) goes to hf with a notice."""
    from instructgen.model.checkpoint import NotNative, load_config

    if not Path(path).is_dir():
        return False
    try:
        load_config(path)
    except NotNative as exc:
        log.warning("%s: %s; running it with the hf backend", path, str(exc).split(": ", 1)[-1])
        return False
    except UserError:
        return False
    return True
