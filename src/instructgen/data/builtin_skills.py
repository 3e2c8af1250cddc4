"""Task families of verifiable skills: arithmetic, counting, sorting, extraction, format
conversion, and letter/character operations. Every answer is fully determined by the instruction."""

from __future__ import annotations

import json
import random

from instructgen.data import checkers as C
from instructgen.data.builtin_world import (
    Pool,
    Sample,
    family,
    join_items,
    list_pattern,
    sequence_pattern,
)

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
SEP = {"zh": "、", "en": ", "}


def _number(answer: int, slots: dict) -> Sample:
    return Sample(slots, str(answer), C.numeric(answer))


def _add(rng: random.Random, lang: str, pool: Pool) -> Sample:
    a, b = rng.randint(1, 50), rng.randint(1, 50)
    return _number(a + b, {"a": a, "b": b})


def _subtract(rng: random.Random, lang: str, pool: Pool) -> Sample:
    a = rng.randint(10, 99)
    b = rng.randint(1, a)
    return _number(a - b, {"a": a, "b": b})


def _multiply(rng: random.Random, lang: str, pool: Pool) -> Sample:
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    return _number(a * b, {"a": a, "b": b})


def parity(lang: str, n: int) -> str:
    return ("偶数", "奇数")[n % 2] if lang == "zh" else ("even", "odd")[n % 2]


def _parity(rng: random.Random, lang: str, pool: Pool) -> Sample:
    n = rng.randint(1, 999)
    return Sample({"n": n}, parity(lang, n), C.exact(parity(lang, n), ignore_case=True))


def _count_chars(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", lang)
    return _number(len(word), {"word": word})


def _count_items(rng: random.Random, lang: str, pool: Pool) -> Sample:
    items = pool.some(rng, "item", lang, rng.randint(2, 7))
    return _number(len(items), {"items": SEP[lang].join(items)})


def _sort_numbers(rng: random.Random, lang: str, pool: Pool) -> Sample:
    nums = rng.sample(range(100), rng.randint(3, 6))
    descending = rng.random() < 0.5
    order = (("从小到大", "从大到小") if lang == "zh" else ("ascending", "descending"))[descending]
    out = [str(n) for n in sorted(nums, reverse=descending)]
    checker = C.regex(sequence_pattern(out), fullmatch=True)
    return Sample(
        {"order": order, "nums": SEP[lang].join(map(str, nums))}, SEP[lang].join(out), checker
    )


def _sort_words(rng: random.Random, lang: str, pool: Pool) -> Sample:
    words = pool.some(rng, "word", "en", rng.randint(3, 5))
    out = sorted(words)
    checker = C.regex(sequence_pattern(out), fullmatch=True, ignore_case=True)
    return Sample({"words": ", ".join(words)}, ", ".join(out), checker)


_EMAIL_TEXTS = {
    "zh": (
        "有问题请联系{name}，邮箱是{x}，周一前回复。",
        "{name}的工作邮箱为{x}。",
        "报名表请发送至{x}，联系人：{name}。",
    ),
    "en": (
        "For questions contact {name} at {x} before Monday.",
        "{name}'s work email is {x}.",
        "Send the form to {x}; the contact person is {name}.",
    ),
}
_PHONE_TEXTS = {
    "zh": (
        "请拨打{x}联系{name}。",
        "{name}的手机号是{x}，晚上可以打。",
        "预约电话：{x}，联系人{name}。",
    ),
    "en": (
        "Call {name} at {x} after six.",
        "{name}'s phone number is {x}.",
        "To book a table, ring {x} and ask for {name}.",
    ),
}
_DATE_TEXTS = {
    "zh": ("会议定在{x}上午举行。", "{name}的生日是{x}。", "项目将于{x}结束。"),
    "en": (
        "The meeting is on {x} in the morning.",
        "{name} was born on {x}.",
        "The project ends on {x}.",
    ),
}


def phone(rng: random.Random, lang: str) -> str:
    if lang == "zh":
        return "1" + rng.choice("35789") + "".join(rng.choice("0123456789") for _ in range(9))
    return f"{rng.randint(200, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"


def date(rng: random.Random, lang: str) -> tuple[str, str]:
    """(the date as written in `lang`, the same date as YYYY-MM-DD)."""
    y, m, d = rng.randint(2018, 2030), rng.randint(1, 12), rng.randint(1, 28)
    written = f"{y}年{m}月{d}日" if lang == "zh" else f"{MONTHS[m - 1]} {d}, {y}"
    return written, f"{y:04d}-{m:02d}-{d:02d}"


def _extract(
    texts: dict[str, tuple[str, ...]],
    name: str,
    value: str,
    answer: str,
    rng: random.Random,
    lang: str,
) -> Sample:
    text = rng.choice(texts[lang]).format(name=name, x=value)
    return Sample({"text": text}, answer, C.exact(answer, ignore_case=True))


def _extract_email(rng: random.Random, lang: str, pool: Pool) -> Sample:
    name = pool.one(rng, "name", lang)
    address = pool.email(rng, name if lang == "en" else None)
    return _extract(_EMAIL_TEXTS, name, address, address, rng, lang)


def _extract_phone(rng: random.Random, lang: str, pool: Pool) -> Sample:
    number = phone(rng, lang)
    return _extract(_PHONE_TEXTS, pool.one(rng, "name", lang), number, number, rng, lang)


def _extract_date(rng: random.Random, lang: str, pool: Pool) -> Sample:
    written, iso = date(rng, lang)
    return _extract(_DATE_TEXTS, pool.one(rng, "name", lang), written, iso, rng, lang)


_PROFILE_TEXTS = {
    "zh": ("{name}住在{city}，今年{age}岁。", "{name}，{age}岁，来自{city}。"),
    "en": ("{name} lives in {city} and is {age} years old.", "{name}, age {age}, from {city}."),
}
PROFILE_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "city": {"type": "string"},
        "age": {"type": "integer"},
    },
    "required": ["name", "city", "age"],
    "additionalProperties": False,
}


