"""Verifiable instruction checks in the style of IFEval (Zhou et al. 2023), scored as Google's
checker scores them, plus a bilingual rule set for Chinese and English.

Two rule sets, chosen per call (`rules=`) or per example (a `"rules"` field):

- "official" (the default): ifeval_official.py, Google's judgements for all 25 instruction ids,
  so that an IFEval input file gets the numbers people publish;
- "bilingual": the official checks with our own judgements where Chinese needs them (the
  built-in prompt set, load_prompts, uses it): each Chinese character counts as one word (字数);
  a sentence ends at . ! ? (followed by whitespace or the end) or 。！？; paragraphs are separated
  by blank lines or a *** line; keywords match whole words; “curly” and 「corner」 quotes wrap a
  quotation; the Chinese comma counts as a comma; language is told by script (zh/en); relations
  also include "at most" and "more than".

Each check is `check(response, **kwargs) -> bool`, registered under an IFEval instruction id (the
kwargs keep IFEval's names). `score` reports prompt-level and instruction-level accuracy, strict
and loose, in percent (0–100, like instructgen.evaluate.metrics).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from instructgen.errors import ConfigError, DataError, UserError
from instructgen.evaluate.ifeval_official import OFFICIAL, registrar
from instructgen.evaluate.ifeval_official import RELATIONS as OFFICIAL_RELATIONS
from instructgen.evaluate.text import char_words, detect_lang

Check = Callable[..., bool]
BILINGUAL: dict[str, Check] = {}  # our judgements; the other ids fall back to the official ones
RELATIONS: dict[str, Callable[[int, int], bool]] = {
    "at least": lambda n, k: n >= k,
    "at most": lambda n, k: n <= k,
    "less than": lambda n, k: n < k,
    "more than": lambda n, k: n > k,
}


_register = registrar(BILINGUAL)


def _compare(n: int, relation: str, target: int) -> bool:
    """relation ∈ {at least: n ≥ k, at most: n ≤ k, less than: n < k, more than: n > k}."""
    if relation not in RELATIONS:
        raise ConfigError(
            f"unknown relation {relation!r}; expected one of {', '.join(RELATIONS)}",
            field="relation",
        )
    return RELATIONS[relation](n, int(target))


# ---------------------------------------------------------------- counting


def count_words(text: str) -> int:
    """words = #CJK characters + #runs of other letters/digits."""
    return len(char_words(text))


_SENTENCE_END_RE = re.compile(r"[。！？]+|[.!?]+(?=\s|$)")
_WORDLIKE_RE = re.compile(r"[^\W_]")


def count_sentences(text: str) -> int:
    """Pieces between sentence terminators (. ! ? before a space or the end; 。！？) that hold a word."""
    return sum(1 for piece in _SENTENCE_END_RE.split(text) if _WORDLIKE_RE.search(piece))


