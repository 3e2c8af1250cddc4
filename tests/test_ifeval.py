"""IFEval-style checks: each accepts a compliant and rejects a non-compliant response (zh and en),
strict vs loose, aggregation, and the built-in prompt set."""

from __future__ import annotations

import pytest

from instructgen.errors import ConfigError, DataError, UserError
from instructgen.evaluate import ifeval
from instructgen.evaluate.text import detect_lang

# (instruction id, kwargs, compliant response, non-compliant response)
CASES = [
    (
        "length_constraints:number_words",
        {"relation": "at least", "num_words": 5},
        "one two three four five",
        "one two three",
    ),
    (
        "length_constraints:number_words",
        {"relation": "at most", "num_words": 6},
        "今天天气很好。",
        "今天天气非常非常好。",
    ),
    (
        "length_constraints:number_words",
        {"relation": "less than", "num_words": 3},
        "Hi there.",
        "Hi there you.",
    ),
    (
        "length_constraints:number_sentences",
        {"relation": "at most", "num_sentences": 2},
        "It is 3.5 km away. Go now!",
        "One. Two. Three.",
    ),
    (
        "length_constraints:number_sentences",
        {"relation": "at least", "num_sentences": 3},
        "天很蓝。云很白！你看到了吗？",
        "天很蓝，云很白。",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 2},
        "First part.\n***\nSecond part.",
        "Only one paragraph.",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 3},
        "第一段。\n\n第二段。\n\n第三段。",
        "第一段。\n第二段。\n第三段。",
    ),
    (
        "keywords:existence",
        {"keywords": ["durable", "Eco-Friendly"]},
        "A durable, eco-friendly bottle.",
        "A durable bottle.",
    ),
    (
        "keywords:existence",
        {"keywords": ["续航", "防水"]},
        "续航长达七天，支持防水。",
        "续航长达七天。",
    ),
    (
        "keywords:forbidden_words",
        {"forbidden_words": ["cheap"]},
        "Cheapest? No, it is affordable.",
        "It is really CHEAP.",
    ),
    ("keywords:forbidden_words", {"forbidden_words": ["便宜"]}, "价格实惠。", "价格很便宜。"),
    (
        "keywords:frequency",
        {"keyword": "robot", "relation": "at least", "frequency": 2},
        "The robot met another robot.",
        "The robot met robots.",
    ),
    (
        "keywords:frequency",
        {"keyword": "旅行", "relation": "at most", "frequency": 1},
        "这次旅行很难忘。",
        "旅行旅行再旅行。",
    ),
    (
        "detectable_format:json_format",
        {},
        '```json\n{"title": "书", "year": 2020}\n```',
        'Here it is: {"title": 1}',
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "Tips:\n* Sleep well\n- Eat well\n**Bold** text",
        "* only one",
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 3},
        "* 早睡\n* 早起\n* 多运动",
        "1. 早睡\n2. 早起\n3. 多运动",
    ),
    ("detectable_format:title", {}, "<<Ode to Joy>>\nA poem.", "<< >> A poem without a title."),
    ("detectable_format:title", {}, "<<欢乐之诗>>\n春天来了。", "《欢乐之诗》\n春天来了。"),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "This is *key* and **vital**.",
        "Only *one* here.",
    ),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 1},
        "周末最重要的是*休息*。",
        "周末最重要的是休息。",
    ),
    ("change_case:english_lowercase", {}, "all lowercase here, 123.", "Not all lowercase."),
    ("change_case:english_capital", {}, "WELCOME TO THE TEAM!", "WELCOME to the team!"),
    (
        "startend:end_checker",
        {"end_phrase": "Good luck!"},
        "Prepare well. good luck!  ",
        "Good luck! And have fun.",
    ),
    (
        "startend:end_checker",
        {"end_phrase": "祝你好运！"},
        "准备充分。祝你好运！",
        "祝你好运！准备充分。",
    ),
    ("startend:quotation", {}, '"Paris is the capital."', 'Paris is "the capital".'),
    ("startend:quotation", {}, "“努力学习，天天向上。”", "努力学习，“天天向上”"),
    ("punctuation:no_comma", {}, "No commas here. None at all.", "Well, here is one."),
    ("punctuation:no_comma", {}, "天很蓝。云很白。", "天很蓝，云很白。"),
    (
        "language:response_language",
        {"language": "zh"},
        "机器学习是人工智能的一个分支。",
        "Machine learning is a branch of AI.",
    ),
    (
        "language:response_language",
        {"language": "en"},
        "Kung Pao chicken (宫保鸡丁) is a spicy dish.",
        "宫保鸡丁是一道川菜。",
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Dear [name], see you at [address].",
        "Dear [name], see you soon.",
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 1},
        "亲爱的[姓名]：",
        "亲爱的朋友：",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.S."},
        "See you.\n\np.s. bring snacks",
        "See you. P.S. is a marker.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "附言："},
        "欢迎光临。\n附言：请带零食。",
        "欢迎光临。请带零食。",
    ),
]


