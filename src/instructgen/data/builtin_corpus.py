"""The pretraining corpus of the built-in task world: short documents in Chinese and English
about the world's (train) entities — people, cities, shops and products, FAQ pages, poems,
number facts, and worked examples of the skills in prose. It never names a test entity and
never uses a test phrasing, so the test split stays unseen."""

from __future__ import annotations

import json
import random

from instructgen.data import builtin_apps as apps
from instructgen.data import builtin_skills as skills
from instructgen.data.builtin_procedural import make_entity
from instructgen.data.builtin_world import (
    DAYS,
    INTERESTS,
    LANGS,
    Pool,
    join_items,
    leaks_heldout,
)

_SEASONS = {"zh": ("春天", "夏天", "秋天", "冬天"), "en": ("spring", "summer", "autumn", "winter")}


def _person(rng: random.Random, lang: str, pool: Pool) -> str:
    text, f = skills.profile(rng, lang, pool)
    interest, (written, _) = rng.choice(INTERESTS[lang]), skills.date(rng, lang)
    n = f["name"]
    mail, tel = pool.email(rng, n if lang == "en" else None), skills.phone(rng, lang)
    if lang == "zh":
        return (
            f"{text}{n}喜欢{interest}，平时常用{pool.one(rng, 'product', lang)}。"
            f"{n}的邮箱是{mail}，电话是{tel}。{n}的生日是{written}。"
        )
    return (
        f"{text} {n} likes {interest} and often uses a {pool.one(rng, 'product', lang)}. "
        f"{n}'s email is {mail} and the phone number is {tel}. {n} was born on {written}."
    )


def _city(rng: random.Random, lang: str, pool: Pool) -> str:
    city, other = pool.some(rng, "city", lang, 2)
    a, b = pool.some(rng, "name", lang, 2)
    season = rng.choice(_SEASONS[lang])
    if lang == "zh":
        return (
            f"{city}是一座热闹的城市。{city}的{season}很美，很多人在{city}工作和生活。"
            f"{a}和{b}都住在{city}。从{city}出发，坐火车可以去{other}。"
        )
    return (
        f"{city} is a busy city. {city} is beautiful in {season}, and many people live and work "
        f"in {city}. {a} and {b} both live in {city}. From {city} you can take a train to {other}."
    )


def _product(rng: random.Random, lang: str, pool: Pool) -> str:
    shop, product = pool.one(rng, "shop", lang), pool.one(rng, "product", lang)
    facts = apps.faq_facts(rng)
    word = rng.choice(apps.SLOGAN_WORDS[lang])
    line = apps.slogan(rng, lang, product, word)
    if lang == "zh":
        return (
            f"{shop}出售{product}。{product}简单好用，广告语是：{line}"
            f"{product}保修{facts['w']}个月，签收后{facts['r']}天内可以退货。"
        )
    return (
        f"{shop} sells the {product}, which is simple to use. Slogan: {line} "
        f"The warranty on the {product} is {facts['w']} months, and returns are accepted "
        f"within {facts['r']} days."
    )


def _faq_page(rng: random.Random, lang: str, pool: Pool) -> str:
    shop, product = pool.one(rng, "shop", lang), pool.one(rng, "product", lang)
    entries = apps.faq(lang, product, apps.faq_facts(rng))
    if lang == "zh":
        return f"{shop}常见问题\n" + "\n".join(f"问：{q}\n答：{a}" for _, a, q in entries)
    return f"{shop} FAQ\n" + "\n".join(f"Q: {q}\nA: {a}" for _, a, q in entries)


def _poem(rng: random.Random, lang: str, pool: Pool) -> str:
    topic = pool.one(rng, "topic", lang)
    body = apps.poem(rng, lang, topic, rng.randint(2, 6))
    heading = (
        f"《{apps.title(rng, lang, topic)}》" if lang == "zh" else apps.title(rng, lang, topic)
    )
    return f"{heading}\n{body}"


