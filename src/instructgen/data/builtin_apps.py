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
    Family,
    Pool,
    Sample,
    sentence_case,
    title_case,
)

# ----------------------------------------------------------------------------------------------
# Writing

_POEM_TOPIC_LINES = {
    "zh": ("{t}来到我的身边", "我把{t}写进心里", "{t}的声音很轻很轻", "梦里又见到{t}",
           "{t}陪我走过小路", "我爱这美丽的{t}", "{t}在远方向我招手", "谁能忘记{t}"),
    "en": ("{T} comes to me softly", "I hold {t} in my heart", "I dream of {t} at night",
           "{T} walks with me today", "Oh {t}, so bright and kind", "I still remember {t}",
           "{T} is calling me home", "I sing a song of {t}"),
}
_POEM_LINES = {
    "zh": ("风吹过安静的山岗", "小河唱着歌向前走", "星星在夜空里眨眼", "心里开出一朵小花",
           "阳光洒满了窗台", "时间慢慢地流过", "鸟儿飞向蓝天", "我轻轻地笑了", "远方有一盏灯",
           "日子像歌一样长"),
    "en": ("The wind runs over the hill", "A small stream sings along the way",
           "The sky is full of gentle light", "A flower opens in my heart",
           "The sun is warm upon the door", "Time moves slowly by", "Birds fly into the blue",
           "I smile and close my eyes", "A lamp is glowing far away", "The days are long like songs"),
}


def poem(rng: random.Random, lang: str, topic: str, n_lines: int) -> str:
    """A poem of `n_lines` lines whose first and last lines name the topic."""
    slots = {"t": topic, "T": sentence_case(topic)}
    with_topic = [s.format(**slots) for s in rng.sample(_POEM_TOPIC_LINES[lang], 2)]
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


_SLOGAN_WORDS = {
    "zh": ("轻松", "简单", "快乐", "安心", "美好", "自在", "温暖", "方便", "放心", "舒服"),
    "en": ("easy", "simple", "happy", "bright", "fresh", "smart", "calm", "warm"),
}
_SLOGANS = {
    "zh": ("{p}，让生活更{w}。", "选择{p}，每天都{w}。", "有了{p}，一切更{w}。"),
    "en": ("Life is {w} with the {p}.", "The {p}: every day feels {w}.",
           "Make your day {w} with the {p}."),
}


def slogan(rng: random.Random, lang: str, product: str, word: str) -> str:
    return rng.choice(_SLOGANS[lang]).format(p=product, w=word)


def _slogan(rng: random.Random, lang: str, pool: Pool) -> Sample:
    product, word = pool.one(rng, "product", lang), rng.choice(_SLOGAN_WORDS[lang])
    checker = C.all_of(C.contains_all([product, word], ignore_case=True), C.lines(max=1))
    return Sample({"product": product, "word": word}, slogan(rng, lang, product, word), checker)


