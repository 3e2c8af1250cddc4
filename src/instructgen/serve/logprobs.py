"""Token log-probabilities in OpenAI's two shapes, and how a token shows as text and bytes.

Legacy completions (what lm-evaluation-harness reads): parallel lists `tokens`,
`token_logprobs` (log P(x_t | x_<t); None for the first prompt token, which has no context),
`top_logprobs` ({token: logprob} of the best alternatives, the chosen token included) and
`text_offset` (where each token starts in the text). Chat: a list of {token, logprob, bytes,
top_logprobs}. A byte-level token may hold part of a UTF-8 character; its text is then
"bytes:\\xe6\\x98" as in OpenAI's API, and `bytes` always holds its exact bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from instructgen.inference.sampling import TokenLogprob
from instructgen.inference.stops import Detokenizer
from instructgen.serve.protocol import ChatTokenLogprob, CompletionLogprobs, TopLogprob
from instructgen.tokenizer import Tokenizer

__all__ = ["LegacyLogprobs", "TokenTexts", "chat_logprobs", "echo_prompt"]

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def _byte_level_table() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character that stands for each byte."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


def _piece_decoder(tokenizer: Tokenizer) -> Callable[[str], bytes | None]:
    """Vocabulary piece → its bytes, for byte-level (GPT-2) and byte-fallback (Llama) vocabs."""
    try:
        spec = json.loads(tokenizer.backend.decoder.__getstate__())
    except (AttributeError, TypeError, ValueError):
        spec = {}
    kinds = {spec.get("type")} | {d.get("type") for d in spec.get("decoders", [])}
    if "ByteLevel" in kinds:
        table = _byte_level_table()

        def byte_level(piece: str) -> bytes | None:
            if all(c in table for c in piece):
                return bytes(table[c] for c in piece)
            return None

        return byte_level
    if kinds & {"ByteFallback", "Metaspace"}:

        def sentencepiece(piece: str) -> bytes:
            match = _BYTE_PIECE.fullmatch(piece)
            if match:
                return bytes([int(match.group(1), 16)])
            return piece.replace("\u2581", " ").encode("utf-8")

        return sentencepiece
    return lambda piece: None


class TokenTexts:
    """token id → (text, UTF-8 bytes), cached."""

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self._bytes_of = _piece_decoder(tokenizer)
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def __call__(self, token_id: int) -> tuple[str, list[int]]:
        hit = self._cache.get(token_id)
        if hit is not None:
            return hit
        piece = self.tokenizer.backend.id_to_token(token_id)
        raw = self._bytes_of(piece) if piece is not None else None
        if raw is None:
            raw = self.tokenizer.decode([token_id]).encode("utf-8")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = "bytes:" + "".join(f"\\x{b:02x}" for b in raw)
        hit = self._cache[token_id] = (text, list(raw))
        return hit

    def text(self, token_id: int) -> str:
        return self(token_id)[0]


class LegacyLogprobs:
    """Builds CompletionLogprobs token by token; text offsets continue from `start`.

    The offset of a token is the length of the text before it (a token that completes a
    character started by an earlier one shares that character's offset)."""

    def __init__(self, texts: TokenTexts, start: int = 0, context: Sequence[int] = ()):
        self.texts = texts
        self.offset = start
        self.detokenizer = Detokenizer(texts.tokenizer, context, skip_special_tokens=False)

    def add(
        self, token_ids: Sequence[int], logprobs: Sequence[TokenLogprob | None]
    ) -> CompletionLogprobs:
        out = CompletionLogprobs()
        for token_id, lp in zip(token_ids, logprobs):
            out.tokens.append(self.texts.text(token_id))
            out.text_offset.append(self.offset)
            self.offset += len(self.detokenizer.push(token_id))
            if lp is None:
                out.token_logprobs.append(None)
                out.top_logprobs.append(None)
                continue
            out.token_logprobs.append(lp.logprob)
            top: dict[str, float] = {}
            for alt, value in lp.top:
                top.setdefault(self.texts.text(alt), value)
            top.setdefault(self.texts.text(token_id), lp.logprob)
            out.top_logprobs.append(top)
        return out


def echo_prompt(
    texts: TokenTexts, prompt_ids: Sequence[int], prompt_logprobs: list | None, wanted: bool
) -> tuple[str, CompletionLogprobs | None]:
    """The echoed prompt (its token ids decoded, special tokens kept, so the offsets match)
    and, when wanted, the prompt tokens' legacy logprobs."""
    text = texts.tokenizer.decode(list(prompt_ids), skip_special_tokens=False)
    if not wanted:
        return text, None
    logprobs = prompt_logprobs or [None] * len(prompt_ids)
    return text, LegacyLogprobs(texts).add(prompt_ids, logprobs)


def chat_logprobs(texts: TokenTexts, logprobs: Sequence[TokenLogprob]) -> list[ChatTokenLogprob]:
    """Chat-completion logprobs entries: the chosen token and its top alternatives."""
    out = []
    for lp in logprobs:
        token, raw = texts(lp.token_id)
        alternatives = []
        for alt, value in lp.top:
            alt_text, alt_raw = texts(alt)
            alternatives.append(TopLogprob(token=alt_text, logprob=value, bytes=alt_raw))
        out.append(
            ChatTokenLogprob(token=token, logprob=lp.logprob, bytes=raw, top_logprobs=alternatives)
        )
    return out
