"""A writing assistant: drafts under checkable constraints, improvement suggestions tied to spans
of the original, and continuation in the same style.

    d = draft(llm, "spring in the city", ["parks", "rain"], length=(80, 150), keywords=["cherry"])
    d.text, d.passed, d.attempts      # regenerated (up to max_attempts) until the checks pass
    imp = improve(llm, text)          # imp.revised, imp.suggestions[i].start / .end / .suggestion
    more = continue_text(llm, story, words=120)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from instructgen.apps.common import count_units, detect_lang, extract_json
from instructgen.errors import ConfigError

LANGUAGES = ("en", "zh")


@dataclass
class Constraints:
    """What a text must satisfy: length in units (count_units) within [min, max], a language,
    and every keyword present (case-insensitive)."""

    min_length: int | None = None
    max_length: int | None = None
    language: str | None = None
    keywords: list[str] = field(default_factory=list)

    def failures(self, text: str) -> list[str]:
        """Why `text` fails, one short reason per broken constraint (empty when it passes)."""
        out = []
        n = count_units(text)
        unit = "characters" if self.language == "zh" else "words"
        if self.min_length is not None and n < self.min_length:
            out.append(f"too short: {n} {unit}, need at least {self.min_length}")
        if self.max_length is not None and n > self.max_length:
            out.append(f"too long: {n} {unit}, at most {self.max_length}")
        if self.language and text.strip() and detect_lang(text) != self.language:
            out.append(f"not written in {_LANGUAGE_NAMES[self.language]}")
        missing = [k for k in self.keywords if k.casefold() not in text.casefold()]
        if missing:
            out.append("missing keywords: " + ", ".join(missing))
        return out


@dataclass
class Draft:
    """A generated text, whether it met its constraints, and every attempt's failures."""

    text: str
    passed: bool
    attempts: int
    failures: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Suggestion:
    """One numbered suggestion about original[start:end]."""

    n: int
    start: int
    end: int
    original: str
    suggestion: str
    source: str  # "model" | "rule"


@dataclass
class Improvement:
    revised: str
    suggestions: list[Suggestion]
    dropped: int  # model suggestions whose quote is not in the original

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def numbered(self) -> str:
        """The suggestions as a numbered list with character offsets."""
        return "\n".join(
            f'{s.n}. [{s.start}:{s.end}] "{s.original}" — {s.suggestion}' for s in self.suggestions
        )


_LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}


def parse_length(
    length: int | Sequence[int] | None, *, slack: float = 0.25
) -> tuple[int | None, int | None]:
    """A target n becomes the range [n·(1 − slack), n·(1 + slack)]; (lo, hi) is kept as given."""
    if length is None:
        return None, None
    if isinstance(length, int):
        if length <= 0:
            raise ConfigError("length must be positive", field="length")
        return max(1, round(length * (1 - slack))), round(length * (1 + slack))
    lo, hi = (int(v) for v in length)
    if not 0 < lo <= hi:
        raise ConfigError(f"length range {lo}-{hi} must satisfy 0 < min <= max", field="length")
    return lo, hi


def draft(
    llm: Any,
    topic: str,
    outline: Sequence[str] = (),
    *,
    length: int | Sequence[int] | None = None,
    tone: str = "neutral",
    language: str = "en",
    keywords: Sequence[str] = (),
    max_attempts: int = 3,
    seed: int = 0,
    temperature: float = 0.8,
) -> Draft:
    """A draft on `topic` following `outline`, regenerated until its constraints pass."""
    _check_language(language)
    lo, hi = parse_length(length)
    rules = Constraints(lo, hi, language, [k for k in keywords if k.strip()])
    if language == "zh":
        prompt = f"请用中文写一篇关于“{topic}”的文章，语气{tone}。"
        if hi:
            prompt += f"字数在{lo}到{hi}字之间。"
        if outline:
            prompt += "按照以下提纲：\n" + "\n".join(f"{i}. {o}" for i, o in enumerate(outline, 1))
        if rules.keywords:
            prompt += "\n必须使用这些词：" + "、".join(rules.keywords) + "。"
        prompt += "\n只输出正文。"
    else:
        prompt = f'Write a {tone} text in English about "{topic}".'
        if hi:
            prompt += f" Length: {lo} to {hi} words."
        if outline:
            prompt += " Follow this outline:\n" + "\n".join(
                f"{i}. {o}" for i, o in enumerate(outline, 1)
            )
        if rules.keywords:
            prompt += "\nUse these words: " + ", ".join(rules.keywords) + "."
        prompt += "\nWrite only the text."
    return generate_checked(
        llm, [{"role": "user", "content": prompt}], rules, max_attempts, seed, temperature
    )


def continue_text(
    llm: Any,
    text: str,
    *,
    words: int = 100,
    max_attempts: int = 2,
    seed: int = 0,
    temperature: float = 0.8,
) -> Draft:
    """About `words` more units of `text` in its style and language (checked: language, length)."""
    if not text.strip():
        raise ConfigError("the text to continue is empty", field="text")
    language = detect_lang(text)
    lo, hi = parse_length(words, slack=0.5)
    if language == "zh":
        prompt = f"请用相同的风格和语气续写下面的文字，大约{words}字，只输出续写部分。\n\n{text}"
    else:
        prompt = (
            f"Continue the following text in the same style, voice and language, with about "
            f"{words} more words. Write only the continuation.\n\n{text}"
        )
    rules = Constraints(lo, hi, language)
    return generate_checked(
        llm, [{"role": "user", "content": prompt}], rules, max_attempts, seed, temperature
    )


