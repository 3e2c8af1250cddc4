"""Instruction data formats: read, detect, validate, normalise, convert and describe.

Four record formats are recognised, per record, by their fields:

- ``messages`` (OpenAI): ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}]}``;
  with tool calling, also ``"tools": [...]``, assistant ``tool_calls`` and ``"tool"`` results,
  which are read as the plain turns of the ChatML tool convention (chat_template.py)
- ``sharegpt``: ``{"conversations": [{"from": "human"|"gpt"|"system"|..., "value": str}]}``
  (an optional top-level ``system`` string becomes the system message)
- ``alpaca``: ``{"instruction", "input"?, "output", "system"?, "history"?: [[user, assistant]]}``
- ``completion``: ``{"prompt": str, "completion": str}``

Every record becomes one `Conversation`: ``messages`` plus ``meta``, which holds every other field
of the record (id, checker, family, lang, ...) and is written back unchanged by `to_record`.

Files are .jsonl, .json, .parquet or .csv; data/records.py reads them, keeping each record's line.
Errors name file, line and field, e.g. ``train.jsonl:7: field 'messages[2].role': two user
turns in a row``.

How alpaca's ``input`` survives the trip through messages (the lossless rule):
the user message is ``instruction + "\\n\\n" + input`` (just ``instruction`` when input is empty),
and ``input`` itself stays in ``meta``, so a messages record converted from alpaca carries a
top-level ``"input"`` field. Converting back, that suffix is split off the last user message.
Likewise an empty alpaca ``system`` ("") or ``history`` ([]) is not turned into messages but stays
in ``meta``. Hence alpaca -> messages -> alpaca and messages -> alpaca -> messages give back
identical records. Field names a target format owns (``messages``; ``instruction``, ``output``,
``system``, ``history``; ``conversations``) may not appear among the extra fields with a
non-empty value: `to_record` refuses the clash rather than lose data.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructgen.chat_template import tool_conversation
from instructgen.data.records import BadRecord, raw_records, type_name, write_records
from instructgen.errors import DataError
from instructgen.text import language_of

FORMATS = ("messages", "sharegpt", "alpaca", "completion")
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}
SHAREGPT_NAMES = {"user": "human", "assistant": "gpt", "system": "system"}
# Fields each output format owns; an extra field of the same name would be lost or misread.
OWNED_FIELDS = {
    "messages": ("messages",),
    "alpaca": ("instruction", "output", "system", "history"),
    "sharegpt": ("conversations", "system"),
}


@dataclass
class Conversation:
    """One normalised instruction record."""

    messages: list[dict[str, str]]  # {"role": "system"|"user"|"assistant", "content": str}
    meta: dict[str, Any] = field(default_factory=dict)  # every other field of the source record


@dataclass(frozen=True)
class Problem:
    """One bad record found by `validate_file`."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        return where + (f"field '{self.field}': " if self.field is not None else "") + self.message


# ----------------------------------------------------------------------------------------------
# Records -> conversations


@dataclass
class _Turn:
    role: str
    content: Any
    where: str  # the source field holding the content, for error messages
    role_where: str  # the source field holding the role


def detect_format(record: Any) -> str:
    """The format of one record: "messages", "sharegpt", "alpaca" or "completion"."""
    try:
        return _detect(record)
    except BadRecord as bad:
        raise bad.error() from None


def _detect(record: Any) -> str:
    if not isinstance(record, dict):
        raise BadRecord(f"a record must be a JSON object, got {type_name(record)}")
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record or "output" in record:
        return "alpaca"
    if "prompt" in record or "completion" in record:
        return "completion"
    keys = ", ".join(map(repr, record)) or "none"
    raise BadRecord(
        "unknown format: expected 'messages', 'conversations', 'instruction'+'output' or "
        f"'prompt'+'completion'; found fields {keys}"
    )


def to_conversation(record: dict[str, Any], fmt: str = "auto") -> Conversation:
    """Normalise one record of format `fmt` ("auto" detects it); raises DataError naming the field."""
    try:
        return _to_conversation(record, fmt)
    except BadRecord as bad:
        raise bad.error() from None


