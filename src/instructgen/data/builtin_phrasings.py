"""What the user says: the instruction phrasings of every built-in task family.

Per family and language: about sixty phrasings for the train and val splits (the tests ask for
at least five; many, varied in structure and words, so that a model learns the task words rather
than a handful of templates), and three held-out phrasings that only the test split uses (their
wording occurs nowhere else, so a test score measures instruction following, not memory). Of the
sixty, twenty were written with the world; the others were written blind to the held-out
phrasings (the writers saw the task, its first twenty phrasings and example records only), and
those sharing four words (five Chinese characters) with a held-out phrasing, slots ignored and
greetings included, or holding a held-out phrasing's longest literal, were dropped (158 of
2,240). They lifted the quickstart's test score from 0.20 to 0.27: a model
cannot follow a phrasing whose words it never read, and with twenty phrasings 44 % of the
held-out phrasings' English words (68 % of their Chinese character pairs) occurred nowhere in
training; with sixty, 13 % (40 %).
``{slots}`` are filled by the family's generator (builtin_apps.py, builtin_skills.py). The
first Chinese and English poem phrasings are the brief's own example:
"请用中文写一首关于春天的诗。" / "Write a poem about spring."

The phrasings live in tables/phrasings.json: "apps" holds the application families (writing,
support, personalize), "skills" the skill families, "wrappers" the greetings and closings put
around a prompt. Train phrasings paraphrase the task in everyday words; they avoid the
distinctive wording of the held-out phrasings.
"""

from __future__ import annotations

import random

from instructgen.package_data import load_json, tuples

_TABLES = load_json("instructgen.data", "tables", "phrasings.json")

# Greetings and closings put around a train or val prompt now and then, so that a model learns
# the task from the instruction's words rather than from where a prompt starts or ends.
# lang -> (prefixes, suffixes)
WRAPPERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    lang: (tuple(w["prefixes"]), tuple(w["suffixes"])) for lang, w in _TABLES["wrappers"].items()
}
WRAP_PROBABILITY = 0.25  # for the prefix and, independently, for the suffix


def wrap(rng: random.Random, lang: str, prompt: str) -> str:
    """`prompt`, sometimes with a greeting before it and a closing after it."""
    prefixes, suffixes = WRAPPERS[lang]
    if rng.random() < WRAP_PROBABILITY:
        prompt = rng.choice(prefixes) + prompt
    if rng.random() < WRAP_PROBABILITY:
        prompt += rng.choice(suffixes)
    return prompt


# family -> {"zh": train phrasings, "en": ..., "heldout": {"zh": test phrasings, "en": ...}}
_APP_PHRASINGS: dict[str, dict] = tuples(_TABLES["apps"])
SKILL_PHRASINGS: dict[str, dict] = tuples(_TABLES["skills"])
PHRASINGS: dict[str, dict] = {**_APP_PHRASINGS, **SKILL_PHRASINGS}
