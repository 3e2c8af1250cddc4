"""Sampling parameters and the logits → next-token step of brief 4.3.2.

Generation draws y_t ~ P(y_t | y_<t, x; θ) one token at a time. This module turns the model's
logits for y_t into that choice: penalties, then temperature, top-k, top-p and min-p filtering,
then greedy argmax (temperature 0) or a draw from the remaining distribution with the request's
own seeded generator, so the same seed gives the same text whatever else shares the batch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from instructgen.errors import ConfigError

__all__ = [
    "SamplingParams",
    "TokenLogprob",
    "apply_penalties",
    "filter_logits",
    "sample_next",
    "token_logprobs",
    "make_generator",
    "choice_seed",
    "choice_generator",
]

MAX_LOGPROBS = 20  # OpenAI's limit on top alternatives
SEED_LIMIT = 2**63 - 2**20  # the largest request seed: choice_seed adds the choice index to it


@dataclass
class SamplingParams:
    """How to pick each next token; the same fields for every backend (native, hf, openai).

    temperature 0 is greedy. top_k <= 0, top_p = 1 and min_p = 0 switch their filter off.
    logprobs=k returns each generated token's log-probability and its k best alternatives;
    prompt_logprobs=k does the same for the prompt tokens (OpenAI `echo` + `logprobs`).
    """

    max_tokens: int | None = 256
    min_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    n: int = 1
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    json_schema: dict[str, Any] | str | None = None
    json_mode: bool = False
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        self._check_types()
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = [s for s in (self.stop or []) if s]
        self.stop_token_ids = list(self.stop_token_ids or [])
        _check(self.temperature >= 0, "temperature", "must be >= 0", self.temperature)
        _check(0 < self.top_p <= 1, "top_p", "must be in (0, 1]", self.top_p)
        _check(self.top_k >= -1, "top_k", "must be >= 0 (0 or -1: off)", self.top_k)
        _check(0 <= self.min_p <= 1, "min_p", "must be in [0, 1]", self.min_p)
        _check(
            self.repetition_penalty > 0,
            "repetition_penalty",
            "must be > 0",
            self.repetition_penalty,
        )
        for name in ("presence_penalty", "frequency_penalty"):
            _check(-2 <= getattr(self, name) <= 2, name, "must be in [-2, 2]", getattr(self, name))
        _check(self.n >= 1, "n", "must be >= 1", self.n)
        if self.max_tokens is not None:
            _check(self.max_tokens >= 0, "max_tokens", "must be >= 0", self.max_tokens)
            _check(
                self.min_tokens <= self.max_tokens,
                "min_tokens",
                f"must be <= max_tokens ({self.max_tokens})",
                self.min_tokens,
            )
        _check(self.min_tokens >= 0, "min_tokens", "must be >= 0", self.min_tokens)
        for name in ("logprobs", "prompt_logprobs"):
            value = getattr(self, name)
            ok = value is None or 0 <= value <= MAX_LOGPROBS
            _check(ok, name, f"must be between 0 and {MAX_LOGPROBS}", value)
        for s in self.stop:
            _check(isinstance(s, str), "stop", "must be strings", s)

    def _check_types(self) -> None:
        for name in _NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"must be a number, got {value!r}", field=name)
        for name, optional in _INTEGERS.items():
            value = getattr(self, name)
            if (value is None and not optional) or (
                value is not None and (isinstance(value, bool) or not isinstance(value, int))
            ):
                raise ConfigError(f"must be an integer, got {value!r}", field=name)
        if self.stop is not None and not isinstance(self.stop, (str, list, tuple)):
            raise ConfigError(
                f"must be a string or a list of strings, got {self.stop!r}", field="stop"
            )

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SamplingParams:
        """SamplingParams from keyword arguments; an unknown name is a ConfigError naming it."""
        known = {f.name for f in fields(cls)}
        for key in kwargs:
            if key not in known:
                raise ConfigError(
                    f"unknown sampling parameter; choose from {', '.join(sorted(known))}",
                    field=key,
                )
        return cls(**{k: v for k, v in kwargs.items() if v is not None or k == "max_tokens"})

    @property
    def greedy(self) -> bool:
        """T = 0, or a T so small that l / T overflows: argmax either way."""
        return self.temperature < GREEDY_BELOW

    @property
    def penalised(self) -> bool:
        return (
            self.repetition_penalty != 1
            or self.presence_penalty != 0
            or self.frequency_penalty != 0
        )

    @property
    def filtered(self) -> bool:
        return self.top_k > 0 or self.top_p < 1 or self.min_p > 0


GREEDY_BELOW = 1e-5  # temperatures under this are greedy (dividing by them overflows)
_NUMBERS = (
    "temperature",
    "top_p",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
)
_INTEGERS = {  # name: whether None is allowed
    "max_tokens": True,
    "min_tokens": False,
    "top_k": False,
    "seed": True,
    "n": False,
    "logprobs": True,
    "prompt_logprobs": True,
}


def _check(ok: bool, name: str, rule: str, value: Any) -> None:
    if isinstance(value, float) and math.isnan(value):
        ok = False
    if not ok:
        raise ConfigError(f"{rule}, got {value!r}", field=name)


@dataclass
class TokenLogprob:
    """log P(token | context) and the `top` best alternatives [(token_id, logprob)], best first."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


