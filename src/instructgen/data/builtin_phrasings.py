"""What the user says: the instruction phrasings of every built-in task family.

Per family and language: at least five phrasings for the train and val splits, and held-out
phrasings that only the test split uses (their wording occurs nowhere else, so a test score
measures instruction following, not memory). ``{slots}`` are filled by the family's generator
(builtin_apps.py, builtin_skills.py). The first Chinese and English poem phrasings are the
brief's own example: "请用中文写一首关于春天的诗。" / "Write a poem about spring."
"""

from __future__ import annotations

# family -> {"zh": train phrasings, "en": ..., "heldout": {"zh": test phrasings, "en": ...}}
PHRASINGS: dict[str, dict] = {
    "poem_topic": {
        "zh": (
            "请用中文写一首关于{topic}的诗。",
            "写一首以{topic}为主题的诗。",
            "你能写一首关于{topic}的小诗吗？",
            "请围绕{topic}创作一首诗。",
            "以{topic}为题写一首诗吧。",
        ),
        "en": (
            "Write a poem about {topic}.",
            "Please write a short poem about {topic}.",
            "Can you write a poem on the theme of {topic}?",
            "Compose a poem about {topic}.",
            "I would like a little poem about {topic}.",
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
        ),
        "en": (
            "Write a poem of {n} lines about {topic}.",
            "Please write a {n}-line poem about {topic}.",
            "Write exactly {n} lines of poetry about {topic}.",
            "Compose a poem about {topic} in {n} lines.",
            "I need a poem about {topic} that has {n} lines.",
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
        ),
        "en": (
            'Write a slogan for the {product} that uses the word "{word}".',
            'Please come up with a one-line slogan for the {product} including the word "{word}".',
            'Create an advertising slogan for the {product} with the word "{word}" in it.',
            'Give me a catchy slogan for the {product}; it must contain "{word}".',
            'Use the word "{word}" in a short slogan for the {product}.',
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
        ),
        "en": (
            "Write a short email to {name} saying that {event}. Sign it as {sender}.",
            "Please write a brief email to {name} to tell them that {event}. Sign off as {sender}.",
            "Draft an email to {name}: {event}. It is from {sender}.",
            "Help {sender} write a short email to {name} explaining that {event}.",
            "I am {sender}. Write a short email to {name} letting them know that {event}.",
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
        ),
        "en": (
            "Write a title for an article about {topic}, at most {k} words.",
            "Please suggest a title of no more than {k} words for an article about {topic}.",
            "Give my article about {topic} a title of at most {k} words.",
            "I wrote an article about {topic}. Write a title for it in {k} words or fewer.",
            "Come up with a short title (max {k} words) for an article on {topic}.",
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
        ),
        "en": (
            "Based on the FAQ, answer: {question}",
            "{question}",
            "Hi, I have a question: {question}",
            "Could you help me? {question}",
            "Hello support, {question}",
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
        ),
        "en": (
            "The {product} I bought {problem}. My order number is {order}. What can I do?",
            "Order {order}: the {product} {problem}. Please help.",
            "Hi, my {product} {problem}. Order number {order}.",
            "I am unhappy, the {product} {problem}! Order: {order}",
            "I want to complain: the {product} in order {order} {problem}.",
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
        ),
        "en": (
            "What is the status of my order {order}?",
            "Please check the status of order {order}.",
            "Where is order {order} now?",
            "Look up order {order}.",
            "Hi, any update on order {order}?",
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
        ),
        "en": (
            "{catalog}\nRecommend one product for this user based on the profile.",
            "{catalog}\nPick the item from the catalogue that suits this user.",
            "{catalog}\nWhich product would this user like most? Recommend it.",
            "Based on the user's interests, recommend one item from this list:\n{catalog}",
            "Choose a product for this user.\n{catalog}",
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
        ),
        "en": (
            "Write a marketing line about the {product} for {name}, who lives in {city}.",
            "Write a one-line promotion of the {product} for {name} in {city}.",
            "Please write a personalized ad for {name} from {city} about the {product}.",
            "{name} lives in {city}. Write a line recommending the {product} to them.",
            "Write a short promo text for {name} about the {product} that mentions {city}.",
        ),
        "heldout": {
            "zh": ("面向身处{city}的顾客{name}，撰写一则关于{product}的定制宣传语。",),
            "en": (
                "Craft a tailored pitch for the {product}, addressed to a shopper called {name} based in {city}.",
            ),
        },
    },
    "add": {
        "zh": (
            "{a}加{b}等于多少？",
            "计算{a}+{b}。",
            "请算一下{a}加上{b}的结果。",
            "{a}和{b}的和是多少？",
            "求{a}与{b}相加的结果，只写数字。",
        ),
        "en": (
            "What is {a} plus {b}?",
            "Calculate {a} + {b}.",
            "Please add {a} and {b}.",
            "What is the sum of {a} and {b}?",
            "Add {a} to {b} and give only the number.",
        ),
        "heldout": {
            "zh": ("{a}同{b}相加，总数为几？",),
            "en": ("If you combine {a} with {b}, what sum do you get?",),
        },
    },
    "subtract": {
        "zh": (
            "{a}减{b}等于多少？",
            "计算{a}-{b}。",
            "请算一下{a}减去{b}的结果。",
            "{a}和{b}的差是多少？",
            "从{a}里减掉{b}，结果是几？",
        ),
        "en": (
            "What is {a} minus {b}?",
            "Calculate {a} - {b}.",
            "Please subtract {b} from {a}.",
            "What is the difference between {a} and {b}?",
            "Take {b} away from {a}. What is left?",
        ),
        "heldout": {
            "zh": ("{a}减掉{b}之后还剩多少？",),
            "en": ("Starting with {a}, subtract {b}; how many remain?",),
        },
    },
    "multiply": {
        "zh": (
            "{a}乘以{b}等于多少？",
            "计算{a}×{b}。",
            "请算一下{a}乘{b}。",
            "{a}和{b}的积是多少？",
            "求{a}与{b}相乘的结果。",
        ),
        "en": (
            "What is {a} times {b}?",
            "Calculate {a} × {b}.",
            "Please multiply {a} by {b}.",
            "What is the product of {a} and {b}?",
            "Multiply {a} and {b} and give only the number.",
        ),
        "heldout": {
            "zh": ("{a}与{b}的乘积为几？",),
            "en": ("How much is {a} multiplied by {b}?",),
        },
    },
    "parity": {
        "zh": (
            "{n}是奇数还是偶数？",
            "判断{n}是奇数还是偶数。",
            "{n}是偶数吗？请回答奇数或偶数。",
            "数字{n}属于奇数还是偶数？",
            "{n}这个数是奇数还是偶数？",
        ),
        "en": (
            "Is {n} odd or even?",
            "Tell me whether {n} is odd or even.",
            "Is the number {n} even or odd?",
            "Decide if {n} is an odd or an even number.",
            "{n}: odd or even?",
        ),
        "heldout": {
            "zh": ("请辨别整数{n}的奇偶性。",),
            "en": ("Classify the integer {n} as odd or even.",),
        },
    },
    "count_chars": {
        "zh": (
            "“{word}”有几个字？",
            "数一数“{word}”一共有多少个汉字。",
            "“{word}”这个词由几个字组成？",
            "请问“{word}”包含几个字？",
            "“{word}”是几个字的词？",
        ),
        "en": (
            'How many letters are in the word "{word}"?',
            'Count the letters in "{word}".',
            'How many characters does "{word}" have?',
            "Tell me the number of letters in {word}.",
            'What is the length of the word "{word}" in letters?',
        ),
        "heldout": {
            "zh": ("统计一下词语「{word}」的字数。",),
            "en": ("Give the letter count for the term {word}.",),
        },
    },
    "count_items": {
        "zh": (
            "下面列出了几样东西：{items}",
            "数一数这里有多少种东西：{items}",
            "{items}，一共是几样？",
            "请数出清单中的项目数量：{items}",
            "这串清单里有几项？{items}",
        ),
        "en": (
            "How many items are listed here: {items}?",
            "Count the items: {items}.",
            "{items}. How many things is that?",
            "Please count how many things are in this list: {items}",
            "How many things are in the list {items}?",
        ),
        "heldout": {
            "zh": ("以下罗列的物品总共多少件：{items}",),
            "en": ("Tally how many entries the following list has: {items}",),
        },
    },
    "sort_numbers": {
        "zh": (
            "把这些数字{order}排序：{nums}",
            "请将下面的数按{order}的顺序排列：{nums}",
            "{nums}，请{order}排列。",
            "按{order}的顺序重新排列：{nums}",
            "对这组数字进行{order}排序：{nums}",
        ),
        "en": (
            "Sort these numbers in {order} order: {nums}",
            "Please arrange the following numbers in {order} order: {nums}",
            "{nums} — sort them in {order} order.",
            "Put these numbers in {order} order: {nums}",
            "Order the list {nums} ({order}).",
        ),
        "heldout": {
            "zh": ("将数列{nums}依照{order}重排后输出。",),
            "en": ("Rearrange the sequence {nums} so it runs in {order} fashion.",),
        },
    },
    "sort_words": {
        "zh": (
            "把下面的英文单词按字母顺序排列：{words}",
            "请按字母表顺序给这些单词排序：{words}",
            "{words}，按字母顺序排好。",
            "将这些单词按A到Z的顺序排列：{words}",
            "按首字母顺序重新排列：{words}",
        ),
        "en": (
            "Sort these words alphabetically: {words}",
            "Please put the following words in alphabetical order: {words}",
            "{words} — arrange them from A to Z.",
            "Alphabetize this list: {words}",
            "Order these words by the alphabet: {words}",
        ),
        "heldout": {
            "zh": ("依照字母先后整理这组英文词：{words}",),
            "en": ("Rearrange {words} into alphabetical sequence, as a dictionary would.",),
        },
    },
    "extract_email": {
        "zh": (
            "从这句话中找出电子邮箱地址：{text}",
            "提取下面文字里的邮箱：{text}",
            "{text}\n上面这句话里的邮箱地址是什么？",
            "请只输出其中的邮箱地址：{text}",
            "找出邮箱：{text}",
        ),
        "en": (
            "Find the email address in this sentence: {text}",
            "Extract the email from the text below: {text}",
            "{text}\nWhat is the email address in the sentence above?",
            "Output only the email address: {text}",
            "Email address in: {text}",
        ),
        "heldout": {
            "zh": ("这段话提到了一个邮箱，把它单独摘出来：{text}",),
            "en": ("Pull out the email contact mentioned here: {text}",),
        },
    },
    "extract_phone": {
        "zh": (
            "从这句话中找出电话号码：{text}",
            "提取下面文字里的手机号：{text}",
            "{text}\n这句话里的电话号码是多少？",
            "请只输出其中的电话号码：{text}",
            "找出电话号码：{text}",
        ),
        "en": (
            "Find the phone number in this sentence: {text}",
            "Extract the phone number from the text below: {text}",
            "{text}\nWhat is the phone number in the sentence above?",
            "Output only the phone number: {text}",
            "Phone number in: {text}",
        ),
        "heldout": {
            "zh": ("把这段话中出现的电话号码单独写出来：{text}",),
            "en": ("Which phone number would I dial to reach the person here? {text}",),
        },
    },
    "extract_date": {
        "zh": (
            "从这句话中找出日期，用YYYY-MM-DD格式写出：{text}",
            "提取下面文字中的日期，格式为YYYY-MM-DD：{text}",
            "{text}\n这句话里的日期是哪天？请用YYYY-MM-DD格式回答。",
            "把句子里的日期转成YYYY-MM-DD：{text}",
            "请以YYYY-MM-DD格式输出其中的日期：{text}",
        ),
        "en": (
            "Find the date in this sentence and write it as YYYY-MM-DD: {text}",
            "Extract the date from the text below in YYYY-MM-DD format: {text}",
            "{text}\nWhich date is in the sentence above? Answer as YYYY-MM-DD.",
            "Convert the date in this sentence to YYYY-MM-DD: {text}",
            "Output the date as YYYY-MM-DD: {text}",
        ),
        "heldout": {
            "zh": ("读一读这段话，把提到的那一天改写成年-月-日（YYYY-MM-DD）：{text}",),
            "en": ("Which day is mentioned here? Express it in ISO form (YYYY-MM-DD): {text}",),
        },
    },
    "to_json": {
        "zh": (
            "把下面的信息转换成JSON，键为name、city和age：{text}",
            "请用JSON格式表示这段话（键：name, city, age）：{text}",
            "{text}\n把上面的信息写成JSON，包含name、city、age。",
            "将以下内容整理成JSON对象，字段是name、city、age：{text}",
            "输出这句话对应的JSON（name/city/age）：{text}",
        ),
        "en": (
            "Convert this to JSON with keys name, city and age: {text}",
            "Please represent this sentence as JSON (keys: name, city, age): {text}",
            "{text}\nWrite the information above as JSON with name, city and age.",
            "Turn the following into a JSON object with the fields name, city, age: {text}",
            "Output the JSON for this sentence (name/city/age): {text}",
        ),
        "heldout": {
            "zh": ("请把这条人物资料编码为一个JSON对象，需含name、city、age三个键：{text}",),
            "en": (
                "Encode the person described below as a JSON object having the fields name, city, age: {text}",
            ),
        },
    },
    "bullet_list": {
        "zh": (
            "把下面的内容改写成项目符号列表：{items}",
            "请用“- ”开头的列表列出这些东西：{items}",
            "{items}，请整理成无序列表。",
            "将这些项目写成列表，每行一个，以“- ”开头：{items}",
            "列成要点：{items}",
        ),
        "en": (
            "Turn this into a bulleted list: {items}",
            "Please list these as bullet points: {items}",
            "{items} — write them as a bulleted list.",
            "Make a bullet list, one item per line: {items}",
            "Rewrite as bullet points: {items}",
        ),
        "heldout": {
            "zh": ("把{items}拆开，做成项目符号形式，每样单独占一行。",),
            "en": ("Present {items} as a bullet-style list, each on its own line.",),
        },
    },
    "numbered_list": {
        "zh": (
            "把下面的内容改写成编号列表：{items}",
            "请用1. 2. 3.的编号列出这些东西：{items}",
            "{items}，请整理成有序列表。",
            "将这些项目写成编号列表，每行一个：{items}",
            "按顺序编号列出：{items}",
        ),
        "en": (
            "Turn this into a numbered list: {items}",
            "Please list these with numbers 1, 2, 3: {items}",
            "{items} — write them as a numbered list.",
            "Make a numbered list, one item per line: {items}",
            "Rewrite as a numbered list: {items}",
        ),
        "heldout": {
            "zh": ("给{items}逐个标上编号，一行写一个。",),
            "en": ("Enumerate {items} as a numbered sequence, one per line.",),
        },
    },
    "uppercase": {
        "zh": (
            "把“{word}”转换成大写字母。",
            "请把单词{word}全部改成大写。",
            "{word}的大写形式是什么？",
            "将{word}写成大写。",
            "用大写字母写出{word}。",
        ),
        "en": (
            'Convert "{word}" to uppercase.',
            "Write the word {word} in capital letters.",
            "What is {word} in uppercase?",
            "Please make {word} all caps.",
            "Uppercase this word: {word}",
        ),
        "heldout": {
            "zh": ("令{word}的每个字母都变为大写后输出。",),
            "en": ("Shout the term {word} by capitalizing every letter of it.",),
        },
    },
    "lowercase": {
        "zh": (
            "把“{word}”转换成小写字母。",
            "请把单词{word}全部改成小写。",
            "{word}的小写形式是什么？",
            "将{word}写成小写。",
            "用小写字母写出{word}。",
        ),
        "en": (
            'Convert "{word}" to lowercase.',
            "Write the word {word} in small letters.",
            "What is {word} in lowercase?",
            "Please make {word} all lowercase.",
            "Lowercase this word: {word}",
        ),
        "heldout": {
            "zh": ("让{word}不再含有任何大写字母，然后写出来。",),
            "en": ("Rewrite {word} with no capital letters at all.",),
        },
    },
    "reverse_word": {
        "zh": (
            "把“{word}”倒过来写。",
            "请将“{word}”的字序颠倒。",
            "“{word}”反过来怎么写？",
            "倒序输出“{word}”。",
            "把“{word}”这几个字从后往前写。",
        ),
        "en": (
            'Reverse the word "{word}".',
            "Write {word} backwards.",
            'Spell "{word}" in reverse order.',
            "What is {word} written backwards?",
            "Reverse the letters of {word}.",
        ),
        "heldout": {
            "zh": ("把「{word}」逐字颠倒次序后写出。",),
            "en": ("Take {word} and output its letters in reverse, last one first.",),
        },
    },
    "first_letter": {
        "zh": (
            "“{word}”的第一个字是什么？",
            "请写出“{word}”的首字。",
            "“{word}”这个词以哪个字开头？",
            "说出“{word}”开头的那个字。",
            "“{word}”打头的字是？",
        ),
        "en": (
            'What is the first letter of "{word}"?',
            "Which letter does {word} start with?",
            "Give the initial letter of the word {word}.",
            "Tell me the first letter of {word}.",
            "{word} begins with which letter?",
        ),
        "heldout": {
            "zh": ("「{word}」最前面的字是哪一个？",),
            "en": ("Name the very first character of the term {word}.",),
        },
    },
}
