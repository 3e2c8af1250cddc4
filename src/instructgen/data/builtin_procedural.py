"""Procedurally made entities for the train side of the built-in world.

The fixed entity pools of builtin_world.py are small (a few dozen names, cities, topics...), so a
small model can do well on them by memorising the pool instead of copying the entity from the
instruction — and then writes a memorised name where the test split asks for an unseen one.
Mixing in made-up entities (pseudo-words built from syllables in English; surname + given
characters, or free character strings, in Chinese) makes copying from the context the only way
to be right. `make_entity(rng, kind, lang)` makes one; its caller (builtin_world.Pool) rejects
any that contains a held-out test entity, so the test split stays unseen.
"""

from __future__ import annotations

import random

_ONSETS = (
    "b c d f g h j k l m n p r s t v w z br cr dr fl gl gr pl pr sl st tr ch sh th bl sk sp"
).split() + ["", ""]
_VOWELS = "a e i o u a e i o u ai ea ee oo ou ie".split()
_CODAS = "n r l s m t nd rk st ng x ck sh ll nt".split() + [""] * 6

_ZH_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱"
    "严武戴莫孔向汤"
)
_ZH_COMPOUND_SURNAMES = (
    "夏侯",
    "尉迟",
    "长孙",
    "宇文",
    "独孤",
    "南宫",
    "闻人",
    "轩辕",
    "呼延",
    "申屠",
)
_ZH_GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华玉萍红鹏飞建文辉力宇鑫波斌宁琳晨婷雪慧颖博浩凯"
    "欣悦瑶怡佳嘉思梦雨涵子萱睿轩然昊哲泽辰逸安若依诗可一心语晴彤月星云青竹兰梅菊松柏海山川江春秋"
    "冬夏晓蓉默言舒墨岚曦禾清远志诚信德仁义礼智勤俊秀美丹"
)
# Common characters for made-up Chinese words, topics, items and place names.
_ZH_CHARS = (
    "天地人山水火木金土日月星云风雨雪花草树林石河海湖江田光明春夏秋冬东南西北中上下左右大小多少"
    "高长远近新老好美红黄蓝绿白黑青紫金银铜玉珠宝贝书画琴棋诗歌舞笑心手口目耳头面门窗桥路街城村镇"
    "家园院楼台亭塔宫殿车船马牛羊鸡鸭鱼鸟虫龙凤虎狮熊猫狗兔鹿象猴果米面茶酒糖盐油灯火烟纸笔墨砚"
    "衣帽鞋袜包伞钟表镜杯盘碗勺刀剪针线布丝棉麻皮毛羽角声音色香味甜酸苦辣冷热温暖凉清静安乐福寿"
    "喜庆和平顺利吉祥如意快慢早晚朝夕晨昏年岁时分秒万千百十零一二三四五六七八九方圆尖宽深浅厚薄轻"
    "重软硬湿干净空满开关来去出入回归飞走跑跳游唱读写看听说问答思想念爱恨梦醒睡坐立行止进退前后"
)
_EN_SUFFIXES = {
    "city": ("", "", "ton", "ville", "burg", "port", "field", "ford", "stad", "mouth"),
    "shop": ("Store", "Mart", "Shop", "Market", "Goods", "Outlet", "Emporium", "Depot"),
}
_ZH_SUFFIXES = {
    "city": ("", "", "", "州", "城", "镇", "港", "山", "阳"),
    "shop": ("商城", "超市", "小铺", "百货", "书店", "数码", "家居", "优选"),
}
_EN_PRODUCTS = (
    "lamp kettle blender speaker charger scooter toaster heater fan clock bottle tablet camera "
    "radio mixer iron grill drone monitor router"
).split()
_ZH_PRODUCTS = (
    "台灯 水壶 音箱 充电器 滑板车 烤面包机 取暖器 风扇 闹钟 水杯 平板 相机 收音机 搅拌机 电熨斗 "
    "烤盘 无人机 显示器 路由器 保温壶"
).split()
# per interest (the order of builtin_world.INTERESTS): nouns a made-up catalogue item ends with
_EN_CATALOG = (
    ("racket", "gloves", "jersey", "sneakers", "helmet"),
    ("novel", "bookmark", "journal", "book light", "poetry book"),
    ("skillet", "spatula", "cookbook", "wok", "cutting board"),
    ("ukulele", "speaker", "drum pad", "microphone", "songbook"),
    ("duffel bag", "travel adapter", "luggage tag", "travel pillow", "map case"),
    ("lens", "camera bag", "flash", "light meter", "photo printer"),
)
_ZH_CATALOG = (
    ("球拍", "护腕", "运动衫", "跑鞋", "头盔"),
    ("书签", "台灯", "小说", "笔记本", "诗集"),
    ("炒锅", "菜刀", "菜谱", "蒸笼", "砧板"),
    ("尤克里里", "音箱", "鼓垫", "麦克风", "歌本"),
    ("旅行包", "转换插头", "行李牌", "地图册", "颈枕"),
    ("镜头", "相机包", "闪光灯", "测光表", "照片打印机"),
)


