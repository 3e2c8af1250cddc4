"""The built-in IFEval-style prompt set: 30 English and 30 Chinese tasks, each with 1–3
verifiable instructions whose wording is rendered from the instruction's kwargs, so a prompt
always states exactly what its checks verify."""

from __future__ import annotations

from typing import Any

# Short names used in the table below -> IFEval instruction ids.
IDS = {
    "words": "length_constraints:number_words",
    "sentences": "length_constraints:number_sentences",
    "paragraphs": "length_constraints:number_paragraphs",
    "keywords": "keywords:existence",
    "forbidden": "keywords:forbidden_words",
    "frequency": "keywords:frequency",
    "json": "detectable_format:json_format",
    "bullets": "detectable_format:number_bullet_lists",
    "title": "detectable_format:title",
    "highlights": "detectable_format:number_highlighted_sections",
    "lower": "change_case:english_lowercase",
    "upper": "change_case:english_capital",
    "end": "startend:end_checker",
    "quote": "startend:quotation",
    "no_comma": "punctuation:no_comma",
    "language": "language:response_language",
    "placeholders": "detectable_content:number_placeholders",
    "ps": "detectable_content:postscript",
}

_EN = {
    "words": "Answer with {relation} {num_words} words.",
    "sentences": "Your response should contain {relation} {num_sentences} sentences.",
    "paragraphs": "There should be exactly {num_paragraphs} paragraphs, separated from each other by the markdown divider ***.",
    "keywords": "Include the keywords {keywords} in your response.",
    "forbidden": "Do not include the words {forbidden_words} in your response.",
    "frequency": "The word '{keyword}' should appear {relation} {frequency} times.",
    "json": "Your entire output should be wrapped in JSON format.",
    "bullets": "Your answer must contain exactly {num_bullets} bullet points in markdown format, such as:\n* This is a point.",
    "title": "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
    "highlights": "Highlight at least {num_highlights} sections in your answer with markdown, i.e. *highlighted section*.",
    "lower": "Your entire response should be in English, and in all lowercase letters. No capital letters are allowed.",
    "upper": "Your entire response should be in English, and in all capital letters.",
    "end": "Finish your response with this exact phrase: {end_phrase} No other words should follow this phrase.",
    "quote": "Wrap your entire response with double quotation marks.",
    "no_comma": "In your entire response, refrain from the use of any commas.",
    "language": "Your ENTIRE response should be in {language}, no other language is allowed.",
    "placeholders": "The response must contain at least {num_placeholders} placeholders represented by square brackets, such as [address].",
    "ps": "At the end of your response, please explicitly add a postscript starting with {postscript_marker}",
}

_ZH = {
    "words": "回答字数{relation}{num_words}字。",
    "sentences": "回答{relation}{num_sentences}句话。",
    "paragraphs": "回答恰好分为{num_paragraphs}段，段与段之间用 markdown 分隔线 *** 隔开。",
    "keywords": "回答中必须包含关键词：{keywords}。",
    "forbidden": "回答中不要出现以下词语：{forbidden_words}。",
    "frequency": "“{keyword}”一词在回答中出现{relation}{frequency}次。",
    "json": "整个回答必须是合法的 JSON 格式。",
    "bullets": "回答必须恰好包含{num_bullets}个 markdown 列表项，例如：\n* 这是一个要点。",
    "title": "回答必须包含一个用双尖括号括起来的标题，例如<<欢乐之诗>>。",
    "highlights": "用 markdown 突出显示至少{num_highlights}处内容，例如*重点内容*。",
    "lower": "请用英文回答，并且全部使用小写字母，不允许出现大写字母。",
    "upper": "请用英文回答，并且全部使用大写字母。",
    "end": "回答必须以这句话结尾：{end_phrase}之后不能再有其他文字。",
    "quote": "用双引号把整个回答括起来。",
    "no_comma": "整个回答中不要使用任何逗号（包括“，”和“,”）。",
    "language": "整个回答只能使用{language}，不允许使用其他语言。",
    "placeholders": "回答中至少包含{num_placeholders}个用方括号表示的占位符，例如[地址]。",
    "ps": "在回答末尾另起一行，添加以“{postscript_marker}”开头的附言。",
}

