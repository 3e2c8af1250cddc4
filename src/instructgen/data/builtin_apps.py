"""Task families of the three application areas of the brief (6.1–6.3): a writing assistant,
a customer-service bot, and personalized content. Each answer is short, regular and checkable.

The text builders (`poem`, `slogan`, `title`, `email`, `faq`, ...) are shared with the
pretraining corpus, so the corpus shows the same kinds of texts the tasks ask for.
"""

from __future__ import annotations

import random
import re

from instructgen.data import checkers as C
from instructgen.data.builtin_world import (
    DAYS,
    EN_NUMERALS,
    INTERESTS,
    ZH_NUMERALS,
    Pool,
    Sample,
    family,
    title_case,
)

# ----------------------------------------------------------------------------------------------
# Writing

_POEM_TOPIC_LINES = {
    "zh": (
        "{t}来到我的身边",
        "我把{t}写进心里",
        "{t}的声音很轻很轻",
        "梦里又见到{t}",
        "{t}陪我走过小路",
        "我爱这美丽的{t}",
        "{t}在远方向我招手",
        "谁能忘记{t}",
    ),
    "en": (
        "Softly I think of {t}",
        "I hold {t} in my heart",
        "I dream of {t} at night",
        "I walk with {t} today",
        "Oh {t}, so bright and kind",
        "I still remember {t}",
        "I hear {t} calling me home",
        "I sing a song of {t}",
    ),
}
_POEM_LINES = {
    "zh": (
        "风吹过安静的山岗",
        "小河唱着歌向前走",
        "星星在夜空里眨眼",
        "心里开出一朵小花",
        "阳光洒满了窗台",
        "时间慢慢地流过",
        "鸟儿飞向蓝天",
        "我轻轻地笑了",
        "远方有一盏灯",
        "日子像歌一样长",
    ),
    "en": (
        "The wind runs over the hill",
        "A small stream sings along the way",
        "The sky is full of gentle light",
        "A flower opens in my heart",
        "The sun is warm upon the door",
        "Time moves slowly by",
        "Birds fly into the blue",
        "I smile and close my eyes",
        "A lamp is glowing far away",
        "The days are long like songs",
    ),
}


def poem(rng: random.Random, lang: str, topic: str, n_lines: int) -> str:
    """A poem of `n_lines` lines whose first and last lines name the topic."""
    with_topic = [s.format(t=topic) for s in rng.sample(_POEM_TOPIC_LINES[lang], 2)]
    middle = rng.sample(_POEM_LINES[lang], n_lines - 2) if n_lines > 2 else []
    return "\n".join([with_topic[0], *middle, with_topic[1]][:n_lines])


def _poem_topic(rng: random.Random, lang: str, pool: Pool) -> Sample:
    topic = pool.one(rng, "topic", lang)
    checker = C.all_of(C.contains_all([topic], ignore_case=True), C.lines(min=2, max=8))
    return Sample({"topic": topic}, poem(rng, lang, topic, 4), checker)


def _poem_lines(rng: random.Random, lang: str, pool: Pool) -> Sample:
    topic, n = pool.one(rng, "topic", lang), rng.randint(2, 6)
    number = ZH_NUMERALS[n] if lang == "zh" else EN_NUMERALS[n]
    checker = C.all_of(C.lines(min=n, max=n), C.contains_all([topic], ignore_case=True))
    return Sample({"topic": topic, "n": number}, poem(rng, lang, topic, n), checker)


SLOGAN_WORDS = {
    "zh": ("轻松", "简单", "快乐", "安心", "美好", "自在", "温暖", "方便", "放心", "舒服"),
    "en": ("easy", "simple", "happy", "bright", "fresh", "smart", "calm", "warm"),
}
_SLOGANS = {
    "zh": ("{p}，让生活更{w}。", "选择{p}，每天都{w}。", "有了{p}，一切更{w}。"),
    "en": (
        "Life is {w} with the {p}.",
        "The {p}: every day feels {w}.",
        "Make your day {w} with the {p}.",
    ),
}


def slogan(rng: random.Random, lang: str, product: str, word: str) -> str:
    return rng.choice(_SLOGANS[lang]).format(p=product, w=word)


def _slogan(rng: random.Random, lang: str, pool: Pool) -> Sample:
    product, word = pool.one(rng, "product", lang), rng.choice(SLOGAN_WORDS[lang])
    checker = C.all_of(C.contains_all([product, word], ignore_case=True), C.lines(max=1))
    return Sample({"product": product, "word": word}, slogan(rng, lang, product, word), checker)


