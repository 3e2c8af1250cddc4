"""Overlap metrics and duplicate filters (instructgen.data.dedup)."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from instructgen.data import dedup


def test_overlap_tokens_split_cjk_characters_and_latin_words():
    assert dedup.overlap_tokens("Hello, World! 请写诗。 R2-D2") == [
        "hello",
        "world",
        "请",
        "写",
        "诗",
        "r2",
        "d2",
    ]


def test_rouge_l_is_nonzero_for_chinese():
    assert dedup.rouge_l("请写一首关于春天的诗", "请写一首关于秋天的诗") == pytest.approx(0.9)
    assert dedup.rouge_l("请写一首关于春天的诗", "今晚吃什么") == 0.0
    # rouge-score's own tokenizer drops every CJK character, so it would say 0 here.
    assert rouge_scorer.RougeScorer(["rougeL"]).score("请写诗", "请写诗")["rougeL"].fmeasure == 0.0


@pytest.mark.parametrize(
    "a, b",
    [
        ("The quick brown fox jumps over the lazy dog", "A quick brown dog jumps over the fox"),
        ("Write a poem about spring.", "Write a short story about the sea in spring!"),
        ("Give three tips for staying healthy.", "What are three tips for a healthy life?"),
    ],
)
def test_rouge_l_equals_rouge_score_on_plain_english(a, b):
    expected = rouge_scorer.RougeScorer(["rougeL"]).score(a, b)["rougeL"].fmeasure
    assert dedup.rouge_l(a, b) == pytest.approx(expected)
    assert dedup.rouge_l(b, a) == pytest.approx(expected)


def test_rouge_index_finds_the_most_similar_text_despite_pruning():
    index = dedup.RougeLIndex(
        [
            "Write a poem about spring.",
            "Translate the sentence into French.",
            "请写一首关于春天的诗",
        ]
    )
    score, similar = index.best("Write a poem about the spring", at_least=0.7)
    assert similar == "Write a poem about spring."
    assert score == pytest.approx(dedup.rouge_l(similar, "Write a poem about the spring"))
    assert index.best("请写一首关于秋天的诗")[1] == "请写一首关于春天的诗"
    assert index.best("Completely unrelated words here", at_least=0.7) == (0.0, None)


def test_near_duplicate_index_flags_near_copies_only():
    index = dedup.NearDuplicateIndex(threshold=0.7)
    paragraph = "The museum opens at nine in the morning and closes at six in the evening, every day except Monday."
    assert index.add("a", paragraph)
    assert not index.add("b", paragraph.replace("Monday", "Monday!"))
    assert index.query(paragraph.upper()) == ["a"]
    assert index.add(
        "c", "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen."
    )
    assert index.add("d", "请介绍一下长城的历史和它在中国文化中的意义，并举出两个例子。")
    assert index.query("请介绍一下长城的历史和它在中国文化中的意义，并举出两个例子！") == ["d"]
    assert len(index) == 3
    with pytest.raises(ValueError):
        index.add("a", "again")


def test_duplicate_rate_on_a_hand_made_list():
    texts = [
        "Hello world",
        "hello   WORLD",  # exact duplicate after whitespace/case normalisation
        "The museum opens at nine in the morning and closes at six in the evening.",
        "The museum opens at nine in the morning, and closes at six in the evening!",  # near
        "Something else entirely, about cooking rice.",
    ]
    assert dedup.duplicate_rate(texts) == {"exact": pytest.approx(0.2), "near": pytest.approx(0.4)}
    assert dedup.duplicate_rate(iter(texts), near=False) == {
        "exact": pytest.approx(0.2),
        "near": None,
    }
    assert dedup.duplicate_rate([]) == {"exact": 0.0, "near": 0.0}


def test_self_instruct_filters_are_chinese_aware():
    assert dedup.too_short("Do it now") and not dedup.too_short("Write a poem now")
    assert not dedup.too_short("用中文写诗")  # five characters count as five words
    assert dedup.too_long("word " * 151) and not dedup.too_long("word " * 150)
    assert dedup.has_blacklisted("Draw a cat") and dedup.has_blacklisted(
        "Look at the map and go to the station"
    )
    assert dedup.has_blacklisted("请画一只猫") and dedup.has_blacklisted("描述这张图片")
    assert not dedup.has_blacklisted("Open the drawer") and not dedup.has_blacklisted(
        "Write a profile"
    )
    assert dedup.starts_with_punctuation("- list three fruits") and dedup.starts_with_punctuation(
        "，写一首诗"
    )
    assert not dedup.starts_with_punctuation("《红楼梦》的作者是谁？")
    assert not dedup.starts_with_punctuation('"Hamlet" is a play; summarise it')
    assert not dedup.starts_with_punctuation("请写一首诗")
