"""Structured output: JSON mode and JSON-schema-constrained decoding through xgrammar.

Before each token is chosen, the grammar matcher marks which vocabulary entries can continue a
valid document; every other logit becomes −∞, so whatever the model's weights, the text is
valid JSON for the schema. Once the document is complete only stop tokens remain allowed, so
generation ends there. Schemas compile once per (tokenizer, schema) and are cached.

A token budget could still cut a document short, so near the end of the budget each step
measures how many tokens the quickest completion needs (closing quotes and brackets first, then
separators, digits, anything else); when that is all the budget left, the constraint writes that
completion itself. A constrained answer therefore ends as valid JSON unless the budget is too
small for even the shortest document.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import torch

from instructgen.errors import ConfigError, DataError

__all__ = [
    "GrammarFactory",
    "Constraint",
    "GrammarLogitsProcessor",
    "check_json_schema",
    "read_json_schema",
]

_LOOKAHEAD = 64  # start measuring the quickest completion this many tokens before the end
_NEVER = torch.iinfo(torch.int32).max


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
        # compact JSON never holds a raw control character (xgrammar's strings would allow one)
        self.banned = torch.tensor([any(ord(c) < 32 for c in t) for t in texts])
        self.closing_order = _closing_order(texts, stop_ids)

    def compile(self, json_schema: dict[str, Any] | str | None) -> Any:
        """The compiled grammar of `json_schema`, or of any JSON object when it is None."""
        if json_schema is None:
            schema, strict = {"type": "object"}, False  # JSON mode: any object
        else:
            schema, strict = check_json_schema(json_schema), True
        try:
            with self._lock:
                return self.compiler.compile_json_schema(
                    json.dumps(schema), any_whitespace=False, strict_mode=strict
                )
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"unsupported JSON schema: {exc}", field="json_schema") from None

    def constraint(
        self, json_schema: dict[str, Any] | str | None, stop_ids: list[int]
    ) -> Constraint:
        return Constraint(self.compile(json_schema), stop_ids, self)


class Constraint:
    """One sequence's grammar state: mask the logits, then accept the chosen token."""

    def __init__(self, compiled: Any, stop_ids: list[int], factory: GrammarFactory):
        import xgrammar as xgr

        self._xgr = xgr
        self.matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=stop_ids or None)
        self.bitmask = xgr.allocate_token_bitmask(1, factory.vocab_size)
        self.factory = factory
        self.stop_ids = stop_ids
        self.closing = False  # writing the quickest completion itself
        self._filled: bool | None = None  # bitmask filled for the current state (and needed)

    def _fill(self) -> bool:
        if self._filled is None:
            self._filled = self.matcher.fill_next_token_bitmask(self.bitmask, 0)
        return self._filled

    def _allowed(self, matcher: Any, bitmask: torch.Tensor) -> torch.Tensor:
        """bool [V]: tokens the grammar allows next, minus the banned ones."""
        bits = bitmask[0].view(-1, 1) >> torch.arange(32, dtype=torch.int32)
        allowed = (bits & 1).view(-1)[: self.factory.vocab_size].bool()
        return allowed & ~self.factory.banned

    def _quickest(self, allowed: torch.Tensor) -> int:
        return int(self.factory.closing_order.masked_fill(~allowed, _NEVER).argmin())

    def mask(self, logits: torch.Tensor, remaining: int | None = None) -> torch.Tensor:
        """Set the logits [V] of the tokens the grammar forbids to −∞ (in place); `remaining`
        is the token budget left, which may switch to writing the quickest completion."""
        if logits.dtype != torch.float32:
            raise TypeError("constrained decoding needs float32 logits")
        size = self.factory.vocab_size
        if self._fill():
            self._xgr.apply_token_bitmask_inplace(logits.view(1, -1), self.bitmask, vocab_size=size)
        logits[:size].masked_fill_(self.factory.banned, float("-inf"))
        if remaining is not None and not self.closing and remaining <= _LOOKAHEAD:
            self.closing = self._completion_length(remaining) >= remaining - 1
        if self.closing:
            self._fill()
            keep = self._quickest(self._allowed(self.matcher, self.bitmask))
            chosen = logits[keep].clone()
            logits.fill_(float("-inf"))
            logits[keep] = chosen if torch.isfinite(chosen) else 0.0
        return logits

    def _completion_length(self, limit: int) -> int:
        """Tokens the quickest completion needs from here (limit + 1 when more than limit)."""
        matcher = self.matcher.fork()
        bitmask = self._xgr.allocate_token_bitmask(1, self.factory.vocab_size)
        for n in range(limit + 1):
            if matcher.is_completed():
                return n
            matcher.fill_next_token_bitmask(bitmask, 0)
            if not matcher.accept_token(self._quickest(self._allowed(matcher, bitmask))):
                break
        return limit + 1

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
        allowed = self._allowed(self.matcher, self.bitmask)
        allowed[[i for i in self.stop_ids if i < allowed.numel()]] = False
        return not bool(allowed.any())