@pytest.mark.parametrize(
    ("iid", "kwargs", "good", "bad"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_check_accepts_compliant_and_rejects_noncompliant(iid, kwargs, good, bad):
    assert ifeval.follows(iid, kwargs, good, rules="bilingual")
    assert not ifeval.follows(iid, kwargs, bad, rules="bilingual")


def test_every_bilingual_judgement_is_covered():
    assert {c[0] for c in CASES} == set(ifeval.BILINGUAL)
    assert len(ifeval.BILINGUAL) >= 12 and set(ifeval.BILINGUAL) <= set(ifeval.OFFICIAL)


def test_counting_conventions():
    assert ifeval.count_words("我爱Python编程 2024") == 6  # 4 characters + 2 runs
    assert (
        ifeval.count_sentences("Dr. Smith left. 他走了。你呢？") == 4
    )  # "Dr." ends one: documented limit
    assert ifeval.split_paragraphs("a\n\n***\n\nb\n \nc") == ["a", "b", "c"]


def test_strict_and_loose_differ_on_a_preamble():
    response = "Sure! Here is my answer:\nall lowercase words here, as you asked"
    assert not ifeval.follows("change_case:english_lowercase", {}, response)
    assert ifeval.follows("change_case:english_lowercase", {}, response, loose=True)
    chinese = "好的，以下是回答：\n“努力学习，天天向上。”"
    bi = {"rules": "bilingual"}
    assert not ifeval.follows("startend:quotation", {}, chinese, **bi)
    assert ifeval.follows("startend:quotation", {}, chinese, loose=True, **bi)
    assert not ifeval.follows("startend:quotation", {}, chinese, loose=True)  # curly: official no
    assert not ifeval.follows("startend:quotation", {}, "   ", loose=True)  # blank never follows


def test_score_aggregates_prompt_and_instruction_levels():
    examples = [
        {
            "key": "a",
            "instruction_ids": ["punctuation:no_comma", "change_case:english_lowercase"],
            "kwargs": [{}, {}],
        },
        {"key": "b", "instruction_ids": ["detectable_format:title"], "kwargs": [{}]},
        {
            "key": "c",
            "instruction_ids": ["startend:end_checker", "punctuation:no_comma"],
            "kwargs": [{"end_phrase": "再见。"}, {}],
        },
    ]
    responses = [
        "Intro Line\nno commas and lowercase",  # strict: no_comma ok, lowercase fails; loose: both
        "no title here",  # fails both ways
        "你好，再见。",  # end ok, comma fails both ways
    ]
    out = ifeval.score(examples, responses, rules="bilingual")
    assert (out["num_prompts"], out["num_instructions"]) == (3, 5)
    assert out["prompt_level_strict"] == pytest.approx(0)
    assert out["prompt_level_loose"] == pytest.approx(100 / 3)
    assert out["instruction_level_strict"] == pytest.approx(100 * 2 / 5)
    assert out["instruction_level_loose"] == pytest.approx(100 * 3 / 5)
    by = out["by_instruction"]
    assert by["punctuation:no_comma"] == {"count": 2, "strict": 50.0, "loose": 50.0}
    assert by["change_case:english_lowercase"] == {"count": 1, "strict": 0.0, "loose": 100.0}
    assert by["detectable_format:title"]["loose"] == 0.0
    assert out["results"][0] == {
        "key": "a",
        "rules": "bilingual",
        "instruction_ids": examples[0]["instruction_ids"],
        "strict": [True, False],
        "loose": [True, True],
    }


def test_score_accepts_ifeval_field_names_and_null_kwargs():
    example = {
        "key": 1,
        "instruction_id_list": ["detectable_format:number_bullet_lists"],
        "kwargs": [{"num_bullets": 1, "num_words": None}],
    }
    assert ifeval.score([example], ["* one"])["prompt_level_strict"] == 100


@pytest.mark.parametrize(
    ("example", "field"),
    [
        ({"key": "x", "instruction_ids": ["no:such_check"], "kwargs": [{}]}, "instruction_ids"),
        ({"key": "x", "instruction_ids": []}, "instruction_ids"),
        ({"key": "x", "instruction_ids": ["punctuation:no_comma"], "kwargs": [{}, {}]}, "kwargs"),
        (
            {
                "key": "x",
                "instruction_ids": ["detectable_format:title"],
                "kwargs": [{"num_words": 3}],
            },
            "kwargs",
        ),
        (
            {
                "key": "x",
                "instruction_ids": ["length_constraints:number_words"],
                "kwargs": [{"num_words": 3, "relation": "about"}],
            },
            "kwargs",
        ),
    ],
)
def test_score_rejects_malformed_examples(example, field):
    with pytest.raises(DataError) as err:
        ifeval.score([example], ["response"])
    assert err.value.field == field


def test_score_rejects_count_mismatch():
    with pytest.raises(UserError, match="1 examples but 2 responses"):
        ifeval.score(ifeval.load_prompts()[:1], ["a", "b"])


def test_builtin_prompts_bilingual_and_well_formed():
    prompts = ifeval.load_prompts()
    zh, en = ifeval.load_prompts("zh"), ifeval.load_prompts("en")
    assert 40 <= len(prompts) <= 80 and len(zh) == len(en) == len(prompts) // 2
    assert len({p["key"] for p in prompts}) == len(prompts)
    for p in prompts:
        assert set(p) == {"key", "prompt", "lang", "instruction_ids", "kwargs", "rules"}
        assert 1 <= len(p["instruction_ids"]) <= 3
        assert detect_lang(p["prompt"]) == p["lang"]
    used = {iid for p in prompts for iid in p["instruction_ids"]}
    assert used == set(ifeval.BILINGUAL)
    out = ifeval.score(prompts, [""] * len(prompts))  # validates every kwargs set
    assert out["prompt_level_loose"] == 0
    with pytest.raises(ConfigError, match="fr"):
        ifeval.load_prompts("fr")
