"""Self-Instruct (Wang et al. 2022; yizhongw/self-instruct) against any OpenAI-compatible teacher.

The published pipeline's four steps, run round by round:
1. bootstrap: prompt with 8 example instructions (6 seed tasks, 2 kept machine tasks) numbered
   "1. ... 8." and parse the new tasks the teacher continues the list with;
2. ask the teacher, few-shot, whether each new task is a classification task;
3. generate instances: input-first for other tasks, output-first (label, then input) for
   classification tasks;
4. filter: length, blacklisted words, leading punctuation, ROUGE-L > 0.7 against any kept or seed
   instruction (Chinese-aware, data/dedup.py), empty or incomplete instances, input == output,
   conflicting instances (same input, different outputs), MinHash near duplicates.

Every decision is journaled as soon as it is made: an accepted record is appended to OUT (and
fsync'ed), a rejection to OUT.state.jsonl beside it. Candidates are decided strictly in order,
each slot named by (request, position), so a run killed at any moment resumes with the same
command: decided slots are skipped, the indexes are rebuilt from disk, and, for a deterministic
teacher, the result equals that of an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructgen.data import dedup
from instructgen.data.selfinstruct_prompts import (
    MAX_SHOTS,
    bootstrap_prompt,
    classification_prompt,
    instance_prompt,
    parse_instances,
    parse_instructions,
    parse_yes_no,
)
from instructgen.data.teacher import Teacher, TeacherError
from instructgen.errors import ConfigError, DataError
from instructgen.jsonl import read_json_lines
from instructgen.tokenizer import not_utf8_error

log = logging.getLogger(__name__)

REASONS = (
    "too_short", "too_long", "punctuation_start", "blacklisted", "rouge_similar", "no_instance",
    "empty_output", "input_equals_output", "incomplete_instance", "conflicting_instances",
    "near_duplicate",
)  # fmt: skip
_ID_RE = re.compile(r"^si-(\d+)-(\d+)$")


@dataclass(frozen=True)
class SeedTask:
    instruction: str
    instances: tuple[tuple[str, str], ...]  # (input, output)
    is_classification: bool = False


# the 175 human-written seed tasks of Self-Instruct (Wang et al. 2022, Apache-2.0)
BUILTIN_SEED_TASKS = Path(__file__).parent / "self_instruct_seed_tasks.jsonl"
MIN_REPLY_TOKENS = 128  # room a fitted prompt leaves for the teacher's reply (new tasks, instances)


def load_seed_tasks(path: str | Path) -> list[SeedTask]:
    """Seed tasks from JSON Lines, either Self-Instruct's format {"instruction", "instances":
    [{"input", "output"}], "is_classification"} or Alpaca records {"instruction", "input", "output"};
    "builtin" is the paper's own 175 (BUILTIN_SEED_TASKS)."""
    path = BUILTIN_SEED_TASKS if str(path) == "builtin" else Path(path)
    if not path.is_file():
        raise DataError("seed task file not found", file=str(path))
    text = _utf8(path.read_bytes(), path)
    tasks = [_seed_task(record, _Where(path, n)) for n, record in _json_objects(text, path)]
    if not tasks:
        raise DataError("no seed tasks in the file", file=str(path))
    return tasks