def make_generator(seed: int | None) -> torch.Generator:
    """A private generator: seeded for reproducibility, or from the OS when no seed is given."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**63)
    return torch.Generator().manual_seed(seed)


def choice_seed(seed: int | None, index: int) -> int | None:
    """The seed of choice `index` (0-based) of a request seeded `seed`: seed + index, so choice i
    of n draws what a lone request seeded seed + i draws; None (unseeded) stays None."""
    return None if seed is None else seed + index


def choice_generator(params: SamplingParams, index: int) -> torch.Generator | None:
    """The generator choice `index` of a request draws from: None when greedy (nothing is drawn),
    else make_generator(choice_seed(params.seed, index))."""
    return None if params.greedy else make_generator(choice_seed(params.seed, index))


def apply_penalties(
    logits: torch.Tensor,
    counts: torch.Tensor | None,
    seen: torch.Tensor | None,
    params: SamplingParams,
) -> torch.Tensor:
    """Penalise one row of logits [V] in place and return it.

    repetition (CTRL, on prompt and output tokens): l ← l / r if l > 0 else l · r;
    frequency and presence (OpenAI, on output tokens): l ← l − α_f · c(t) − α_p · 1[c(t) > 0].
    """
    if params.repetition_penalty != 1 and seen is not None:
        r = params.repetition_penalty
        picked = logits[seen]
        logits[seen] = torch.where(picked > 0, picked / r, picked * r)
    if counts is not None and (params.frequency_penalty or params.presence_penalty):
        logits -= params.frequency_penalty * counts + params.presence_penalty * (counts > 0)
    return logits


def filter_logits(
    logits: torch.Tensor, top_k: Sequence[int], top_p: Sequence[float], min_p: Sequence[float]
) -> torch.Tensor:
    """Set to -inf every token outside row i's top_k[i] / top_p[i] nucleus / min_p[i] floor.

    top-k keeps the k largest; top-p keeps the smallest set whose probability reaches p (always
    at least one token); min-p keeps tokens with P(t) >= min_p · max P. Applied in that order.
    """
    n, vocab = logits.shape
    if any(k > 0 for k in top_k) or any(p < 1 for p in top_p):
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        k = torch.tensor([k if k > 0 else vocab for k in top_k]).view(n, 1)
        remove = torch.arange(vocab).view(1, vocab) >= k
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        p = torch.tensor([p if p < 1 else math.inf for p in top_p]).view(n, 1)
        probs = sorted_logits.softmax(dim=-1)
        remove |= (probs.cumsum(dim=-1) - probs) >= p  # mass before this token already reaches p
        remove[:, 0] = False  # the most likely token always stays, whatever p (1e-300 is 0 here)
        logits = logits.masked_fill(remove.scatter(1, order, remove), float("-inf"))
    if any(m > 0 for m in min_p):
        probs = logits.softmax(dim=-1)
        top = probs.amax(-1, keepdim=True)
        floor = torch.tensor(min_p, dtype=probs.dtype).view(n, 1) * top
        logits = logits.masked_fill((probs < floor) & (probs < top), float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    params: Sequence[SamplingParams],
    generators: Sequence[torch.Generator | None],
) -> list[int]:
    """One token per row of logits [n, V]: argmax when T = 0, else t ~ softmax(filter(l / T)).

    Filters run after the temperature, in HF's order: top-k, top-p, min-p. Each sampled row draws
    with its own generator, so its choice does not depend on the other rows.
    """
    # a penalty or temperature at the edge of what validation allows can overflow: +inf becomes
    # the largest float (ties stay ties) and NaN is never chosen
    top = torch.finfo(logits.dtype).max
    logits = logits.nan_to_num(nan=float("-inf"), posinf=top, neginf=float("-inf"))
    chosen = logits.argmax(dim=-1).tolist()
    rows = [i for i, p in enumerate(params) if not p.greedy]
    if not rows:
        return chosen
    picked = [params[i] for i in rows]
    t = torch.tensor([p.temperature for p in picked], dtype=logits.dtype).view(-1, 1)
    scaled = (logits[rows] / t).nan_to_num(nan=float("-inf"), posinf=top, neginf=float("-inf"))
    if any(p.filtered for p in picked):
        scaled = filter_logits(
            scaled, [p.top_k for p in picked], [p.top_p for p in picked], [p.min_p for p in picked]
        )
    probs = scaled.softmax(dim=-1)
    for j, i in enumerate(rows):
        chosen[i] = int(torch.multinomial(probs[j], 1, generator=generators[i]))
    return chosen


def token_logprobs(logits: torch.Tensor, token_ids: Sequence[int], top: int) -> list[TokenLogprob]:
    """log softmax(l)[token] for each row of logits [n, V] and its `top` best alternatives."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    chosen = logp.gather(1, torch.tensor(token_ids).view(-1, 1)).view(-1).tolist()
    if top > 0:
        values, indices = logp.topk(top, dim=-1)
        alternatives = [list(zip(i, v)) for i, v in zip(indices.tolist(), values.tolist())]
    else:
        alternatives = [[] for _ in token_ids]
    return [TokenLogprob(int(t), float(c), a) for t, c, a in zip(token_ids, chosen, alternatives)]