_RELATION_ZH = {"at least": "至少", "at most": "不超过", "less than": "少于", "more than": "多于"}
_LANGUAGE = {"en": {"en": "English", "zh": "Chinese"}, "zh": {"en": "英文", "zh": "中文"}}


def describe(name: str, kwargs: dict[str, Any], lang: str) -> str:
    """The instruction sentence for short name `name` with `kwargs`, in `lang`."""
    values: dict[str, Any] = dict(kwargs)
    sep = ", " if lang == "en" else "、"
    for key in ("keywords", "forbidden_words"):
        if key in values:
            values[key] = sep.join(values[key])
    if lang == "zh" and "relation" in values:
        values["relation"] = _RELATION_ZH[values["relation"]]
    if "language" in values:
        values["language"] = _LANGUAGE[lang][values["language"]]
    return (_EN if lang == "en" else _ZH)[name].format(**values)


_Spec = tuple[str, list[tuple[str, dict[str, Any]]]]

_EN_TASKS: list[_Spec] = [
    (
        "Write a short blog post about a trip to Japan.",
        [("words", {"relation": "at least", "num_words": 120}), ("no_comma", {})],
    ),
    ("Write a limerick about a cat who loves coffee.", [("lower", {}), ("title", {})]),
    (
        "Explain how photosynthesis works to a ten-year-old.",
        [("sentences", {"relation": "at most", "num_sentences": 6})],
    ),
    (
        "Write a cover letter for a junior software developer position.",
        [
            ("placeholders", {"num_placeholders": 3}),
            ("end", {"end_phrase": "Is there anything else I can help with?"}),
        ],
    ),
    ("List the benefits of regular exercise.", [("bullets", {"num_bullets": 4})]),
    ("Describe the water cycle.", [("paragraphs", {"num_paragraphs": 3})]),
    (
        "Write a product description for a reusable water bottle.",
        [
            ("keywords", {"keywords": ["durable", "eco-friendly"]}),
            ("forbidden", {"forbidden_words": ["plastic"]}),
        ],
    ),
    (
        "Give me an object describing a fictional book with its title, author and year.",
        [("json", {})],
    ),
    ("Write a motivational message for students before their final exams.", [("upper", {})]),
    (
        "Summarize the plot of Romeo and Juliet.",
        [("words", {"relation": "at most", "num_words": 80}), ("language", {"language": "en"})],
    ),
    (
        "Write an email inviting colleagues to a team lunch on Friday.",
        [("ps", {"postscript_marker": "P.S."}), ("placeholders", {"num_placeholders": 1})],
    ),
    ("Write a poem about the ocean.", [("title", {}), ("highlights", {"num_highlights": 2})]),
    ("What is the capital of France? Explain briefly why.", [("quote", {})]),
    (
        "Write a short story about a robot learning to paint.",
        [
            ("frequency", {"keyword": "robot", "relation": "at least", "frequency": 3}),
            ("paragraphs", {"num_paragraphs": 2}),
        ],
    ),
    (
        "Give advice on how to prepare for a job interview.",
        [("bullets", {"num_bullets": 3}), ("end", {"end_phrase": "Good luck!"})],
    ),
    (
        "Write a review of your favourite restaurant.",
        [("no_comma", {}), ("sentences", {"relation": "at least", "num_sentences": 4})],
    ),
    (
        "Describe a sunset at the beach.",
        [("lower", {}), ("words", {"relation": "at most", "num_words": 60})],
    ),
    (
        "Write a tweet announcing a new smartphone.",
        [
            ("highlights", {"num_highlights": 1}),
            ("forbidden", {"forbidden_words": ["cheap", "expensive"]}),
        ],
    ),
    ("Write a haiku about autumn leaves.", [("title", {}), ("language", {"language": "en"})]),
    (
        "Explain the difference between weather and climate.",
        [
            ("paragraphs", {"num_paragraphs": 2}),
            ("keywords", {"keywords": ["temperature", "decades"]}),
        ],
    ),
    (
        "Write a thank-you note to a teacher.",
        [
            ("end", {"end_phrase": "With gratitude."}),
            ("words", {"relation": "at least", "num_words": 40}),
        ],
    ),
    (
        "Create a packing list for a weekend camping trip.",
        [("bullets", {"num_bullets": 5}), ("title", {})],
    ),
    (
        "Describe your ideal weekend.",
        [("upper", {}), ("sentences", {"relation": "at most", "num_sentences": 5})],
    ),
    (
        "Write a job posting for a barista.",
        [
            ("placeholders", {"num_placeholders": 2}),
            ("highlights", {"num_highlights": 2}),
            ("keywords", {"keywords": ["coffee"]}),
        ],
    ),
    ("List three planets with their order from the sun.", [("json", {})]),
    (
        "Write a short speech for a friend's wedding.",
        [("quote", {}), ("words", {"relation": "at most", "num_words": 100})],
    ),
    (
        "Explain why sleep is important.",
        [
            ("frequency", {"keyword": "sleep", "relation": "at least", "frequency": 2}),
            ("no_comma", {}),
        ],
    ),
    (
        "Write a riddle about time and give the answer.",
        [
            ("ps", {"postscript_marker": "P.S."}),
            ("sentences", {"relation": "at most", "num_sentences": 4}),
        ],
    ),
    (
        "Describe the benefits of learning a second language.",
        [
            ("language", {"language": "en"}),
            ("bullets", {"num_bullets": 3}),
            ("end", {"end_phrase": "Any other questions?"}),
        ],
    ),
    (
        "Write a short dialogue between a customer and a shop assistant.",
        [("forbidden", {"forbidden_words": ["sorry"]}), ("paragraphs", {"num_paragraphs": 4})],
    ),
]

