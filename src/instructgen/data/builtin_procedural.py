"""Procedurally made entities for the train side of the built-in world.

The fixed entity pools of builtin_world.py are small (a few dozen names, cities, topics...), so a
small model can do well on them by memorising the pool instead of copying the entity from the
instruction — and then writes a memorised name where the test split asks for an unseen one.
Mixing in made-up entities (pseudo-words built from syllables in English; surname + given
characters, or free character strings, in Chinese) makes copying from the context the only way
to be right. `make_entity(rng, kind, lang)` makes one; its caller (builtin_world.Pool) rejects
any that contains a held-out test entity, so the test split stays unseen. The syllables,
characters and name parts live in tables/procedural.json.
"""

from __future__ import annotations

import random

from instructgen.package_data import load_json, tuples

_TABLES = load_json("instructgen.data", "tables", "procedural.json")
_EN_PARTS, _ZH_PARTS = _TABLES["en"], _TABLES["zh"]
# Syllable parts; the empty onsets and codas weight syllables without one.
_ONSETS: list[str] = _EN_PARTS["onsets"]
_VOWELS: list[str] = _EN_PARTS["vowels"]
_CODAS: list[str] = _EN_PARTS["codas"]
_ZH_SURNAMES: str = _ZH_PARTS["surnames"]  # one character each
_ZH_COMPOUND_SURNAMES: tuple[str, ...] = tuple(_ZH_PARTS["compound_surnames"])
_ZH_GIVEN: str = _ZH_PARTS["given"]
_ZH_CHARS: str = _ZH_PARTS["chars"]  # common characters for made-up words, topics, items and places
# kind -> name suffixes ("" for none)
_EN_SUFFIXES: dict[str, tuple[str, ...]] = tuples(_EN_PARTS["suffixes"])
_ZH_SUFFIXES: dict[str, tuple[str, ...]] = tuples(_ZH_PARTS["suffixes"])
_EN_PRODUCTS: list[str] = _EN_PARTS["products"]
_ZH_PRODUCTS: list[str] = _ZH_PARTS["products"]
# per interest (the order of builtin_world.INTERESTS): nouns a made-up catalogue item ends with
_EN_CATALOG: tuple[tuple[str, ...], ...] = tuple(map(tuple, _EN_PARTS["catalog"].values()))
_ZH_CATALOG: tuple[tuple[str, ...], ...] = tuple(map(tuple, _ZH_PARTS["catalog"].values()))


def pseudo_word(rng: random.Random, min_syllables: int = 1, max_syllables: int = 3) -> str:
    """A pronounceable lower-case made-up word: (onset vowel coda) × 1..3 syllables."""
    while True:
        n = rng.randint(min_syllables, max_syllables)
        word = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n)
        )
        if 3 <= len(word) <= 10:
            return word


RARE_SHARE = 0.2  # share of made-up Chinese characters drawn from all of CJK, not the lists


def _zh_char(rng: random.Random, common: str) -> str:
    """A character of `common`, or now and then any CJK ideograph (U+4E00..U+9FA5): rare ones
    are split into bytes by the tokenizer, like the rare characters of unseen names."""
    if rng.random() < RARE_SHARE:
        return chr(rng.randint(0x4E00, 0x9FA5))
    return rng.choice(common)


def zh_word(rng: random.Random, min_chars: int = 2, max_chars: int = 3) -> str:
    """A made-up Chinese word of (mostly common) characters."""
    return "".join(_zh_char(rng, _ZH_CHARS) for _ in range(rng.randint(min_chars, max_chars)))


def zh_name(rng: random.Random) -> str:
    """Surname (one character, sometimes two) + one or two given-name characters."""
    surname = rng.choice(_ZH_COMPOUND_SURNAMES) if rng.random() < 0.15 else rng.choice(_ZH_SURNAMES)
    return surname + "".join(_zh_char(rng, _ZH_GIVEN) for _ in range(rng.randint(1, 2)))


def _en(rng: random.Random, kind: str) -> str:
    if kind == "name":
        return pseudo_word(rng, 2, 3).capitalize()
    if kind == "city":
        return pseudo_word(rng, 1, 2).capitalize() + rng.choice(_EN_SUFFIXES["city"])
    if kind == "shop":
        return f"{pseudo_word(rng, 1, 2).capitalize()} {rng.choice(_EN_SUFFIXES['shop'])}"
    if kind == "product":
        return f"{pseudo_word(rng, 1, 2)} {rng.choice(_EN_PRODUCTS)}"
    if kind == "topic":
        return pseudo_word(rng, 1, 3) + ("s" if rng.random() < 0.3 else "")
    return pseudo_word(rng, 1, 3)  # word, item


def _zh(rng: random.Random, kind: str) -> str:
    if kind == "name":
        return zh_name(rng)
    if kind in ("city", "shop"):
        return zh_word(rng, 2, 2) + rng.choice(_ZH_SUFFIXES[kind])
    if kind == "product":
        return zh_word(rng, 1, 2) + rng.choice(_ZH_PRODUCTS)
    if kind == "word":
        return zh_word(rng, 2, 4)
    if kind == "item":
        return zh_word(rng, 1, 3)
    return zh_word(rng, 2, 3)  # topic


def make_entity(rng: random.Random, kind: str, lang: str) -> str:
    """One made-up entity of `kind` (name, city, topic, product, shop, word, item) in `lang`."""
    return _zh(rng, kind) if lang == "zh" else _en(rng, kind)


def make_catalog_item(rng: random.Random, lang: str, interest: int) -> str:
    """A made-up catalogue item for interest number `interest` (an INTERESTS index)."""
    if lang == "zh":
        return zh_word(rng, 2, 2) + rng.choice(_ZH_CATALOG[interest])
    return f"{pseudo_word(rng, 1, 2)} {rng.choice(_EN_CATALOG[interest])}"
