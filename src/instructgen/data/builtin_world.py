"""The entities of the built-in task world, and the types its task families are made of.

Every entity list comes in two disjoint parts: ``train`` entities feed the train and val splits
and the pretraining corpus; ``test`` entities appear in the test split only, so a test score
measures instruction following on names, products, cities, topics and words never seen before.
Test entities are chosen so that no train text contains them, even as a substring.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from instructgen.data.builtin_phrasings import PHRASINGS
from instructgen.data.builtin_procedural import make_catalog_item, make_entity

LANGS = ("zh", "en")
AREAS = ("writing", "support", "personalize", "skills")


def _words(text: str) -> tuple[str, ...]:
    """Space-separated entities."""
    return tuple(text.split())


def _phrases(text: str) -> tuple[str, ...]:
    """Comma-separated entities (they hold spaces)."""
    return tuple(x.strip() for x in text.split(","))


# kind -> lang -> (train, test)
ENTITIES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "name": {
        "zh": (
            _words(
                "张伟 李娜 王芳 刘洋 陈静 杨帆 赵磊 黄敏 吴昊 徐丽 孙悦 马超 朱琳 胡斌 郭婷 "
                "何勇 林晓 高远 罗兰 梁爽 宋佳 郑凯 谢婉 韩冰 唐宁 冯涛 于洁 董明 萧雨 程浩"
            ),
            _words(
                "欧阳子墨 司马云舒 诸葛明月 上官若曦 慕容清秋 东方晓岚 令狐青竹 皇甫嘉禾 "
                "公孙默言 端木蓉蓉"
            ),
        ),
        "en": (
            _words(
                "Alice Bob Carol David Emma Frank Grace Henry Irene Jack Kate Leo Mia Noah "
                "Olivia Paul Rosa Sam Tina Victor Wendy Zoe Adam Bella Chris Diana Ethan Fiona "
                "George Hannah"
            ),
            _words(
                "Ophelia Thaddeus Cornelius Evangeline Leopold Perpetua Barnaby Octavia "
                "Ignatius Marguerite"
            ),
        ),
    },
    "city": {
        "zh": (
            _words(
                "北京 上海 广州 深圳 成都 杭州 南京 武汉 西安 重庆 天津 苏州 长沙 青岛 厦门 "
                "大连 昆明 郑州 济南 合肥"
            ),
            _words("哈尔滨 拉萨 乌鲁木齐 呼和浩特 西宁 银川 喀什 景德镇"),
        ),
        "en": (
            _words(
                "London Paris Berlin Madrid Rome Tokyo Sydney Toronto Boston Chicago Dublin "
                "Vienna Oslo Lisbon Prague Seattle Denver Austin Miami Cairo"
            ),
            _words("Reykjavik Timbuktu Ushuaia Samarkand Zanzibar Valparaiso Tbilisi Kathmandu"),
        ),
    },
    "topic": {
        "zh": (
            _words(
                "春天 夏天 秋天 冬天 大海 月亮 星空 森林 小河 家乡 友谊 母亲 雨天 雪花 花朵 "
                "清风 高山 夜晚 清晨 童年 音乐 城市 阳光"
            ),
            _words("灯塔 瀑布 萤火虫 银河 沙漠 竹林 稻田 古琴"),
        ),
        "en": (
            _words(
                "spring summer autumn winter ocean moonlight stars forests rivers home "
                "friendship mothers rain snow flowers wind mountains night mornings childhood "
                "music cities sunshine"
            ),
            _words("lighthouses waterfalls fireflies deserts bamboo galaxies harvest violins"),
        ),
    },
    "product": {
        "zh": (
            _words(
                "智能手表 蓝牙耳机 保温杯 护眼台灯 双肩背包 跑步鞋 咖啡机 加湿器 充电宝 "
                "机械键盘 无线鼠标 电饭煲 折叠伞 瑜伽垫 行李箱 吹风机"
            ),
            _words("空气炸锅 扫地机器人 投影仪 电子阅读器 筋膜枪 净水器"),
        ),
        "en": (
            _phrases(
                "smart watch, wireless earbuds, travel mug, desk lamp, backpack, running shoes, "
                "coffee maker, humidifier, power bank, mechanical keyboard, wireless mouse, "
                "rice cooker, folding umbrella, yoga mat, suitcase, hair dryer"
            ),
            _phrases("air fryer, robot vacuum, projector, e-reader, massage gun, water purifier"),
        ),
    },
    "shop": {
        "zh": (
            _words("青禾商城 星光数码 暖阳家居 云朵书店 绿叶超市 蓝海电器 枫叶百货 小象母婴"),
            _words("琥珀优选 翡翠生活馆 玲珑小铺"),
        ),
        "en": (
            _phrases(
                "Acme Store, BrightMart, Sunny Home, Cloud Books, GreenLeaf Market, "
                "BlueWave Electronics, Maple Mall, Pebble Shop"
            ),
            _phrases("Zephyrine Goods, Quillon Outfitters, Marigold & Finch"),
        ),
    },
    "word": {
        "en": (
            _words(
                "apple banana river planet garden window yellow orange purple silver doctor "
                "teacher school pencil rocket castle dragon forest bridge market summer winter "
                "cookie butter guitar piano camera laptop bottle candle pillow basket rabbit "
                "turtle monkey tiger lion zebra eagle dolphin spider rainbow thunder cloud "
                "island mountain valley kitchen blanket mirror ladder hammer jacket button "
                "carpet cotton lemon cherry grape melon mango peach honey pepper tomato potato "
                "carrot onion garlic coffee wizard pirate robot sunset letter number animal "
                "flower friend family picture morning evening silence journey kingdom captain "
                "balloon penguin octopus giraffe chicken popcorn blue green table chair water "
                "music"
            ),
            _words(
                "zephyr quasar walrus nebula tundra obelisk fjord marzipan kumquat yodel "
                "jigsaw saffron pelican gazebo vortex sequoia origami cobalt lagoon kayak "
                "banjo geyser mantis quokka"
            ),
        ),
        "zh": (
            _words(
                "苹果 图书馆 火车站 自行车 太阳 月亮 星星 电脑 手机 老师 学生 朋友 医院 公园 "
                "飞机 汽车 蛋糕 面包 咖啡 音乐 电影 足球 篮球 大熊猫 长颈鹿 动物园 博物馆 "
                "巧克力 冰淇淋 红绿灯 幼儿园 火锅 饺子 包子 春节 中秋节 太平洋 黄河 长江 小猫 "
                "小狗 蝴蝶 蜜蜂 彩虹 雪人 风车 灯笼 毛笔 书包 运动会 照相机 电冰箱 洗衣机 "
                "望远镜 小提琴 白雪公主"
            ),
            _words(
                "蒲公英 向日葵 啄木鸟 猕猴桃 万花筒 不倒翁 紫罗兰 仙人掌 琵琶 鹦鹉螺 含羞草 丹顶鹤"
            ),
        ),
    },
    "item": {
        "zh": (
            _words(
                "苹果 香蕉 梨 橙子 葡萄 柠檬 樱桃 桃子 西瓜 草莓 铅笔 橡皮 尺子 笔记本 剪刀 "
                "胶水 面包 牛奶 鸡蛋 米饭 面条 肥皂 毛巾 杯子 盘子 勺子 筷子 碗"
            ),
            _words("榴莲 山竹 杨桃 莲雾 枇杷 百香果 圆规 图钉"),
        ),
        "en": (
            _words(
                "apple banana pear orange grape lemon cherry peach plum melon pencil eraser "
                "ruler notebook marker crayon scissors glue bread milk cheese butter egg rice "
                "noodles soap towel cup plate spoon fork"
            ),
            _words("durian mangosteen starfruit persimmon lychee papaya protractor thumbtack"),
        ),
    },
}

# The personalization catalogue: interest -> (train items, test items), aligned across languages.
INTERESTS = {
    "zh": ("运动", "阅读", "烹饪", "音乐", "旅行", "摄影"),
    "en": ("sports", "reading", "cooking", "music", "travel", "photography"),
}
CATALOG: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "zh": (
        (_words("轻风跑鞋 活力跳绳 极速羽毛球拍"), _words("疾风护膝")),
        (_words("星河书签 暖光阅读灯 经典小说集"), _words("墨韵书架")),
        (_words("不粘煎锅 多功能料理机 家常菜谱"), _words("琉璃砂锅")),
        (_words("木吉他 复古唱片机 降噪耳机"), _words("乌木口琴")),
        (_words("旅行颈枕 万向行李箱 防水收纳包"), _words("星野露营帐篷")),
        (_words("微单相机 三脚架 柔光灯"), _words("鹰眼长焦镜头")),
    ),
    "en": (
        (
            _phrases("trail running shoes, jump rope, badminton racket"),
            _phrases("titanium knee brace"),
        ),
        (_phrases("star bookmark, reading lamp, classic novel set"), _phrases("walnut bookshelf")),
        (_phrases("nonstick pan, food processor, home recipe book"), _phrases("clay tagine pot")),
        (
            _phrases("acoustic guitar, record player, noise-cancelling headphones"),
            _phrases("ebony harmonica"),
        ),
        (_phrases("neck pillow, spinner suitcase, packing cubes"), _phrases("alpine camping tent")),
        (_phrases("mirrorless camera, tripod, ring light"), _phrases("telephoto zoom lens")),
    ),
}
DAYS = {
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
DOMAINS = ("example.com", "mail.com", "company.cn", "school.edu", "shop.net")
ZH_NUMERALS = {2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八"}
EN_NUMERALS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def heldout_entities() -> list[str]:
    """Every test-only entity string, in a fixed order."""
    out = [s for kind in ENTITIES.values() for lang in LANGS for s in kind[lang][1]]
    out += [s for lang in LANGS for _, test in CATALOG[lang] for s in test]
    return out


class Pool:
    """The entities one split may use: train entities, or (heldout=True) test entities.

    A train pool with ``made`` > 0 draws that share of its entities from builtin_procedural
    (made-up names, words, cities...), never one that contains a held-out entity.
    """

    def __init__(self, heldout: bool, made: float = 0.0):
        self.heldout = heldout
        self.made = 0.0 if heldout else made

    def items(self, kind: str, lang: str) -> tuple[str, ...]:
        return ENTITIES[kind][lang][1 if self.heldout else 0]

    def one(self, rng: random.Random, kind: str, lang: str) -> str:
        if self.made and rng.random() < self.made:
            return _unseen(lambda: make_entity(rng, kind, lang))
        return rng.choice(self.items(kind, lang))

    def some(self, rng: random.Random, kind: str, lang: str, k: int) -> list[str]:
        """k distinct entities (k at most the fixed pool's size)."""
        if not self.made:
            return rng.sample(self.items(kind, lang), k)
        out: list[str] = []
        while len(out) < k:
            x = self.one(rng, kind, lang)
            if x not in out:
                out.append(x)
        return out

    def catalog_item(self, rng: random.Random, lang: str, interest: int) -> str:
        if self.made and rng.random() < self.made:
            return _unseen(lambda: make_catalog_item(rng, lang, interest))
        return rng.choice(CATALOG[lang][interest][1 if self.heldout else 0])

    def email(self, rng: random.Random, name: str | None = None) -> str:
        """An address whose handle is `name` (an English name) or a random English name."""
        handle = (name or self.one(rng, "name", "en")).lower()
        if rng.random() < 0.5:
            handle += str(rng.randint(1, 99))
        return f"{handle}@{rng.choice(DOMAINS)}"


@functools.cache
def _heldout_pattern() -> re.Pattern:
    entities = sorted({e.casefold() for e in heldout_entities()}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, entities)))