def split_paragraphs(text: str) -> list[str]:
    """Non-empty blocks separated by a blank line or a line of *** (a markdown divider)."""
    text = re.sub(r"(?m)^[ \t]*\*{3,}[ \t]*$", "", text)
    return [p.strip() for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def count_occurrences(text: str, word: str) -> int:
    """Case-insensitive matches of `word`; an ASCII letter/digit at either end of `word` must not
    touch another one in `text` ("cat" is not in "cats"), CJK words match as substrings."""
    word = word.strip()
    left = r"(?<![A-Za-z0-9])" if re.match(r"[A-Za-z0-9]", word) else ""
    right = r"(?![A-Za-z0-9])" if re.search(r"[A-Za-z0-9]$", word) else ""
    return len(re.findall(left + re.escape(word) + right, text, flags=re.IGNORECASE))


# ---------------------------------------------------------------- the checks


@_register("length_constraints:number_words")
def number_words(response: str, *, num_words: int, relation: str = "at least") -> bool:
    """count_words(response) <relation> num_words."""
    return _compare(count_words(response), relation, num_words)


@_register("length_constraints:number_sentences")
def number_sentences(response: str, *, num_sentences: int, relation: str = "at least") -> bool:
    """count_sentences(response) <relation> num_sentences."""
    return _compare(count_sentences(response), relation, num_sentences)


@_register("length_constraints:number_paragraphs")
def number_paragraphs(response: str, *, num_paragraphs: int) -> bool:
    """Exactly num_paragraphs paragraphs."""
    return len(split_paragraphs(response)) == int(num_paragraphs)


@_register("keywords:existence")
def keywords_existence(response: str, *, keywords: Sequence[str]) -> bool:
    """Every keyword occurs at least once."""
    return all(count_occurrences(response, k) > 0 for k in keywords)


@_register("keywords:forbidden_words")
def forbidden_words(response: str, *, forbidden_words: Sequence[str]) -> bool:
    """No forbidden word occurs."""
    return not any(count_occurrences(response, w) > 0 for w in forbidden_words)


@_register("keywords:frequency")
def keyword_frequency(
    response: str, *, keyword: str, frequency: int, relation: str = "at least"
) -> bool:
    """count_occurrences(response, keyword) <relation> frequency."""
    return _compare(count_occurrences(response, keyword), relation, frequency)


@_register("detectable_format:json_format")
def json_format(response: str) -> bool:
    """The whole response (inside an optional ```json fence) parses as JSON."""
    text = re.sub(r"^```(?:json)?", "", response.strip(), flags=re.IGNORECASE)
    text = text.removesuffix("```").strip()
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


_BULLET_RE = re.compile(r"(?m)^[ \t]*[*+-][ \t]+\S")


@_register("detectable_format:number_bullet_lists")
def number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    """Exactly num_bullets markdown bullets (lines starting with *, - or + and a space)."""
    return len(_BULLET_RE.findall(response)) == int(num_bullets)


@_register("detectable_format:title")
def title(response: str) -> bool:
    """A title in double angular brackets, such as <<poem of joy>>."""
    return any(t.strip() for t in re.findall(r"<<([^\n<>]+)>>", response))


_HIGHLIGHT_RE = re.compile(r"\*\*([^\n*]+)\*\*|\*([^\n*]+)\*")


@_register("detectable_format:number_highlighted_sections")
def number_highlighted_sections(response: str, *, num_highlights: int) -> bool:
    """At least num_highlights sections marked *like this* or **like this**."""
    found = [a or b for a, b in _HIGHLIGHT_RE.findall(response)]
    return sum(1 for h in found if h.strip()) >= int(num_highlights)


@_register("change_case:english_lowercase")
def english_lowercase(response: str) -> bool:
    """Letters present, none upper case (str.islower)."""
    return response.islower()


@_register("change_case:english_capital")
def english_capital(response: str) -> bool:
    """Letters present, none lower case (str.isupper)."""
    return response.isupper()


@_register("startend:end_checker")
def end_checker(response: str, *, end_phrase: str) -> bool:
    """The response ends with end_phrase (case-insensitive, surrounding whitespace ignored)."""
    return response.strip().lower().endswith(end_phrase.strip().lower())


_QUOTES = {('"', '"'), ("“", "”"), ("「", "」")}


@_register("startend:quotation")
def quotation(response: str) -> bool:
    """The whole response is wrapped in double quotation marks ("…", “…” or 「…」)."""
    text = response.strip()
    return len(text) > 1 and (text[0], text[-1]) in _QUOTES


@_register("punctuation:no_comma")
def no_comma(response: str) -> bool:
    """No comma: neither ',' nor the Chinese '，'."""
    return "," not in response and "，" not in response


@_register("language:response_language")
def response_language(response: str, *, language: str) -> bool:
    """detect_lang(response) == language ('zh' or 'en': by the share of CJK characters)."""
    return detect_lang(response) == language


@_register("detectable_content:number_placeholders")
def number_placeholders(response: str, *, num_placeholders: int) -> bool:
    """At least num_placeholders placeholders in square brackets, such as [address]."""
    return len(re.findall(r"\[[^\[\]\n]+\]", response)) >= int(num_placeholders)


@_register("detectable_content:postscript")
def postscript(response: str, *, postscript_marker: str = "P.S.") -> bool:
    """A line starts with postscript_marker (case-insensitive), e.g. 'P.S.' or '附言：'."""
    pattern = r"(?m)^\s*" + re.escape(postscript_marker.strip().lower())
    return re.search(pattern, response.lower()) is not None


RULES: dict[str, dict[str, Check]] = {"official": OFFICIAL, "bilingual": {**OFFICIAL, **BILINGUAL}}
CHECKS = RULES["official"]


# ---------------------------------------------------------------- scoring


def loose_variants(response: str) -> list[str]:
    """IFEval's loose variants: the response without its first line, last line, or both, each
    also with every markdown '*' removed (the original is included)."""
    lines = response.split("\n")
    base = [
        response,
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return base + [v.replace("*", "") for v in base]


def checks(rules: str = "official") -> dict[str, Check]:
    """The checks of a rule set, by instruction id."""
    if rules not in RULES:
        raise ConfigError(f"unknown rules {rules!r}; choose {', '.join(RULES)}", field="rules")
    return RULES[rules]


def follows(
    instruction_id: str,
    kwargs: dict[str, Any],
    response: str,
    *,
    loose: bool = False,
    rules: str = "official",
) -> bool:
    """Strict: the check passes on the non-blank response; loose: on any loose variant."""
    check = checks(rules)[instruction_id]
    candidates = loose_variants(response) if loose else [response]
    return any(c.strip() and check(c, **kwargs) for c in candidates)


def _rules(example: dict[str, Any], rules: str, where: str) -> str:
    chosen = example.get("rules", rules)
    if chosen not in RULES:
        raise DataError(
            f"{where}: unknown rules {chosen!r}; choose {', '.join(RULES)}", field="rules"
        )
    return chosen


def _instructions(
    example: dict[str, Any], index: int, rules: str = "official"
) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    """The rules and validated (instruction_id, kwargs) pairs of one example; IFEval's key names
    accepted too. Kwargs without a value are dropped as the official checker drops them (null,
    0, "" and [] there; only null under the bilingual rules)."""
    where = (
        f"example {index + 1} ({example.get('key', 'no key')})"
        if isinstance(example, dict)
        else f"example {index + 1}"
    )
    if not isinstance(example, dict):
        raise DataError(f"{where}: expected an object")
    ids = example.get("instruction_ids", example.get("instruction_id_list"))
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise DataError(
            f"{where}: expected a non-empty list of instruction ids", field="instruction_ids"
        )
    kwargs = example.get("kwargs", [{}] * len(ids))
    if (
        not isinstance(kwargs, list)
        or len(kwargs) != len(ids)
        or not all(isinstance(k, dict) for k in kwargs)
    ):
        raise DataError(f"{where}: expected one kwargs object per instruction id", field="kwargs")
    rules = _rules(example, rules, where)
    table = checks(rules)
    relations = OFFICIAL_RELATIONS if rules == "official" else tuple(RELATIONS)
    pairs = []
    for iid, kw in zip(ids, kwargs):
        if iid not in table:
            raise DataError(
                f"{where}: unknown instruction id {iid!r}; supported: {', '.join(sorted(table))}",
                field="instruction_ids",
            )
        if rules == "official":
            kw = {k: v for k, v in kw.items() if v}
        else:
            kw = {k: v for k, v in kw.items() if v is not None}
        try:
            inspect.signature(table[iid]).bind("", **kw)
        except TypeError as e:
            raise DataError(f"{where}: bad kwargs for {iid}: {e}", field="kwargs") from None
        for key in ("relation", "let_relation", "capital_relation"):
            if kw.get(key) is not None and kw[key] not in relations:
                raise DataError(
                    f"{where}: unknown {key} {kw[key]!r} for {iid} under the {rules} rules "
                    f"({', '.join(relations)})",
                    field="kwargs",
                )
        pairs.append((iid, kw))
    return rules, pairs


def evaluate_response(
    example: dict[str, Any], response: str, *, index: int = 0, rules: str = "official"
) -> dict[str, Any]:
    """Per-instruction strict and loose results of one response to one example."""
    rules, pairs = _instructions(example, index, rules)
    return {
        "key": example.get("key", index),
        "rules": rules,
        "instruction_ids": [iid for iid, _ in pairs],
        "strict": [follows(iid, kw, response, rules=rules) for iid, kw in pairs],
        "loose": [follows(iid, kw, response, loose=True, rules=rules) for iid, kw in pairs],
    }


def _percent(hits: int, total: int) -> float:
    return 100.0 * hits / total if total else 0.0


def score(
    examples: Sequence[dict[str, Any]], responses: Sequence[str], *, rules: str = "official"
) -> dict[str, Any]:
    """Prompt-level accuracy = % of prompts whose every instruction is followed; instruction-level
    accuracy = % of all instructions followed; each strict and loose, and per instruction id.
    `rules` applies to examples without a "rules" field of their own."""
    if len(examples) != len(responses):
        raise UserError(f"{len(examples)} examples but {len(responses)} responses")
    if not examples:
        raise UserError("no examples to score")
    checks(rules)
    results = [
        evaluate_response(ex, str(resp), index=i, rules=rules)
        for i, (ex, resp) in enumerate(zip(examples, responses))
    ]
    out: dict[str, Any] = {
        "num_prompts": len(results),
        "num_instructions": sum(len(r["strict"]) for r in results),
    }
    by_id: dict[str, dict[str, int]] = {}
    for mode in ("strict", "loose"):
        out[f"prompt_level_{mode}"] = _percent(sum(all(r[mode]) for r in results), len(results))
        out[f"instruction_level_{mode}"] = _percent(
            sum(sum(r[mode]) for r in results), out["num_instructions"]
        )
    for r in results:
        for iid, s, lo in zip(r["instruction_ids"], r["strict"], r["loose"]):
            tally = by_id.setdefault(iid, {"count": 0, "strict": 0, "loose": 0})
            tally["count"] += 1
            tally["strict"] += s
            tally["loose"] += lo
    out["by_instruction"] = {
        iid: {
            "count": t["count"],
            "strict": _percent(t["strict"], t["count"]),
            "loose": _percent(t["loose"], t["count"]),
        }
        for iid, t in sorted(by_id.items())
    }
    out["results"] = results
    return out


def load_prompts(lang: str | None = None) -> list[dict[str, Any]]:
    """The built-in bilingual prompt set: dicts with key, prompt, lang, instruction_ids, kwargs."""
    from instructgen.evaluate.ifeval_prompts import build_prompts

    if lang not in (None, "zh", "en"):
        raise ConfigError(f"unknown language {lang!r}; expected zh or en", field="lang")
    return [p for p in build_prompts() if lang is None or p["lang"] == lang]
