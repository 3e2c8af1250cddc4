"""LLM-as-judge against a scripted OpenAI-compatible server on loopback: verdict parsing,
single-answer grading, pairwise comparison in both orders, token cost from `usage`."""

from __future__ import annotations

import json
import re

import pytest

from instructgen.evaluate.judges import Judge, first_swapped, parse_rating, parse_verdict, run_judge

from .eval_stub import make_app, serve


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("The answer is accurate and complete.\n\nRating: [[7]]", 7.0),
        ("Rating: 7/10", 7.0),
        ("**Score:** 9", 9.0),
        ("I would give it 6 out of 10.", 6.0),
        ("7", 7.0),
        ("评分：7", 7.0),
        ("总体不错。评分：８分", 8.0),
        ("得分为 5 分", 5.0),
        ("[[8.5]]", 8.5),
        ("[[11]]", None),
        ("I cannot rate this.", None),
    ],
)
def test_parse_rating(text, rating):
    assert parse_rating(text) == rating


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("A is more detailed. [[A]]", "A"),
        ("Both are equally good. [[C]]", "tie"),
        ("**Final verdict:** [[B]]", "B"),
        ("Final verdict: B", "B"),
        ("Assistant A is better.", "A"),
        ("结论：A", "A"),
        ("回答B更好。", "B"),
        ("两个回答水平相当，平局。", "tie"),
        ("verdict: a tie", "tie"),
        ("B", "B"),
        ("I am not sure.", None),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def _answers(user: str) -> tuple[str, str]:
    a = re.search(r"\[The Start of Assistant A's Answer\]\n(.*?)\n\[The End", user, re.S).group(1)
    b = re.search(r"\[The Start of Assistant B's Answer\]\n(.*?)\n\[The End", user, re.S).group(1)
    return a, b


def fair_judge(messages):
    """Prefers the answer that contains 'good', wherever it is shown; rates 'good' answers 8."""
    user = messages[-1]["content"]
    if "Assistant A's Answer" in user:
        a, b = _answers(user)
        if ("good" in a) == ("good" in b):
            return "They are equally good. [[C]]"
        return "A is better. [[A]]" if "good" in a else "B is better.\n\nFinal verdict: [[B]]"
    answer = re.search(r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End", user, re.S).group(
        1
    )
    return "Helpful. Rating: [[8]]" if "good" in answer else "评分：3"


def biased_judge(messages):
    """Always picks whatever is shown first: its verdicts flip with the order."""
    return "[[A]]"


def test_single_grading_and_cost_from_usage():
    app = make_app(fair_judge, name="judge-1")
    with serve(app) as url:
        judge = Judge(url)
        good = judge.grade("How are you?", "good, thanks")
        bad = judge.grade("How are you?", "meh")
        assert good["score"] == 8.0 and bad["score"] == 3.0
        assert judge.name == "judge-1"
        cost = judge.cost()
        assert cost["requests"] == 2
        assert (
            cost["prompt_tokens"] == good["usage"]["prompt_tokens"] + bad["usage"]["prompt_tokens"]
        )
        # the stub counts words: "Helpful. Rating: [[8]]" and "评分：3"
        assert cost["completion_tokens"] == 3 + 1
        with_ref = judge.grade("2+2?", "good: 4", reference="4")
        assert with_ref["score"] == 8.0
        judge.close()


def test_pairwise_counts_a_winner_only_when_both_orders_agree():
    with serve(make_app(fair_judge)) as url:
        judge = Judge(url)
        for swapped in (False, True):
            result = judge.compare("q", "a good answer", "a weak answer", first_swapped=swapped)
            assert result["winner"] == "1" and result["consistent"]
            assert result["verdicts"] == ["1", "1"]
            assert result["orders"] == (["2 as A", "1 as A"] if swapped else ["1 as A", "2 as A"])
        assert judge.compare("q", "weak", "a good one")["winner"] == "2"
        assert judge.compare("q", "x", "y")["winner"] == "tie"
        assert judge.cost()["requests"] == 8
    with serve(make_app(biased_judge)) as url:
        result = Judge(url).compare("q", "a good answer", "a weak answer")
        assert result["verdicts"] == ["1", "2"] and not result["consistent"]
        assert result["winner"] == "tie"


def test_first_order_is_a_seeded_coin_per_item():
    flips = [first_swapped(0, str(i)) for i in range(200)]
    assert 60 < sum(flips) < 140
    assert flips == [first_swapped(0, str(i)) for i in range(200)]
    assert flips != [first_swapped(1, str(i)) for i in range(200)]


def _outputs(path, answers):
    rows = [{"id": f"i{k}", "prompt": f"question {k}", "output": a} for k, a in enumerate(answers)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_run_judge_writes_a_run_and_resumes(tmp_path):
    mine = _outputs(tmp_path / "mine.jsonl", ["good one", "good two", "bad", "good four"])
    theirs = _outputs(tmp_path / "theirs.jsonl", ["bad", "bad", "good", "good too"])
    app = make_app(fair_judge)
    with serve(app) as url:
        single = run_judge(url, mine, out_dir=tmp_path / "single", concurrency=2, progress=False)
        assert single["suite"] == "judge-single" and single["primary"] == "mean_score"
        assert single["metrics"]["mean_score"] == pytest.approx((8 + 8 + 3 + 8) / 4)
        assert single["per_item"] == {"i0": 8.0, "i1": 8.0, "i2": 3.0, "i3": 8.0}
        assert single["cost"]["requests"] == 4 and single["cost"]["total_tokens"] > 0
        pair = run_judge(url, mine, against=theirs, out_dir=tmp_path / "pair", progress=False)
        m = pair["metrics"]
        assert (m["wins"], m["losses"], m["ties"], m["inconsistent"]) == (2, 1, 1, 0)
        assert m["win_rate"] == pytest.approx(100 * (2 + 0.5) / 4)
        assert pair["cost"]["requests"] == 8
        requests = app.state.requests
        again = run_judge(url, mine, against=theirs, out_dir=tmp_path / "pair", progress=False)
        assert again["counts"]["cached"] == 4 and app.state.requests == requests
        assert again["metrics"] == pair["metrics"]
    assert (tmp_path / "pair" / "report.md").is_file()