def _to_conversation(record: Any, fmt: str) -> Conversation:
    if fmt == "auto":
        fmt = _detect(record)
    elif fmt not in FORMATS:
        raise BadRecord(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    elif not isinstance(record, dict):
        raise BadRecord(f"a record must be a JSON object, got {type_name(record)}")
    turns, consumed = _PARSERS[fmt](record)
    _check_turns(turns, container=_CONTAINER.get(fmt, fmt))
    messages = [{"role": t.role, "content": t.content} for t in turns]
    return Conversation(messages, {k: v for k, v in record.items() if k not in consumed})


def _parse_messages(record: dict[str, Any]) -> tuple[list[_Turn], set[str]]:
    items = _list_field(record, "messages")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRecord(
                f"must be an object with 'role' and 'content', got {type_name(item)}",
                f"messages[{i}]",
            )
    if "tools" in record or any("tool_calls" in m or m.get("role") == "tool" for m in items):
        return _parse_tool_messages(record, items), {"messages", "tools"}
    turns = []
    for i, item in enumerate(items):
        where = f"messages[{i}]"
        role = _required(item, "role", where)
        if role not in ROLES:
            raise BadRecord(
                f"unknown role {role!r} (expected one of {', '.join(ROLES)})", f"{where}.role"
            )
        turns.append(
            _Turn(role, _required(item, "content", where), f"{where}.content", f"{where}.role")
        )
    return turns, {"messages"}


def _parse_tool_messages(record: dict[str, Any], items: list[dict[str, Any]]) -> list[_Turn]:
    """A conversation with tool definitions, calls and results (OpenAI's shape) as the plain
    turns of the ChatML tool convention (chat_template.tool_conversation): calls are assistant
    text, so the assistant mask covers them; results are user turns."""
    tools = record.get("tools") or []
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("function", {}).get("name"), str) for t in tools
    ):
        raise BadRecord(
            "must be a list of {'type': 'function', 'function': {'name', ...}}", "tools"
        )
    messages = []
    for i, item in enumerate(items):
        where = f"messages[{i}]"
        role = _required(item, "role", where)
        if role not in (*ROLES, "tool"):
            raise BadRecord(
                f"unknown role {role!r} (expected one of {', '.join(ROLES)}, tool)", f"{where}.role"
            )
        content = item.get("content") or ""
        calls = item.get("tool_calls") or []
        if not isinstance(content, str):
            raise BadRecord(f"must be a string, got {type_name(content)}", f"{where}.content")
        if calls and role != "assistant":
            raise BadRecord("only assistant messages make tool calls", f"{where}.tool_calls")
        if not isinstance(calls, list):
            raise BadRecord(f"must be a list, got {type_name(calls)}", f"{where}.tool_calls")
        for j, call in enumerate(calls):
            _check_call(call, f"{where}.tool_calls[{j}]")
        if not content.strip() and not calls:
            raise BadRecord("is empty", f"{where}.content")
        messages.append({"role": role, "content": content, "tool_calls": calls})
    converted = tool_conversation(messages, tools)
    # the source message of each converted turn: consecutive results share a turn, and the
    # tools' own system turn (when the record has no system message) comes from `tools`
    sources: list[str] = [
        f"messages[{i}]"
        for i, m in enumerate(messages)
        if not (m["role"] == "tool" and i and messages[i - 1]["role"] == "tool")
    ]
    if len(converted) > len(sources):
        sources.insert(0, "tools")
    return [
        _Turn(m["role"], m["content"], f"{where}.content", f"{where}.role")
        for m, where in zip(converted, sources)
    ]


def _check_call(call: Any, where: str) -> None:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise BadRecord("must be {'function': {'name': str, 'arguments': ...}}", where)
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            arguments = None
    if not isinstance(arguments, dict):
        raise BadRecord("must be a JSON object (or one as a string)", f"{where}.function.arguments")


def _parse_sharegpt(record: dict[str, Any]) -> tuple[list[_Turn], set[str]]:
    turns, consumed = _optional_system(record), {"conversations"}
    if turns:
        consumed.add("system")
    for i, item in enumerate(_list_field(record, "conversations")):
        where = f"conversations[{i}]"
        if not isinstance(item, dict):
            raise BadRecord(
                f"must be an object with 'from' and 'value', got {type_name(item)}", where
            )
        name = _required(item, "from", where)
        if name not in SHAREGPT_ROLES:
            expected = ", ".join(SHAREGPT_ROLES)
            raise BadRecord(f"unknown role {name!r} (expected one of {expected})", f"{where}.from")
        value = _required(item, "value", where)
        turns.append(_Turn(SHAREGPT_ROLES[name], value, f"{where}.value", f"{where}.from"))
    return turns, consumed


