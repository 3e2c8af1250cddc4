"""Task families of verifiable skills: arithmetic, counting, sorting, extraction, format
conversion, and letter/character operations. Every answer is fully determined by the instruction."""

from __future__ import annotations

import json
import random

from instructgen.data import checkers as C
from instructgen.data.builtin_world import (
    Family,
    Pool,
    Sample,
    join_items,
    list_pattern,
    sequence_pattern,
)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
SEP = {"zh": "、", "en": ", "}


def _number(answer: int, slots: dict) -> Sample:
    return Sample(slots, str(answer), C.numeric(answer))


def _add(rng: random.Random, lang: str, pool: Pool) -> Sample:
    a, b = rng.randint(1, 50), rng.randint(1, 50)
    return _number(a + b, {"a": a, "b": b})


def _subtract(rng: random.Random, lang: str, pool: Pool) -> Sample:
    a = rng.randint(10, 99)
    b = rng.randint(1, a)
    return _number(a - b, {"a": a, "b": b})


def _multiply(rng: random.Random, lang: str, pool: Pool) -> Sample:
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    return _number(a * b, {"a": a, "b": b})


def parity(lang: str, n: int) -> str:
    return ("偶数", "奇数")[n % 2] if lang == "zh" else ("even", "odd")[n % 2]


def _parity(rng: random.Random, lang: str, pool: Pool) -> Sample:
    n = rng.randint(1, 999)
    return Sample({"n": n}, parity(lang, n), C.exact(parity(lang, n), ignore_case=True))


def _count_chars(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", lang)
    return _number(len(word), {"word": word})


def _count_items(rng: random.Random, lang: str, pool: Pool) -> Sample:
    items = pool.some(rng, "item", lang, rng.randint(2, 7))
    return _number(len(items), {"items": SEP[lang].join(items)})


def _sort_numbers(rng: random.Random, lang: str, pool: Pool) -> Sample:
    nums = rng.sample(range(100), rng.randint(3, 6))
    descending = rng.random() < 0.5
    order = (("从小到大", "从大到小") if lang == "zh" else ("ascending", "descending"))[descending]
    out = [str(n) for n in sorted(nums, reverse=descending)]
    checker = C.regex(sequence_pattern(out), fullmatch=True)
    return Sample({"order": order, "nums": SEP[lang].join(map(str, nums))}, SEP[lang].join(out), checker)


def _sort_words(rng: random.Random, lang: str, pool: Pool) -> Sample:
    words = pool.some(rng, "word", "en", rng.randint(3, 5))
    out = sorted(words)
    checker = C.regex(sequence_pattern(out), fullmatch=True, ignore_case=True)
    return Sample({"words": ", ".join(words)}, ", ".join(out), checker)


_EMAIL_TEXTS = {
    "zh": ("有问题请联系{name}，邮箱是{x}，周一前回复。", "{name}的工作邮箱为{x}。", "报名表请发送至{x}，联系人：{name}。"),
    "en": ("For questions contact {name} at {x} before Monday.", "{name}'s work email is {x}.",
           "Send the form to {x}; the contact person is {name}."),
}
_PHONE_TEXTS = {
    "zh": ("请拨打{x}联系{name}。", "{name}的手机号是{x}，晚上可以打。", "预约电话：{x}，联系人{name}。"),
    "en": ("Call {name} at {x} after six.", "{name}'s phone number is {x}.",
           "To book a table, ring {x} and ask for {name}."),
}
_DATE_TEXTS = {
    "zh": ("会议定在{x}上午举行。", "{name}的生日是{x}。", "项目将于{x}结束。"),
    "en": ("The meeting is on {x} in the morning.", "{name} was born on {x}.", "The project ends on {x}."),
}


def phone(rng: random.Random, lang: str) -> str:
    if lang == "zh":
        return "1" + rng.choice("35789") + "".join(rng.choice("0123456789") for _ in range(9))
    return f"{rng.randint(200, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"


def date(rng: random.Random, lang: str) -> tuple[str, str]:
    """(the date as written in `lang`, the same date as YYYY-MM-DD)."""
    y, m, d = rng.randint(2018, 2030), rng.randint(1, 12), rng.randint(1, 28)
    written = f"{y}年{m}月{d}日" if lang == "zh" else f"{MONTHS[m - 1]} {d}, {y}"
    return written, f"{y:04d}-{m:02d}-{d:02d}"


def _extract(texts: dict[str, tuple[str, ...]], value: str, answer: str, rng: random.Random,
             lang: str, pool: Pool) -> Sample:
    text = rng.choice(texts[lang]).format(name=pool.one(rng, "name", lang), x=value)
    return Sample({"text": text}, answer, C.exact(answer, ignore_case=True))


def _extract_email(rng: random.Random, lang: str, pool: Pool) -> Sample:
    address = pool.email(rng)
    return _extract(_EMAIL_TEXTS, address, address, rng, lang, pool)


def _extract_phone(rng: random.Random, lang: str, pool: Pool) -> Sample:
    number = phone(rng, lang)
    return _extract(_PHONE_TEXTS, number, number, rng, lang, pool)


def _extract_date(rng: random.Random, lang: str, pool: Pool) -> Sample:
    written, iso = date(rng, lang)
    return _extract(_DATE_TEXTS, written, iso, rng, lang, pool)


_PROFILE_TEXTS = {
    "zh": ("{name}住在{city}，今年{age}岁。", "{name}，{age}岁，来自{city}。"),
    "en": ("{name} lives in {city} and is {age} years old.", "{name}, age {age}, from {city}."),
}
PROFILE_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "city": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "city", "age"],
    "additionalProperties": False,
}


