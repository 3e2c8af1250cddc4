"""The `builtin` suite: the built-in world's held-out test split, each answer scored by its checker.

score = (1/N) Σ_i check_i(model(prompt_i)), reported overall, per family and per language.
The prompt is the conversation up to the assistant's answer, rendered by the model's own chat
template; decoding is greedy.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from instructgen.data.checkers import check


def prompts_of(records: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    """Each record's messages up to (not including) its final assistant message."""
    out = []
    for record in records:
        messages = record["messages"]
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        out.append([{"role": m["role"], "content": m["content"]} for m in messages[:last]])
    return out


def reference_of(record: dict[str, Any]) -> str:
    return [m for m in record["messages"] if m["role"] == "assistant"][-1]["content"]


def run_builtin(
    llm, records: list[dict[str, Any]], *, max_tokens: int = 96, batch_size: int = 64, progress=None
) -> dict[str, Any]:
    """Generate an answer for every record with `llm` (an inference backend) and score it."""
    prompts = prompts_of(records)
    outputs: list[str] = []
    for start in range(0, len(prompts), batch_size):
        completions = llm.generate_batch(
            prompts[start : start + batch_size], max_tokens=max_tokens, temperature=0.0
        )
        outputs += [c.text for c in completions]
        if progress is not None:
            progress(len(outputs), len(prompts))
    return score_outputs(records, outputs)


def score_outputs(records: list[dict[str, Any]], outputs: list[str]) -> dict[str, Any]:
    """Checker accuracy overall, by family and by language, plus every (output, passed) row."""
    by_family: dict[str, list[bool]] = defaultdict(list)
    by_lang: dict[str, list[bool]] = defaultdict(list)
    rows = []
    for record, output in zip(records, outputs, strict=True):
        passed = check(record["checker"], output)
        by_family[record.get("family", "all")].append(passed)
        by_lang[record.get("lang", "all")].append(passed)
        rows.append(
            {
                "id": record.get("id"),
                "family": record.get("family"),
                "lang": record.get("lang"),
                "output": output,
                "reference": reference_of(record),
                "passed": passed,
            }
        )
    everything = [r["passed"] for r in rows]
    return {
        "score": sum(everything) / max(1, len(everything)),
        "n": len(everything),
        "per_family": {f: sum(v) / len(v) for f, v in sorted(by_family.items())},
        "per_lang": {lang: sum(v) / len(v) for lang, v in sorted(by_lang.items())},
        "rows": rows,
    }