def _numbers(rng: random.Random, lang: str, pool: Pool) -> str:
    facts = []
    for _ in range(rng.randint(3, 6)):
        a, b, n = rng.randint(1, 50), rng.randint(1, 50), rng.randint(1, 999)
        big, small = max(a, b) + 10, min(a, b)
        x, y = rng.randint(2, 12), rng.randint(2, 12)
        if lang == "zh":
            facts += rng.sample(
                [
                    f"{a}加{b}等于{a + b}。",
                    f"{big}减{small}等于{big - small}。",
                    f"{x}乘以{y}等于{x * y}。",
                    f"{n}是{skills.parity(lang, n)}。",
                ],
                2,
            )
        else:
            facts += rng.sample(
                [
                    f"{a} plus {b} equals {a + b}.",
                    f"{big} minus {small} equals {big - small}.",
                    f"{x} times {y} equals {x * y}.",
                    f"{n} is an {skills.parity(lang, n)} number.",
                ],
                2,
            )
    return ("" if lang == "zh" else " ").join(facts)


def _words(rng: random.Random, lang: str, pool: Pool) -> str:
    out = []
    for w in pool.some(rng, "word", "en", 3):
        if lang == "zh":
            out.append(
                f"单词{w}有{len(w)}个字母，第一个字母是{w[0]}，大写写作{w.upper()}，倒过来是{w[::-1]}。"
            )
        else:
            out.append(
                f"The word {w} has {len(w)} letters. It starts with {w[0]}. "
                f"In capitals it is {w.upper()}, and backwards it is {w[::-1]}."
            )
    if lang == "zh":
        for w in pool.some(rng, "word", "zh", 2):
            out.append(f"“{w}”有{len(w)}个字，第一个字是“{w[0]}”，倒过来是“{w[::-1]}”。")
    return ("" if lang == "zh" else " ").join(out)


def _lists(rng: random.Random, lang: str, pool: Pool) -> str:
    items = pool.some(rng, "item", lang, rng.randint(3, 5))
    nums = rng.sample(range(100), rng.randint(3, 6))
    words = pool.some(rng, "word", "en", 3)
    numbered = rng.random() < 0.5
    listed = skills.as_list(items, numbered)
    sep = skills.SEP[lang]
    ordered = sep.join(map(str, sorted(nums)))
    if lang == "zh":
        return (
            f"{join_items(items, lang)}一共是{len(items)}样东西，写成列表是：\n{listed}\n"
            f"数字{sep.join(map(str, nums))}从小到大排列是{ordered}。"
            f"单词{', '.join(words)}按字母顺序排列是{', '.join(sorted(words))}。"
        )
    return (
        f"{join_items(items, lang)} make {len(items)} things. As a list:\n{listed}\n"
        f"The numbers {sep.join(map(str, nums))} in ascending order are {ordered}. "
        f"The words {', '.join(words)} in alphabetical order are {', '.join(sorted(words))}."
    )


def _email(rng: random.Random, lang: str, pool: Pool) -> str:
    to, sender = pool.some(rng, "name", lang, 2)
    _, sentence = (s.format(d=rng.choice(DAYS[lang])) for s in rng.choice(apps.EVENTS[lang]))
    intro = (
        f"下面是{sender}写给{to}的一封邮件："
        if lang == "zh"
        else f"Here is an email from {sender} to {to}:"
    )
    return f"{intro}\n{apps.email(lang, to, sentence, sender)}"


def _service(rng: random.Random, lang: str, pool: Pool) -> str:
    name, product = pool.one(rng, "name", lang), pool.one(rng, "product", lang)
    order = str(rng.randint(100000, 999999))
    status = rng.choice(apps.STATUSES[lang])
    _, answer, question = rng.choice(apps.faq(lang, product, apps.faq_facts(rng)))
    if lang == "zh":
        return (
            f"顾客：{question}\n客服：您好，{answer}\n顾客：订单{order}到哪了？\n"
            f"客服：{apps.order_status(lang, order, status)}\n"
            f"顾客{name}说{product}有问题。\n客服：{apps.apology(lang, name, order)}"
        )
    return (
        f"Customer: {question}\nAgent: Hello! {answer}\nCustomer: Where is order {order}?\n"
        f"Agent: {apps.order_status(lang, order, status)}\n"
        f"The customer {name} reports a problem with the {product}.\nAgent: {apps.apology(lang, name, order)}"
    )