def _parse_alpaca(record: dict[str, Any]) -> tuple[list[_Turn], set[str]]:
    instruction, output = _required(record, "instruction"), _required(record, "output")
    text = record.get("input", "")
    if not isinstance(text, str):
        raise BadRecord(f"must be a string, got {type_name(text)}", "input")
    turns, consumed = _optional_system(record), {"instruction", "output"}  # input stays in meta
    if turns:
        consumed.add("system")
    history = record.get("history", [])
    if not isinstance(history, list):
        raise BadRecord(
            f"must be a list of [user, assistant] pairs, got {type_name(history)}", "history"
        )
    for i, pair in enumerate(history):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise BadRecord("must be a [user, assistant] pair", f"history[{i}]")
        turns.append(_Turn("user", pair[0], f"history[{i}][0]", f"history[{i}]"))
        turns.append(_Turn("assistant", pair[1], f"history[{i}][1]", f"history[{i}]"))
    if history:
        consumed.add("history")
    if isinstance(instruction, str) and not instruction.strip():
        raise BadRecord("is empty", "instruction")
    user = instruction + "\n\n" + text if isinstance(instruction, str) and text else instruction
    turns.append(_Turn("user", user, "instruction", "instruction"))
    turns.append(_Turn("assistant", output, "output", "output"))
    return turns, consumed


def _parse_completion(record: dict[str, Any]) -> tuple[list[_Turn], set[str]]:
    prompt, completion = _required(record, "prompt"), _required(record, "completion")
    turns = [
        _Turn("user", prompt, "prompt", "prompt"),
        _Turn("assistant", completion, "completion", "completion"),
    ]
    return turns, {"prompt", "completion"}


_PARSERS = {
    "messages": _parse_messages,
    "sharegpt": _parse_sharegpt,
    "alpaca": _parse_alpaca,
    "completion": _parse_completion,
}
_CONTAINER = {"sharegpt": "conversations"}  # the field to blame for "no assistant turn"


def _optional_system(record: dict[str, Any]) -> list[_Turn]:
    """A non-empty top-level `system` string becomes the system message; "" stays in meta."""
    system = record.get("system", "")
    return [] if system == "" else [_Turn("system", system, "system", "system")]


def _required(obj: dict[str, Any], key: str, where: str | None = None) -> Any:
    name = f"{where}.{key}" if where else key
    if key not in obj:
        raise BadRecord("missing", name)
    return obj[key]


def _list_field(record: dict[str, Any], key: str) -> list[Any]:
    value = record[key]
    if not isinstance(value, list):
        raise BadRecord(f"must be a list, got {type_name(value)}", key)
    if not value:
        raise BadRecord("is empty", key)
    return value


def _check_turns(turns: Sequence[_Turn], container: str) -> None:
    """Contents are non-empty strings; roles run [system] user assistant user assistant ..."""
    previous = None
    for i, turn in enumerate(turns):
        if not isinstance(turn.content, str):
            raise BadRecord(f"must be a string, got {type_name(turn.content)}", turn.where)
        if not turn.content.strip():
            raise BadRecord("is empty", turn.where)
        if turn.role == "system":
            if i != 0:
                raise BadRecord("a system message must come first", turn.role_where)
            continue
        if previous is None and turn.role == "assistant":
            raise BadRecord(
                "the conversation starts with an assistant turn (expected user first)",
                turn.role_where,
            )
        if turn.role == previous:
            raise BadRecord(f"two {turn.role} turns in a row", turn.role_where)
        previous = turn.role
    if previous != "assistant":
        if "assistant" not in (t.role for t in turns):
            raise BadRecord("the conversation has no assistant turn", container)
        raise BadRecord(
            "the conversation ends with a user turn (expected an assistant reply)",
            turns[-1].role_where,
        )


# ----------------------------------------------------------------------------------------------
# Conversations -> records


