"""What the user says: the instruction phrasings of every built-in task family.

Per family and language: at least five phrasings for the train and val splits, and held-out
phrasings that only the test split uses (their wording occurs nowhere else, so a test score
measures instruction following, not memory). ``{slots}`` are filled by the family's generator
(builtin_apps.py, builtin_skills.py). The first Chinese and English poem phrasings are the
brief's own example: "请用中文写一首关于春天的诗。" / "Write a poem about spring."

This module holds the application families (writing, support, personalize) and the wrappers;
builtin_phrasings_skills.py holds the skill families. Train phrasings paraphrase the task in
everyday words; they avoid the distinctive wording of the held-out phrasings.
"""

from __future__ import annotations

import random

from instructgen.data.builtin_phrasings_skills import SKILL_PHRASINGS

# Greetings and closings put around a train or val prompt now and then, so that a model learns
# the task from the instruction's words rather than from where a prompt starts or ends.
WRAPPERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "zh": (
        ("你好，", "请帮个忙：", "麻烦你，", "任务：", "有件事想请你做。"),
        ("谢谢！", "谢谢。", "请直接回答。", "辛苦了。"),
    ),
    "en": (
        ("Hi! ", "Hello, ", "Quick task: ", "Please help. ", "I have a request. "),
        (" Thanks!", " Thank you.", " Just answer directly.", " Much appreciated."),
    ),
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
_APP_PHRASINGS: dict[str, dict] = {
    "poem_topic": {
        "zh": (
            "请用中文写一首关于{topic}的诗。",
            "写一首以{topic}为主题的诗。",
            "你能写一首关于{topic}的小诗吗？",
            "请围绕{topic}创作一首诗。",
            "以{topic}为题写一首诗吧。",
            "我想读一首关于{topic}的诗，请写给我。",
            "{topic}——请以此为题写首诗。",
            "帮我写首诗，题目是{topic}。",
            "能不能为{topic}作一首诗？",
            "请创作一首小诗，内容关于{topic}。",
            "写诗：{topic}。",
        ),
        "en": (
            "Write a poem about {topic}.",
            "Please write a short poem about {topic}.",
            "Can you write a poem on the theme of {topic}?",
            "Compose a poem about {topic}.",
            "I would like a little poem about {topic}.",
            "Write me a poem on {topic}.",
            "Poem request: {topic}.",
            "Could you compose some poetry about {topic}?",
            "{topic} — please turn it into a short poem.",
            "Let's have a poem about {topic}.",
            "Create a little poem whose subject is {topic}.",
        ),
        "heldout": {
            "zh": ("给我来一首描写{topic}的短诗。",),
            "en": ("Give me a brief poem describing {topic}, please.",),
        },
    },
    "poem_lines": {
        "zh": (
            "写一首{n}行的诗，主题是{topic}。",
            "请写一首关于{topic}的诗，一共{n}行。",
            "以{topic}为主题，写{n}行诗。",
            "创作一首{n}行的小诗，写{topic}。",
            "关于{topic}，写一首正好{n}行的诗。",
            "请写{n}行关于{topic}的诗。",
            "我需要一首{n}行的诗，写的是{topic}。",
            "{topic}：写一首{n}行的诗。",
            "用{n}行诗来写{topic}。",
            "写诗一首，题为{topic}，共{n}行。",
            "一首关于{topic}的诗，只要{n}行。",
        ),
        "en": (
            "Write a poem of {n} lines about {topic}.",
            "Please write a {n}-line poem about {topic}.",
            "Write exactly {n} lines of poetry about {topic}.",
            "Compose a poem about {topic} in {n} lines.",
            "I need a poem about {topic} that has {n} lines.",
            "Write {n} lines of poetry on the topic of {topic}.",
            "A poem about {topic}, exactly {n} lines long, please.",
            "I want {n} poetic lines about {topic}.",
            "Compose {n} lines about {topic} as a poem.",
            "Create a short poem on {topic} with exactly {n} lines.",
            "My poem about {topic} must have {n} lines. Write it.",
        ),
        "heldout": {
            "zh": ("主题定为{topic}，诗句不多不少恰好{n}行，请动笔。",),
            "en": (
                "Pen some verse on {topic}; keep it to precisely {n} lines, no more and no fewer.",
            ),
        },
    },
    "slogan": {
        "zh": (
            "为{product}写一句广告语，要用上“{word}”这个词。",
            "请给{product}想一句宣传口号，口号里要有“{word}”。",
            "写一句{product}的广告词，包含“{word}”。",
            "帮我为{product}设计一句口号，带上“{word}”这个词。",
            "用“{word}”这个词给{product}写一句口号。",
            "给{product}写个口号，里面要有“{word}”。",
            "{product}需要一句广告语，请用上“{word}”。",
            "写一句关于{product}的广告口号，必须包含“{word}”。",
            "请为{product}创作一句带有“{word}”的广告语。",
            "口号任务：产品是{product}，关键词是“{word}”。",
            "用一句话给{product}打广告，句子里要有“{word}”。",
        ),
        "en": (
            'Write a slogan for the {product} that uses the word "{word}".',
            'Please come up with a one-line slogan for the {product} including the word "{word}".',
            'Create an advertising slogan for the {product} with the word "{word}" in it.',
            'Give me a catchy slogan for the {product}; it must contain "{word}".',
            'Use the word "{word}" in a short slogan for the {product}.',
            'Write an ad line for the {product}. Use the word "{word}".',
            'Slogan for the {product}, please; include "{word}".',
            'Think of a short slogan for the {product} featuring the word "{word}".',
            'Our new {product} needs a slogan with "{word}" in it.',
            'Create a one-line ad for the {product} using "{word}".',
            'Could you write a slogan for the {product}? It should use the word "{word}".',
        ),
        "heldout": {
            "zh": ("请拟一条推广{product}的标语，务必出现“{word}”。",),
            "en": ('Invent a promotional slogan for the {product} in which "{word}" appears.',),
        },
    },
    "email": {
        "zh": (
            "给{name}写一封简短的邮件，告诉对方{event}，落款是{sender}。",
            "请帮我写一封短邮件给{name}，内容是{event}，署名{sender}。",
            "写封邮件通知{name}：{event}。最后署名{sender}。",
            "帮{sender}给{name}写一封邮件，说明{event}。",
            "我是{sender}，请帮我给{name}写一封短邮件，告诉TA{event}。",
            "{sender}想告诉{name}{event}，请替TA写一封短邮件。",
            "写一封邮件给{name}，告诉TA{event}，署名{sender}。",
            "邮件收件人：{name}，内容：{event}，发件人：{sender}。",
            "请以{sender}的名义给{name}发一封邮件，说{event}。",
            "帮忙写封邮件：{sender}写给{name}，内容是{event}。",
            "给{name}发邮件，说{event}，最后写上{sender}。",
        ),
        "en": (
            "Write a short email to {name} saying that {event}. Sign it as {sender}.",
            "Please write a brief email to {name} to tell them that {event}. Sign off as {sender}.",
            "Draft an email to {name}: {event}. It is from {sender}.",
            "Help {sender} write a short email to {name} explaining that {event}.",
            "I am {sender}. Write a short email to {name} letting them know that {event}.",
            "Send an email from {sender} to {name} saying that {event}.",
            "Email to {name}, from {sender}: tell them that {event}.",
            "Please write {name} an email letting them know that {event}. Sign it {sender}.",
            "Write an email. Recipient: {name}. Message: {event}. Sender: {sender}.",
            "{sender} needs to email {name} that {event}. Write that email.",
            "Could you write a short email to {name} to say that {event}? It is from {sender}.",
        ),
        "heldout": {
            "zh": ("代{sender}起草一封致{name}的简短电邮，主要说{event}。",),
            "en": (
                "On behalf of {sender}, compose a quick note by email informing {name} that {event}.",
            ),
        },
    },
    "title": {
        "zh": (
            "给一篇关于{topic}的文章起个标题，不超过{k}个字。",
            "请为一篇写{topic}的文章拟一个标题，字数不超过{k}。",
            "帮我想一个关于{topic}的文章标题，最多{k}个字。",
            "我写了一篇关于{topic}的文章，请起一个不超过{k}个字的标题。",
            "为主题是{topic}的文章取个标题，{k}个字以内。",
            "起个标题：文章主题是{topic}，最多{k}个字。",
            "关于{topic}的文章需要一个标题，{k}个字以内。",
            "请给写{topic}的文章取名，不要超过{k}个字。",
            "给文章想个标题吧，写的是{topic}，字数不超过{k}。",
            "文章标题，主题{topic}，限{k}字。",
            "帮忙给一篇{topic}主题的文章起个标题（不超过{k}个字）。",
        ),
        "en": (
            "Write a title for an article about {topic}, at most {k} words.",
            "Please suggest a title of no more than {k} words for an article about {topic}.",
            "Give my article about {topic} a title of at most {k} words.",
            "I wrote an article about {topic}. Write a title for it in {k} words or fewer.",
            "Come up with a short title (max {k} words) for an article on {topic}.",
            "Name my article about {topic} in at most {k} words.",
            "Suggest a title for a piece about {topic}; use at most {k} words.",
            "Title for an article on {topic}, at most {k} words, please.",
            "What would be a good title (up to {k} words) for an article about {topic}?",
            "Write a short title about {topic}; the limit is {k} words.",
            "My blog post is about {topic}. Give it a title of at most {k} words.",
        ),
        "heldout": {
            "zh": ("文章谈的是{topic}，请拟个题目，长度控制在{k}字之内。",),
            "en": (
                "Headline needed: a title for an essay concerning {topic}, limited to {k} words.",
            ),
        },
    },
    "faq_answer": {
        "zh": (
            "请根据常见问题回答：{question}",
            "{question}",
            "你好，我想问一下：{question}",
            "麻烦帮我看看，{question}",
            "客服你好，{question}",
            "请问：{question}",
            "有个问题想咨询：{question}",
            "{question}谢谢！",
            "想了解一下，{question}",
            "在吗？{question}",
            "我是老顾客了，{question}",
        ),
        "en": (
            "Based on the FAQ, answer: {question}",
            "{question}",
            "Hi, I have a question: {question}",
            "Could you help me? {question}",
            "Hello support, {question}",
            "Quick question: {question}",
            "{question} Thanks!",
            "Can you tell me this? {question}",
            "I'd like to know: {question}",
            "Hey there, {question}",
            "I am a regular customer. {question}",
        ),
        "heldout": {
            "zh": ("劳驾查一查贵店的规定：{question}",),
            "en": ("Per your store policy, kindly clarify this for me: {question}",),
        },
    },
    "complaint": {
        "zh": (
            "我买的{product}{problem}，订单号是{order}，怎么办？",
            "订单{order}里的{product}{problem}，请帮我处理。",
            "你好，我的{product}{problem}。订单号{order}。",
            "{product}{problem}，太让人失望了！订单号：{order}",
            "我要投诉：订单{order}的{product}{problem}。",
            "订单号{order}，{product}{problem}，请尽快处理。",
            "{product}{problem}！我的订单是{order}。",
            "你们卖的{product}{problem}，订单{order}，怎么解决？",
            "投诉一下，{product}{problem}，订单号为{order}。",
            "我很生气，订单{order}的{product}{problem}。",
            "请帮帮我：{product}{problem}（订单号{order}）。",
        ),
        "en": (
            "The {product} I bought {problem}. My order number is {order}. What can I do?",
            "Order {order}: the {product} {problem}. Please help.",
            "Hi, my {product} {problem}. Order number {order}.",
            "I am unhappy, the {product} {problem}! Order: {order}",
            "I want to complain: the {product} in order {order} {problem}.",
            "My {product} {problem}. Order {order}. Please sort this out.",
            "Hello, order {order} is a problem: the {product} {problem}.",
            "The {product} from order {order} {problem}. I am not happy.",
            "Complaint: my {product} {problem} (order {order}).",
            "Bad news: the {product} {problem}. My order number: {order}.",
            "Help! My {product} {problem}, order {order}.",
        ),
        "heldout": {
            "zh": ("真是糟心，{product}{problem}，单号{order}，给个说法吧。",),
            "en": ("Seriously, my {product} {problem} and I expect a fix for purchase #{order}.",),
        },
    },
    "order_status": {
        "zh": (
            "我的订单{order}现在是什么状态？",
            "请帮我查一下订单{order}的状态。",
            "订单{order}到哪一步了？",
            "查询订单{order}。",
            "你好，订单{order}怎么样了？",
            "订单{order}的状态是什么？",
            "帮我看看订单{order}怎么样了。",
            "想查订单{order}。",
            "订单号{order}，现在到哪了？",
            "请问订单{order}的情况如何？",
            "我想知道订单{order}的进度。",
        ),
        "en": (
            "What is the status of my order {order}?",
            "Please check the status of order {order}.",
            "Where is order {order} now?",
            "Look up order {order}.",
            "Hi, any update on order {order}?",
            "Status of order {order}, please.",
            "Can you check order {order} for me?",
            "What happened to my order {order}?",
            "I'd like an update on order {order}.",
            "Order {order} — what is its status?",
            "Tell me about order {order}.",
        ),
        "heldout": {
            "zh": ("烦请告知单号{order}目前的状态。",),
            "en": ("Kindly tell me the current status of purchase {order}.",),
        },
    },
    "recommend": {
        "zh": (
            "{catalog}\n请根据用户画像推荐一件商品。",
            "{catalog}\n从上面的目录里给这位用户挑一件合适的商品。",
            "{catalog}\n这位用户最可能喜欢哪件商品？请推荐给TA。",
            "请根据用户的喜好，从下面的商品中推荐一件：\n{catalog}",
            "帮这位用户选一件商品吧。\n{catalog}",
            "{catalog}\n给用户推荐一件TA会喜欢的商品。",
            "看看用户的喜好，推荐一件商品：\n{catalog}",
            "{catalog}\n哪件最适合这位用户？",
            "请为这位用户推荐：\n{catalog}",
            "{catalog}\n按用户的喜好选一件推荐。",
            "从目录中为用户选择一件商品：\n{catalog}",
        ),
        "en": (
            "{catalog}\nRecommend one product for this user based on the profile.",
            "{catalog}\nPick the item from the catalogue that suits this user.",
            "{catalog}\nWhich product would this user like most? Recommend it.",
            "Based on the user's interests, recommend one item from this list:\n{catalog}",
            "Choose a product for this user.\n{catalog}",
            "{catalog}\nSuggest one item this user would enjoy.",
            "Recommend something from this catalogue for the user:\n{catalog}",
            "{catalog}\nWhat should we recommend to this user?",
            "Look at the profile and pick one product:\n{catalog}",
            "{catalog}\nBased on what the user likes, suggest one item.",
            "Help this user choose one item:\n{catalog}",
        ),
        "heldout": {
            "zh": ("结合此人的兴趣爱好，从以下清单中推荐一样最合其心意的东西：\n{catalog}",),
            "en": (
                "Taking this person's hobbies into account, recommend the single best match from the following:\n{catalog}",
            ),
        },
    },
    "marketing": {
        "zh": (
            "为{name}写一句{product}的营销文案，TA住在{city}。",
            "给住在{city}的{name}写一句推销{product}的话。",
            "请写一句个性化广告，对象是{city}的{name}，产品是{product}。",
            "{name}住在{city}，帮我写一句向TA推荐{product}的文案。",
            "写一条发给{name}的{product}促销短信，要提到{city}。",
            "写一句给{name}的广告，推荐{product}，提到TA所在的{city}。",
            "{city}的{name}可能需要{product}，写一句营销文案。",
            "营销文案：对象{name}，城市{city}，产品{product}。",
            "请给{name}（住在{city}）写一句推荐{product}的话。",
            "向{city}的{name}推销{product}，写一句话。",
            "为住在{city}的{name}写一句关于{product}的个性化文案。",
        ),
        "en": (
            "Write a marketing line about the {product} for {name}, who lives in {city}.",
            "Write a one-line promotion of the {product} for {name} in {city}.",
            "Please write a personalized ad for {name} from {city} about the {product}.",
            "{name} lives in {city}. Write a line recommending the {product} to them.",
            "Write a short promo text for {name} about the {product} that mentions {city}.",
            "Write an ad for {name} in {city} about the {product}.",
            "Marketing message: customer {name}, city {city}, product {product}.",
            "Promote the {product} to {name} from {city} in one line.",
            "Write one personalized line selling the {product} to {name}; mention {city}.",
            "Our customer {name} lives in {city}. Write a one-line ad for the {product}.",
            "Create a short marketing message for {name} ({city}) about the {product}.",
        ),
        "heldout": {
            "zh": ("面向身处{city}的顾客{name}，撰写一则关于{product}的定制宣传语。",),
            "en": (
                "Craft a tailored pitch for the {product}, addressed to a shopper called {name} based in {city}.",
            ),
        },
    },
}
PHRASINGS: dict[str, dict] = {**_APP_PHRASINGS, **SKILL_PHRASINGS}
