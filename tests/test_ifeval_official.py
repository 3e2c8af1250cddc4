"""IFEval scored as Google's checker scores it: one (instruction, response) case per rule and edge
of its 25 instruction ids, each with the verdict the official checker gives (worked out from its
rules, written by us), the differences from our bilingual rules, and loose scoring."""

from __future__ import annotations

import pytest

from instructgen.errors import DataError
from instructgen.evaluate import ifeval
from instructgen.evaluate.ifeval_official import OFFICIAL

# (instruction id, kwargs, response, the official verdict)
CASES = [
    # keywords:existence — each keyword is a case-insensitive regular-expression search
    ("keywords:existence", {"keywords": ["cat"]}, "I have two cats.", True),
    ("keywords:existence", {"keywords": ["Eco", "bottle"]}, "an eco-friendly BOTTLE", True),
    ("keywords:existence", {"keywords": ["dog", "cat"]}, "just a cat", False),
    # keywords:frequency — regex matches counted; only "less than" and "at least"
    (
        "keywords:frequency",
        {"keyword": "the", "frequency": 3, "relation": "at least"},
        "The theme of the day",
        True,
    ),  # the, (the)me, the
    (
        "keywords:frequency",
        {"keyword": "rain", "frequency": 2, "relation": "less than"},
        "Rain, rain, go away",
        False,
    ),
    (
        "keywords:frequency",
        {"keyword": " sun ", "frequency": 1, "relation": "at least"},
        "sunny",
        True,
    ),  # the keyword is stripped before matching
    # keywords:forbidden_words — \b word boundaries
    ("keywords:forbidden_words", {"forbidden_words": ["cat"]}, "I have two cats.", True),
    ("keywords:forbidden_words", {"forbidden_words": ["cat"]}, "The Cat sat.", False),
    ("keywords:forbidden_words", {"forbidden_words": ["good"]}, "a good_idea", True),  # _ is \w
    # keywords:letter_frequency — Counter over the lowercased response
    (
        "keywords:letter_frequency",
        {"letter": "a", "let_frequency": 3, "let_relation": "at least"},
        "A banana",
        True,
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 1, "let_relation": "less than"},
        "Zebra",
        False,
    ),
    # language:response_language — langdetect, any language it knows
    (
        "language:response_language",
        {"language": "de"},
        "Hallo, wie geht es dir heute? Ich hoffe, alles ist gut.",
        True,
    ),
    (
        "language:response_language",
        {"language": "fr"},
        "Bonjour, comment allez-vous aujourd'hui ? J'espère que tout va bien.",
        True,
    ),
    ("language:response_language", {"language": "kn"}, "ನಮಸ್ಕಾರ, ನೀವು ಹೇಗಿದ್ದೀರಿ?", True),
    (
        "language:response_language",
        {"language": "en"},
        "Bonjour, comment allez-vous aujourd'hui ? J'espère que tout va bien.",
        False,
    ),
    ("language:response_language", {"language": "zh"}, "今天天气很好，我们去公园散步吧。", False),
    ("language:response_language", {"language": "de"}, "12345", True),  # cannot tell: followed
    # length_constraints:number_sentences — Punkt sentences
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "at least"},
        "Dr. Smith went home. He slept! Did he dream?",
        True,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": "less than"},
        "It is 3.5 km away. Go now!",
        False,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": "less than"},
        "One sentence only, with a comma.",
        True,
    ),
    # length_constraints:number_words — runs of \w
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": "at least"},
        "one two three four five",
        True,
    ),
    (
        "length_constraints:number_words",
        {"num_words": 4, "relation": "less than"},
        "snake_case_word counts once",
        True,
    ),  # 3 words: _ joins
    (
        "length_constraints:number_words",
        {"num_words": 3, "relation": "at least"},
        "don't stop",
        True,
    ),  # don, t, stop
    (
        "length_constraints:number_words",
        {"num_words": 2, "relation": "at least"},
        "今天天气很好",
        False,
    ),  # one \w run
    # length_constraints:number_paragraphs — *** dividers only
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n***\nSecond part.",
        True,
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 3},
        "One.\n\nTwo.\n\nThree.",
        False,
    ),  # blank lines are not dividers
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "***\nOne.\n***\nTwo.\n***",
        True,
    ),  # empty pieces at the ends are dropped
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "One.\n***\n***\nTwo.",
        False,
    ),  # an empty piece inside fails
    # length_constraints:nth_paragraph_first_word — paragraphs split on "\n\n"
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Then"},
        "First we went.\n\nThen, we came back.",
        True,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        'First we went.\n\n"Then" we came back.',
        True,
    ),  # quotes stripped
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "then"},
        "First we went.\n\nThen we came back.",
        False,
    ),  # two paragraphs, not three
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        "First we went.\nThen we came back.",
        False,
    ),
    # detectable_content:number_placeholders
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Dear [name], see you at [place].",
        True,
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name].", False),
    ("detectable_content:number_placeholders", {"num_placeholders": 1}, "an empty [] one", True),
    # detectable_content:postscript
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\nP.S. bye", True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\nP. S. bye", True),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\np.p.s. more", True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\nPS bye", False),
    ("detectable_content:postscript", {"postscript_marker": "Note:"}, "text\nnote: x", True),
    # detectable_format:number_bullet_lists — "*" (not "**") or "-" lines; "+" does not count
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n- two", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "+ one\n+ two", False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 1}, "**bold**\n* one", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 1}, "-no space counts", True),
    # detectable_format:constrained_response
    ("detectable_format:constrained_response", {}, "Well... My answer is yes.", True),
    ("detectable_format:constrained_response", {}, "my answer is yes.", False),
    # detectable_format:number_highlighted_sections — *x* and **x** both counted
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "*one* and *two*",
        True,
    ),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 1}, "**bold**", True),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "**bold**", False),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 1},
        "** ** and *\n*",
        False,
    ),
    # detectable_format:multiple_sections
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1\nintro\nSection 2\nbody",
        True,
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "SECTION", "num_sections": 2},
        "Section 1\nintro\nSection 2\nbody",
        False,
    ),  # case-sensitive
    # detectable_format:json_format
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', True),
    ("detectable_format:json_format", {}, "```JSON\n[1, 2]\n```", True),
    ("detectable_format:json_format", {}, 'Here: {"a": 1}', False),
    # detectable_format:title
    ("detectable_format:title", {}, "<<Spring>>\nA poem.", True),
    ("detectable_format:title", {}, "<< >> nothing", False),
    # combination:two_responses
    ("combination:two_responses", {}, "First answer.\n******\nSecond answer.", True),
    ("combination:two_responses", {}, "Same.\n******\nSame.", False),
    ("combination:two_responses", {}, "A\n******\n******\nB", False),  # empty piece inside
    # combination:repeat_prompt
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a haiku."},
        "  write a HAIKU. Snow falls...",
        True,
    ),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a haiku."},
        "Sure! Write a haiku.",
        False,
    ),
    # startend:end_checker — straight quotes around the response are stripped
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        '"Thanks. Any other questions?"',
        True,
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        "Thanks. Any other questions?\nBye.",
        False,
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        "Thanks. any other QUESTIONS?  ",
        True,
    ),
    # change_case:capital_word_frequency — word tokens in all capitals
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "The NASA team met the ARMY.",
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "I SAW THREE BIRDS",
        False,
    ),
    # change_case:english_capital / english_lowercase — case and langdetect's "en"
    ("change_case:english_capital", {}, "THIS IS ALL IN CAPITAL LETTERS AND IN ENGLISH.", True),
    ("change_case:english_capital", {}, "THIS IS MOSTLY Capital", False),
    (
        "change_case:english_lowercase",
        {},
        "this is all in lowercase english letters, nothing else.",
        True,
    ),
    (
        "change_case:english_lowercase",
        {},
        "ceci est une phrase entièrement en minuscules et en français.",
        False,
    ),
    # punctuation:no_comma — the ASCII comma only
    ("punctuation:no_comma", {}, "No commas here.", True),
    ("punctuation:no_comma", {}, "One, two.", False),
    ("punctuation:no_comma", {}, "中文逗号，不算。", True),
    # startend:quotation — straight double quotes only
    ("startend:quotation", {}, '  "Quoted."  ', True),
    ("startend:quotation", {}, "“Curly quotes.”", False),
    ("startend:quotation", {}, '"', False),
]