def profile(rng: random.Random, lang: str, pool: Pool) -> tuple[str, dict]:
    """(a sentence about a person, the same facts as a JSON-ready dict)."""
    fields = {
        "name": pool.one(rng, "name", lang),
        "city": pool.one(rng, "city", lang),
        "age": rng.randint(18, 80),
    }
    return rng.choice(_PROFILE_TEXTS[lang]).format(**fields), fields


def _to_json(rng: random.Random, lang: str, pool: Pool) -> Sample:
    text, fields = profile(rng, lang, pool)
    answer = json.dumps(fields, ensure_ascii=False)
    return Sample({"text": text}, answer, C.json_schema(PROFILE_SCHEMA, equals=fields))


def as_list(items: list[str], numbered: bool) -> str:
    return "\n".join(f"{i}. {x}" if numbered else f"- {x}" for i, x in enumerate(items, 1))


def _list(numbered: bool):
    def make(rng: random.Random, lang: str, pool: Pool) -> Sample:
        items = pool.some(rng, "item", lang, rng.randint(3, 5))
        checker = C.regex(list_pattern(items, numbered), fullmatch=True, ignore_case=True)
        return Sample({"items": join_items(items, lang)}, as_list(items, numbered), checker)

    return make


def _uppercase(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", "en")
    return Sample({"word": word}, word.upper(), C.exact(word.upper()))


def _lowercase(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", "en")
    shown = word.upper() if rng.random() < 0.5 else word.capitalize()
    return Sample({"word": shown}, word, C.exact(word))


def _reverse_word(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", lang)
    return Sample({"word": word}, word[::-1], C.exact(word[::-1]))


def _first_letter(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", lang)
    return Sample({"word": word}, word[0], C.exact(word[0], ignore_case=True))


SKILL_FAMILIES = (
    family("add", "skills", "Add two numbers; answer with the number.", _add),
    family(
        "subtract", "skills", "Subtract one number from another; answer with the number.", _subtract
    ),
    family("multiply", "skills", "Multiply two small numbers; answer with the number.", _multiply),
    family("parity", "skills", "Say whether a number is odd or even.", _parity),
    family(
        "count_chars",
        "skills",
        "Count the letters of an English word, or the characters of a Chinese word.",
        _count_chars,
    ),
    family(
        "count_items", "skills", "Count the items of a list given in the instruction.", _count_items
    ),
    family(
        "sort_numbers", "skills", "Sort numbers in ascending or descending order.", _sort_numbers
    ),
    family("sort_words", "skills", "Sort English words alphabetically.", _sort_words),
    family("extract_email", "skills", "Extract the email address from a sentence.", _extract_email),
    family(
        "extract_phone",
        "skills",
        "Extract the phone number from a sentence, as written.",
        _extract_phone,
    ),
    family(
        "extract_date",
        "skills",
        "Extract the date from a sentence and write it as YYYY-MM-DD.",
        _extract_date,
    ),
    family(
        "to_json",
        "skills",
        "Convert a sentence about a person to a JSON object with name, city and age.",
        _to_json,
    ),
    family(
        "bullet_list",
        "skills",
        "Rewrite the items of a sentence as a bulleted list, one per line.",
        _list(numbered=False),
    ),
    family(
        "numbered_list",
        "skills",
        "Rewrite the items of a sentence as a numbered list, one per line.",
        _list(numbered=True),
    ),
    family("uppercase", "skills", "Write an English word in capital letters.", _uppercase),
    family("lowercase", "skills", "Write an English word in small letters.", _lowercase),
    family(
        "reverse_word",
        "skills",
        "Write a word backwards (letters in English, characters in Chinese).",
        _reverse_word,
    ),
    family(
        "first_letter",
        "skills",
        "Give the first letter of an English word, or the first character of a Chinese word.",
        _first_letter,
    ),
)
