"""The entities of the built-in task world, and the types its task families are made of.

Every entity list comes in two disjoint parts: ``train`` entities feed the train and val splits
and the pretraining corpus; ``test`` entities appear in the test split only, so a test score
measures instruction following on names, products, cities, topics and words never seen before.
Test entities are chosen so that no train text contains them, even as a substring. The lists
live in tables/world.json ("entities": kind -> lang -> train/test; "catalog": lang -> interest ->
train/test items).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from instructgen.data.builtin_phrasings import PHRASINGS
from instructgen.data.builtin_procedural import make_catalog_item, make_entity
from instructgen.package_data import load_json

LANGS = ("zh", "en")
AREAS = ("writing", "support", "personalize", "skills")

_TABLES = load_json("instructgen.data", "tables", "world.json")

# kind -> lang -> (train, test)
ENTITIES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    kind: {lang: (tuple(v["train"]), tuple(v["test"])) for lang, v in by_lang.items()}
    for kind, by_lang in _TABLES["entities"].items()
}

# The personalization catalogue: interest -> (train items, test items), aligned across languages.
INTERESTS: dict[str, tuple[str, ...]] = {
    lang: tuple(by_interest) for lang, by_interest in _TABLES["catalog"].items()
}
CATALOG: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    lang: tuple((tuple(v["train"]), tuple(v["test"])) for v in by_interest.values())
    for lang, by_interest in _TABLES["catalog"].items()
}
DAYS = {
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
DOMAINS = ("example.com", "mail.com", "company.cn", "school.edu", "shop.net")
ZH_NUMERALS = {2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八"}
EN_NUMERALS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def heldout_entities() -> list[str]:
    """Every test-only entity string, in a fixed order."""
    out = [s for kind in ENTITIES.values() for lang in LANGS for s in kind[lang][1]]
    out += [s for lang in LANGS for _, test in CATALOG[lang] for s in test]
    return out


class Pool:
    """The entities one split may use: train entities, or (heldout=True) test entities.

    A train pool with ``made`` > 0 draws that share of its entities from builtin_procedural
    (made-up names, words, cities...), never one that contains a held-out entity.
    """

    def __init__(self, heldout: bool, made: float = 0.0):
        self.heldout = heldout
        self.made = 0.0 if heldout else made

    def items(self, kind: str, lang: str) -> tuple[str, ...]:
        return ENTITIES[kind][lang][1 if self.heldout else 0]

    def one(self, rng: random.Random, kind: str, lang: str) -> str:
        if self.made and rng.random() < self.made:
            return _unseen(lambda: make_entity(rng, kind, lang))
        return rng.choice(self.items(kind, lang))

    def some(self, rng: random.Random, kind: str, lang: str, k: int) -> list[str]:
        """k distinct entities (k at most the fixed pool's size)."""
        if not self.made:
            return rng.sample(self.items(kind, lang), k)
        out: list[str] = []
        while len(out) < k:
            x = self.one(rng, kind, lang)
            if x not in out:
                out.append(x)
        return out

    def catalog_item(self, rng: random.Random, lang: str, interest: int) -> str:
        if self.made and rng.random() < self.made:
            return _unseen(lambda: make_catalog_item(rng, lang, interest))
        return rng.choice(CATALOG[lang][interest][1 if self.heldout else 0])

    def email(self, rng: random.Random, name: str | None = None) -> str:
        """An address whose handle is `name` (an English name) or a random English name."""
        handle = (name or self.one(rng, "name", "en")).lower()
        if rng.random() < 0.5:
            handle += str(rng.randint(1, 99))
        return f"{handle}@{rng.choice(DOMAINS)}"


@functools.cache
def _heldout_pattern() -> re.Pattern:
    entities = sorted({e.casefold() for e in heldout_entities()}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, entities)))


def leaks_heldout(text: str) -> bool:
    """True when `text` contains a held-out (test-only) entity, ignoring case."""
    return _heldout_pattern().search(text.casefold()) is not None


def _unseen(make: Callable[[], str]) -> str:
    """The first of make()'s values that contains no held-out entity."""
    while leaks_heldout(value := make()):
        pass
    return value


@dataclass(frozen=True)
class Sample:
    """One task instance before rendering: the phrasing's slot values, the reference answer,
    its checker and an optional system message."""

    slots: dict[str, Any]
    answer: str
    checker: dict[str, Any]
    system: str | None = None


@dataclass(frozen=True)
class Family:
    """A task family: one instruction, phrased many ways, with a generator of instances.

    ``phrasings`` serve the train and val splits; ``heldout`` phrasings serve the test split only.
    """

    name: str
    area: str
    description: str
    phrasings: dict[str, tuple[str, ...]]
    heldout: dict[str, tuple[str, ...]]
    make: Callable[[random.Random, str, Pool], Sample]


def family(
    name: str, area: str, description: str, make: Callable[[random.Random, str, Pool], Sample]
) -> Family:
    """A family whose phrasings are those of builtin_phrasings.PHRASINGS[name]."""
    p = PHRASINGS[name]
    return Family(
        name, area, description, {lang: p[lang] for lang in LANGS}, dict(p["heldout"]), make
    )


def title_case(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))


def sequence_pattern(items: list[str]) -> str:
    """A fullmatch regex for `items` in order, separated by commas (any width), 、 or spaces."""
    return r"(?:\s*[,，、;；]\s*|\s+)".join(re.escape(x) for x in items)


def list_pattern(items: list[str], numbered: bool) -> str:
    """A fullmatch regex for `items` as a bulleted (- * •) or numbered (1. 1、 1)) list."""
    marks = [rf"{i}\s*[.、)）]" if numbered else r"[-*•]" for i in range(1, len(items) + 1)]
    return r"\s*\n\s*".join(rf"{m}\s*{re.escape(x)}" for m, x in zip(marks, items))


def join_items(items: list[str], lang: str) -> str:
    """``a、b和c`` / ``a, b and c``."""
    if lang == "zh":
        return "、".join(items[:-1]) + "和" + items[-1]
    return ", ".join(items[:-1]) + " and " + items[-1]
