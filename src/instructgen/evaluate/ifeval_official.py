"""The 25 instruction checks of IFEval as Google's checker judges them (instruction_following_eval,
the copy lm-evaluation-harness runs): the same counting, splitting, case and language rules,
written here from its documented behaviour, so that our scores can stand beside published ones.

Where the official checker needs data that cannot be installed offline, the nearest equivalent
runs and is named: sentences are split by nltk's Punkt algorithm with common English
abbreviations (the trained `punkt` English model is a download), and langdetect runs with a fixed
seed (the official checker leaves it unseeded, so its own verdicts can flip between runs on
ambiguous text). Each check is `check(response, **kwargs) -> bool`; kwargs keep IFEval's names.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

from instructgen.errors import ConfigError

Check = Callable[..., bool]
OFFICIAL: dict[str, Check] = {}
RELATIONS = ("less than", "at least")  # n < k, n >= k: the official checker knows only these
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
# what Punkt's trained English model knows as abbreviations, in its lowercase, dotless form
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st jr sr vs etc e.g i.e u.s u.k inc ltd co corp no vol fig jan feb mar
    apr jun jul aug sep sept oct nov dec mt ft p.m a.m approx dept est gen gov rep sen capt lt
    col sgt""".split()
)


def registrar(table: dict[str, Check]) -> Callable[[str], Callable[[Check], Check]]:
    """A decorator factory that files checks in `table` under their instruction id."""

    def register(instruction_id: str) -> Callable[[Check], Check]:
        def add(fn: Check) -> Check:
            table[instruction_id] = fn
            return fn

        return add

    return register


_register = registrar(OFFICIAL)


def compare(n: int, relation: str, target: int) -> bool:
    """ "less than": n < k; "at least": n ≥ k."""
    if relation not in RELATIONS:
        raise ConfigError(
            f"unknown relation {relation!r}; the official checker knows {', '.join(RELATIONS)}",
            field="relation",
        )
    return n < int(target) if relation == "less than" else n >= int(target)


# ---------------------------------------------------------------- counting


def count_words(text: str) -> int:
    r"""Runs of \w characters (nltk's RegexpTokenizer(r"\w+"))."""
    return len(re.findall(r"\w+", text))