_TITLES = {
    "zh": ("{t}的故事", "走近{t}", "我眼中的{t}", "{t}之美", "你好，{t}", "写给{t}的信"),
    "en": (
        "The Beauty of {T}",
        "A Day with {T}",
        "Notes on {T}",
        "Why {T} Matters",
        "My Story of {T}",
    ),
}


def title(rng: random.Random, lang: str, topic: str) -> str:
    return rng.choice(_TITLES[lang]).format(t=topic, T=title_case(topic))


def _title(rng: random.Random, lang: str, pool: Pool) -> Sample:
    topic = pool.one(rng, "topic", lang)
    if lang == "zh":
        k = rng.choice((10, 12, 15))
        length = C.regex(rf"[^\n]{{1,{k}}}", fullmatch=True)
    else:
        k = rng.choice((6, 7, 8))
        length = C.regex(rf"\S+(?:[ \t]+\S+){{0,{k - 1}}}", fullmatch=True)
    checker = C.all_of(C.contains_all([topic], ignore_case=True), length)
    return Sample({"topic": topic, "k": k}, title(rng, lang, topic), checker)


# (what the instruction says, the sentence of the email); {d} is a day of the week.
EVENTS = {
    "zh": (
        ("会议改到{d}", "会议改到{d}了。"),
        ("报告已经写好了", "报告已经写好了。"),
        ("包裹会在{d}送到", "包裹会在{d}送到。"),
        ("{d}下午一起喝茶", "{d}下午一起喝茶吧。"),
        ("项目{d}上线", "项目将在{d}上线。"),
    ),
    "en": (
        ("the meeting has moved to {d}", "The meeting has moved to {d}."),
        ("the report is ready", "The report is ready."),
        ("the package will arrive on {d}", "The package will arrive on {d}."),
        ("we can have tea on {d} afternoon", "We can have tea on {d} afternoon."),
        ("the project goes live on {d}", "The project goes live on {d}."),
    ),
}


def email(lang: str, to: str, sentence: str, sender: str) -> str:
    if lang == "zh":
        return f"{to}，你好！\n{sentence}\n祝好！\n{sender}"
    return f"Hi {to},\n{sentence}\nBest regards,\n{sender}"


def _email(rng: random.Random, lang: str, pool: Pool) -> Sample:
    to, sender = pool.some(rng, "name", lang, 2)
    day = rng.choice(DAYS[lang])
    event, sentence = (s.format(d=day) for s in rng.choice(EVENTS[lang]))
    facts = [to, sender] + ([day] if day in event else [])
    if lang == "zh":
        greeting, sign_off = C.regex("你好|您好|亲爱的"), C.regex("祝好|此致|敬礼|谢谢")
    else:
        greeting = C.regex(rf"^\s*(hi|hello|dear)\s+{re.escape(to)}", ignore_case=True)
        sign_off = C.regex(r"regards|sincerely|thanks|cheers|best", ignore_case=True)
    signed = C.regex(rf"{re.escape(sender)}\s*$")
    checker = C.all_of(C.contains_all(facts), greeting, sign_off, signed)
    slots = {"name": to, "event": event, "sender": sender}
    return Sample(slots, email(lang, to, sentence, sender), checker)


# ----------------------------------------------------------------------------------------------
# Customer service

# (topic, answer, question) per FAQ entry; {p} product, {r} return days, {f} free-shipping threshold,
# {w} warranty months, {h1}/{h2} opening hours.
_FAQ = {
    "zh": (
        ("退货", "签收后{r}天内可以无理由退货。", "{p}收到后多久内可以退货？"),
        ("运费", "订单满{f}元包邮。", "订单满多少钱可以包邮？"),
        ("保修", "{p}保修{w}个月。", "{p}的保修期是多久？"),
        ("服务时间", "客服每天{h1}点到{h2}点在线。", "你们的客服几点在线？"),
    ),
    "en": (
        (
            "Returns",
            "Items can be returned within {r} days of delivery.",
            "How many days do I have to return the {p}?",
        ),
        (
            "Shipping",
            "Shipping is free on orders over ${f}.",
            "How much do I need to spend for free shipping?",
        ),
        (
            "Warranty",
            "The warranty on the {p} is {w} months.",
            "How long is the warranty on the {p}?",
        ),
        (
            "Hours",
            "Support is available every day from {h1}:00 to {h2}:00.",
            "When is customer support available?",
        ),
    ),
}


