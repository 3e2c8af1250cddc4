"""Documents and JSONL files through redaction and checks: what `instructgen safety` runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from instructgen.errors import DataError
from instructgen.jsonl import read_json_lines, split_lines
from instructgen.safety import check_text
from instructgen.safety.moderation import Policy
from instructgen.safety.pii import redact


def read_input(path: str | None) -> tuple[str, str]:
    """(text, source name) from a file, or from stdin when path is None or "-"."""
    if path in (None, "-"):
        return sys.stdin.read(), "<stdin>"
    p = Path(path)
    if not p.is_file():
        raise DataError("file not found", file=str(path))
    try:
        return p.read_text(encoding="utf-8"), str(path)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(path)
        ) from None


def _records(lines: list[str], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank JSONL line; each must be a JSON object."""
    for n, record in read_json_lines(lines, file=source):
        if not isinstance(record, dict):
            raise DataError("expected a JSON object", file=source, line=n)
        yield n, record


def _field_texts(record: dict[str, Any], field: str, source: str, line: int) -> list[str]:
    """The strings a field holds: a string, or a list of chat messages (their `content`)."""
    if field not in record:
        raise DataError("missing", file=source, line=line, field=field)
    value = record[field]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("content"), str) for m in value
    ):
        return [m["content"] for m in value]
    raise DataError(
        "expected a string or a list of messages with string `content`",
        file=source,
        line=line,
        field=field,
    )


def redact_document(
    text: str,
    *,
    field: str | None = None,
    source: str = "<stdin>",
    kinds: Iterable[str] | None = None,
    style: str = "tag",
    salt: str | None = None,
) -> str:
    """Redact a whole text, or (field=...) that field of every JSONL record, keeping the rest."""
    kinds = None if kinds is None else list(kinds)
    if field is None:
        return redact(text, kinds=kinds, style=style, salt=salt)[0]
    lines = split_lines(text)
    out = list(lines)  # blank lines stay as they are
    for n, record in _records(lines, source):
        _field_texts(record, field, source, n)  # validates
        value = record[field]
        if isinstance(value, str):
            record[field] = redact(value, kinds=kinds, style=style, salt=salt)[0]
        else:
            for m in value:
                m["content"] = redact(m["content"], kinds=kinds, style=style, salt=salt)[0]
        out[n - 1] = json.dumps(record, ensure_ascii=False)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def check_document(
    text: str, policy: Policy | None = None, *, field: str | None = None, source: str = "<stdin>"
) -> list[dict[str, Any]]:
    """One check_text report for the whole text, or (field=...) one per JSONL record with `line`."""
    policy = policy or Policy()
    if field is None:
        return [check_text(text, policy)]
    reports = []
    for n, record in _records(split_lines(text), source):
        joined = "\n".join(_field_texts(record, field, source, n))
        reports.append({"line": n, **check_text(joined, policy)})
    return reports


def format_report(report: dict[str, Any], source: str = "") -> str:
    """Human-readable lines: one summary line, then each moderation match and PII span."""
    where = source + (f":{report['line']}" if "line" in report else "")
    prefix = f"{where}: " if where else ""
    status = "FLAGGED" if report["flagged"] else "ok"
    blocked = f" ({', '.join(report['blocked'])})" if report["blocked"] else ""
    lines = [f"{prefix}{status}{blocked}"]
    scores = report["moderation"]["category_scores"]
    for m in report["moderation"]["matches"]:
        cat = m["category"]
        score = scores.get(cat, m["weight"])
        lines.append(f"  {cat} {score:.2f} [{m['start']}:{m['end']}] {m['text']!r}")
    for s in report["pii"]:
        lines.append(f"  pii {s['kind']} [{s['start']}:{s['end']}]")
    return "\n".join(lines)