@lru_cache(maxsize=1)
def _punkt():
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    params = PunktParameters()
    params.abbrev_types = set(ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


def sentences(text: str) -> list[str]:
    """Punkt sentences (the official checker's `count_sentences`)."""
    return _punkt().tokenize(text)


def word_tokens(text: str) -> list[str]:
    """nltk.word_tokenize: Treebank-style words of each Punkt sentence."""
    from nltk.tokenize.destructive import NLTKWordTokenizer

    tokenizer = NLTKWordTokenizer()
    return [w for s in sentences(text) for w in tokenizer.tokenize(s)]


def detect_language(text: str) -> str | None:
    """langdetect's ISO 639-1 code ("en", "fr", "zh-cn", ...), seeded; None when it cannot tell."""
    import langdetect
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:
        return None


# ---------------------------------------------------------------- keywords


@_register("keywords:existence")
def keywords_existence(response: str, *, keywords: Sequence[str]) -> bool:
    """Each keyword, read as a regular expression, found anywhere (case-insensitive)."""
    return all(re.search(k, response, flags=re.IGNORECASE) for k in keywords)


@_register("keywords:frequency")
def keyword_frequency(response: str, *, keyword: str, frequency: int, relation: str) -> bool:
    """#matches of the keyword (a regular expression, case-insensitive) <relation> frequency."""
    found = re.findall(keyword.strip(), response, flags=re.IGNORECASE)
    return compare(len(found), relation, frequency)


@_register("keywords:forbidden_words")
def forbidden_words(response: str, *, forbidden_words: Sequence[str]) -> bool:
    r"""No forbidden word between \b word boundaries (case-insensitive)."""
    return not any(
        re.search(r"\b" + w + r"\b", response, flags=re.IGNORECASE) for w in forbidden_words
    )


@_register("keywords:letter_frequency")
def letter_frequency(response: str, *, letter: str, let_frequency: int, let_relation: str) -> bool:
    """#occurrences of the letter in the lowercased response <let_relation> let_frequency."""
    return compare(Counter(response.lower())[letter.strip().lower()], let_relation, let_frequency)


# ---------------------------------------------------------------- language and case


@_register("language:response_language")
def response_language(response: str, *, language: str) -> bool:
    """langdetect names `language` (any code it knows); followed when it cannot tell."""
    detected = detect_language(response)
    return detected is None or detected == language


@_register("change_case:english_capital")
def english_capital(response: str) -> bool:
    """All cased characters upper case, and langdetect says English (or cannot tell)."""
    return response.isupper() and detect_language(response) in (None, "en")


@_register("change_case:english_lowercase")
def english_lowercase(response: str) -> bool:
    """All cased characters lower case, and langdetect says English (or cannot tell)."""
    return response.islower() and detect_language(response) in (None, "en")


@_register("change_case:capital_word_frequency")
def capital_word_frequency(response: str, *, capital_frequency: int, capital_relation: str) -> bool:
    """#word tokens in all capitals <capital_relation> capital_frequency."""
    capitals = sum(1 for w in word_tokens(response) if w.isupper())
    return compare(capitals, capital_relation, capital_frequency)


# ---------------------------------------------------------------- length


@_register("length_constraints:number_words")
def number_words(response: str, *, num_words: int, relation: str) -> bool:
    return compare(count_words(response), relation, num_words)


@_register("length_constraints:number_sentences")
def number_sentences(response: str, *, num_sentences: int, relation: str) -> bool:
    return compare(len(sentences(response)), relation, num_sentences)


@_register("length_constraints:number_paragraphs")
def number_paragraphs(response: str, *, num_paragraphs: int) -> bool:
    """Pieces between *** dividers; an empty piece may only be the first or the last."""
    pieces = re.split(r"\s?\*\*\*\s?", response)
    count = len(pieces)
    for i, piece in enumerate(pieces):
        if not piece.strip():
            if i not in (0, len(pieces) - 1):
                return False
            count -= 1
    return count == int(num_paragraphs)


@_register("length_constraints:nth_paragraph_first_word")
def nth_paragraph_first_word(
    response: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str
) -> bool:
    """Exactly num_paragraphs non-empty pieces between blank lines ("\\n\\n"), and the nth of
    them starts with first_word (lowercased, cut at . , ? ! ' ")."""
    pieces = response.split("\n\n")
    count = sum(1 for p in pieces if p.strip())
    nth = int(nth_paragraph)
    if nth > count or not pieces[nth - 1].strip():
        return False
    word = pieces[nth - 1].strip().split()[0].strip().lstrip("'").lstrip('"')
    head = re.match(r"[^.,?!'\"]*", word).group().lower()
    return count == int(num_paragraphs) and head == first_word.lower()


# ---------------------------------------------------------------- content and format


@_register("detectable_content:number_placeholders")
def number_placeholders(response: str, *, num_placeholders: int) -> bool:
    """At least num_placeholders [bracketed] spans (shortest matches, within a line)."""
    return len(re.findall(r"\[.*?\]", response)) >= int(num_placeholders)


@_register("detectable_content:postscript")
def postscript(response: str, *, postscript_marker: str) -> bool:
    """A line starts with the marker: P.S. and P.P.S with optional spaces between the letters,
    any other marker as a regular expression (all case-insensitive)."""
    marker = postscript_marker.strip()
    pattern = {"P.P.S": r"\s*p\.\s?p\.\s?s.*$", "P.S.": r"\s*p\.\s?s\..*$"}.get(
        marker, r"\s*" + marker.lower() + r".*$"
    )
    return bool(re.findall(pattern, response.lower(), flags=re.MULTILINE))


@_register("detectable_format:number_bullet_lists")
def number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    """Exactly num_bullets lines that start with "*" (not "**") or "-"."""
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == int(num_bullets)


@_register("detectable_format:constrained_response")
def constrained_response(response: str) -> bool:
    """One of "My answer is yes.", "... no.", "... maybe." appears."""
    return any(option in response.strip() for option in CONSTRAINED_RESPONSES)


@_register("detectable_format:number_highlighted_sections")
def number_highlighted_sections(response: str, *, num_highlights: int) -> bool:
    """*span* and **span** with text inside, both counted, at least num_highlights."""
    singles = [h for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip()]
    doubles = [
        h
        for h in re.findall(r"\*\*[^\n\*]*\*\*", response)
        if h.removeprefix("**").removesuffix("**").strip()
    ]
    return len(singles) + len(doubles) >= int(num_highlights)


@_register("detectable_format:multiple_sections")
def multiple_sections(response: str, *, section_spliter: str, num_sections: int) -> bool:
    """At least num_sections markers "<spliter> N" (the spliter read as a regular expression)."""
    parts = re.split(r"\s?" + section_spliter.strip() + r"\s?\d+\s?", response)
    return len(parts) - 1 >= int(num_sections)


@_register("detectable_format:json_format")
def json_format(response: str) -> bool:
    """The response, without a ```json / ```Json / ```JSON / ``` fence, parses as JSON."""
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    try:
        json.loads(text.removesuffix("```").strip())
    except ValueError:
        return False
    return True


@_register("detectable_format:title")
def title(response: str) -> bool:
    """A <<title>> on one line with text inside."""
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


# ---------------------------------------------------------------- combinations, start and end


@_register("combination:two_responses")
def two_responses(response: str) -> bool:
    """Two different non-empty answers separated by ******; empty pieces only at the ends."""
    pieces = response.split("******")
    kept = []
    for i, piece in enumerate(pieces):
        if piece.strip():
            kept.append(piece.strip())
        elif i not in (0, len(pieces) - 1):
            return False
    return len(kept) == 2 and kept[0] != kept[1]


@_register("combination:repeat_prompt")
def repeat_prompt(response: str, *, prompt_to_repeat: str) -> bool:
    """The response starts with the prompt (case-insensitive, outer whitespace ignored)."""
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


@_register("startend:end_checker")
def end_checker(response: str, *, end_phrase: str) -> bool:
    """Ends with end_phrase (case-insensitive), after stripping whitespace and straight quotes."""
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


@_register("startend:quotation")
def quotation(response: str) -> bool:
    """Wrapped in straight double quotes (“curly” ones do not count)."""
    text = response.strip()
    return len(text) > 1 and text[0] == '"' and text[-1] == '"'


@_register("punctuation:no_comma")
def no_comma(response: str) -> bool:
    """No ASCII comma."""
    return "," not in response