def faq_facts(rng: random.Random) -> dict[str, int]:
    return {
        "r": rng.choice((7, 14, 15, 30)),
        "f": rng.choice((49, 59, 88, 99, 199)),
        "w": rng.choice((6, 12, 18, 24)),
        "h1": rng.choice((8, 9, 10)),
        "h2": rng.choice((18, 20, 21, 22)),
    }


def faq(lang: str, product: str, facts: dict[str, int]) -> list[tuple[str, str, str]]:
    """(topic, answer, question) for each FAQ entry of a shop selling `product`."""
    return [(t, a.format(p=product, **facts), q.format(p=product)) for t, a, q in _FAQ[lang]]


def _faq_checker(lang: str, topic: int, facts: dict[str, int]) -> dict:
    """The FAQ's fact, written as in the answer, with no digit glued on either side."""
    n = r"(?<!\d){}(?!\d)"
    unit = {
        "zh": (r"\s*天", r"\s*元", r"\s*个?月", r"\s*[点:：]"),
        "en": (r"[\s-]*days?", "", r"[\s-]*months?", r"\s*(?::00|am|pm|o'clock)?"),
    }[lang][topic]
    values = [[facts["r"]], [facts["f"]], [facts["w"]], [facts["h1"], facts["h2"]]][topic]
    return C.all_of(*(C.regex(n.format(v) + unit, ignore_case=True) for v in values))


def _faq_answer(rng: random.Random, lang: str, pool: Pool) -> Sample:
    shop, product, facts = (
        pool.one(rng, "shop", lang),
        pool.one(rng, "product", lang),
        faq_facts(rng),
    )
    entries = faq(lang, product, facts)
    topic = rng.randrange(len(entries))
    if lang == "zh":
        head = f"你是{shop}的客服助手，请根据常见问题回答顾客。\n常见问题："
        hello = "您好，"
    else:
        head = f"You are the customer service assistant of {shop}. Answer using the FAQ.\nFAQ:"
        hello = "Hello! "
    colon = "：" if lang == "zh" else ": "
    body = "\n".join(f"{i}. {t}{colon}{a}" for i, (t, a, _) in enumerate(entries, 1))
    answer = hello + entries[topic][1]
    return Sample(
        {"question": entries[topic][2]}, answer, _faq_checker(lang, topic, facts), f"{head}\n{body}"
    )


_PROBLEMS = {
    "zh": ("坏了", "一直没送到", "发错了颜色"),
    "en": ("arrived broken", "never arrived", "came in the wrong color"),
}


def apology(lang: str, name: str, order: str) -> str:
    if lang == "zh":
        return (
            f"{name}您好，非常抱歉给您带来不便！订单{order}已经登记，我们会在24小时内联系您处理。"
        )
    return (
        f"Dear {name}, we are very sorry for the trouble. Order {order} has been logged "
        "and we will contact you within 24 hours."
    )


def _complaint(rng: random.Random, lang: str, pool: Pool) -> Sample:
    shop, name, product = (pool.one(rng, k, lang) for k in ("shop", "name", "product"))
    order = str(rng.randint(100000, 999999))
    if lang == "zh":
        system = f"你是{shop}的客服，请礼貌地回复客户。客户姓名：{name}。"
        sorry = C.regex("抱歉|对不起|歉意")
    else:
        system = (
            f"You are a customer service agent at {shop}. Reply politely. Customer name: {name}."
        )
        sorry = C.regex("sorry|apologi[sz]e", ignore_case=True)
    slots = {"product": product, "problem": rng.choice(_PROBLEMS[lang]), "order": order}
    return Sample(
        slots, apology(lang, name, order), C.all_of(C.contains_all([name, order]), sorry), system
    )


STATUSES = {
    "zh": ("已发货", "待付款", "已签收", "已取消", "配送中", "已退款"),
    "en": ("shipped", "awaiting payment", "delivered", "cancelled", "out for delivery", "refunded"),
}


def order_status(lang: str, order: str, status: str) -> str:
    return f"订单{order}的状态是：{status}。" if lang == "zh" else f"Order {order} is {status}."


