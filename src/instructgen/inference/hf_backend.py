"""The `hf` backend: any AutoModelForCausalLM directory or hub name, through `generate` (brief 5.1).

Sampling keywords map onto generate's own (temperature, top_k, top_p, min_p,
repetition_penalty, min/max_new_tokens, num_return_sequences); the rest is added as logits
processors shared with the native engine: OpenAI presence / frequency penalties and xgrammar
constraints. Stop strings, finish reasons and streaming reuse inference/stops.py, so text
comes out the same way as from the native backend.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from instructgen.errors import ModelDirError, UserError
from instructgen.inference.backends import (
    LLM,
    Choice,
    Completion,
    Prompt,
    Usage,
    check_prompt,
    choice_logprobs,
)
from instructgen.inference.sampling import SamplingParams, apply_penalties, token_logprobs
from instructgen.inference.stops import TextStream, truncate_at_stop
from instructgen.inference.threads import cpu_threads

__all__ = ["HFLLM"]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class HFLLM(LLM):
    backend = "hf"

    def __init__(
        self,
        model: str | Path,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        threads: int | None = None,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        name = str(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            self.model = AutoModelForCausalLM.from_pretrained(
                name, dtype=_DTYPES.get(dtype, dtype), use_safetensors=True
            )
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelDirError(
                "cannot load this model: not an instructgen or Hugging Face model directory, "
                f"an http(s) URL, or a hub model available offline ({first})",
                file=name,
            ) from None
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.threads = threads
        self._params = sum(p.numel() for p in self.model.parameters())
        self.model_name = Path(name).name if Path(name).is_dir() else name
        config = self.model.config
        self.context_length = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        eos = self.model.generation_config.eos_token_id
        ids = eos if isinstance(eos, list) else [eos]
        ids.append(self.tokenizer.eos_token_id)
        self.stop_ids = [i for i in dict.fromkeys(ids) if i is not None]
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.stop_ids[0] if self.stop_ids else 0)
        self._grammar = None

    # -- prompts -------------------------------------------------------------------------------

    def encode(self, prompt: Prompt) -> list[int]:
        ids = self._ids(prompt)
        if self.context_length and len(ids) >= self.context_length:
            raise UserError(
                f"the prompt has {len(ids)} tokens but the model's context window is "
                f"{self.context_length} tokens; shorten the prompt",
                field="prompt",
            )
        return ids

    def room(self, prompt: Prompt) -> int | None:
        if not self.context_length:
            return None
        return self.context_length - len(self._ids(check_prompt(prompt)))

    def _ids(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        else:
            if not self.tokenizer.chat_template:
                raise UserError(
                    f"{self.model_name} has no chat template; pass a plain string prompt"
                )
            text = self.tokenizer.apply_chat_template(
                prompt, add_generation_prompt=True, tokenize=False
            )
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            ids = [self.tokenizer.bos_token_id or self.pad_id]
        return ids

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def _grammar_factory(self):
        if self._grammar is None:
            from instructgen.inference.constrained import GrammarFactory

            self._grammar = GrammarFactory(
                self.tokenizer, self.model.config.vocab_size, self.stop_ids
            )
        return self._grammar

    # -- generate ------------------------------------------------------------------------------

    def _kwargs(self, params: SamplingParams, width: int, rows: int) -> dict[str, Any]:
        """generate() keyword arguments for `rows` output rows after prompts of `width` tokens."""
        room = (self.context_length or width + 4096) - width
        kwargs: dict[str, Any] = dict(
            max_new_tokens=min(params.max_tokens or room, room),
            min_new_tokens=params.min_tokens or None,
            num_return_sequences=_copies(params),
            pad_token_id=self.pad_id,
            eos_token_id=(([] if params.ignore_eos else self.stop_ids) + params.stop_token_ids)
            or None,
            do_sample=not params.greedy,
            repetition_penalty=params.repetition_penalty,
            return_dict_in_generate=True,
            output_logits=params.logprobs is not None,
        )
        if not params.greedy:
            kwargs.update(
                temperature=params.temperature,
                top_k=max(params.top_k, 0),
                top_p=params.top_p,
                min_p=params.min_p or None,
            )
        processors = LogitsProcessorList()
        if params.presence_penalty or params.frequency_penalty:
            processors.append(_OpenAIPenalties(params, width))
        if params.json_schema is not None or params.json_mode:
            from instructgen.inference.constrained import GrammarLogitsProcessor

            factory = self._grammar_factory()
            stops = kwargs["eos_token_id"] or self.stop_ids
            constraints = [factory.constraint(params.json_schema, stops) for _ in range(rows)]
            processors.append(GrammarLogitsProcessor(constraints, width, kwargs["max_new_tokens"]))
        if processors:
            kwargs["logits_processor"] = processors
        if params.stop:  # transformers' stop_strings would also match across the prompt
            stop = _StopStrings(self.tokenizer, params, width)
            kwargs["stopping_criteria"] = StoppingCriteriaList([stop])
        return kwargs

    @contextlib.contextmanager
    def _run(self, rows: int, params: SamplingParams) -> Iterator[None]:
        """Inference mode, the request's seed (torch's global generator, saved and restored
        around the call), and CPU threads sized by the decode steps' work."""
        with (
            torch.inference_mode(),
            torch.random.fork_rng(devices=[]),
            cpu_threads(self.device, rows, self._params, self.threads),
        ):
            if params.seed is not None:
                torch.manual_seed(params.seed)
            yield

    def _padded(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(i) for i in ids)
        input_ids = torch.tensor([[self.pad_id] * (width - len(i)) + i for i in ids])
        mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
        return input_ids.to(self.device), mask.to(self.device)

    def _generate(self, prompts: list[Prompt], params: SamplingParams) -> list[Completion]:
        ids = [self.encode(p) for p in prompts]
        if params.max_tokens == 0:
            return [
                Completion([Choice("", "length")] * params.n, Usage(len(i), 0), self.model_name)
                for i in ids
            ]
        input_ids, mask = self._padded(ids)
        copies = _copies(params)
        width, rows = input_ids.size(1), len(ids) * copies
        kwargs = self._kwargs(params, width, rows)
        with self._run(rows, params):
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
        stops = set(kwargs["eos_token_id"] or [])
        completions = []
        for i, prompt_ids in enumerate(ids):
            choices, generated = [], 0
            for j in range(params.n):
                row = i * copies + (j if copies > 1 else 0)
                choice, count = self._choice(out, row, width, stops, params)
                choices.append(choice)
                generated += count
            completions.append(
                Completion(choices, Usage(len(prompt_ids), generated), self.model_name)
            )
        return completions

    def _choice(
        self, out: Any, row: int, width: int, stops: set[int], params: SamplingParams
    ) -> tuple[Choice, int]:
        tokens = out.sequences[row, width:].tolist()
        reason, count = "length", len(tokens)
        for k, token in enumerate(tokens):
            if token in stops:
                tokens, reason, count = tokens[:k], "stop", k + 1
                break
        text = self.tokenizer.decode(tokens, skip_special_tokens=params.skip_special_tokens)
        text, hit = truncate_at_stop(text, params.stop)
        if hit:
            reason = "stop"
        logprobs = top = None
        if params.logprobs is not None:
            steps = torch.stack([step[row] for step in out.logits[: len(tokens)]])
            logprobs, top = choice_logprobs(
                token_logprobs(steps, tokens, params.logprobs), self.token_text
            )
        texts = [self.token_text(t) for t in tokens]
        return Choice(text, reason, texts, tokens, logprobs, top), count

    # -- stream --------------------------------------------------------------------------------

    def _stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[str]:
        ids = self.encode(prompt)
        input_ids, mask = self._padded([ids])
        kwargs = self._kwargs(params, input_ids.size(1), 1)
        kwargs.update(return_dict_in_generate=False, output_logits=False)
        tokens: queue.Queue = queue.Queue()
        cancel = threading.Event()
        kwargs["streamer"] = _TokenStreamer(tokens)
        criteria = kwargs.setdefault("stopping_criteria", StoppingCriteriaList())
        criteria.append(_Cancelled(cancel))

        def run() -> None:
            try:
                with self._run(1, params):
                    self.model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
            except BaseException as exc:  # handed to the consumer thread
                tokens.put(exc)
            finally:
                tokens.put(None)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        stops = set(kwargs["eos_token_id"] or [])
        text = TextStream(self.tokenizer, params.stop, ids[-6:], params.skip_special_tokens)
        return _deltas(tokens, text, stops, cancel, thread)