def profile(rng: random.Random, lang: str, pool: Pool) -> tuple[str, dict]:
    """(a sentence about a person, the same facts as a JSON-ready dict)."""
    fields = {"name": pool.one(rng, "name", lang), "city": pool.one(rng, "city", lang), "age": rng.randint(18, 80)}
    return rng.choice(_PROFILE_TEXTS[lang]).format(**fields), fields


def _to_json(rng: random.Random, lang: str, pool: Pool) -> Sample:
    text, fields = profile(rng, lang, pool)
    answer = json.dumps(fields, ensure_ascii=False)
    return Sample({"text": text}, answer, C.json_schema(PROFILE_SCHEMA, equals=fields))


def as_list(items: list[str], numbered: bool) -> str:
    return "\n".join(f"{i}. {x}" if numbered else f"- {x}" for i, x in enumerate(items, 1))


def _list(numbered: bool):
    def make(rng: random.Random, lang: str, pool: Pool) -> Sample:
        items = pool.some(rng, "item", lang, rng.randint(3, 5))
        checker = C.regex(list_pattern(items, numbered), fullmatch=True, ignore_case=True)
        return Sample({"items": join_items(items, lang)}, as_list(items, numbered), checker)

    return make


def _uppercase(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", "en")
    return Sample({"word": word}, word.upper(), C.exact(word.upper()))


def _lowercase(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", "en")
    shown = word.upper() if rng.random() < 0.5 else word.capitalize()
    return Sample({"word": shown}, word, C.exact(word))


def _reverse_word(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", lang)
    return Sample({"word": word}, word[::-1], C.exact(word[::-1]))


def _first_letter(rng: random.Random, lang: str, pool: Pool) -> Sample:
    word = pool.one(rng, "word", lang)
    return Sample({"word": word}, word[0], C.exact(word[0], ignore_case=True))


def _family(name: str, description: str, zh: tuple[str, ...], en: tuple[str, ...], make) -> Family:
    """A skills family; the last phrasing of each language is held out for the test split."""
    return Family(name, "skills", description, {"zh": zh[:-1], "en": en[:-1]}, {"zh": zh[-1:], "en": en[-1:]}, make)


SKILL_FAMILIES = (
    _family("add", "Add two numbers; answer with the number.",
            ("{a}加{b}等于多少？", "计算{a}+{b}。", "请算一下{a}加上{b}的结果。", "{a}和{b}的和是多少？", "求{a}与{b}相加的结果，只写数字。",
             "把{a}同{b}合起来，总数为几？"),
            ("What is {a} plus {b}?", "Calculate {a} + {b}.", "Please add {a} and {b}.", "What is the sum of {a} and {b}?",
             "Add {a} to {b} and give only the number.", "If you combine {a} with {b}, what total do you get?"),
            _add),
    _family("subtract", "Subtract one number from another; answer with the number.",
            ("{a}减{b}等于多少？", "计算{a}-{b}。", "请算一下{a}减去{b}的结果。", "{a}和{b}的差是多少？", "从{a}里减掉{b}，结果是几？",
             "{a}拿走{b}之后还剩多少？"),
            ("What is {a} minus {b}?", "Calculate {a} - {b}.", "Please subtract {b} from {a}.",
             "What is the difference between {a} and {b}?", "Take {b} away from {a}. What is left?",
             "Starting with {a}, remove {b}; how many remain?"),
            _subtract),
    _family("multiply", "Multiply two small numbers; answer with the number.",
            ("{a}乘以{b}等于多少？", "计算{a}×{b}。", "请算一下{a}乘{b}。", "{a}和{b}的积是多少？", "求{a}与{b}相乘的结果。",
             "{a}的{b}倍是多少？"),
            ("What is {a} times {b}?", "Calculate {a} × {b}.", "Please multiply {a} by {b}.",
             "What is the product of {a} and {b}?", "Multiply {a} and {b} and give only the number.",
             "How much is {b} groups of {a}?"),
            _multiply),
    _family("parity", "Say whether a number is odd or even.",
            ("{n}是奇数还是偶数？", "判断{n}是奇数还是偶数。", "{n}是偶数吗？请回答奇数或偶数。", "数字{n}属于奇数还是偶数？",
             "{n}这个数是奇数还是偶数？", "请辨别整数{n}的奇偶性。"),
            ("Is {n} odd or even?", "Tell me whether {n} is odd or even.", "Is the number {n} even or odd?",
             "Decide if {n} is an odd or an even number.", "{n}: odd or even?", "Classify the integer {n} by parity."),
            _parity),
    _family("count_chars", "Count the letters of an English word, or the characters of a Chinese word.",
            ("“{word}”有几个字？", "数一数“{word}”一共有多少个汉字。", "“{word}”这个词由几个字组成？", "请问“{word}”包含几个字？",
             "“{word}”是几个字的词？", "统计一下词语「{word}」的字数。"),
            ('How many letters are in the word "{word}"?', 'Count the letters in "{word}".',
             'How many characters does "{word}" have?', "Tell me the number of letters in {word}.",
             'What is the length of the word "{word}" in letters?', "Give the letter count for the term {word}."),
            _count_chars),
    _family("count_items", "Count the items of a list given in the instruction.",
            ("下面列出了几样东西：{items}", "数一数这里有多少种东西：{items}", "{items}，一共是几样？", "请数出清单中的项目数量：{items}",
             "这串清单里有几项？{items}", "以下罗列的物品总共多少件：{items}"),
            ("How many items are listed here: {items}?", "Count the items: {items}.", "{items}. How many things is that?",
             "Please count how many things are in this list: {items}", "How many things are in the list {items}?",
             "Tally the entries of the following list: {items}"),
            _count_items),
    _family("sort_numbers", "Sort numbers in ascending or descending order.",
            ("把这些数字{order}排序：{nums}", "请将下面的数按{order}的顺序排列：{nums}", "{nums}，请{order}排列。",
             "按{order}的顺序重新排列：{nums}", "对这组数字进行{order}排序：{nums}", "将数列{nums}依照{order}重排后输出。"),
            ("Sort these numbers in {order} order: {nums}", "Please arrange the following numbers in {order} order: {nums}",
             "{nums} — sort them in {order} order.", "Put these numbers in {order} order: {nums}",
             "Order the list {nums} ({order}).", "Rearrange the sequence {nums} so it runs in {order} fashion."),
            _sort_numbers),
    _family("sort_words", "Sort English words alphabetically.",
            ("把下面的英文单词按字母顺序排列：{words}", "请按字母表顺序给这些单词排序：{words}", "{words}，按字母顺序排好。",
             "将这些单词按A到Z的顺序排列：{words}", "按首字母顺序重新排列：{words}", "依照字典序整理这组英文词：{words}"),
            ("Sort these words alphabetically: {words}", "Please put the following words in alphabetical order: {words}",
             "{words} — arrange them from A to Z.", "Alphabetize this list: {words}", "Order these words by the alphabet: {words}",
             "Rearrange {words} the way a dictionary would list them."),
            _sort_words),
    _family("extract_email", "Extract the email address from a sentence.",
            ("从这句话中找出电子邮箱地址：{text}", "提取下面文字里的邮箱：{text}", "{text}\n上面这句话里的邮箱地址是什么？",
             "请只输出其中的邮箱地址：{text}", "找出邮箱：{text}", "这段话提到了一个电邮，把它单独摘出来：{text}"),
            ("Find the email address in this sentence: {text}", "Extract the email from the text below: {text}",
             "{text}\nWhat is the email address in the sentence above?", "Output only the email address: {text}",
             "Email address in: {text}", "Pull out the electronic mail contact mentioned here: {text}"),
            _extract_email),
    _family("extract_phone", "Extract the phone number from a sentence, as written.",
            ("从这句话中找出电话号码：{text}", "提取下面文字里的手机号：{text}", "{text}\n这句话里的电话号码是多少？",
             "请只输出其中的电话号码：{text}", "找出电话号码：{text}", "把这段话中出现的联络号码单独写出来：{text}"),
            ("Find the phone number in this sentence: {text}", "Extract the phone number from the text below: {text}",
             "{text}\nWhat is the phone number in the sentence above?", "Output only the phone number: {text}",
             "Phone number in: {text}", "Which digits would I dial to reach the person here? {text}"),
            _extract_phone),
    _family("extract_date", "Extract the date from a sentence and write it as YYYY-MM-DD.",
            ("从这句话中找出日期，用YYYY-MM-DD格式写出：{text}", "提取下面文字中的日期，格式为YYYY-MM-DD：{text}",
             "{text}\n这句话里的日期是哪天？请用YYYY-MM-DD格式回答。", "把句子里的日期转成YYYY-MM-DD：{text}",
             "请以YYYY-MM-DD格式输出其中的日期：{text}", "读一读这段话，把提到的那一天改写成年-月-日（YYYY-MM-DD）：{text}"),
            ("Find the date in this sentence and write it as YYYY-MM-DD: {text}",
             "Extract the date from the text below in YYYY-MM-DD format: {text}",
             "{text}\nWhich date is in the sentence above? Answer as YYYY-MM-DD.", "Convert the date in this sentence to YYYY-MM-DD: {text}",
             "Output the date as YYYY-MM-DD: {text}", "Which day is mentioned here? Express it in ISO form (YYYY-MM-DD): {text}"),
            _extract_date),
    _family("to_json", "Convert a sentence about a person to a JSON object with name, city and age.",
            ("把下面的信息转换成JSON，键为name、city和age：{text}", "请用JSON格式表示这段话（键：name, city, age）：{text}",
             "{text}\n把上面的信息写成JSON，包含name、city、age。", "将以下内容整理成JSON对象，字段是name、city、age：{text}",
             "输出这句话对应的JSON（name/city/age）：{text}", "请把这条人物资料编码为一个JSON对象，需含name、city、age三个键：{text}"),
            ("Convert this to JSON with keys name, city and age: {text}",
             "Please represent this sentence as JSON (keys: name, city, age): {text}",
             "{text}\nWrite the information above as JSON with name, city and age.",
             "Turn the following into a JSON object with the fields name, city, age: {text}",
             "Output the JSON for this sentence (name/city/age): {text}",
             "Encode the person described below as a JSON object having the fields name, city, age: {text}"),
            _to_json),
    _family("bullet_list", "Rewrite the items of a sentence as a bulleted list, one per line.",
            ("把下面的内容改写成项目符号列表：{items}", "请用“- ”开头的列表列出这些东西：{items}", "{items}，请整理成无序列表。",
             "将这些项目写成列表，每行一个，以“- ”开头：{items}", "列成要点：{items}", "把{items}拆开，每样单独占一行并冠以短横线。"),
            ("Turn this into a bulleted list: {items}", "Please list these as bullet points: {items}",
             "{items} — write them as a bulleted list.", "Make a bullet list, one item per line: {items}",
             "Rewrite as bullet points: {items}", "Break {items} apart so each sits on its own dash-prefixed line."),
            _list(numbered=False)),
    _family("numbered_list", "Rewrite the items of a sentence as a numbered list, one per line.",
            ("把下面的内容改写成编号列表：{items}", "请用1. 2. 3.的编号列出这些东西：{items}", "{items}，请整理成有序列表。",
             "将这些项目写成编号列表，每行一个：{items}", "按顺序编号列出：{items}", "给{items}逐个标上序号，一行写一个。"),
            ("Turn this into a numbered list: {items}", "Please list these with numbers 1, 2, 3: {items}",
             "{items} — write them as a numbered list.", "Make a numbered list, one item per line: {items}",
             "Rewrite as a numbered list: {items}", "Enumerate {items} with a running number in front of every line."),
            _list(numbered=True)),
    _family("uppercase", "Write an English word in capital letters.",
            ("把“{word}”转换成大写字母。", "请把单词{word}全部改成大写。", "{word}的大写形式是什么？", "将{word}写成大写。",
             "用大写字母写出{word}。", "令{word}的每个字母都变为大写后输出。"),
            ('Convert "{word}" to uppercase.', "Write the word {word} in capital letters.", "What is {word} in uppercase?",
             "Please make {word} all caps.", "Uppercase this word: {word}", "Shout the term {word} by capitalizing every letter of it."),
            _uppercase),
    _family("lowercase", "Write an English word in small letters.",
            ("把“{word}”转换成小写字母。", "请把单词{word}全部改成小写。", "{word}的小写形式是什么？", "将{word}写成小写。",
             "用小写字母写出{word}。", "去掉{word}里所有的大写，原样输出其余部分。"),
            ('Convert "{word}" to lowercase.', "Write the word {word} in small letters.", "What is {word} in lowercase?",
             "Please make {word} all lowercase.", "Lowercase this word: {word}", "Rewrite {word} with no capital letters at all."),
            _lowercase),
    _family("reverse_word", "Write a word backwards (letters in English, characters in Chinese).",
            ("把“{word}”倒过来写。", "请将“{word}”的字序颠倒。", "“{word}”反过来怎么写？", "倒序输出“{word}”。",
             "把“{word}”这几个字从后往前写。", "从末尾读起，逐字抄下「{word}」。"),
            ('Reverse the word "{word}".', "Write {word} backwards.", 'Spell "{word}" in reverse order.',
             "What is {word} written backwards?", "Reverse the letters of {word}.",
             "Read {word} from its last letter to its first and write what you get."),
            _reverse_word),
    _family("first_letter", "Give the first letter of an English word, or the first character of a Chinese word.",
            ("“{word}”的第一个字是什么？", "请写出“{word}”的首字。", "“{word}”这个词以哪个字开头？", "说出“{word}”开头的那个字。",
             "“{word}”打头的字是？", "「{word}」最前面的字是哪一个？"),
            ('What is the first letter of "{word}"?', "Which letter does {word} start with?",
             "Give the initial letter of the word {word}.", "Tell me the first letter of {word}.",
             "{word} begins with which letter?", "Name the opening character of the term {word}."),
            _first_letter),
)
