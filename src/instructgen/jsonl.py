"""JSON Lines reading with line numbers: the one reader behind every JSONL file instructgen reads.

Blank lines are skipped and every value keeps its 1-based line number. A line that is not JSON is
either an error naming file:line (strict, for input data) or skipped (lenient, for the torn last
line of a file that a killed run was appending to: caches, progress journals, metrics).

Text is split at "\\n", "\\r\\n" and "\\r" only, as a file opened in text mode splits it; not at
everything `str.splitlines()` treats as a break, since U+2028, U+2029 and U+0085 may stand raw
inside JSON strings (json.dumps(..., ensure_ascii=False) writes them so).
Stdlib only, so that every layer (safety/ and tokenizer.py included) may use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from instructgen.errors import DataError

INVALID_JSON = "invalid JSON: {msg}"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """The lines of `text` without their line breaks; like str.splitlines(), a break at the very
    end opens no extra line, but only "\\n", "\\r\\n" and "\\r" are breaks."""
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


def parse_json_lines(lines: str | Iterable[str]) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of `lines` (a whole text, or its lines, e.g.
    an open file); a line that is not JSON comes as its json.JSONDecodeError, for the caller to
    report as it likes."""
    if isinstance(lines, str):
        lines = split_lines(lines)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, exc


def read_json_lines(
    lines: str | Iterable[str],
    *,
    file: str | None = None,
    lenient: bool = False,
    message: str = INVALID_JSON,
) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of JSON Lines.

    A line that is not JSON raises DataError(message, file=file, line=number), where `message`
    may use {msg} and {colno} of the json.JSONDecodeError and {error} for the whole of it; with
    `lenient` such a line is skipped instead.
    """
    for number, value in parse_json_lines(lines):
        if not isinstance(value, json.JSONDecodeError):
            yield number, value
        elif not lenient:
            text = message.format(msg=value.msg, colno=value.colno, error=value)
            raise DataError(text, file=file, line=number)