_ZH_TASKS: list[_Spec] = [
    (
        "写一篇关于春节的短文。",
        [("words", {"relation": "at least", "num_words": 150}), ("no_comma", {})],
    ),
    (
        "为一款智能手表写一段产品介绍。",
        [
            ("keywords", {"keywords": ["续航", "防水"]}),
            ("forbidden", {"forbidden_words": ["便宜"]}),
        ],
    ),
    (
        "解释什么是机器学习。",
        [
            ("sentences", {"relation": "at most", "num_sentences": 5}),
            ("language", {"language": "zh"}),
        ],
    ),
    ("列出保持健康的生活习惯。", [("bullets", {"num_bullets": 4})]),
    ("写一首关于月亮的诗。", [("title", {}), ("highlights", {"num_highlights": 1})]),
    ("描述一下你的家乡。", [("paragraphs", {"num_paragraphs": 3})]),
    ("描述一部电影，包含片名、导演和上映年份。", [("json", {})]),
    (
        "写一封邀请朋友参加生日聚会的邮件。",
        [("placeholders", {"num_placeholders": 2}), ("ps", {"postscript_marker": "附言："})],
    ),
    (
        "介绍一下长城的历史。",
        [
            ("words", {"relation": "at most", "num_words": 200}),
            ("end", {"end_phrase": "欢迎来中国参观长城！"}),
        ],
    ),
    ("写一段鼓励同学努力学习的话。", [("quote", {})]),
    (
        "描述一次难忘的旅行。",
        [
            ("frequency", {"keyword": "旅行", "relation": "at least", "frequency": 2}),
            ("paragraphs", {"num_paragraphs": 2}),
        ],
    ),
    (
        "给出准备面试的建议。",
        [("bullets", {"num_bullets": 3}), ("end", {"end_phrase": "祝你好运！"})],
    ),
    (
        "写一份关于环境保护的倡议书。",
        [("title", {}), ("keywords", {"keywords": ["垃圾分类", "节约用水"]})],
    ),
    (
        "解释一下为什么天空是蓝色的。",
        [("sentences", {"relation": "at least", "num_sentences": 3}), ("no_comma", {})],
    ),
    (
        "写一个关于小猫的童话故事。",
        [
            ("words", {"relation": "at least", "num_words": 100}),
            ("highlights", {"num_highlights": 2}),
        ],
    ),
    ("介绍一道中国菜。", [("language", {"language": "en"}), ("lower", {})]),
    ("写一句欢迎新同事的话。", [("upper", {})]),
    ("写一份周末郊游的物品清单。", [("bullets", {"num_bullets": 5}), ("title", {})]),
    (
        "写一则招聘咖啡师的启事。",
        [("placeholders", {"num_placeholders": 3}), ("forbidden", {"forbidden_words": ["加班"]})],
    ),
    (
        "总结一下《西游记》的主要情节。",
        [("words", {"relation": "at most", "num_words": 150}), ("language", {"language": "zh"})],
    ),
    (
        "给你的老师写一段感谢的话。",
        [
            ("end", {"end_phrase": "祝您身体健康！"}),
            ("words", {"relation": "at least", "num_words": 60}),
        ],
    ),
    (
        "介绍一种你喜欢的运动。",
        [("paragraphs", {"num_paragraphs": 2}), ("highlights", {"num_highlights": 1})],
    ),
    ("写一条宣传新款手机的微博。", [("keywords", {"keywords": ["拍照"]}), ("quote", {})]),
    ("列出三个中国城市及其所在省份。", [("json", {})]),
    (
        "写一段描写秋天的文字。",
        [
            ("forbidden", {"forbidden_words": ["落叶"]}),
            ("sentences", {"relation": "at most", "num_sentences": 4}),
        ],
    ),
    (
        "写一篇关于读书好处的短文。",
        [
            ("title", {}),
            ("ps", {"postscript_marker": "附注："}),
            ("paragraphs", {"num_paragraphs": 2}),
        ],
    ),
    (
        "解释一下什么是区块链。",
        [
            ("frequency", {"keyword": "区块链", "relation": "at least", "frequency": 3}),
            ("words", {"relation": "at most", "num_words": 250}),
        ],
    ),
    ("给出学习编程的建议。", [("bullets", {"num_bullets": 3}), ("no_comma", {})]),
    (
        "写一段顾客与店员之间的对话。",
        [("placeholders", {"num_placeholders": 1}), ("language", {"language": "zh"})],
    ),
    (
        "描述你理想中的周末。",
        [("end", {"end_phrase": "这就是我理想的周末。"}), ("highlights", {"num_highlights": 2})],
    ),
]


def build_prompts() -> list[dict[str, Any]]:
    """Render the table into IFEval-style records (key, prompt, lang, instruction_ids, kwargs),
    scored by the bilingual rules (ifeval.py): its Chinese prompts count 字 and its relations
    include "at most" and "more than", which the official checker has no judgement for."""
    records = []
    for lang, tasks in (("en", _EN_TASKS), ("zh", _ZH_TASKS)):
        joiner = " " if lang == "en" else ""
        for i, (task, instructions) in enumerate(tasks, 1):
            records.append(
                {
                    "key": f"{lang}-{i:03d}",
                    "prompt": joiner.join(
                        [task, *(describe(name, kw, lang) for name, kw in instructions)]
                    ),
                    "lang": lang,
                    "instruction_ids": [IDS[name] for name, _ in instructions],
                    "kwargs": [dict(kw) for _, kw in instructions],
                    "rules": "bilingual",
                }
            )
    return records
