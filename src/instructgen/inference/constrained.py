"""Structured output: JSON mode and JSON-schema-constrained decoding through xgrammar.

Before each token is chosen, the grammar matcher marks which vocabulary entries can continue a
valid document; every other logit becomes −∞, so whatever the model's weights, the text is
valid JSON for the schema. Once the document is complete only stop tokens remain allowed, so
generation ends there. Schemas compile once per (tokenizer, schema) and are cached.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import torch

from instructgen.errors import ConfigError

__all__ = ["GrammarFactory", "Constraint", "GrammarLogitsProcessor"]


class Constraint:
    """One sequence's grammar state: mask the logits, then accept the chosen token.

    With few tokens of budget left (`remaining` <= the closing window), only the allowed tokens
    that close the document fastest stay allowed (closing quotes and brackets, then separators,
    then digits), so a constrained answer ends as valid JSON instead of being cut off.
    """

    def __init__(self, compiled: Any, stop_ids: list[int], factory: GrammarFactory):
        import xgrammar as xgr

        self._xgr = xgr
        self.matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=stop_ids or None)
        self.bitmask = xgr.allocate_token_bitmask(1, factory.vocab_size)
        self.vocab_size = factory.vocab_size
        self.factory = factory
        self.stop_ids = stop_ids
        self._filled = None  # bitmask already filled for the current state: whether it masks

    def _fill(self) -> bool:
        if self._filled is None:
            self._filled = self.matcher.fill_next_token_bitmask(self.bitmask, 0)
        return self._filled

    def mask(self, logits: torch.Tensor, remaining: int | None = None) -> torch.Tensor:
        """Set the logits [V] of tokens the grammar forbids to −∞ (in place) and return them."""
        if logits.dtype != torch.float32:
            raise TypeError("constrained decoding needs float32 logits")
        if self._fill():
            self._xgr.apply_token_bitmask_inplace(
                logits.view(1, -1), self.bitmask, vocab_size=self.vocab_size
            )
        size = min(logits.size(0), self.vocab_size)
        vocab = logits[:size]
        vocab.masked_fill_(self.factory.banned[:size], float("-inf"))
        if remaining is not None and remaining <= self.factory.closing_window:
            ranks = self.factory.ranks[:size].masked_fill(vocab == float("-inf"), _NO_RANK)
            vocab.masked_fill_(ranks != ranks.min(), float("-inf"))
        return logits

    def accept(self, token_id: int) -> bool:
        self._filled = None
        return self.matcher.accept_token(token_id)

    @property
    def done(self) -> bool:
        """The document is complete and nothing but a stop token may follow."""
        if self.matcher.is_terminated():
            return True
        if not self.matcher.is_completed():
            return False
        self._fill()
        allowed = _unpack(self.bitmask[0], self.vocab_size)
        allowed[self.stop_ids] = False
        return not bool(allowed.any())


_NO_RANK = 127


def _unpack(bits: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The int32 words of an xgrammar bitmask as a bool tensor [vocab_size]."""
    shifts = torch.arange(32, dtype=torch.int32)
    return ((bits.view(-1, 1) >> shifts) & 1).view(-1)[:vocab_size].bool()


def _token_ranks(texts: list[str], stop_ids: list[int]) -> torch.Tensor:
    """How directly each token closes a JSON document: 0 closers, 1 separators, 2 digits, 3 rest."""
    ranks = []
    for text in texts:
        if text and all(c in '"}]' for c in text):
            ranks.append(0)
        elif text and all(c in ":, " for c in text):
            ranks.append(1)
        elif text and text.isascii() and text.isdigit():
            ranks.append(2)
        else:
            ranks.append(3)
    out = torch.tensor(ranks, dtype=torch.int8)
    out[[i for i in stop_ids if i < len(ranks)]] = 0
    return out


class GrammarFactory:
    """Compiles JSON grammars for one tokenizer (ours or a Hugging Face one)."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: list[int]):
        import xgrammar as xgr

        hf = _hf_tokenizer(tokenizer)
        info = xgr.TokenizerInfo.from_huggingface(
            hf, vocab_size=vocab_size, stop_token_ids=stop_ids or None
        )
        self.vocab_size = vocab_size
        self.compiler = xgr.GrammarCompiler(info, max_threads=2)
        self._lock = threading.Lock()
        texts = [hf.decode([i]) for i in range(min(vocab_size, len(hf)))]
        texts += [""] * (vocab_size - len(texts))
        self.ranks = _token_ranks(texts, stop_ids)
        # compact JSON never holds a raw control character (xgrammar's strings would allow them)
        self.banned = torch.tensor([any(ord(c) < 32 for c in t) for t in texts])
        self.closing_window = 16

    def compile(self, json_schema: dict[str, Any] | str | None) -> Any:
        """The compiled grammar of `json_schema`, or of any JSON object when it is None."""
        if json_schema is None:
            schema, strict = {"type": "object"}, False  # JSON mode: any object
        else:
            schema, strict = _parse_schema(json_schema), True
        try:
            with self._lock:
                return self.compiler.compile_json_schema(
                    json.dumps(schema, sort_keys=True),
                    any_whitespace=False,
                    strict_mode=strict,
                )
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"unsupported JSON schema: {exc}", field="json_schema") from None

    def constraint(
        self, json_schema: dict[str, Any] | str | None, stop_ids: list[int]
    ) -> Constraint:
        return Constraint(self.compile(json_schema), stop_ids, self)


def _parse_schema(json_schema: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(json_schema, str):
        try:
            json_schema = json.loads(json_schema)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}", field="json_schema") from None
    if not isinstance(json_schema, dict):
        raise ConfigError("a JSON schema must be a JSON object", field="json_schema")
    try:
        import jsonschema

        jsonschema.validators.validator_for(json_schema).check_schema(json_schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"invalid JSON schema: {exc.message}", field="json_schema") from None
    return json_schema


def _hf_tokenizer(tokenizer: Any) -> Any:
    """A transformers tokenizer view of our Tokenizer (xgrammar reads its vocabulary)."""
    if hasattr(tokenizer, "get_vocab") and hasattr(tokenizer, "convert_ids_to_tokens"):
        return tokenizer
    from transformers import PreTrainedTokenizerFast

    ids = {"bos_token": tokenizer.bos_id, "eos_token": tokenizer.eos_id}
    special = {k: tokenizer.backend.id_to_token(i) for k, i in ids.items() if i is not None}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend, **special)


class GrammarLogitsProcessor:
    """A transformers LogitsProcessor: one Constraint per row of a `generate` batch."""

    def __init__(self, constraints: list[Constraint], prompt_length: int):
        self.constraints = constraints
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.size(1) > self.prompt_length:
            for row, constraint in enumerate(self.constraints):
                if not constraint.matcher.is_terminated():
                    constraint.accept(int(input_ids[row, -1]))
        scores = scores.float()
        for row, constraint in enumerate(self.constraints):
            if not constraint.matcher.is_terminated():
                constraint.mask(scores[row])
        return scores
