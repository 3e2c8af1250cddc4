"""Preference pairs from the built-in world without sampling a model: for each record, chosen =
its reference answer, rejected = the answer of another record of the same family and language
that this record's checker rejects (right form, wrong content: the hardest negative the world
has for free). `instructgen data preferences` makes pairs from a model's own samples instead."""

from __future__ import annotations

import random
from typing import Any

from instructgen.data.checkers import check
from instructgen.data.preferences import Pair


def builtin_pairs(records: list[dict[str, Any]], *, seed: int = 0) -> list[Pair]:
    """One pair per record that has a checker, a passing reference and a failing neighbour."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record.get("family", ""), record.get("lang", "")), []).append(record)
    rng = random.Random(f"builtin-pairs:{seed}")
    pairs = []
    for record in records:
        spec, messages = record.get("checker"), record["messages"]
        answer = messages[-1]["content"]
        if not spec or not check(spec, answer):
            continue
        neighbours = groups[(record.get("family", ""), record.get("lang", ""))]
        for other in rng.sample(neighbours, min(8, len(neighbours))):
            wrong = other["messages"][-1]["content"]
            if other is not record and wrong != answer and not check(spec, wrong):
                meta = {"id": record.get("id"), "family": record.get("family")}
                meta["lang"] = record.get("lang")
                rejected = [{"role": "assistant", "content": wrong}]
                pairs.append(Pair(messages[:-1], [messages[-1]], rejected, meta))
                break
    return pairs