def _personal(rng: random.Random, lang: str, pool: Pool) -> str:
    name, city, product = (pool.one(rng, k, lang) for k in ("name", "city", "product"))
    i = rng.randrange(len(INTERESTS[lang]))
    interest, item = INTERESTS[lang][i], pool.catalog_item(rng, lang, i)
    line = apps.pitch(rng, lang, name, city, product)
    if lang == "zh":
        return f"{name}住在{city}，喜欢{interest}。{apps.recommendation(lang, name, item, interest)}给{name}的文案：{line}"
    return (
        f"{name} lives in {city} and likes {interest}. {apps.recommendation(lang, name, item, interest)} "
        f"A message for {name}: {line}"
    )


def _json(rng: random.Random, lang: str, pool: Pool) -> str:
    text, fields = skills.profile(rng, lang, pool)
    written, iso = skills.date(rng, lang)
    data = json.dumps(fields, ensure_ascii=False)
    if lang == "zh":
        return f"{text}用JSON表示是：{data}\n日期{written}也可以写成{iso}。"
    return f"{text} As JSON: {data}\nThe date {written} can also be written as {iso}."


_ECHOES = {
    "zh": (
        "跟我读：{x}。再读一遍：{x}。",
        "抄写一遍：\n{x}\n{x}",
        "名单是{x}，再念一次：{x}。",
        "{x}\n{x}\n{x}",
    ),
    "en": (
        "Say it twice: {x}. Again: {x}.",
        "Copy this line:\n{x}\n{x}",
        "The list is {x}; once more, {x}.",
        "{x}\n{x}\n{x}",
    ),
}
_CODE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789abcdefghijkmnpqrstuvwxyz"


def _echo(rng: random.Random, lang: str, pool: Pool) -> str:
    """A copy drill: made-up entities or random codes, then the same again. Only copying can
    predict them the second time, and copying from the instruction is what the tasks need."""
    kind = rng.choice(("name", "word", "city", "item", "topic", "product", "code"))
    xs = [
        "".join(rng.choice(_CODE_CHARS) for _ in range(rng.randint(3, 8)))
        if kind == "code"
        else make_entity(rng, kind, lang)
        for _ in range(rng.randint(3, 8))
    ]
    return rng.choice(_ECHOES[lang]).format(x=skills.SEP[lang].join(xs))


DOCUMENT_KINDS = {
    "person": _person,
    "city": _city,
    "product": _product,
    "faq": _faq_page,
    "poem": _poem,
    "numbers": _numbers,
    "words": _words,
    "lists": _lists,
    "email": _email,
    "service": _service,
    "personal": _personal,
    "json": _json,
    "echo": _echo,
}
ECHO_SHARE = 0.4  # of the documents; the other kinds share the rest equally


def corpus(rng: random.Random, n_docs: int, made: float = 0.0) -> list[dict[str, str]]:
    """`n_docs` documents, alternating Chinese and English: ``{"text": ..., "lang": ...}``;
    `made` is the share of made-up entities (builtin_procedural). No document names a held-out
    entity."""
    pool, kinds = Pool(heldout=False, made=made), list(DOCUMENT_KINDS.values())
    weights = [ECHO_SHARE if k is _echo else (1 - ECHO_SHARE) / (len(kinds) - 1) for k in kinds]
    docs = []
    for i in range(n_docs):
        lang = LANGS[i % len(LANGS)]
        while leaks_heldout(text := rng.choices(kinds, weights)[0](rng, lang, pool)):
            pass
        docs.append({"text": text, "lang": lang})
    return docs
