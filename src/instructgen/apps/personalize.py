"""Personalized content in bulk: recommendations and marketing copy for many user profiles.

    summary = personalize(llm, load_profiles("users.jsonl"), "recommend", "out.jsonl",
                          catalog=load_catalog("catalog.csv"))

Profiles (JSONL or CSV): name (required), id, interests, city, lang, exclude — lists as JSON
lists or "a;b" strings. A catalogue: name and category per row. Every output is checked against
its profile (addresses the user by name; for recommend, names a catalogue item of one of the
user's interests; mentions nothing excluded), redacted, and appended to the output file at once,
so an interrupted run resumes where it stopped. URL backends run `workers` requests at a time;
local models generate `batch_size` profiles per batch.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructgen.apps.common import detect_lang, read_records, split_list
from instructgen.errors import ConfigError, DataError
from instructgen.files import atomic_write_text
from instructgen.jsonl import parse_json_lines, split_lines
from instructgen.safety import redact

TASKS = ("recommend", "marketing")


@dataclass(frozen=True)
class Profile:
    id: str
    name: str
    interests: list[str] = field(default_factory=list)
    city: str = ""
    lang: str = "en"
    exclude: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Item:
    name: str
    category: str


def load_profiles(path: str | Path) -> list[Profile]:
    """Profiles from JSONL or CSV; ids default to the row number and must be unique."""
    profiles, seen = [], set()
    for line, row in read_records(path, what="profile"):
        name = str(row.get("name") or "").strip()
        if not name:
            raise DataError("missing or empty", file=str(path), line=line, field="name")
        pid = str(row.get("id") or "").strip() or str(len(profiles) + 1)
        if pid in seen:
            raise DataError(f"duplicate id {pid!r}", file=str(path), line=line, field="id")
        seen.add(pid)
        interests = split_list(row.get("interests"))
        lang = str(row.get("lang") or "").strip() or detect_lang(name + " ".join(interests))
        if lang not in ("en", "zh"):
            raise DataError(
                f"unknown lang {lang!r} (en or zh)", file=str(path), line=line, field="lang"
            )
        city = str(row.get("city") or "").strip()
        profiles.append(Profile(pid, name, interests, city, lang, split_list(row.get("exclude"))))
    return profiles


def load_catalog(path: str | Path) -> list[Item]:
    items = []
    for line, row in read_records(path, what="catalogue"):
        for key in ("name", "category"):
            if not str(row.get(key) or "").strip():
                raise DataError("missing or empty", file=str(path), line=line, field=key)
        items.append(Item(str(row["name"]).strip(), str(row["category"]).strip()))
    return items


def _related(a: str, b: str) -> bool:
    a, b = a.casefold(), b.casefold()
    return bool(a) and bool(b) and (a in b or b in a)


def candidates(profile: Profile, catalog: list[Item]) -> list[Item]:
    """Catalogue items of one of the profile's interests that match no excluded term."""
    return [
        item
        for item in catalog
        if any(_related(i, item.category) for i in profile.interests)
        and not any(_related(x, item.name) or _related(x, item.category) for x in profile.exclude)
    ]


def prompt(profile: Profile, task: str, catalog: list[Item]) -> list[dict[str, str]]:
    """The chat messages that ask for one profile's content."""
    picks = candidates(profile, catalog)[:10] or catalog[:10]
    zh = profile.lang == "zh"
    sep = "、" if zh else ", "
    likes = sep.join(profile.interests)
    if zh:
        text = f"用户画像：姓名{profile.name}" + (f"，住在{profile.city}" if profile.city else "")
        text += f"，喜欢{likes}。" if likes else "。"
        if picks:
            text += "\n商品目录：\n" + "\n".join(
                f"{i}. {x.name}（{x.category}）" for i, x in enumerate(picks, 1)
            )
        text += (
            "\n请从目录中为用户推荐一件符合兴趣的商品，称呼用户的名字，一两句话。"
            if task == "recommend"
            else "\n请为这位用户写一句个性化的营销文案，称呼用户的名字。"
        )
        if profile.exclude:
            text += "不要提到：" + sep.join(profile.exclude) + "。"
    else:
        text = f"User profile: name {profile.name}" + (
            f", lives in {profile.city}" if profile.city else ""
        )
        text += f", likes {likes}." if likes else "."
        if picks:
            text += "\nCatalogue:\n" + "\n".join(
                f"{i}. {x.name} ({x.category})" for i, x in enumerate(picks, 1)
            )
        text += (
            "\nRecommend one catalogue item that fits the user's interests, addressing the user by name, in one or two sentences."
            if task == "recommend"
            else "\nWrite a one-line personalized marketing message for this user, addressing them by name."
        )
        if profile.exclude:
            text += " Do not mention: " + sep.join(profile.exclude) + "."
    return [{"role": "user", "content": text}]