def _order_status(rng: random.Random, lang: str, pool: Pool) -> Sample:
    shop = pool.one(rng, "shop", lang)
    orders = [str(n) for n in rng.sample(range(100000, 1000000), 3)]
    statuses = rng.sample(STATUSES[lang], 3)
    if lang == "zh":
        table = "\n".join(f"订单{o}：{s}" for o, s in zip(orders, statuses))
        system = f"你是{shop}的客服。订单记录：\n{table}"
    else:
        table = "\n".join(f"Order {o}: {s}" for o, s in zip(orders, statuses))
        system = f"You are a support agent at {shop}. Order records:\n{table}"
    i = rng.randrange(3)
    checker = C.contains_all([orders[i], statuses[i]], ignore_case=True)
    return Sample({"order": orders[i]}, order_status(lang, orders[i], statuses[i]), checker, system)


# ----------------------------------------------------------------------------------------------
# Personalized content


def recommendation(lang: str, name: str, item: str, interest: str) -> str:
    if lang == "zh":
        return f"{name}，推荐您试试{item}，很适合喜欢{interest}的您。"
    return f"{name}, we recommend the {item}, a great pick for someone who loves {interest}."


def _recommend(rng: random.Random, lang: str, pool: Pool) -> Sample:
    name, city = pool.one(rng, "name", lang), pool.one(rng, "city", lang)
    picks = rng.sample(range(len(INTERESTS[lang])), 3)
    items = [pool.catalog_item(rng, lang, i) for i in picks]
    labels = [INTERESTS[lang][i] for i in picks]
    want = rng.randrange(3)
    if lang == "zh":
        system = f"用户画像：姓名{name}，住在{city}，喜欢{labels[want]}。"
        catalog = "商品目录：\n" + "\n".join(
            f"{i}. {x}（{c}）" for i, (x, c) in enumerate(zip(items, labels), 1)
        )
    else:
        system = f"User profile: name {name}, lives in {city}, likes {labels[want]}."
        catalog = "Catalogue:\n" + "\n".join(
            f"{i}. {x} ({c})" for i, (x, c) in enumerate(zip(items, labels), 1)
        )
    answer = recommendation(lang, name, items[want], labels[want])
    return Sample(
        {"catalog": catalog}, answer, C.contains_all([name, items[want]], ignore_case=True), system
    )


_PITCHES = {
    "zh": (
        "{n}，{c}的好日子，从{p}开始！",
        "{n}，在{c}也能轻松拥有{p}！",
        "{c}的{n}，{p}正在等你！",
    ),
    "en": (
        "{n}, great days in {c} start with the {p}!",
        "{n}, the {p} is ready for you in {c}!",
        "Hey {n}, {c} just got better with the {p}!",
    ),
}


def pitch(rng: random.Random, lang: str, name: str, city: str, product: str) -> str:
    return rng.choice(_PITCHES[lang]).format(n=name, c=city, p=product)


def _marketing(rng: random.Random, lang: str, pool: Pool) -> Sample:
    name, city, product = (pool.one(rng, k, lang) for k in ("name", "city", "product"))
    checker = C.all_of(C.contains_all([name, city, product], ignore_case=True), C.lines(max=2))
    return Sample(
        {"name": name, "city": city, "product": product},
        pitch(rng, lang, name, city, product),
        checker,
    )


# ----------------------------------------------------------------------------------------------
# The families

APP_FAMILIES = (
    family(
        "poem_topic",
        "writing",
        "Write a short poem about a topic (the brief's own example); the poem names the topic.",
        _poem_topic,
    ),
    family(
        "poem_lines",
        "writing",
        "Write a poem with an exact number of lines on a given topic.",
        _poem_lines,
    ),
    family(
        "slogan",
        "writing",
        "Write a one-line slogan for a product that uses a required word.",
        _slogan,
    ),
    family(
        "email",
        "writing",
        "Write a short email with a greeting, the recipient's name, the message and a sign-off.",
        _email,
    ),
    family(
        "title",
        "writing",
        "Write a title for an article on a topic, within a length limit.",
        _title,
    ),
    family(
        "faq_answer",
        "support",
        "Answer a customer's question from the shop's FAQ in the system message; the answer carries the FAQ's fact.",
        _faq_answer,
    ),
    family(
        "complaint",
        "support",
        "Reply to a complaint: apologise, address the customer by name, confirm the order number.",
        _complaint,
    ),
    family(
        "order_status",
        "support",
        "Look up an order in the records of the system message and state its status.",
        _order_status,
    ),
    family(
        "recommend",
        "personalize",
        "Recommend the catalogue item that matches the user profile, addressing the user by name.",
        _recommend,
    ),
    family(
        "marketing",
        "personalize",
        "Write a one-line personalized marketing message naming the customer, their city and the product.",
        _marketing,
    ),
)
