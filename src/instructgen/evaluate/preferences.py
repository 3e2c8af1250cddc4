"""Preference pairs from a model's own samples, judged by verifiable rewards.

For each prompt, K answers are sampled (in batches, through any instructgen backend). A record
with a checker (the built-in world's, data/checkers.py) gives chosen = a passing answer and
rejected = a failing one; when all K pass or all K fail there is nothing to prefer and the prompt
is skipped, counted by reason, unless `reference_chosen`: then a prompt whose K answers all fail
gets the record's own reference answer (when its checker accepts it) as chosen against the
model's first failing answer (outcome "reference"). A record without a checker is graded by a judge (MT-Bench's single
grading, evaluate/judges.py): chosen = the best-rated answer, rejected = the worst, skipped on a
tie. Pairs are appended to the output as each batch finishes, and a progress file beside it
(OUT.progress.jsonl) records every prompt's outcome, so a re-run continues where it stopped.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from instructgen.data.checkers import check
from instructgen.data.preferences import Pair
from instructgen.errors import ConfigError, DataError
from instructgen.jsonl import read_json_lines

OUTCOMES = ("pair", "reference", "all_pass", "all_fail", "tie", "no_checker")


def prompts_of(data: str, *, seed: int = 0, size: int = 6000) -> list[dict]:
    """{"id", "prompt": messages, "reference"?, "checker"?} of each record: the built-in train
    split ("builtin", generated in a temporary directory: the same seed and size give the same
    records as `data builtin` and `finetune --data builtin`) or an instruction file (the
    conversation up to its last assistant answer, which is the reference)."""
    if data == "builtin":
        import tempfile

        from instructgen.data.builtin import load_split, write_builtin

        with tempfile.TemporaryDirectory(prefix="instructgen-world-") as world:
            write_builtin(world, seed=seed, size=size)
            records = [(r["messages"], r) for r in load_split(world, "train")]
    else:
        from instructgen.data.formats import read_conversations

        records = [(c.messages, c.meta) for c in read_conversations(data)]
    out = []
    for i, (messages, meta) in enumerate(records):
        prompt = messages[:-1] if messages[-1]["role"] == "assistant" else messages
        item = {"id": str(meta.get("id", i)), "prompt": prompt}
        if messages[-1]["role"] == "assistant":
            item["reference"] = messages[-1]["content"]
        if meta.get("checker"):
            item["checker"] = meta["checker"]
        out.append(item)
    return out


def make_preferences(
    llm: Any,
    prompts: list[dict],
    out: str | Path,
    *,
    samples: int = 4,
    temperature: float = 1.0,
    max_tokens: int | None = 128,
    seed: int = 0,
    judge: Any = None,
    batch_size: int = 16,
    limit: int | None = None,
    reference_chosen: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Sample, judge and pair; returns {"pairs", "reference_pairs", "prompts",
    "skipped": {reason: n}, "out"}."""
    if samples < 2:
        raise ConfigError(
            "at least 2 samples per prompt are needed to make a pair", field="samples"
        )
    out = Path(out)
    log_path = out.with_name(out.name + ".progress.jsonl")
    done = {**_done(out, "pair"), **_done(log_path)}
    todo = [p for p in prompts[:limit] if p["id"] not in done]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="preferences", unit="prompt", disable=not progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        completions = llm.generate_batch(
            [p["prompt"] for p in batch],
            n=samples,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed + start,
        )
        rows, outcomes = [], []
        for item, completion in zip(batch, completions):
            answers = [c.text.strip() for c in completion.choices]
            outcome, pair = _pair(item, answers, judge, reference_chosen)
            outcomes.append({"id": item["id"], "outcome": outcome})
            if pair is not None:
                rows.append(pair.to_record())
        _append(out, rows)
        _append(log_path, outcomes)  # after the pairs: a prompt logged is a prompt written
        done.update({o["id"]: o["outcome"] for o in outcomes})
        bar.update(len(batch))
    bar.close()
    counts = Counter(done[p["id"]] for p in prompts[:limit] if p["id"] in done)
    return {
        "pairs": counts.get("pair", 0) + counts.get("reference", 0),
        "reference_pairs": counts.get("reference", 0),
        "prompts": sum(counts.values()),
        "skipped": {k: counts[k] for k in OUTCOMES[2:] if counts.get(k)},
        "out": str(out),
    }


def _pair(
    item: dict, answers: list[str], judge: Any, reference_chosen: bool = False
) -> tuple[str, Pair | None]:
    """(outcome, the pair or None) for one prompt's sampled answers."""
    meta = {"id": item["id"]}
    outcome = "pair"
    if item.get("checker"):
        passed = [a for a in answers if a and check(item["checker"], a)]
        failed = [a for a in answers if a not in passed]
        if not failed:
            return "all_pass", None
        if not passed:
            reference = item.get("reference")
            if not (reference_chosen and reference and check(item["checker"], reference)):
                return "all_fail", None
            passed, outcome = [reference], "reference"
            meta["chosen_from"] = "reference"
        chosen, rejected = passed[0], failed[0]
    else:
        if judge is None:
            return "no_checker", None
        question = next((m["content"] for m in reversed(item["prompt"]) if m["role"] == "user"), "")
        scored = [(judge.grade(question, a)["score"], a) for a in answers if a]
        scored = [(s, a) for s, a in scored if s is not None]
        if len(scored) < 2 or max(scored)[0] == min(scored)[0]:
            return "tie", None
        chosen, rejected = max(scored, key=lambda x: x[0])[1], min(scored, key=lambda x: x[0])[1]
        meta["judge"] = getattr(judge, "name", "judge")
    if chosen == rejected:
        return "tie", None
    pair = Pair(
        item["prompt"],
        [{"role": "assistant", "content": chosen}],
        [{"role": "assistant", "content": rejected}],
        meta,
    )
    return outcome, pair


def _done(path: Path, outcome: str | None = None) -> dict[str, str]:
    """{id: outcome} recorded by an earlier run: the progress file's outcomes, or (outcome
    given) the ids of the pairs already written; a torn last line is ignored."""
    if not path.is_file():
        return {}
    done = {}
    for _, row in read_json_lines(path.read_text(encoding="utf-8"), lenient=True):
        if not isinstance(row, dict) or "id" not in row:
            continue
        if outcome is not None or row.get("outcome") in OUTCOMES:
            done[str(row["id"])] = outcome or row["outcome"]
    return done


def _append(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.touch()
        return
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()


def check_out(path: str | Path) -> None:
    """The output must be JSONL: pairs are appended as they are made."""
    if Path(path).suffix.lower() not in (".jsonl", ".ndjson"):
        raise DataError(
            "the pairs are appended as they are made: use a .jsonl file", file=str(path)
        )