def _copies(params: SamplingParams) -> int:
    """Rows generate() returns per prompt: greedy samples are all alike, so one is computed."""
    return 1 if params.greedy else params.n


def _deltas(
    tokens: queue.Queue,
    text: TextStream,
    stops: set[int],
    cancel: threading.Event,
    thread: threading.Thread,
) -> Iterator[str]:
    try:
        while (token := tokens.get()) is not None:
            if isinstance(token, BaseException):
                raise token
            if token in stops:
                break
            if delta := text.push(token):
                yield delta
            if text.stopped:
                break
        if tail := text.flush():
            yield tail
    finally:
        cancel.set()
        thread.join()


class _TokenStreamer(BaseStreamer):
    """generate()'s streamer protocol: the prompt first, then each new token; end() at the end."""

    def __init__(self, tokens: queue.Queue):
        self.tokens, self.prompt_seen = tokens, False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for token in value.view(-1).tolist():
            self.tokens.put(token)

    def end(self) -> None:
        pass


class _Cancelled(StoppingCriteria):
    """A stopping criterion that ends generation when the stream's consumer goes away."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.size(0),), self.event.is_set(), dtype=torch.bool)


class _StopStrings(StoppingCriteria):
    """Stop a row once its generated text (not the prompt) holds a stop string."""

    def __init__(self, tokenizer: Any, params: SamplingParams, prompt_width: int):
        self.tokenizer, self.params, self.width = tokenizer, params, prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(
            input_ids[:, self.width :], skip_special_tokens=self.params.skip_special_tokens
        )
        return torch.tensor([truncate_at_stop(t, self.params.stop)[1] for t in texts])


class _OpenAIPenalties(LogitsProcessor):
    """A logits processor for OpenAI's presence and frequency penalties (on generated tokens)."""

    def __init__(self, params: SamplingParams, prompt_width: int):
        self.params = SamplingParams(
            presence_penalty=params.presence_penalty, frequency_penalty=params.frequency_penalty
        )
        self.width = prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[:, self.width :]
        for row in range(scores.size(0)):
            counts = torch.bincount(generated[row], minlength=scores.size(1))[: scores.size(1)]
            apply_penalties(scores[row], counts.to(scores.dtype), None, self.params)
        return scores