def _utf8(data: bytes, path: Path, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise not_utf8_error(path, exc) from None


def _json_objects(text: str, path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) of each non-blank line; a line that is not a JSON object is a
    DataError naming it."""
    lines = read_json_lines(text, file=str(path), message="not valid JSON ({error})")
    for line_no, record in lines:
        if not isinstance(record, dict):
            raise DataError(
                f"expected a JSON object, got {type(record).__name__}", file=str(path), line=line_no
            )
        yield line_no, record


@dataclass(frozen=True)
class _Where:
    path: Path
    line: int

    def error(self, message: str, field: str | None = None) -> DataError:
        return DataError(message, file=str(self.path), line=self.line, field=field)


def _string(record: dict, key: str, where: _Where, *, field: str | None = None, default: str | None = None) -> str:  # fmt: skip
    value = record.get(key, default)
    if not isinstance(value, str):
        problem = "is missing" if value is None else f"must be a string, got {type(value).__name__}"
        raise where.error(problem, field or key)
    return value


def _seed_task(record: dict, where: _Where) -> SeedTask:
    instruction = _string(record, "instruction", where).strip()
    if not instruction:
        raise where.error("is empty", "instruction")
    is_clf = record.get("is_classification", False)
    if not isinstance(is_clf, bool):
        raise where.error("must be true or false", "is_classification")
    if "instances" in record:
        instances = record["instances"]
        if not isinstance(instances, list) or not instances:
            raise where.error("must be a non-empty list of {input, output}", "instances")
        pairs = []
        for i, inst in enumerate(instances):
            if not isinstance(inst, dict):
                raise where.error("must be an object", f"instances[{i}]")
            inp = _string(inst, "input", where, field=f"instances[{i}].input", default="")
            pairs.append((inp, _string(inst, "output", where, field=f"instances[{i}].output")))
    elif "output" in record:
        pairs = [(_string(record, "input", where, default=""), _string(record, "output", where))]
    else:
        raise where.error("is missing (give 'instances' or 'output')", "output")
    return SeedTask(instruction, tuple(pairs), is_clf)


class _Journal:
    """An append-only JSON Lines file; every record is flushed and fsync'ed before returning."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self._f = path, path.open("a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def read_journal(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of a journal; a truncated last line (a killed write) is cut off."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1  # the journal up to its last line break
    records = list(_json_objects(_utf8(data[:complete], path, "utf-8-sig"), path))
    if data[complete:].strip():  # a last line without its line break
        try:
            records = list(_json_objects(_utf8(data, path, "utf-8-sig"), path))
            with path.open("ab") as f:
                f.write(b"\n")
        except DataError:
            log.warning("%s: dropping a truncated last line", path)
            os.truncate(path, complete)
    return records


def record_text(instruction: str, input: str, output: str) -> str:
    """The text MinHash compares: the whole record."""
    return f"{instruction}\n{input}\n{output}"


@dataclass(frozen=True)
class Settings:
    num: int
    seed: int = 0
    concurrency: int = 4
    rouge_threshold: float = 0.7
    near_threshold: float = 0.7
    num_examples: int = 8  # in-context instructions per bootstrap prompt
    num_machine_examples: int = 2  # of which from the kept machine tasks


class _Run:
    """One invocation: the state rebuilt from disk, the teacher, and the decision loop."""

    def __init__(
        self, teacher: Teacher, seeds: list[SeedTask], out: Path, settings: Settings
    ) -> None:
        self.teacher, self.seeds, self.cfg = teacher, seeds, settings
        self.num, self.seed, self.concurrency = settings.num, settings.seed, settings.concurrency
        self.out, self.state_path = out, out.with_name(out.name + ".state.jsonl")
        self.rouge = dedup.RougeLIndex(t.instruction for t in seeds)
        self.near = dedup.NearDuplicateIndex(threshold=settings.near_threshold)
        for i, task in enumerate(seeds):
            self.near.add(("seed", i), record_text(task.instruction, *task.instances[0]))
        self.kept: list[tuple[int, str]] = []  # (request index or -1, instruction), in file order
        self.decided: set[str] = set()
        self.done: set[int] = set()
        self.rejected: Counter[str] = Counter()
        self.added = 0
        self._load()

    def _load(self) -> None:
        for line_no, rec in read_journal(self.out):
            texts = [
                _string(rec, k, _Where(self.out, line_no))
                for k in ("instruction", "input", "output")
            ]
            slot = rec.get("id") if isinstance(rec.get("id"), str) else ""
            m = _ID_RE.match(slot)
            self._keep(int(m.group(1)) if m else -1, slot, *texts)
        for line_no, entry in read_journal(self.state_path):
            event = entry.get("event")
            if event == "config" and entry.get("seed") != self.seed:
                raise ConfigError(
                    f"this output was started with --seed {entry.get('seed')}; resume with the same seed or write to a new --out",
                    file=str(self.state_path), line=line_no, field="seed",
                )  # fmt: skip
            if event == "reject":
                if not isinstance(entry.get("slot"), str) or entry.get("reason") not in REASONS:
                    raise _Where(self.state_path, line_no).error("malformed reject entry", "reason")
                self.decided.add(entry["slot"])
                self.rejected[entry["reason"]] += 1
            elif event == "request_done":
                if not isinstance(entry.get("request"), int):
                    raise _Where(self.state_path, line_no).error("must be an integer", "request")
                self.done.add(entry["request"])
        self.state = _Journal(self.state_path)
        if not self.state_path.stat().st_size:
            self.state.write({"event": "config", "seed": self.seed, "version": 1})
        self.records = _Journal(self.out)

    def _keep(self, request: int, slot: str, instruction: str, input: str, output: str) -> None:
        self.kept.append((request, instruction))
        self.decided.add(slot)
        self.rouge.add(instruction)
        self.near.add(("kept", len(self.kept)), record_text(instruction, input, output))

    def close(self) -> None:
        self.state.close()
        self.records.close()

    # --- the loop ------------------------------------------------------------------------------

    def run(self, pool: ThreadPoolExecutor, max_requests: int, progress: Any) -> None:
        requests = 0
        while len(self.kept) < self.num:
            first = next(r for r in range(len(self.done) + 1) if r not in self.done)
            # Rounds align to multiples of `concurrency`, so a resumed round repeats its prompts.
            start = first - first % self.concurrency
            todo = [r for r in range(start, start + self.concurrency) if r not in self.done]
            if requests >= max_requests:
                raise TeacherError(
                    f"only {len(self.kept)} of {self.num} tasks were accepted after {requests} requests "
                    f"to the teacher at {self.teacher.url}; rerun to continue, or see the rejects in {self.state_path}"
                )  # fmt: skip
            requests += len(todo)
            machine = [inst for r, inst in self.kept if r < start]
            prompts = [self._bootstrap_prompt(machine, r) for r in todo]
            replies = list(pool.map(self._bootstrap, prompts))
            slots = [(f"si-{r}-{pos}", r, inst)
                     for r, reply in zip(todo, replies) for pos, inst in enumerate(reply)]  # fmt: skip
            self._decide(slots, pool, progress)
            for r, reply in zip(todo, replies):
                if all(f"si-{r}-{pos}" in self.decided for pos in range(len(reply))):
                    self.done.add(r)
                    self.state.write(
                        {"event": "request_done", "request": r, "candidates": len(reply)}
                    )

    def _bootstrap_prompt(self, machine: list[str], request: int) -> str:
        """The step-1 prompt with as many in-context tasks as fit the teacher's context."""
        examples = self._examples(machine, request)
        return self._fit(
            lambda k: bootstrap_prompt(examples[:k]), len(examples), 1, MIN_REPLY_TOKENS
        )

    def _fit(self, make: Callable[[int], str], most: int, least: int, reply: int) -> str:
        """make(k) for the largest k in [least, most] whose prompt leaves `reply` tokens of the
        teacher's context (a small model's context cannot hold every demonstration)."""
        for k in range(most, least - 1, -1):
            prompt = make(k)
            room = self.teacher.room(prompt)
            if room is None or room >= reply:
                return prompt
        return prompt

    def _examples(self, machine: list[str], request: int) -> list[str]:
        rng = random.Random(f"self-instruct:{self.seed}:{request}")
        examples = rng.sample(machine, min(self.cfg.num_machine_examples, len(machine)))
        seeds = [t.instruction for t in self.seeds]
        examples += rng.sample(seeds, min(self.cfg.num_examples - len(examples), len(seeds)))
        rng.shuffle(examples)
        return examples

    def _bootstrap(self, prompt: str) -> list[str]:
        api = self.teacher.api
        stop = ["\n\n", "\n20.", "20."] if api == "completions" else None
        text, finish = self.teacher.complete(
            prompt, max_tokens=1024, temperature=0.7, top_p=0.5, stop=stop, presence_penalty=2.0
        )
        return parse_instructions(
            text, truncated=finish == "length", leading_item=api == "completions"
        )

    def _task(self, instruction: str) -> tuple[bool, list[tuple[str, str]]]:
        """Steps 2 and 3 for one new instruction: (is_classification, instances)."""
        ask = self._fit(lambda k: classification_prompt(instruction, k), MAX_SHOTS, 0, 8)
        answer, _ = self.teacher.complete(ask, max_tokens=8, stop=["\n", "Task:"])
        is_clf = parse_yes_no(answer)
        ask = self._fit(
            lambda k: instance_prompt(instruction, is_clf, k), MAX_SHOTS, 0, MIN_REPLY_TOKENS
        )
        text, finish = self.teacher.complete(ask, max_tokens=400, stop=["Task:"])
        return is_clf, parse_instances(text, is_clf, truncated=finish == "length")

    def _early_reason(self, instruction: str) -> tuple[str | None, dict]:
        """Step 4's filters that need no teacher call."""
        if dedup.too_short(instruction):
            return "too_short", {}
        if dedup.too_long(instruction):
            return "too_long", {}
        if dedup.starts_with_punctuation(instruction):
            return "punctuation_start", {}
        if dedup.has_blacklisted(instruction):
            return "blacklisted", {}
        score, similar = self.rouge.best(instruction, at_least=self.cfg.rouge_threshold)
        if score > self.cfg.rouge_threshold:
            return "rouge_similar", {"rouge_l": round(score, 4), "most_similar": similar}
        return None, {}

    def _decide(
        self, slots: list[tuple[str, int, str]], pool: ThreadPoolExecutor, progress: Any
    ) -> None:
        """Decide every slot in order; teacher calls for upcoming candidates run `concurrency` at a time."""
        results: dict[str, tuple[bool, list[tuple[str, str]]]] = {}
        for i, (slot, request, instruction) in enumerate(slots):
            if len(self.kept) >= self.num:
                return
            if slot in self.decided:
                continue
            reason, detail = self._early_reason(instruction)
            record = None
            if reason is None:
                if slot not in results:
                    batch = self._prefetch(slots[i:], results)
                    results.update(
                        zip((s for s, _ in batch), pool.map(self._task, (t for _, t in batch)))
                    )
                is_clf, instances = results.pop(slot)
                reason, pair = instance_reason(instances)
                if reason is None:
                    record = {"instruction": instruction, "input": pair[0], "output": pair[1],
                              "is_classification": is_clf, "source": "self-instruct", "id": slot}  # fmt: skip
                    if self.near.query(record_text(instruction, *pair)):
                        reason, record = "near_duplicate", None
            if record is None:
                self.rejected[reason] += 1
                entry = {
                    "event": "reject",
                    "slot": slot,
                    "reason": reason,
                    "instruction": instruction,
                }
                self.state.write({**entry, **detail})
            else:
                self.records.write(record)
                self._keep(request, slot, instruction, record["input"], record["output"])
                self.added += 1
                progress.update(1)
            self.decided.add(slot)

    def _prefetch(
        self, upcoming: list[tuple[str, int, str]], results: dict
    ) -> list[tuple[str, str]]:
        """The next `concurrency` undecided candidates that pass the early filters (and are not
        near copies of each other): their teacher calls run together."""
        batch: list[tuple[str, str]] = []
        batch_rouge = dedup.RougeLIndex()
        for slot, _, instruction in upcoming:
            if len(batch) == self.concurrency:
                break
            if slot in self.decided or slot in results or self._early_reason(instruction)[0]:
                continue
            similar, _ = batch_rouge.best(instruction, at_least=self.cfg.rouge_threshold)
            if similar > self.cfg.rouge_threshold:
                continue
            batch.append((slot, instruction))
            batch_rouge.add(instruction)
        return batch

    def summary(self) -> dict:
        rejected = {reason: self.rejected.get(reason, 0) for reason in REASONS}
        return {
            "out": str(self.out), "state": str(self.state_path), "target": self.num,
            "kept": len(self.kept), "added": self.added, "requests": len(self.done),
            "rejected": rejected, "rejected_total": sum(rejected.values()),
            "teacher_calls": self.teacher.calls, "retries": self.teacher.retries,
        }  # fmt: skip


def instance_reason(instances: list[tuple[str, str]]) -> tuple[str | None, tuple[str, str] | None]:
    """(None, first valid (input, output)) or (reason, None), by the paper's instance filters."""
    if not instances:
        return "no_instance", None
    valid, first_bad = [], None
    for inp, out in instances:
        bad = ("empty_output" if not out.strip() else "input_equals_output" if inp.strip() == out.strip()
               else "incomplete_instance" if inp.rstrip().endswith((":", "：")) or out.rstrip().endswith((":", "："))
               else None)  # fmt: skip
        if bad is None:
            valid.append((inp, out))
        first_bad = first_bad or bad
    if not valid:
        return first_bad, None
    outputs: dict[str, str] = {}
    for inp, out in valid:
        if inp and outputs.setdefault(inp, out) != out:
            return "conflicting_instances", None
    return None, valid[0]


def run_self_instruct(
    teacher_url: str,
    seed_tasks_path: str | Path,
    num: int,
    out_path: str | Path,
    *,
    api_key: str | None = None,
    model: str | None = None,
    concurrency: int = 4,
    seed: int = 0,
    api: str = "chat",
    max_retries: int = 6,
    timeout: float = 60.0,
    backoff_base: float = 1.0,
    backoff_max: float = 30.0,
    rouge_threshold: float = 0.7,
    near_threshold: float = 0.7,
    num_examples: int = 8,
    num_machine_examples: int = 2,
    max_requests: int | None = None,
    progress: bool = False,
) -> dict:
    """Grow `out_path` (JSON Lines, Alpaca records plus is_classification, source, id) to `num`
    Self-Instruct tasks; rerunning the same call resumes. Returns counts of kept and rejected."""
    from tqdm import tqdm

    for name, value, least in (("num", num, 1), ("concurrency", concurrency, 1), ("max_retries", max_retries, 0)):  # fmt: skip
        if not isinstance(value, int) or value < least:
            raise ConfigError(f"must be an integer >= {least}, got {value!r}", field=name)
    if Path(out_path).is_dir():
        raise DataError("is a directory; give a .jsonl file to write", file=str(out_path))
    seeds = load_seed_tasks(seed_tasks_path)
    teacher = Teacher(teacher_url, api_key=api_key, model=model, api=api, max_retries=max_retries,
                      timeout=timeout, backoff_base=backoff_base, backoff_max=backoff_max, seed=seed)  # fmt: skip
    settings = Settings(num, seed, concurrency, rouge_threshold, near_threshold, num_examples, num_machine_examples)  # fmt: skip
    run = _Run(teacher, seeds, Path(out_path), settings)
    bar = tqdm(total=num, initial=min(len(run.kept), num), unit="task", disable=not progress, desc="self-instruct")  # fmt: skip
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="teacher") as pool:
            run.run(pool, max_requests if max_requests is not None else max(100, 20 * num), bar)
    except TeacherError as exc:
        raise TeacherError(f"{exc}; the {len(run.kept)} tasks accepted so far are kept in {run.out}: rerun the same command to resume") from None  # fmt: skip
    finally:
        bar.close()
        run.close()
    return run.summary()
