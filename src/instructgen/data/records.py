"""Records from instruction data files, each with the line it starts on.

``.jsonl`` and ``.json`` (an array, one record, or an object with one list field) are parsed here,
so every record keeps its line; a ``.json`` file holding one object per line is read as JSONL.
``.parquet`` and ``.csv`` go through `datasets` (local files only): there "line" is the row number
(CSV: row + 1, for the header), null cells count as absent fields, and the list fields of CSV
rows (messages, conversations, history) are JSON text. `write_records` writes the same four
formats, chosen by the file's suffix.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructgen.errors import DataError
from instructgen.jsonl import parse_json_lines

LIST_FIELDS = ("messages", "conversations", "history")
TEXT_OR_LIST_FIELDS = ("prompt", "chosen", "rejected")  # preference pairs: strings or messages
# A top-level JSON object holding one of these is a single record, not a container of records.
RECORD_FIELDS = ("messages", "conversations", "instruction", "prompt")


class BadRecord(Exception):
    """A problem in one record, before the file and line are known."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field

    def error(self, file: str | None = None, line: int | None = None) -> DataError:
        return DataError(self.message, file=file, line=line, field=self.field)


_JSON_TYPES = {dict: "object", list: "list", str: "string", type(None): "null", bool: "boolean"}


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def raw_records(path: str | Path) -> Iterator[tuple[int | None, Any]]:
    """(line, record) pairs; a record that cannot be parsed comes as a `BadRecord`, and so does
    a file that cannot be read at all (with line None)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        yield None, BadRecord("file not found")
    elif suffix in (".parquet", ".csv"):
        yield from _tabular_records(path, suffix[1:])
    elif suffix not in (".json", ".jsonl", ".ndjson"):
        yield None, BadRecord("unsupported file type (expected .jsonl, .json, .parquet or .csv)")
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            yield None, BadRecord(f"not UTF-8 text ({exc.reason})")
            return
        yield from _json_document(text) if suffix == ".json" else _json_lines(text)


def _json_lines(text: str) -> Iterator[tuple[int, Any]]:
    for number, value in parse_json_lines(text):
        if isinstance(value, json.JSONDecodeError):
            value = BadRecord(f"invalid JSON: {value.msg} (column {value.colno})")
        yield number, value


def _json_document(text: str) -> Iterator[tuple[int, Any]]:
    """Records of a JSON array, a single record, or an object with one list field, each with the
    line it starts on. A .json file holding several objects, one per line, is read as JSONL."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            yield from _json_lines(text)
        else:
            yield exc.lineno, BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno})")
        return
    start = _skip_ws(text, 0)
    if isinstance(document, list):
        yield from _array_items(text, start)
    elif isinstance(document, dict) and _looks_like_record(document):
        yield text.count("\n", 0, start) + 1, document
    elif isinstance(document, dict):
        lists = [k for k, v in document.items() if isinstance(v, list)]
        key = lists[0] if len(lists) == 1 else "data" if "data" in lists else None
        if key is None:
            found = ", ".join(map(repr, lists)) or "none"
            problem = (
                f"expected an array of records or an object with one list field; found {found}"
            )
            yield 1, BadRecord(problem)
        else:
            yield from _array_items(text, _member_position(text, start, key))
    else:
        yield 1, BadRecord(f"expected an array of records, got {type_name(document)}")


def _looks_like_record(obj: dict[str, Any]) -> bool:
    return any(key in obj for key in RECORD_FIELDS)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _member_position(text: str, pos: int, key: str) -> int:
    """Where the value of top-level member `key` starts in the (valid) object at `pos`."""
    decoder, found = json.JSONDecoder(), -1
    pos = _skip_ws(text, pos + 1)  # past "{"
    while text[pos] != "}":
        name, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past ":"
        if name == key:
            found = pos  # the last duplicate wins, as in json.loads
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
    return found


def _array_items(text: str, pos: int) -> Iterator[tuple[int, Any]]:
    """Items of the (valid) JSON array at `pos`, each with its 1-based starting line."""
    decoder, line, counted = json.JSONDecoder(), 1, 0
    pos = _skip_ws(text, pos + 1)  # past "["
    while text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted = pos
        item, pos = decoder.raw_decode(text, pos)
        yield line, item
        pos = _skip_ws(text, pos)
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)


def _tabular_records(path: Path, kind: str) -> Iterator[tuple[int, Any]]:
    """Rows of a local parquet or CSV file through `datasets`; null cells are absent fields."""
    import datasets

    bars, verbosity = datasets.is_progress_bar_enabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # we report failures ourselves
    try:
        with tempfile.TemporaryDirectory(prefix="instructgen-datasets-") as cache:
            ds = datasets.load_dataset(
                kind, data_files=str(path), split="train", cache_dir=cache, keep_in_memory=True
            )
            rows = ds.to_list()
    except Exception as exc:  # datasets raises many types for a malformed file
        while exc.__cause__ is not None:  # the reader's own error says what is wrong
            exc = exc.__cause__
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        rows = BadRecord(f"cannot read {kind} file: {reason}")
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()
    if isinstance(rows, BadRecord):
        yield None, rows
        return
    offset = 2 if kind == "csv" else 1  # the CSV header is line 1
    for i, row in enumerate(rows):
        record = {k: v for k, v in row.items() if v is not None}
        yield i + offset, (_decode_list_fields(record) if kind == "csv" else record)


def _decode_list_fields(record: dict[str, Any]) -> Any:
    for key in LIST_FIELDS:
        if isinstance(record.get(key), str):
            try:
                record[key] = json.loads(record[key])
            except json.JSONDecodeError as exc:
                return BadRecord(f"invalid JSON: {exc.msg} (column {exc.colno})", key)
    for key in TEXT_OR_LIST_FIELDS:  # a message list written as JSON text, else plain text
        value = record.get(key)
        if isinstance(value, str) and value.lstrip().startswith("[{"):
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                continue
            if isinstance(decoded, list):
                record[key] = decoded
    return record


def write_records(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write records atomically as the suffix of `path` says: .jsonl (also any other suffix),
    .json (an array), .parquet, or .csv (list fields as JSON text, as the reader expects)."""
    from instructgen.files import atomic_write_bytes, atomic_write_text

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        atomic_write_text(path, json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(records), sink)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
    elif suffix == ".csv":
        columns = list(dict.fromkeys(k for r in records for k in r))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v
                    for k, v in record.items()
                }
            )
        atomic_write_text(path, text.getvalue())
    else:
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
