"""Curated bilingual (zh/en) moderation lexicon: category → [(regular expression, weight)].

English entries are matched case-insensitively between ASCII letter boundaries; Chinese entries
as substrings. Entries are phrases with an object or an intent, not single words, because
single words are where a lexicon moderator's false positives come from ("kill the process",
"shoot a photo", "杀毒软件", "秒杀"): a bare topic word ("suicide", "杀人", "money laundering")
gets a weight under the default threshold 0.5, so news and help-seeking text is not flagged
by it alone. Weights combine per category as score = 1 − ∏(1 − w) (see moderation.py).

Subcategories ("self-harm/intent") also count towards their parent ("self-harm").

The entries live in data/lexicon.json: "en" and "zh" map category → {pattern: weight}; a
``{NAME}`` in a pattern stands for the shared piece "pieces"[NAME] (people, groups, "how to",
minors...), written once. "allowed" lists the harmless substrings that contain an entry
(DEFAULT_ALLOWED; 自杀式 in 自杀式袭击, a suicide attack, is not self-harm, and the violence
entries still apply to it).
"""

from __future__ import annotations

import re

from instructgen.package_data import load_json

_TABLES = load_json("instructgen.safety", "data", "lexicon.json")
_PIECE = re.compile(r"\{([A-Z_]+)\}")  # regex quantifiers such as {0,4} hold no capitals


def _entries(by_category: dict[str, dict[str, float]]) -> dict[str, list[tuple[str, float]]]:
    """category → [(pattern with its pieces filled in, weight)]."""
    pieces = _TABLES["pieces"]
    return {
        category: [(_PIECE.sub(lambda m: pieces[m[1]], p), w) for p, w in entries.items()]
        for category, entries in by_category.items()
    }


EN: dict[str, list[tuple[str, float]]] = _entries(_TABLES["en"])
ZH: dict[str, list[tuple[str, float]]] = _entries(_TABLES["zh"])

# Substrings that contain a lexicon entry but mean something harmless; masked before matching.
DEFAULT_ALLOWED: tuple[str, ...] = tuple(_TABLES["allowed"])