def pseudo_word(rng: random.Random, min_syllables: int = 1, max_syllables: int = 3) -> str:
    """A pronounceable lower-case made-up word: (onset vowel coda) × 1..3 syllables."""
    while True:
        n = rng.randint(min_syllables, max_syllables)
        word = "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n)
        )
        if 3 <= len(word) <= 10:
            return word


RARE_SHARE = 0.2  # share of made-up Chinese characters drawn from all of CJK, not the lists


def _zh_char(rng: random.Random, common: str) -> str:
    """A character of `common`, or now and then any CJK ideograph (U+4E00..U+9FA5): rare ones
    are split into bytes by the tokenizer, like the rare characters of unseen names."""
    if rng.random() < RARE_SHARE:
        return chr(rng.randint(0x4E00, 0x9FA5))
    return rng.choice(common)


def zh_word(rng: random.Random, min_chars: int = 2, max_chars: int = 3) -> str:
    """A made-up Chinese word of (mostly common) characters."""
    return "".join(_zh_char(rng, _ZH_CHARS) for _ in range(rng.randint(min_chars, max_chars)))


def zh_name(rng: random.Random) -> str:
    """Surname (one character, sometimes two) + one or two given-name characters."""
    surname = rng.choice(_ZH_COMPOUND_SURNAMES) if rng.random() < 0.15 else rng.choice(_ZH_SURNAMES)
    return surname + "".join(_zh_char(rng, _ZH_GIVEN) for _ in range(rng.randint(1, 2)))


def _en(rng: random.Random, kind: str) -> str:
    if kind == "name":
        return pseudo_word(rng, 2, 3).capitalize()
    if kind == "city":
        return pseudo_word(rng, 1, 2).capitalize() + rng.choice(_EN_SUFFIXES["city"])
    if kind == "shop":
        return f"{pseudo_word(rng, 1, 2).capitalize()} {rng.choice(_EN_SUFFIXES['shop'])}"
    if kind == "product":
        return f"{pseudo_word(rng, 1, 2)} {rng.choice(_EN_PRODUCTS)}"
    if kind == "topic":
        return pseudo_word(rng, 1, 3) + ("s" if rng.random() < 0.3 else "")
    return pseudo_word(rng, 1, 3)  # word, item


def _zh(rng: random.Random, kind: str) -> str:
    if kind == "name":
        return zh_name(rng)
    if kind in ("city", "shop"):
        return zh_word(rng, 2, 2) + rng.choice(_ZH_SUFFIXES[kind])
    if kind == "product":
        return zh_word(rng, 1, 2) + rng.choice(_ZH_PRODUCTS)
    if kind == "word":
        return zh_word(rng, 2, 4)
    if kind == "item":
        return zh_word(rng, 1, 3)
    return zh_word(rng, 2, 3)  # topic


def make_entity(rng: random.Random, kind: str, lang: str) -> str:
    """One made-up entity of `kind` (name, city, topic, product, shop, word, item) in `lang`."""
    return _zh(rng, kind) if lang == "zh" else _en(rng, kind)


def make_catalog_item(rng: random.Random, lang: str, interest: int) -> str:
    """A made-up catalogue item for interest number `interest` (an INTERESTS index)."""
    if lang == "zh":
        return zh_word(rng, 2, 2) + rng.choice(_ZH_CATALOG[interest])
    return f"{pseudo_word(rng, 1, 2)} {rng.choice(_EN_CATALOG[interest])}"