def check(text: str, profile: Profile, task: str, catalog: list[Item]) -> dict[str, Any]:
    """{mentions_name, items, matches_interest, excluded, passed} of one output."""
    folded = text.casefold()
    items = [x.name for x in candidates(profile, catalog) if x.name.casefold() in folded]
    interest = any(i.casefold() in folded for i in profile.interests) or bool(items)
    excluded = [x for x in profile.exclude if x.casefold() in folded]
    result = {
        "mentions_name": profile.name.casefold() in folded,
        "items": items,
        "matches_interest": interest,
        "excluded": excluded,
    }
    need_item = task == "recommend" and bool(catalog)
    need_interest = bool(profile.interests)
    result["passed"] = (
        result["mentions_name"]
        and not excluded
        and (bool(items) if need_item else (interest or not need_interest))
    )
    return result


def personalize(
    llm: Any,
    profiles: list[Profile],
    task: str,
    out: str | Path,
    *,
    catalog: list[Item] | None = None,
    workers: int = 4,
    batch_size: int = 8,
    max_tokens: int = 96,
    temperature: float = 0.7,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, check and append one output per profile not already in `out`; return counts."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose {', '.join(TASKS)}", field="task")
    if workers < 1 or batch_size < 1:
        raise ConfigError("workers and batch_size must be at least 1", field="workers")
    catalog = catalog or []
    out = Path(out)
    done = _finished_ids(out)
    todo = [p for p in profiles if p.id not in done]
    sampling = {"max_tokens": max_tokens, "temperature": temperature}
    counts = {"passed": 0, "failed": 0}
    lock = threading.Lock()
    from tqdm import tqdm

    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(out, "a", encoding="utf-8") as f,
        tqdm(total=len(todo), desc=task, unit="profile", disable=not progress) as bar,
    ):
        for profile, text in _generate(
            llm, todo, task, catalog, sampling, seed, workers, batch_size
        ):
            verdict = check(text, profile, task, catalog)
            record = {
                "id": profile.id,
                "task": task,
                "name": profile.name,
                "lang": profile.lang,
                "output": redact(text)[0],
                "check": verdict,
                "passed": verdict["passed"],
            }
            with lock:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                f.flush()
                counts["passed" if verdict["passed"] else "failed"] += 1
            bar.update(1)
        os.fsync(f.fileno())
    return {
        "task": task,
        "profiles": len(profiles),
        "skipped_done": len(profiles) - len(todo),
        "generated": len(todo),
        **counts,
        "out": str(out),
    }


def _generate(
    llm: Any,
    todo: list[Profile],
    task: str,
    catalog: list[Item],
    sampling: dict[str, Any],
    seed: int,
    workers: int,
    batch_size: int,
) -> Iterator[tuple[Profile, str]]:
    """(profile, output) as they finish: a thread pool for remote APIs, batches for local models."""
    if getattr(llm, "backend", "") == "openai":
        with ThreadPoolExecutor(workers) as pool:
            futures = {
                pool.submit(llm.chat, prompt(p, task, catalog), seed=seed + i, **sampling): p
                for i, p in enumerate(todo)
            }
            for future in as_completed(futures):
                yield futures[future], future.result().text.strip()
        return
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        outputs = llm.generate_batch(
            [prompt(p, task, catalog) for p in batch], seed=seed + start, **sampling
        )
        for profile, completion in zip(batch, outputs):
            yield profile, completion.text.strip()


def _finished_ids(out: Path) -> set[str]:
    """Ids already written to `out`; a torn last line (an interrupted write) is cut off."""
    if not out.is_file():
        return set()
    text = out.read_text(encoding="utf-8")
    lines = split_lines(text)
    ids, torn = set(), False
    for number, record in parse_json_lines(lines):
        if isinstance(record, dict) and "id" in record:
            ids.add(str(record["id"]))
        elif number != len(lines):
            raise DataError(
                "not an output record; use a new --out file", file=str(out), line=number
            )
        else:
            torn = True
    if torn or (text and not text.endswith(("\n", "\r"))):
        kept = lines[:-1] if torn else lines
        atomic_write_text(out, "".join(line + "\n" for line in kept))
    return ids