@pytest.mark.parametrize(
    "iid,kwargs,response,verdict", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_official_verdicts(iid, kwargs, response, verdict):
    assert ifeval.follows(iid, kwargs, response) is verdict


def test_every_official_id_is_covered():
    assert len(OFFICIAL) == 25
    assert {c[0] for c in CASES} == set(OFFICIAL)
    assert len(CASES) >= 60


# where the bilingual rules judge differently: (id, kwargs, response, official, bilingual)
DIFFERENCES = [
    ("keywords:existence", {"keywords": ["cat"]}, "two cats", True, False),
    ("startend:quotation", {}, "“Curly quotes.”", False, True),
    ("punctuation:no_comma", {}, "中文逗号，不算。", True, False),
    (
        "length_constraints:number_words",
        {"num_words": 2, "relation": "at least"},
        "今天天气很好",
        False,
        True,
    ),
    (
        "language:response_language",
        {"language": "zh"},
        "今天天气很好，我们去公园散步吧。",
        False,
        True,
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 3},
        "One.\n\nTwo.\n\nThree.",
        False,
        True,
    ),
]


@pytest.mark.parametrize("iid,kwargs,response,official,bilingual", DIFFERENCES)
def test_the_bilingual_rules_are_a_named_option(iid, kwargs, response, official, bilingual):
    assert ifeval.follows(iid, kwargs, response) is official
    assert ifeval.follows(iid, kwargs, response, rules="bilingual") is bilingual


def test_an_ifeval_input_file_is_scored_officially():
    """IFEval's own rows: instruction_id_list, kwargs filled with nulls, no rules field."""
    rows = [
        {
            "key": 1000,
            "prompt": "Write a 300+ word summary ...",
            "instruction_id_list": ["punctuation:no_comma", "detectable_format:title"],
            "kwargs": [{"num_highlights": None}, {"relation": None}],
        },
        {
            "key": 1001,
            "prompt": "...",
            "instruction_id_list": ["keywords:letter_frequency"],
            "kwargs": [{"letter": "q", "let_frequency": 2, "let_relation": "at least"}],
        },
    ]
    out = ifeval.score(rows, ["<<Title>>\nNo commas at all", "Quick quiz"])
    assert out["prompt_level_strict"] == 100.0
    assert [r["rules"] for r in out["results"]] == ["official", "official"]
    bad = dict(rows[1], kwargs=[{"letter": "q", "let_frequency": 2, "let_relation": "at most"}])
    with pytest.raises(DataError, match="at most"):
        ifeval.score([bad], ["x"])  # a relation the official checker has no judgement for


def test_loose_variants_follow_the_official_list():
    response = "Sure, here it is:\n*hello world*\nHope this helps"
    variants = ifeval.loose_variants(response)
    assert "hello world" in variants  # first and last line removed, then the asterisks
    assert not ifeval.follows("punctuation:no_comma", {}, response)
    assert ifeval.follows("punctuation:no_comma", {}, response, loose=True)