def to_record(conv: Conversation, fmt: str) -> dict[str, Any]:
    """Write `conv` as a "messages", "alpaca" or "sharegpt" record, extra fields carried along."""
    try:
        return _to_record(conv, fmt)
    except BadRecord as bad:
        raise bad.error() from None


def _to_record(conv: Conversation, fmt: str) -> dict[str, Any]:
    if fmt not in OWNED_FIELDS:
        raise BadRecord(f"cannot write format {fmt!r} (expected one of {', '.join(OWNED_FIELDS)})")
    turns = [
        _Turn(m.get("role", ""), m.get("content"), f"messages[{i}].content", f"messages[{i}].role")
        for i, m in enumerate(conv.messages)
    ]
    for turn in turns:
        if turn.role not in ROLES:
            raise BadRecord(f"unknown role {turn.role!r}", turn.role_where)
    _check_turns(turns, container="messages")
    meta = dict(conv.meta)
    if fmt == "messages":
        record: dict[str, Any] = {
            "messages": [{"role": m["role"], "content": m["content"]} for m in conv.messages]
        }
    elif fmt == "sharegpt":
        record = {
            "conversations": [{"from": SHAREGPT_NAMES[t.role], "value": t.content} for t in turns]
        }
    else:
        record = _alpaca_fields(turns, meta)
    for key, value in meta.items():
        if key in record or (key in OWNED_FIELDS[fmt] and value not in ("", [])):
            raise BadRecord(f"an extra field clashes with the {fmt} field of the same name", key)
        record[key] = value
    return record


def _alpaca_fields(turns: list[_Turn], meta: dict[str, Any]) -> dict[str, Any]:
    """Last user/assistant pair -> instruction(+input)/output; earlier pairs -> history.
    Pops `input` from `meta`."""
    system = [t.content for t in turns if t.role == "system"]
    pairs = [t.content for t in turns if t.role != "system"]
    history = [[pairs[i], pairs[i + 1]] for i in range(0, len(pairs) - 2, 2)]
    instruction, output = pairs[-2], pairs[-1]
    record: dict[str, Any] = {"instruction": instruction}
    if "input" in meta:
        text = meta.pop("input")
        if not isinstance(text, str):
            raise BadRecord(f"must be a string, got {type_name(text)}", "input")
        if text:
            suffix = "\n\n" + text
            if not instruction.endswith(suffix):
                raise BadRecord(
                    "the last user message does not end with this input, so it cannot be split off",
                    "input",
                )
            record["instruction"] = instruction[: -len(suffix)]
        record["input"] = text
    record["output"] = output
    if system:
        record["system"] = system[0]
    if history:
        record["history"] = history
    return record


# ----------------------------------------------------------------------------------------------
# Files


