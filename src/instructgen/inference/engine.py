"""The native generation engine: prefill, then decode with a preallocated KV cache.

Brief 4.3.2 factorises generation as P(y|x) = ∏_t P(y_t | y_<t, x): the prompt x is run through
the model once (prefill, filling the KV cache), then each step feeds only the last token and
reads the next one off the logits (decode). Requests of any prompt length share one batch: each
is a row of a left-padded timeline (SlotCache) that joins when admitted and leaves when done, so
a server can add requests between steps (continuous batching):

    engine = Engine.from_dir("runs/quickstart/model")
    request = engine.add_request("Hello", SamplingParams(max_tokens=16))
    while not request.finished:
        for out in engine.step():     # one new token for every running sequence
            print(out.text, end="")

`generate(prompts, params)` and `stream(prompt, params)` are that loop, ready-made.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from instructgen.errors import ConfigError, UserError
from instructgen.inference.cache import SlotCache
from instructgen.inference.decoder import FastDecoder
from instructgen.inference.prefill import build_prefill
from instructgen.inference.prefix_cache import PrefixCache
from instructgen.inference.quantize import check_quantize, quantize_model
from instructgen.inference.sampling import (
    SamplingParams,
    TokenLogprob,
    apply_penalties,
    choice_generator,
    sample_next,
    token_logprobs,
)
from instructgen.inference.stops import TextStream
from instructgen.inference.threads import cpu_threads
from instructgen.model.checkpoint import check_model_dir, load_model
from instructgen.model.model_dir import read_generation_eos
from instructgen.model.transformer import Transformer
from instructgen.tokenizer import Tokenizer

# check_model_dir: model/'s whole-directory check, here for serve (which imports inference only)
__all__ = ["Engine", "Request", "SequenceOutput", "StepOutput", "check_model_dir", "stop_ids_of"]

log = logging.getLogger(__name__)
_PREFILL_TOKENS = 8192  # prompt tokens prefilled together in one step, at most
_RESERVE_AHEAD = 512  # cache columns reserved ahead of need, at most


@dataclass
class StepOutput:
    """What one step produced for one sequence: new token ids and the text they complete."""

    request: Request
    index: int
    token_ids: list[int]
    text: str
    logprobs: list[TokenLogprob]
    finish_reason: str | None


@dataclass
class SequenceOutput:
    """A finished sample: text, token ids (stop token excluded), why it ended."""

    index: int
    text: str
    token_ids: list[int]
    finish_reason: str
    logprobs: list[TokenLogprob] | None
    num_generated: int  # tokens produced, the stop token included (what usage counts)


class _Sequence:
    """One sample being generated: its row in the cache and everything its sampling needs."""

    def __init__(self, request: Request, index: int, engine: Engine, stream: bool):
        p = request.params
        self.request, self.index, self.params = request, index, p
        self.row = -1
        self.last = -1  # the sampled token the next decode step feeds
        self.output_ids: list[int] = []
        self.num_generated = 0
        self.logprobs: list[TokenLogprob] | None = [] if p.logprobs is not None else None
        self.finish_reason: str | None = None
        self.generator = choice_generator(p, index)
        self.stop_ids = set(p.stop_token_ids)
        if not p.ignore_eos:
            self.stop_ids |= set(engine.stop_ids)
        self.text = (
            TextStream(engine.tokenizer, p.stop, request.prompt_ids[-6:], p.skip_special_tokens)
            if stream or p.stop
            else None
        )
        self.counts = self.seen = None
        if p.penalised:
            vocab = engine.config.vocab_size
            self.counts = torch.zeros(vocab)
            self.seen = torch.zeros(vocab, dtype=torch.bool)
            self.seen[torch.tensor(request.prompt_ids)] = True
        self.constraint = (
            engine.grammar.constraint(p.json_schema, sorted(self.stop_ids))
            if p.json_schema is not None or p.json_mode
            else None
        )
        self.plain = not (p.penalised or p.min_tokens or self.constraint)

    def output(self, tokenizer: Tokenizer) -> SequenceOutput:
        if self.text is not None:
            text = self.text.text
        else:
            text = tokenizer.decode(
                self.output_ids, skip_special_tokens=self.params.skip_special_tokens
            )
        return SequenceOutput(
            self.index,
            text,
            list(self.output_ids),
            self.finish_reason or "length",
            self.logprobs,
            self.num_generated,
        )


class Request:
    """A prompt and its n samples; returned by Engine.add_request, updated by Engine.step."""

    def __init__(
        self,
        request_id: str,
        prompt_ids: list[int],
        params: SamplingParams,
        role_ids: list[int] | None,
    ):
        self.id = request_id
        self.prompt_ids = prompt_ids
        self.params = params
        self.role_ids = role_ids
        self.prompt_logprobs: list[TokenLogprob | None] | None = None
        self.sequences: list[_Sequence] = []
        self.aborted = False
        self.error: str | None = None  # why generation failed for this request alone

    @property
    def finished(self) -> bool:
        return bool(self.sequences) and all(s.finish_reason for s in self.sequences)

    def outputs(self, tokenizer: Tokenizer) -> list[SequenceOutput]:
        return [s.output(tokenizer) for s in self.sequences]


class Engine:
    """Batched generation for a Transformer: prefill with the model, decode with FastDecoder."""

    def __init__(
        self,
        model: Transformer,
        tokenizer: Tokenizer,
        *,
        max_batch_size: int = 32,
        stop_ids: Sequence[int] | None = None,
        share_weights: bool = False,
        threads: int | None = None,
        prefix_cache_mb: float = 0,
        quantize: str | None = None,
    ):
        """threads: CPU threads for forward passes (None: one for small passes, see threads.py);
        prefix_cache_mb: memory for prompt blocks reused across requests (0: no prefix cache);
        quantize: "int8" replaces the model's linear layers by int8 ones (inference/quantize.py)."""
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = model.config
        self.max_batch_size = max_batch_size
        self.threads = threads
        self._params = sum(p.numel() for p in model.parameters())
        self.stop_ids = list(stop_ids) if stop_ids is not None else tokenizer.stop_ids
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        quantize_model(model, quantize)
        self.decoder = FastDecoder(model, share_weights=share_weights)
        self.cache = SlotCache(
            self.config,
            max_rows=max_batch_size,
            max_len=self.config.max_seq_len,
            device=self.device,
            dtype=self.dtype,
        )
        self.prefix_cache = (
            PrefixCache(self.config, int(prefix_cache_mb * 2**20), dtype=self.dtype)
            if prefix_cache_mb > 0
            else None
        )
        self._rows: list[_Sequence] = []  # running sequences, by cache row
        self._waiting: deque[Request] = deque()
        self._aborts: set[str] = set()
        self._ids = itertools.count()
        self._grammar = None
        self._lock = threading.Lock()

    @classmethod
    def from_dir(
        cls,
        model_dir: str | Path,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        max_batch_size: int = 32,
        prefix_cache_mb: float = 0,
        quantize: str | None = None,
    ) -> Engine:
        check_quantize(quantize)
        model = load_model(model_dir, dtype=dtype, device=device)
        tokenizer = Tokenizer.from_dir(model_dir)
        return cls(
            model,
            tokenizer,
            max_batch_size=max_batch_size,
            stop_ids=stop_ids_of(model_dir, tokenizer),
            share_weights=True,
            prefix_cache_mb=prefix_cache_mb,
            quantize=quantize,
        )

    @property
    def grammar(self):
        if self._grammar is None:
            from instructgen.inference.constrained import GrammarFactory

            self._grammar = GrammarFactory(self.tokenizer, self.config.vocab_size, self.stop_ids)
        return self._grammar

    # -- requests ------------------------------------------------------------------------------

    def encode(self, prompt: str | Sequence[int]) -> list[int]:
        """Token ids of a prompt (a string is encoded with the tokenizer's special tokens)."""
        if isinstance(prompt, str):
            ids = self.tokenizer.encode(prompt, add_special_tokens=True)
        else:
            ids = [int(i) for i in prompt]
            bad = [i for i in ids if not 0 <= i < self.config.vocab_size]
            if bad:
                raise UserError(
                    f"token id {bad[0]} is outside the vocabulary (0..{self.config.vocab_size - 1})",
                    field="prompt",
                )
        if not ids:  # an empty prompt starts from the beginning-of-text token
            start = (
                self.tokenizer.bos_id
                if self.tokenizer.bos_id is not None
                else self.tokenizer.eos_id
            )
            ids = [start if start is not None else 0]
        return ids

    def check_length(self, prompt_tokens: int) -> None:
        context = self.config.max_seq_len
        if prompt_tokens >= context:
            raise UserError(
                f"the prompt has {prompt_tokens} tokens but the model's context window is "
                f"{context} tokens (prompt and answer together); shorten the prompt",
                field="prompt",
            )

    def add_request(
        self,
        prompt: str | Sequence[int],
        params: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        role_ids: Sequence[int] | None = None,
        stream: bool = False,
    ) -> Request:
        """Queue a prompt; it joins the running batch at the next step. stream=True computes
        text deltas at every step (otherwise text is decoded once, at the end)."""
        params = params or SamplingParams()
        ids = self.encode(prompt)
        self.check_length(len(ids))
        if params.n > self.max_batch_size:
            raise ConfigError(
                f"must be <= the engine's batch size {self.max_batch_size}, got {params.n}",
                field="n",
            )
        if role_ids is not None and len(role_ids) != len(ids):
            raise ValueError(f"role_ids has {len(role_ids)} entries for {len(ids)} prompt tokens")
        request = Request(request_id or f"req-{next(self._ids)}", ids, params, role_ids)
        request.sequences = [_Sequence(request, i, self, stream) for i in range(params.n)]
        with self._lock:
            self._waiting.append(request)
        return request

    def abort(self, request: Request | str) -> None:
        """Stop a request; its rows are freed at the next step."""
        with self._lock:
            self._aborts.add(request if isinstance(request, str) else request.id)

    def has_unfinished(self) -> bool:
        return bool(self._rows or self._waiting)

    # -- the step loop -------------------------------------------------------------------------

    @torch.inference_mode()
    def step(self) -> list[StepOutput]:
        """Decode one token for every running sequence, then admit and prefill waiting requests."""
        outputs: list[StepOutput] = []
        self._apply_aborts(outputs)
        if self._rows:
            self.cache.make_room()
            tokens = torch.tensor([s.last for s in self._rows], device=self.device)
            with self._cpu_threads(len(self._rows)):
                logits = self.decoder.step(tokens, self.cache).float().cpu()  # sampled on CPU
            self._advance(list(self._rows), logits, outputs)
        admitted = self._admit()
        if admitted:
            self._prefill(admitted, outputs)
        return outputs

    def _cpu_threads(self, tokens: int) -> contextlib.AbstractContextManager:
        return cpu_threads(self.device, tokens, self._params, self.threads)

    def _apply_aborts(self, outputs: list[StepOutput]) -> None:
        with self._lock:
            aborts, self._aborts = self._aborts, set()
            if not aborts:
                return
            waiting = [r for r in self._waiting if r.id in aborts]
            self._waiting = deque(r for r in self._waiting if r.id not in aborts)
        for request in waiting:
            request.aborted = True
            for seq in request.sequences:
                seq.finish_reason = "abort"
        for seq in [s for s in self._rows if s.request.id in aborts]:
            seq.request.aborted = True
            self._finish(seq, "abort", outputs, emit=False)

    def _admit(self) -> list[Request]:
        admitted, rows, tokens = [], len(self._rows), 0
        with self._lock:
            while self._waiting:
                request = self._waiting[0]
                need = request.params.n
                if rows + need > self.max_batch_size or (
                    admitted and tokens + len(request.prompt_ids) > _PREFILL_TOKENS
                ):
                    break
                admitted.append(self._waiting.popleft())
                rows += need
                tokens += len(request.prompt_ids)
        return admitted

    def _prefill(self, requests: list[Request], outputs: list[StepOutput]) -> None:
        """Run the prompts (after any prefix the prefix cache holds) and sample first tokens."""
        prompts = [r.prompt_ids for r in requests]
        batch = build_prefill(
            self.config,
            prompts,
            [r.role_ids for r in requests],
            with_roles=self.model.role_emb is not None,
            prefix_cache=self.prefix_cache,
            reuse=[r.params.prompt_logprobs is None for r in requests],
            pad_id=self.tokenizer.pad_id or 0,
            device=self.device,
            dtype=self.dtype,
        )
        with self._cpu_threads(batch.ids.numel()):
            hidden = self.model(batch.ids, cache=batch.cache, return_hidden=True, **batch.inputs)
        last = self.model.lm_head(hidden[:, -1]).float().cpu()
        if self.prefix_cache is not None:
            batch.store(prompts, self.prefix_cache)
        self._reserve(requests, batch.width)
        sources, starting = [], []
        for i, request in enumerate(requests):
            if request.params.prompt_logprobs is not None:  # computed whole: past is padding
                request.prompt_logprobs = self._prompt_logprobs(
                    request, hidden[i, batch.computed_pad(i) :]
                )
            if request.params.max_tokens == 0:
                for seq in request.sequences:
                    self._finish(seq, "length", outputs, emit=True)
                continue
            for seq in request.sequences:
                sources.append(i)
                starting.append(seq)
        if not starting:
            return
        rows = self.cache.add_rows(batch.cache, sources, [batch.pads[i] for i in sources])
        for seq, row in zip(starting, rows):
            seq.row = row
            self._rows.append(seq)
        self._advance(starting, last[sources], outputs)

    def _reserve(self, requests: list[Request], width: int) -> None:
        """Grow the cache once for the rows joining and the tokens they may still produce."""
        ahead = [
            min(s.params.max_tokens or self.config.max_seq_len, self.config.max_seq_len)
            for r in requests
            for s in r.sequences
        ]
        ahead += [
            (s.params.max_tokens or self.config.max_seq_len) - s.num_generated for s in self._rows
        ]
        length = max(self.cache.length, width) + min(max(ahead), _RESERVE_AHEAD)
        rows = len(self._rows) + sum(r.params.n for r in requests)
        self.cache.reserve(rows, length)

    def _prompt_logprobs(self, request: Request, hidden: torch.Tensor) -> list[TokenLogprob | None]:
        """log P(x_t | x_<t) for every prompt token after the first (OpenAI echo + logprobs)."""
        ids = request.prompt_ids
        if len(ids) < 2:
            return [None]
        logits = self.model.lm_head(hidden[:-1]).float().cpu()
        return [None, *token_logprobs(logits, ids[1:], request.params.prompt_logprobs)]

    def _advance(
        self, seqs: list[_Sequence], logits: torch.Tensor, outputs: list[StepOutput]
    ) -> None:
        """Choose each sequence's next token from its logits [len(seqs), V] and record it.

        If choosing fails for the batch, each sequence is tried alone, and one whose own settings
        fail ends with finish_reason "error" while the others carry on."""
        try:
            choices = self._choose(seqs, logits)
        except Exception:
            choices = []
            for i, seq in enumerate(seqs):
                try:
                    choices += self._choose([seq], logits[i : i + 1])
                except Exception as exc:
                    log.warning("request %s failed in sampling: %r", seq.request.id, exc)
                    seq.request.error = f"generation failed: {type(exc).__name__}"
                    self._finish(seq, "error", outputs, emit=True)
                    choices.append(None)
        for seq, choice in zip(seqs, choices):
            if choice is not None:
                self._record(seq, *choice, outputs)

    def _choose(
        self, seqs: list[_Sequence], logits: torch.Tensor
    ) -> list[tuple[int, TokenLogprob | None]]:
        """(next token, its logprob if asked) per sequence: penalties, min_tokens, constraints,
        then sampling."""
        raw = logits
        if not all(s.plain for s in seqs):
            logits = logits.clone()
            for i, seq in enumerate(seqs):
                if seq.plain:
                    continue
                p = seq.params
                if p.penalised:
                    apply_penalties(logits[i], seq.counts, seq.seen, p)
                if seq.num_generated < p.min_tokens and seq.constraint is None:
                    logits[i, sorted(seq.stop_ids)] = float("-inf")
                if seq.constraint is not None:
                    seq.constraint.mask(logits[i], self._budget(seq) - len(seq.output_ids))
        chosen = sample_next(logits, [s.params for s in seqs], [s.generator for s in seqs])
        wanted = [i for i, s in enumerate(seqs) if s.logprobs is not None]
        logprobs: dict[int, TokenLogprob] = {}
        if wanted:
            top = max(seqs[i].params.logprobs or 0 for i in wanted)
            found = token_logprobs(raw[wanted], [chosen[i] for i in wanted], top)
            for i, lp in zip(wanted, found):
                lp.top = lp.top[: seqs[i].params.logprobs]
                logprobs[i] = lp
        return [(token, logprobs.get(i)) for i, token in enumerate(chosen)]

    def _record(
        self,
        seq: _Sequence,
        token: int,
        logprob: TokenLogprob | None,
        outputs: list[StepOutput],
    ) -> None:
        seq.num_generated += 1
        seq.last = token
        if seq.counts is not None:
            seq.counts[token] += 1
            seq.seen[token] = True
        if seq.constraint is not None:
            seq.constraint.accept(token)
        if token in seq.stop_ids:
            self._finish(seq, "stop", outputs, emit=True)
            return
        seq.output_ids.append(token)
        if logprob is not None:
            seq.logprobs.append(logprob)
        text = seq.text.push(token) if seq.text is not None else ""
        reason = None
        if seq.text is not None and seq.text.stopped:
            reason = "stop"
        elif seq.constraint is not None and seq.constraint.done:
            reason = "stop"
        elif len(seq.output_ids) >= self._budget(seq) or (
            len(seq.request.prompt_ids) + seq.num_generated >= self.config.max_seq_len
        ):
            reason = "length"
        if reason is None:
            outputs.append(
                StepOutput(
                    seq.request, seq.index, [token], text, [logprob] if logprob else [], None
                )
            )
        else:
            self._finish(seq, reason, outputs, emit=True, token=token, text=text, logprob=logprob)

    def _budget(self, seq: _Sequence) -> int:
        """Output tokens the sequence may have: max_tokens, within the context window."""
        room = self.config.max_seq_len - len(seq.request.prompt_ids)
        limit = seq.params.max_tokens
        return room if limit is None else min(limit, room)

    def _finish(
        self,
        seq: _Sequence,
        reason: str,
        outputs: list[StepOutput],
        *,
        emit: bool,
        token: int | None = None,
        text: str = "",
        logprob: TokenLogprob | None = None,
    ) -> None:
        seq.finish_reason = reason
        if seq.text is not None and reason != "abort":
            text += seq.text.flush()
        if seq.row >= 0:
            moved = self.cache.remove_row(seq.row)
            last = self._rows.pop()
            if moved is not None:
                last.row = seq.row
                self._rows[seq.row] = last
            seq.row = -1
        if emit:
            outputs.append(
                StepOutput(
                    seq.request,
                    seq.index,
                    [token] if token is not None else [],
                    text,
                    [logprob] if logprob else [],
                    reason,
                )
            )

    # -- ready-made loops ----------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str | Sequence[int]],
        params: SamplingParams | None = None,
        *,
        role_ids: Sequence[Sequence[int] | None] | None = None,
    ) -> list[Request]:
        """Generate for every prompt (batched); returns the finished requests, in order."""
        requests = [
            self.add_request(p, params, role_ids=role_ids[i] if role_ids else None)
            for i, p in enumerate(prompts)
        ]
        while not all(r.finished for r in requests):
            self.step()
        return requests

    def stream(
        self,
        prompt: str | Sequence[int],
        params: SamplingParams | None = None,
        *,
        role_ids: Sequence[int] | None = None,
    ) -> Iterator[str]:
        """Text deltas of one sample as they are generated; each is whole UTF-8 characters.

        The request is checked and queued now (errors raise here, not at the first delta)."""
        return self._follow(self.add_request(prompt, params, role_ids=role_ids, stream=True))

    def _follow(self, request: Request) -> Iterator[str]:
        try:
            while not request.finished:
                for out in self.step():
                    if out.request is request and out.text:
                        yield out.text
        finally:
            if not request.finished:
                self.abort(request)  # its rows are freed at the next step


def stop_ids_of(model_dir: str | Path, tokenizer: Tokenizer) -> list[int]:
    """Token ids that end a generation: the tokenizer's and generation_config.json's eos ids."""
    ids = list(tokenizer.stop_ids) + read_generation_eos(model_dir)
    return list(dict.fromkeys(ids))
