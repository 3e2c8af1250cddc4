"""Preference pairs, in TRL's formats: one prompt, a chosen answer and a rejected one.

    {"prompt": "...", "chosen": "...", "rejected": "..."}                     strings
    {"prompt": [messages], "chosen": [messages], "rejected": [messages]}       conversational
    {"chosen": [whole conversation], "rejected": [whole conversation]}         implicit prompt

An implicit prompt is the longest common run of messages that both conversations start with;
what follows in each is its answer. A string prompt becomes one user message and a string answer
one assistant message. Files are .jsonl, .json, .parquet or .csv (data/records.py); errors name
file, line and field: a missing side, identical sides, an empty answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructgen.data.records import BadRecord, raw_records, type_name, write_records
from instructgen.errors import DataError

SIDES = ("chosen", "rejected")


@dataclass
class Pair:
    """One preference: the conversation so far, and two continuations of it by the assistant."""

    prompt: list[dict[str, str]]
    chosen: list[dict[str, str]]
    rejected: list[dict[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)  # every other field of the record

    def conversations(self) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        """The chosen and the rejected conversation in full."""
        return self.prompt + self.chosen, self.prompt + self.rejected

    def to_record(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            **self.meta,
        }


def is_preference(record: Any) -> bool:
    """A record of this format: it has `chosen` or `rejected`."""
    return isinstance(record, dict) and any(side in record for side in SIDES)


def to_pair(record: Any) -> Pair:
    """The Pair of one record; BadRecord naming the field when it is not a valid preference."""
    if not isinstance(record, dict):
        raise BadRecord(f"a record must be a JSON object, got {type_name(record)}")
    for side in SIDES:
        if side not in record:
            raise BadRecord("missing: a preference needs both chosen and rejected", side)
    chosen = _messages(record["chosen"], "chosen", "assistant")
    rejected = _messages(record["rejected"], "rejected", "assistant")
    if "prompt" in record:
        prompt = _messages(record["prompt"], "prompt", "user")
    else:  # implicit prompt: the shared beginning of two whole conversations
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
        if not prompt:
            raise BadRecord(
                "missing: no prompt, and the conversations share no beginning", "prompt"
            )
    if prompt[-1]["role"] == "assistant":
        raise BadRecord("the prompt must end with a user (or system) message", "prompt")
    for side, answer in (("chosen", chosen), ("rejected", rejected)):
        if answer[0]["role"] != "assistant":
            raise BadRecord("the answer must start with an assistant message", side)
    if chosen == rejected:
        raise BadRecord("chosen and rejected are identical", "rejected")
    meta = {k: v for k, v in record.items() if k not in ("prompt", *SIDES)}
    return Pair(prompt, chosen, rejected, meta)


def _messages(value: Any, name: str, role: str) -> list[dict[str, str]]:
    """A string (one message of `role`) or a list of {"role", "content"} messages."""
    if isinstance(value, str):
        if not value.strip():
            raise BadRecord("is empty", name)
        return [{"role": role, "content": value}]
    if not isinstance(value, list) or not value:
        raise BadRecord(
            f"must be a string or a non-empty list of messages, got {type_name(value)}", name
        )
    out = []
    for i, message in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(message, dict):
            raise BadRecord(
                f"must be an object with 'role' and 'content', got {type_name(message)}", where
            )
        if message.get("role") not in ("system", "user", "assistant"):
            raise BadRecord(f"unknown role {message.get('role')!r}", f"{where}.role")
        content = message.get("content")
        if not isinstance(content, str):
            raise BadRecord(f"must be a string, got {type_name(content)}", f"{where}.content")
        if not content.strip():
            raise BadRecord("is empty", f"{where}.content")
        out.append({"role": message["role"], "content": content})
    return out


def iter_pairs(path: str | Path) -> Iterator[tuple[int | None, Pair]]:
    """(line, Pair) of each record; DataError naming file, line and field at the first bad one."""
    for line, record in raw_records(Path(path)):
        try:
            if isinstance(record, BadRecord):
                raise record
            yield line, to_pair(record)
        except BadRecord as bad:
            raise bad.error(str(path), line) from None


def read_pairs(path: str | Path) -> list[Pair]:
    pairs = [pair for _, pair in iter_pairs(path)]
    if not pairs:
        raise DataError("no preference pairs in the file", file=str(path))
    return pairs


def write_pairs(path: str | Path, pairs: list[Pair]) -> None:
    write_records(path, [p.to_record() for p in pairs])


def pair_stats(pairs: list[Pair]) -> dict[str, Any]:
    """Counts of a preference file: pairs, prompt turns, answer lengths in characters."""
    from instructgen.data.formats import percentiles

    def chars(messages: list[dict[str, str]]) -> int:
        return sum(len(m["content"]) for m in messages)

    return {
        "pairs": len(pairs),
        "multi_turn_prompts": sum(len(p.prompt) > 1 for p in pairs),
        "chars": {
            "prompt": percentiles([chars(p.prompt) for p in pairs]),
            "chosen": percentiles([chars(p.chosen) for p in pairs]),
            "rejected": percentiles([chars(p.rejected) for p in pairs]),
        },
    }
