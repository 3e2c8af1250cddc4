"""The builtin suite scores outputs with each record's checker, per family and language."""

from __future__ import annotations

from instructgen.data.builtin import generate
from instructgen.evaluate.builtin_suite import prompts_of, reference_of, score_outputs


def test_references_score_one_and_empty_answers_zero():
    splits, _ = generate(seed=0, size=200)
    test = splits["test"]
    perfect = score_outputs(test, [reference_of(r) for r in test])
    assert perfect["score"] == 1.0 and set(perfect["per_lang"]) == {"zh", "en"}
    assert all(v == 1.0 for v in perfect["per_family"].values())
    empty = score_outputs(test, [""] * len(test))
    assert empty["score"] == 0.0
    half = score_outputs(test, [reference_of(r) if i % 2 else "" for i, r in enumerate(test)])
    assert abs(half["score"] - sum(1 for i in range(len(test)) if i % 2) / len(test)) < 1e-9


def test_prompts_end_before_the_answer():
    splits, _ = generate(seed=0, size=100)
    for record, prompt in zip(splits["test"], prompts_of(splits["test"])):
        assert prompt[-1]["role"] == "user"
        assert reference_of(record) not in [m["content"] for m in prompt]