def iter_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line, record) for each record of a .jsonl, .json, .parquet or .csv file."""
    for line, record in raw_records(Path(path)):
        if isinstance(record, BadRecord):
            raise record.error(str(path), line)
        yield line, record


def read_conversations(path: str | Path, *, format: str = "auto") -> list[Conversation]:
    """All records of `path` as conversations; raises DataError on the first bad record."""
    return [conv for _, _, conv in _read(Path(path), format)]


def validate_file(path: str | Path) -> list[Problem]:
    """Every bad record of `path` (not just the first), each naming file, line and field."""
    from instructgen.data.preferences import is_preference, to_pair

    problems, count = [], 0
    for line, record in raw_records(Path(path)):
        count += 1
        try:
            if isinstance(record, BadRecord):
                raise record
            if is_preference(record):
                to_pair(record)
            else:
                _to_conversation(record, "auto")
        except BadRecord as bad:
            problems.append(Problem(str(path), line, bad.field, bad.message))
    if count == 0:
        problems.append(Problem(str(path), None, None, "no records found"))
    return problems


def format_counts(path: str | Path) -> dict[str, int]:
    """Records per format in a valid file, e.g. {"alpaca": 120} or {"preference": 40}; raises
    DataError if invalid."""
    if _is_preference_file(path):
        from instructgen.data.preferences import read_pairs

        return {"preference": len(read_pairs(path))}
    return dict(Counter(fmt for _, fmt, _ in _read(Path(path), "auto")))


def _is_preference_file(path: str | Path) -> bool:
    """Whether the first record of the file is a preference pair (data/preferences.py)."""
    from instructgen.data.preferences import is_preference

    first = next(iter(raw_records(Path(path))), (None, None))[1]
    return is_preference(first)


def convert(path: str | Path, to: str, out: str | Path) -> int:
    """Rewrite `path` as records of format `to` ("messages", "alpaca" or "sharegpt") in `out`,
    atomically, as .jsonl, .json, .parquet or .csv by its suffix; returns the number of records."""
    if to not in OWNED_FIELDS:
        raise DataError(
            f"cannot convert to {to!r} (expected one of {', '.join(OWNED_FIELDS)})", field="to"
        )
    records = []
    for line, _, conv in _read(Path(path), "auto"):
        try:
            records.append(_to_record(conv, to))
        except BadRecord as bad:
            raise bad.error(str(path), line) from None
    write_records(out, records)
    return len(records)


def _read(path: Path, fmt: str) -> list[tuple[int, str, Conversation]]:
    out = []
    for line, record in iter_records(path):
        try:
            detected = _detect(record) if fmt == "auto" else fmt
            out.append((line, detected, _to_conversation(record, detected)))
        except BadRecord as bad:
            raise bad.error(str(path), line) from None
    if not out:
        raise DataError("no records found", file=str(path))
    return out


# ----------------------------------------------------------------------------------------------
# Statistics


def stats(path: str | Path, *, tokenizer: Any = None) -> dict[str, Any]:
    """Counts, prompt/response length percentiles, language mix and duplicate rate of a file.

    The response is the last assistant message; the prompt is every message before it. Lengths
    are in characters, and in tokens when `tokenizer` (a Tokenizer or its directory) is given.
    Duplicates are measured on the user messages of each record (instructgen.data.dedup).
    """
    from instructgen.data.dedup import duplicate_rate

    if _is_preference_file(path):
        from instructgen.data.preferences import pair_stats, read_pairs

        pairs = read_pairs(path)
        return {
            "file": str(path),
            "records": len(pairs),
            "formats": {"preference": len(pairs)},
            **pair_stats(pairs),
        }
    rows = _read(Path(path), "auto")
    convs = [conv for _, _, conv in rows]
    prompts = [[m["content"] for m in c.messages[:-1]] for c in convs]
    responses = [c.messages[-1]["content"] for c in convs]
    result: dict[str, Any] = {
        "file": str(path),
        "records": len(convs),
        "messages": sum(len(c.messages) for c in convs),
        "turns": sum(m["role"] == "assistant" for c in convs for m in c.messages),
        "formats": dict(Counter(fmt for _, fmt, _ in rows)),
        "chars": {
            "prompt": percentiles([sum(map(len, p)) for p in prompts]),
            "response": percentiles([len(r) for r in responses]),
        },
    }
    if tokenizer is not None:
        if not hasattr(tokenizer, "encode_batch"):
            from instructgen.tokenizer import Tokenizer

            tokenizer = Tokenizer.from_dir(tokenizer)
        prompt_ids = [tokenizer.encode_batch(p) for p in prompts]
        result["tokens"] = {
            "prompt": percentiles([sum(map(len, ids)) for ids in prompt_ids]),
            "response": percentiles([len(ids) for ids in tokenizer.encode_batch(responses)]),
        }
    languages = Counter(
        language_of("\n".join(m["content"] for m in c.messages if m["role"] != "system"))
        for c in convs
    )
    result["languages"] = {lang: languages.get(lang, 0) for lang in ("zh", "en", "mixed", "other")}
    user_texts = ["\n".join(m["content"] for m in c.messages if m["role"] == "user") for c in convs]
    result["duplicates"] = duplicate_rate(user_texts)
    return result


def percentiles(values: Sequence[int], points: Sequence[int] = (50, 90, 99)) -> dict[str, int]:
    """Nearest-rank percentiles: p_k = sorted(values)[ceil(k/100 * n) - 1], plus the max."""
    ordered = sorted(values)
    if not ordered:
        return {**{f"p{k}": 0 for k in points}, "max": 0}
    out = {f"p{k}": ordered[max(math.ceil(k / 100 * len(ordered)) - 1, 0)] for k in points}
    out["max"] = ordered[-1]
    return out