_TITLES = {
    "zh": ("{t}的故事", "走近{t}", "我眼中的{t}", "{t}之美", "你好，{t}", "写给{t}的信"),
    "en": ("The Beauty of {T}", "A Day with {T}", "Notes on {T}", "Why {T} Matters",
           "My Story of {T}"),
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
_EVENTS = {
    "zh": (("会议改到{d}", "会议改到{d}了。"), ("报告已经写好了", "报告已经写好了。"),
           ("包裹会在{d}送到", "包裹会在{d}送到。"), ("{d}下午一起喝茶", "{d}下午一起喝茶吧。"),
           ("项目{d}上线", "项目将在{d}上线。")),
    "en": (("the meeting has moved to {d}", "The meeting has moved to {d}."),
           ("the report is ready", "The report is ready."),
           ("the package will arrive on {d}", "The package will arrive on {d}."),
           ("we can have tea on {d} afternoon", "We can have tea on {d} afternoon."),
           ("the project goes live on {d}", "The project goes live on {d}.")),
}


def email(lang: str, to: str, sentence: str, sender: str) -> str:
    if lang == "zh":
        return f"{to}，你好！\n{sentence}\n祝好！\n{sender}"
    return f"Hi {to},\n{sentence}\nBest regards,\n{sender}"


def _email(rng: random.Random, lang: str, pool: Pool) -> Sample:
    to, sender = pool.some(rng, "name", lang, 2)
    day = rng.choice(DAYS[lang])
    event, sentence = (s.format(d=day) for s in rng.choice(_EVENTS[lang]))
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

# (question, answer) per FAQ topic; {p} product, {r} return days, {f} free-shipping threshold,
# {w} warranty months, {h1}/{h2} opening hours.
_FAQ = {
    "zh": (
        ("退货", "签收后{r}天内可以无理由退货。", "{p}收到后多久内可以退货？"),
        ("运费", "订单满{f}元包邮。", "订单满多少钱可以包邮？"),
        ("保修", "{p}保修{w}个月。", "{p}的保修期是多久？"),
        ("服务时间", "客服每天{h1}点到{h2}点在线。", "你们的客服几点在线？"),
    ),
    "en": (
        ("Returns", "Items can be returned within {r} days of delivery.",
         "How many days do I have to return the {p}?"),
        ("Shipping", "Shipping is free on orders over ${f}.",
         "How much do I need to spend for free shipping?"),
        ("Warranty", "The {p} has a {w}-month warranty.", "How long is the warranty on the {p}?"),
        ("Hours", "Support is available every day from {h1}:00 to {h2}:00.",
         "When is customer support available?"),
    ),
}


def faq_facts(rng: random.Random) -> dict[str, int]:
    return {"r": rng.choice((7, 14, 15, 30)), "f": rng.choice((49, 59, 88, 99, 199)),
            "w": rng.choice((6, 12, 18, 24)), "h1": rng.choice((8, 9, 10)),
            "h2": rng.choice((18, 20, 21, 22))}


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
    shop, product, facts = pool.one(rng, "shop", lang), pool.one(rng, "product", lang), faq_facts(rng)
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
    return Sample({"question": entries[topic][2]}, answer, _faq_checker(lang, topic, facts), f"{head}\n{body}")


_PROBLEMS = {"zh": ("坏了", "一直没送到", "发错了颜色"),
             "en": ("arrived broken", "never arrived", "came in the wrong color")}


def apology(lang: str, name: str, order: str) -> str:
    if lang == "zh":
        return f"{name}您好，非常抱歉给您带来不便！订单{order}已经登记，我们会在24小时内联系您处理。"
    return (f"Dear {name}, we are very sorry for the trouble. Order {order} has been logged "
            "and we will contact you within 24 hours.")


def _complaint(rng: random.Random, lang: str, pool: Pool) -> Sample:
    shop, name, product = (pool.one(rng, k, lang) for k in ("shop", "name", "product"))
    order = str(rng.randint(100000, 999999))
    if lang == "zh":
        system = f"你是{shop}的客服，请礼貌地回复客户。客户姓名：{name}。"
        sorry = C.regex("抱歉|对不起|歉意")
    else:
        system = f"You are a customer service agent at {shop}. Reply politely. Customer name: {name}."
        sorry = C.regex("sorry|apologi[sz]e", ignore_case=True)
    slots = {"product": product, "problem": rng.choice(_PROBLEMS[lang]), "order": order}
    return Sample(slots, apology(lang, name, order), C.all_of(C.contains_all([name, order]), sorry), system)


STATUSES = {"zh": ("已发货", "待付款", "已签收", "已取消", "配送中", "已退款"),
            "en": ("shipped", "awaiting payment", "delivered", "cancelled", "out for delivery", "refunded")}


def order_status(lang: str, order: str, status: str) -> str:
    return f"订单{order}的状态是：{status}。" if lang == "zh" else f"Order {order} is {status}."


def _order_status(rng: random.Random, lang: str, pool: Pool) -> Sample:
    shop = pool.one(rng, "shop", lang)
    orders = [str(rng.randint(100000, 999999)) for _ in range(3)]
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
        catalog = "商品目录：\n" + "\n".join(f"{i}. {x}（{c}）" for i, (x, c) in enumerate(zip(items, labels), 1))
    else:
        system = f"User profile: name {name}, lives in {city}, likes {labels[want]}."
        catalog = "Catalogue:\n" + "\n".join(f"{i}. {x} ({c})" for i, (x, c) in enumerate(zip(items, labels), 1))
    answer = recommendation(lang, name, items[want], labels[want])
    return Sample({"catalog": catalog}, answer, C.contains_all([name, items[want]], ignore_case=True), system)


_PITCHES = {
    "zh": ("{n}，{c}的好日子，从{p}开始！", "{n}，在{c}也能轻松拥有{p}！", "{c}的{n}，{p}正在等你！"),
    "en": ("{n}, great days in {c} start with the {p}!", "{n}, the {p} is ready for you in {c}!",
           "Hey {n}, {c} just got better with the {p}!"),
}


def pitch(rng: random.Random, lang: str, name: str, city: str, product: str) -> str:
    return rng.choice(_PITCHES[lang]).format(n=name, c=city, p=product)


def _marketing(rng: random.Random, lang: str, pool: Pool) -> Sample:
    name, city, product = (pool.one(rng, k, lang) for k in ("name", "city", "product"))
    checker = C.all_of(C.contains_all([name, city, product], ignore_case=True), C.lines(max=2))
    return Sample({"name": name, "city": city, "product": product}, pitch(rng, lang, name, city, product), checker)


# ----------------------------------------------------------------------------------------------
# The families

APP_FAMILIES = (
    Family(
        "poem_topic", "writing", "Write a short poem about a topic (the brief's own example); the poem names the topic.",
        {"zh": ("请用中文写一首关于{topic}的诗。", "写一首以{topic}为主题的诗。", "你能写一首关于{topic}的小诗吗？",
                "请围绕{topic}创作一首诗。", "以{topic}为题写一首诗吧。"),
         "en": ("Write a poem about {topic}.", "Please write a short poem about {topic}.",
                "Can you write a poem on the theme of {topic}?", "Compose a poem about {topic}.",
                "I would like a little poem about {topic}.")},
        {"zh": ("给我来一首描写{topic}的短诗。",), "en": ("Give me a few lines of verse describing {topic}.",)},
        _poem_topic,
    ),
    Family(
        "poem_lines", "writing", "Write a poem with an exact number of lines on a given topic.",
        {"zh": ("写一首{n}行的诗，主题是{topic}。", "请写一首关于{topic}的诗，一共{n}行。", "以{topic}为主题，写{n}行诗。",
                "创作一首{n}行的小诗，写{topic}。", "关于{topic}，写一首正好{n}行的诗。"),
         "en": ("Write a poem of {n} lines about {topic}.", "Please write a {n}-line poem about {topic}.",
                "Write exactly {n} lines of poetry about {topic}.", "Compose a poem about {topic} in {n} lines.",
                "I need a poem about {topic} that has {n} lines.")},
        {"zh": ("主题定为{topic}，诗句不多不少恰好{n}行，请动笔。",),
         "en": ("Pen some verse on {topic}; keep it to precisely {n} lines, no more and no fewer.",)},
        _poem_lines,
    ),
    Family(
        "slogan", "writing", "Write a one-line slogan for a product that uses a required word.",
        {"zh": ("为{product}写一句广告语，要用上“{word}”这个词。", "请给{product}想一句宣传口号，口号里要有“{word}”。",
                "写一句{product}的广告词，包含“{word}”。", "帮我为{product}设计一句口号，带上“{word}”这个词。",
                "用“{word}”这个词给{product}写一句口号。"),
         "en": ('Write a slogan for the {product} that uses the word "{word}".',
                'Please come up with a one-line slogan for the {product} including the word "{word}".',
                'Create an advertising slogan for the {product} with the word "{word}" in it.',
                'Give me a catchy slogan for the {product}; it must contain "{word}".',
                'Use the word "{word}" in a short slogan for the {product}.')},
        {"zh": ("请拟一条推广{product}的标语，务必出现“{word}”。",),
         "en": ('Invent a tagline promoting the {product} in which "{word}" appears.',)},
        _slogan,
    ),
    Family(
        "email", "writing", "Write a short email with a greeting, the recipient's name, the message and a sign-off.",
        {"zh": ("给{name}写一封简短的邮件，告诉对方{event}，落款是{sender}。", "请帮我写一封短邮件给{name}，内容是{event}，署名{sender}。",
                "写封邮件通知{name}：{event}。最后署名{sender}。", "帮{sender}给{name}写一封邮件，说明{event}。",
                "我是{sender}，请帮我给{name}写一封短邮件，告诉TA{event}。"),
         "en": ("Write a short email to {name} saying that {event}. Sign it as {sender}.",
                "Please write a brief email to {name} to tell them that {event}. Sign off as {sender}.",
                "Draft an email to {name}: {event}. It is from {sender}.",
                "Help {sender} write a short email to {name} explaining that {event}.",
                "I am {sender}. Write a short email to {name} letting them know that {event}.")},
        {"zh": ("代{sender}起草一封致{name}的简短电邮，主要说{event}。",),
         "en": ("On behalf of {sender}, compose a quick note by email informing {name} that {event}.",)},
        _email,
    ),
    Family(
        "title", "writing", "Write a title for an article on a topic, within a length limit.",
        {"zh": ("给一篇关于{topic}的文章起个标题，不超过{k}个字。", "请为一篇写{topic}的文章拟一个标题，字数不超过{k}。",
                "帮我想一个关于{topic}的文章标题，最多{k}个字。", "我写了一篇关于{topic}的文章，请起一个不超过{k}个字的标题。",
                "为主题是{topic}的文章取个标题，{k}个字以内。"),
         "en": ("Write a title for an article about {topic}, at most {k} words.",
                "Please suggest a title of no more than {k} words for an article about {topic}.",
                "Give my article about {topic} a title of at most {k} words.",
                "I wrote an article about {topic}. Write a title for it in {k} words or fewer.",
                "Come up with a short title (max {k} words) for an article on {topic}.")},
        {"zh": ("文章谈的是{topic}，请拟个题目，长度控制在{k}字之内。",),
         "en": ("Headline needed: an essay concerning {topic}, limited to {k} words.",)},
        _title,
    ),
    Family(
        "faq_answer", "support", "Answer a customer's question from the shop's FAQ in the system message; the answer carries the FAQ's fact.",
        {"zh": ("请根据常见问题回答：{question}", "{question}", "你好，我想问一下：{question}", "麻烦帮我看看，{question}",
                "客服你好，{question}"),
         "en": ("Based on the FAQ, answer: {question}", "{question}", "Hi, I have a question: {question}",
                "Could you help me? {question}", "Hello support, {question}")},
        {"zh": ("劳驾查一查贵店的规定：{question}",), "en": ("Per your store policy, kindly clarify this for me: {question}",)},
        _faq_answer,
    ),
    Family(
        "complaint", "support", "Reply to a complaint: apologise, address the customer by name, confirm the order number.",
        {"zh": ("我买的{product}{problem}，订单号是{order}，怎么办？", "订单{order}里的{product}{problem}，请帮我处理。",
                "你好，我的{product}{problem}。订单号{order}。", "{product}{problem}，太让人失望了！订单号：{order}",
                "我要投诉：订单{order}的{product}{problem}。"),
         "en": ("The {product} I bought {problem}. My order number is {order}. What can I do?",
                "Order {order}: the {product} {problem}. Please help.", "Hi, my {product} {problem}. Order number {order}.",
                "I am unhappy, the {product} {problem}! Order: {order}",
                "I want to complain: the {product} in order {order} {problem}.")},
        {"zh": ("真是糟心，{product}{problem}，单号{order}，给个说法吧。",),
         "en": ("Seriously, my {product} {problem} and I expect a fix for purchase #{order}.",)},
        _complaint,
    ),
    Family(
        "order_status", "support", "Look up an order in the records of the system message and state its status.",
        {"zh": ("我的订单{order}现在是什么状态？", "请帮我查一下订单{order}的状态。", "订单{order}到哪一步了？",
                "查询订单{order}。", "你好，订单{order}怎么样了？"),
         "en": ("What is the status of my order {order}?", "Please check the status of order {order}.",
                "Where is order {order} now?", "Look up order {order}.", "Hi, any update on order {order}?")},
        {"zh": ("烦请告知单号{order}目前的进度。",), "en": ("Kindly tell me how far along my purchase numbered {order} is.",)},
        _order_status,
    ),
    Family(
        "recommend", "personalize", "Recommend the catalogue item that matches the user profile, addressing the user by name.",
        {"zh": ("{catalog}\n请根据用户画像推荐一件商品。", "{catalog}\n从上面的目录里给这位用户挑一件合适的商品。",
                "{catalog}\n这位用户最可能喜欢哪件商品？请推荐给TA。", "请根据用户的喜好，从下面的商品中推荐一件：\n{catalog}",
                "帮这位用户选一件商品吧。\n{catalog}"),
         "en": ("{catalog}\nRecommend one product for this user based on the profile.",
                "{catalog}\nPick the item from the catalogue that suits this user.",
                "{catalog}\nWhich product would this user like most? Recommend it.",
                "Based on the user's interests, recommend one item from this list:\n{catalog}",
                "Choose a product for this user.\n{catalog}")},
        {"zh": ("结合此人的兴趣爱好，在以下清单中挑出一样最合其心意的东西：\n{catalog}",),
         "en": ("Taking this person's hobbies into account, select the single best match from the following:\n{catalog}",)},
        _recommend,
    ),
    Family(
        "marketing", "personalize", "Write a one-line personalized marketing message naming the customer, their city and the product.",
        {"zh": ("为{name}写一句{product}的营销文案，TA住在{city}。", "给住在{city}的{name}写一句推销{product}的话。",
                "请写一句个性化广告，对象是{city}的{name}，产品是{product}。", "{name}住在{city}，帮我写一句向TA推荐{product}的文案。",
                "写一条发给{name}的{product}促销短信，要提到{city}。"),
         "en": ("Write a marketing line about the {product} for {name}, who lives in {city}.",
                "Write a one-line promotion of the {product} for {name} in {city}.",
                "Please write a personalized ad for {name} from {city} about the {product}.",
                "{name} lives in {city}. Write a line recommending the {product} to them.",
                "Write a short promo text for {name} about the {product} that mentions {city}.")},
        {"zh": ("面向身处{city}的顾客{name}，撰写一则关于{product}的定制宣传语。",),
         "en": ("Craft a tailored pitch for the {product}, addressed to a shopper called {name} based in {city}.",)},
        _marketing,
    ),
)
