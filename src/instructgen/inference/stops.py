"""Token ids → text deltas that are always whole characters, with stop strings cut out.

A byte-level BPE token can hold part of a UTF-8 character (a Chinese character is 3 bytes and
may be split across tokens); decoding such a prefix gives U+FFFD. `Detokenizer` holds text back
until the character is complete. `StopStrings` finds a stop string even when it spans several
tokens, never emits text that might still become one, and cuts the output before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

__all__ = [
    "Detokenizer",
    "StopStrings",
    "TextStream",
    "first_stop",
    "truncate_at_stop",
    "stream_text",
]

REPLACEMENT = "\ufffd"


class _Decoder(Protocol):
    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = ...) -> str: ...


class Detokenizer:
    """Incremental decoding: decode(ids[prefix:]) minus decode(ids[prefix:read]) is the new text.

    `context` (the last prompt tokens) is decoded with the output but never emitted, so
    tokenizers whose decoding depends on the left context (SentencePiece's leading space) decode
    the first generated tokens as they would inside the full text.
    """

    def __init__(
        self, tokenizer: _Decoder, context: Sequence[int] = (), skip_special_tokens: bool = True
    ):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = list(context)
        self.prefix = 0
        self.read = len(self.ids)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def push(self, token_id: int) -> str:
        """Add one token; return the text it completes ("" while a character is unfinished)."""
        self.ids.append(token_id)
        before = self._decode(self.ids[self.prefix : self.read])
        after = self._decode(self.ids[self.prefix :])
        if len(after) > len(before) and not after.endswith(REPLACEMENT):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """The text still held back (an unfinished character decodes as U+FFFD)."""
        before = self._decode(self.ids[self.prefix : self.read])
        after = self._decode(self.ids[self.prefix :])
        self.prefix = self.read = len(self.ids)
        return after[len(before) :]


class StopStrings:
    """Cut a text stream at the first stop string; hold back any tail that may start one."""

    def __init__(self, stops: Iterable[str]):
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.stopped = False

    def push(self, delta: str) -> str:
        """Add text; return what is safe to emit. After a stop string, `stopped` is True."""
        if not self.stops:
            return delta
        if self.stopped:
            return ""
        self.pending += delta
        cut = first_stop(self.pending, self.stops)
        if cut is not None:
            self.stopped = True
            out, self.pending = self.pending[:cut], ""
            return out
        keep = self._partial_suffix()
        out = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out

    def _partial_suffix(self) -> int:
        """Length of the longest tail of `pending` that is a proper prefix of a stop string."""
        text = self.pending
        for n in range(min(len(text), max(len(s) for s in self.stops) - 1), 0, -1):
            tail = text[-n:]
            if any(s.startswith(tail) for s in self.stops):
                return n
        return 0


class TextStream:
    """Detokenizer + stop strings: token ids in, emitted text deltas out."""

    def __init__(
        self,
        tokenizer: _Decoder,
        stops: Iterable[str] = (),
        context: Sequence[int] = (),
        skip_special_tokens: bool = True,
    ):
        self.detokenizer = Detokenizer(tokenizer, context, skip_special_tokens)
        self.stop = StopStrings(stops)
        self.text = ""

    @property
    def stopped(self) -> bool:
        return self.stop.stopped

    def push(self, token_id: int) -> str:
        delta = self.stop.push(self.detokenizer.push(token_id))
        self.text += delta
        return delta

    def flush(self) -> str:
        delta = self.stop.push(self.detokenizer.flush()) if not self.stopped else ""
        delta += self.stop.flush()
        self.text += delta
        return delta


def first_stop(text: str, stops: Iterable[str]) -> int | None:
    """Where `text` is cut: the start of the stop string that is complete first (the smallest
    end; at equal ends, the longer one), or None.

    "Complete first" is what a stream can know: a stop string that started earlier but is
    still unfinished when another one completes does not count, so text cut in a stream of
    any deltas and text cut whole agree."""
    hits = [(i + len(s), i) for s in stops if s and (i := text.find(s)) >= 0]
    return min(hits)[1] if hits else None


def truncate_at_stop(text: str, stops: Iterable[str]) -> tuple[str, bool]:
    """text up to the first stop string (first_stop), and whether one was found."""
    cut = first_stop(text, stops)
    return (text, False) if cut is None else (text[:cut], True)


def stream_text(deltas: Iterable[str], stops: Iterable[str]) -> Iterator[str]:
    """Apply stop strings to a stream of text deltas (a remote or Hugging Face stream)."""
    stop = StopStrings(stops)
    for delta in deltas:
        out = stop.push(delta)
        if out:
            yield out
        if stop.stopped:
            return
    tail = stop.flush()
    if tail:
        yield tail