def _closing_order(texts: list[str], stop_ids: list[int]) -> torch.Tensor:
    """Sort key of each token for the quickest completion: closers ("}]), then separators,
    then digits, then the rest; longer tokens first within a class."""

    def rank(text: str) -> int:
        if text and all(c in '"}]' for c in text):
            return 0
        if text and all(c in ":, " for c in text):
            return 1
        if text and text.isascii() and text.isdigit():
            return 2
        return 3

    order = torch.tensor([rank(t) * 1024 - min(len(t), 1023) for t in texts], dtype=torch.int32)
    order[[i for i in stop_ids if i < len(texts)]] = -1  # a complete document just stops
    return order


def check_json_schema(json_schema: dict[str, Any] | str) -> dict[str, Any]:
    """The schema as a dict; a ConfigError when it is malformed or no value can satisfy it."""
    if isinstance(json_schema, str):
        try:
            json_schema = json.loads(json_schema)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON: {exc.msg}", field="json_schema") from None
    if not isinstance(json_schema, dict):
        raise ConfigError("a JSON schema must be a JSON object", field="json_schema")
    import jsonschema

    try:
        jsonschema.validators.validator_for(json_schema).check_schema(json_schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"invalid JSON schema: {exc.message}", field="json_schema") from None
    if (why := _contradiction(json_schema)) is not None:
        raise ConfigError(f"no JSON value satisfies this schema: {why}", field="json_schema")
    return json_schema


# (lower bound, upper bound) keyword pairs a value cannot meet when lower > upper
_BOUNDS = (
    ("minLength", "maxLength"),
    ("minItems", "maxItems"),
    ("minProperties", "maxProperties"),
    ("minimum", "maximum"),
)


def _contradiction(schema: Any, where: str = "#") -> str | None:
    """A reason no value can satisfy `schema`, for the contradictions a schema can state
    directly (empty enum, `false`, bounds that cross, required properties that are forbidden);
    None when none is found. Subschemas of properties, items and allOf are searched too."""
    if schema is False:
        return f"{where} is false"
    if not isinstance(schema, dict):
        return None
    if "enum" in schema and not schema["enum"]:
        return f"{where} has an empty enum"
    for low, high in _BOUNDS:
        if low in schema and high in schema and schema[low] > schema[high]:
            return f"{where} has {low} {schema[low]} > {high} {schema[high]}"
    if "exclusiveMinimum" in schema and "exclusiveMaximum" in schema:
        if schema["exclusiveMinimum"] >= schema["exclusiveMaximum"]:
            return f"{where} has an empty exclusive range"
    properties = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        missing = [k for k in schema.get("required", []) if k not in properties]
        if missing:
            return f"{where} requires {missing[0]!r} but allows no such property"
    for name in schema.get("required", []):
        if properties.get(name) is not None and (
            why := _contradiction(properties[name], f"{where}/properties/{name}")
        ):
            return why
    if schema.get("type") == "array" and schema.get("minItems", 0) > 0:
        if why := _contradiction(schema.get("items", True), f"{where}/items"):
            return why
    for i, part in enumerate(schema.get("allOf", [])):
        if why := _contradiction(part, f"{where}/allOf/{i}"):
            return why
    return None


def read_json_schema(path: str | Path) -> dict[str, Any]:
    """A JSON schema from a file; a missing or malformed file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError("JSON schema file not found", file=str(path))
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", file=str(path)) from None
    try:
        return check_json_schema(schema)
    except ConfigError as exc:
        raise DataError(str(exc).removeprefix("field 'json_schema': "), file=str(path)) from None


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

    def __init__(self, constraints: list[Constraint], prompt_length: int, max_new_tokens: int):
        self.constraints = constraints
        self.prompt_length = prompt_length
        self.max_new_tokens = max_new_tokens

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids.size(1) - self.prompt_length
        scores = scores.float()
        for row, constraint in enumerate(self.constraints):
            if constraint.matcher.is_terminated():
                continue
            if generated > 0:
                constraint.accept(int(input_ids[row, -1]))
            if not constraint.matcher.is_terminated():
                constraint.mask(scores[row], self.max_new_tokens - generated)
        return scores