def generate_checked(
    llm: Any,
    messages: list[dict[str, str]],
    rules: Constraints,
    max_attempts: int,
    seed: int,
    temperature: float,
) -> Draft:
    """Generate, check, and on failure ask again with the reasons (seed + attempt each time);
    the first passing text wins, else the last attempt is returned with passed=False."""
    if max_attempts < 1:
        raise ConfigError("max_attempts must be at least 1", field="max_attempts")
    per_unit = 3 if rules.language == "zh" else 2
    max_tokens = (rules.max_length or 256) * per_unit + 32
    history: list[dict[str, Any]] = []
    conversation = list(messages)
    text, failures = "", []
    for attempt in range(1, max_attempts + 1):
        text = llm.chat(
            conversation,
            max_tokens=llm.budget(conversation, max_tokens),
            temperature=temperature,
            seed=seed + attempt,
        ).text.strip()
        failures = rules.failures(text) if text else ["empty output"]
        history.append({"attempt": attempt, "failures": failures})
        if not failures:
            break
        retry = (
            "上面的文字不符合要求：" + "；".join(failures) + "。请重写。"
            if rules.language == "zh"
            else "That text does not meet the requirements: "
            + "; ".join(failures)
            + ". Rewrite it."
        )
        conversation = [
            *messages,
            {"role": "assistant", "content": text},
            {"role": "user", "content": retry},
        ]
    return Draft(text, not failures, len(history), failures, history)


def improve(llm: Any, text: str, *, max_suggestions: int = 8) -> Improvement:
    """A revised text plus numbered suggestions, each tied to a span text[start:end] that exists.

    The model is asked for JSON {"revised", "suggestions": [{"quote", "suggestion"}]}; quotes not
    found in the original are dropped. Rule checks (repeated words, doubled spaces, very long
    sentences) add suggestions of their own.
    """
    if not text.strip():
        raise ConfigError("the text to improve is empty", field="text")
    zh = detect_lang(text) == "zh"
    ask = (
        "请修改下面的文字，并给出修改建议。只输出一个 JSON 对象："
        '{"revised": "修改后的全文", "suggestions": [{"quote": "原文中的一段原话", "suggestion": "建议"}]}'
        if zh
        else "Improve the text below and list concrete suggestions. Reply with one JSON object only: "
        '{"revised": "the full revised text", "suggestions": [{"quote": "an exact span of the '
        'original", "suggestion": "what to change"}]}'
    )
    messages = [{"role": "user", "content": f"{ask}\n\n{text}"}]
    answer = llm.chat(
        messages, max_tokens=llm.budget(messages, count_units(text) * 3 + 256), temperature=0.0
    ).text
    data = extract_json(answer)
    if not isinstance(data, dict):
        data = {"revised": answer.strip()}
    revised = data.get("revised") if isinstance(data.get("revised"), str) else ""
    found, dropped = _model_spans(text, data.get("suggestions"))
    spans = sorted([*found, *rule_suggestions(text)], key=lambda s: (s[0], s[1]))[:max_suggestions]
    suggestions = [
        Suggestion(i, start, end, text[start:end], note, source)
        for i, (start, end, note, source) in enumerate(spans, 1)
    ]
    return Improvement(revised.strip() or text, suggestions, dropped)


def _model_spans(text: str, items: Any) -> tuple[list[tuple[int, int, str, str]], int]:
    spans, dropped = [], 0
    used: dict[str, int] = {}
    for item in items if isinstance(items, list) else []:
        quote = item.get("quote") if isinstance(item, dict) else None
        note = item.get("suggestion") if isinstance(item, dict) else None
        if not isinstance(quote, str) or not quote.strip() or not isinstance(note, str):
            dropped += 1
            continue
        start = text.find(quote, used.get(quote, 0))
        if start < 0:
            start = text.find(quote)
        if start < 0:
            dropped += 1
            continue
        used[quote] = start + len(quote)
        spans.append((start, start + len(quote), note.strip(), "model"))
    return spans, dropped


_REPEATED = re.compile(r"\b(\w+)(\s+\1\b)+", re.I)
_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]?")


def rule_suggestions(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, suggestion, "rule") for repeated words, doubled spaces and long sentences."""
    out = [
        (m.start(), m.end(), f'repeated word "{m.group(1)}"', "rule")
        for m in _REPEATED.finditer(text)
    ]
    out += [(m.start(), m.end(), "use a single space", "rule") for m in _SPACES.finditer(text)]
    for m in _SENTENCE.finditer(text):
        sentence = m.group().strip()
        if count_units(sentence) > (60 if detect_lang(sentence) == "zh" else 40):
            start = m.start() + m.group().index(sentence)
            out.append((start, start + len(sentence), "split this long sentence", "rule"))
    return out


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ConfigError(
            f"unknown language {language!r}; choose {', '.join(LANGUAGES)}", field="language"
        )