def leaks_heldout(text: str) -> bool:
    """True when `text` contains a held-out (test-only) entity, ignoring case."""
    return _heldout_pattern().search(text.casefold()) is not None


def _unseen(make: Callable[[], str]) -> str:
    """The first of make()'s values that contains no held-out entity."""
    while leaks_heldout(value := make()):
        pass
    return value


@dataclass(frozen=True)
class Sample:
    """One task instance before rendering: the phrasing's slot values, the reference answer,
    its checker and an optional system message."""

    slots: dict[str, Any]
    answer: str
    checker: dict[str, Any]
    system: str | None = None


@dataclass(frozen=True)
class Family:
    """A task family: one instruction, phrased many ways, with a generator of instances.

    ``phrasings`` serve the train and val splits; ``heldout`` phrasings serve the test split only.
    """

    name: str
    area: str
    description: str
    phrasings: dict[str, tuple[str, ...]]
    heldout: dict[str, tuple[str, ...]]
    make: Callable[[random.Random, str, Pool], Sample]


def family(
    name: str, area: str, description: str, make: Callable[[random.Random, str, Pool], Sample]
) -> Family:
    """A family whose phrasings are those of builtin_phrasings.PHRASINGS[name]."""
    p = PHRASINGS[name]
    return Family(
        name, area, description, {lang: p[lang] for lang in LANGS}, dict(p["heldout"]), make
    )


def title_case(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))


def sequence_pattern(items: list[str]) -> str:
    """A fullmatch regex for `items` in order, separated by commas (any width), 、 or spaces."""
    return r"(?:\s*[,，、;；]\s*|\s+)".join(re.escape(x) for x in items)


def list_pattern(items: list[str], numbered: bool) -> str:
    """A fullmatch regex for `items` as a bulleted (- * •) or numbered (1. 1、 1)) list."""
    marks = [rf"{i}\s*[.、)）]" if numbered else r"[-*•]" for i in range(1, len(items) + 1)]
    return r"\s*\n\s*".join(rf"{m}\s*{re.escape(x)}" for m, x in zip(marks, items))


def join_items(items: list[str], lang: str) -> str:
    """``a、b和c`` / ``a, b and c``."""
    if lang == "zh":
        return "、".join(items[:-1]) + "和" + items[-1]
    return ", ".join(items[:-1]) + " and " + items[-1]
