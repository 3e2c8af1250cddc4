"""The writing assistant: constraint checks and regeneration, suggestion spans, continuation —
against a scripted model behind a real OpenAI-compatible server, and a real local model."""

from __future__ import annotations

import json

import pytest

from instructgen.apps import Constraints, continue_text, draft, improve
from instructgen.apps.writing import parse_length
from instructgen.errors import ConfigError
from instructgen.inference import load
from tests.apps_scripted import ScriptedLLM, scripted_server, wide_model_dir

GOOD_EN = " ".join(["Cherry blossoms fill the quiet parks while the spring rain falls."] * 3)
ORIGINAL = "This is is a draft.  It has some problems and a weak ending"


def writer(messages):
    """Drafts: too short and without the keyword first, good after feedback; improve: JSON."""
    ask = messages[0]["content"]
    if ask.startswith("Improve"):
        return "Sure:\n" + json.dumps(
            {
                "revised": "This is a draft. It ends well.",
                "suggestions": [
                    {"quote": "a weak ending", "suggestion": "end with a clear point"},
                    {"quote": "not in the text", "suggestion": "dropped"},
                    {"quote": "This", "suggestion": "start with the subject"},
                ],
            }
        )
    if ask.startswith("Continue"):
        return "The rain kept falling and the streets shone under the lamps all night long."
    if ask.startswith("请"):
        return (
            "Spring is here."
            if len(messages) == 1
            else "春天来了，樱花开满了公园，细雨轻轻地落在湖面上。"
        )
    if "never" in ask:
        return "short"
    return "Spring is here." if len(messages) == 1 else GOOD_EN


@pytest.fixture(scope="module")
def scripted():
    model = ScriptedLLM(writer)
    with scripted_server(model) as url:
        yield model, load(url)


def test_constraints_report_each_failure():
    rules = Constraints(5, 8, "en", ["cherry"])
    assert rules.failures("one two three four five six") == ["missing keywords: cherry"]
    assert rules.failures("春天来了") == [
        "too short: 4 words, need at least 5",
        "not written in English",
        "missing keywords: cherry",
    ]
    assert parse_length(100) == (75, 125) and parse_length((10, 20)) == (10, 20)
    with pytest.raises(ConfigError, match="length"):
        parse_length((20, 10))


def test_failing_draft_is_regenerated_until_it_passes(scripted):
    _, llm = scripted
    d = draft(llm, "spring", ["parks", "rain"], length=(20, 60), keywords=["cherry"], tone="warm")
    assert d.passed and d.attempts == 2 and d.text == GOOD_EN
    assert "missing keywords: cherry" in d.history[0]["failures"]
    assert any(f.startswith("too short") for f in d.history[0]["failures"])


def test_draft_gives_up_after_max_attempts(scripted):
    _, llm = scripted
    d = draft(llm, "never passes", length=(20, 60), max_attempts=3)
    assert not d.passed and d.attempts == 3 and d.failures


def test_chinese_draft_checks_language_and_length(scripted):
    _, llm = scripted
    d = draft(llm, "春天", language="zh", length=(10, 40), keywords=["樱花"])
    assert d.passed and d.attempts == 2
    assert "not written in Chinese" in d.history[0]["failures"]
    with pytest.raises(ConfigError, match="language"):
        draft(llm, "x", language="fr")


def test_improve_suggestions_are_tied_to_real_spans(scripted):
    _, llm = scripted
    imp = improve(llm, ORIGINAL)
    assert imp.revised == "This is a draft. It ends well."
    assert imp.dropped == 1
    assert [s.n for s in imp.suggestions] == list(range(1, len(imp.suggestions) + 1))
    for s in imp.suggestions:
        assert ORIGINAL[s.start : s.end] == s.original
    notes = {s.suggestion: s for s in imp.suggestions}
    assert notes["end with a clear point"].original == "a weak ending"
    assert any(s.source == "rule" and s.original.lower() == "is is" for s in imp.suggestions)
    assert any(s.source == "rule" and s.original == "  " for s in imp.suggestions)
    assert "1. [0:4]" in imp.numbered()


def test_continue_text_in_the_same_language(scripted):
    _, llm = scripted
    more = continue_text(llm, "It was raining in the old town.", words=12)
    assert more.passed and more.text.startswith("The rain kept falling")


@pytest.fixture(scope="module")
def local_llm(tmp_path_factory, tokenizer_dir):
    with load(wide_model_dir(tmp_path_factory, tokenizer_dir)) as llm:
        yield llm


def test_local_model_directory_plumbing(local_llm):
    d = draft(local_llm, "spring", length=(3, 6), max_attempts=2)
    assert d.attempts in (1, 2) and len(d.history) == d.attempts
    imp = improve(local_llm, "the the cat sat.")
    assert imp.revised and imp.suggestions[0].original.lower() == "the the"
