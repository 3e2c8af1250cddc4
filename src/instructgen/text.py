"""Text handling, the one owner: script ranges (which characters are Chinese), language
detection, and Chinese word segmentation.

Standard library only at import time (jieba loads on first segmentation), so every layer may use
it, safety/ included. Three detection rules serve three jobs and are kept apart on purpose:
`detect_lang` (metrics, IFEval: share of letters), `detect_lang_by_words` (the apps: characters
against words) and `language_of` (data stats: zh / en / mixed / other).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from instructgen.errors import ConfigError

# --------------------------------------------------------------------------- script ranges
# Bodies of regex character classes: use them inside [...].

CJK_BASIC = "\u4e00-\u9fff"  # CJK Unified Ideographs
CJK_CLASS = CJK_BASIC + "\u3400-\u4dbf\uf900-\ufaff"  # + Extension A, Compatibility Ideographs
CJK_SUPPLEMENTARY = "\U00020000-\U0002ffff"  # Extension B onwards (plane 2)
KANA = "\u3040-\u30ff"  # Hiragana and Katakana
# The tokenizer's pre-token rule (a whole class: ideographs and radicals, kana, hangul, full-width
# forms). It is written into tokenizer.json, so it keeps this escaped spelling byte for byte.
CJK_PRETOKEN = r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]"

CJK_RE = re.compile(f"[{CJK_CLASS}]")
CJK_BASIC_RE = re.compile(f"[{CJK_BASIC}]")
_CJK_ALL_RE = re.compile(f"[{CJK_CLASS}{CJK_SUPPLEMENTARY}]")
_ASCII_WORD_RE = re.compile(r"[A-Za-z]+")
_WORDLIKE_RE = re.compile(r"[^\W_]")
_CHAR_TOKEN_RE = re.compile(f"[{CJK_CLASS}]|[^\\W_{CJK_CLASS}]+")


def count_cjk(text: str, *, supplementary: bool = False) -> int:
    """#ideographs of CJK_CLASS in `text` (with `supplementary`, plane 2's too)."""
    return len((_CJK_ALL_RE if supplementary else CJK_RE).findall(text))


def count_latin_words(text: str, *, extended: bool = False) -> int:
    """#runs of Latin letters: [A-Za-z]+, or with `extended` any letter (str.isalpha) from Basic
    Latin through Latin Extended-B (below U+0250), so "Café" is one word."""
    if not extended:
        return len(_ASCII_WORD_RE.findall(text))
    words, in_word = 0, False
    for ch in text:
        latin = ch.isalpha() and ord(ch) < 0x250
        words += latin and not in_word
        in_word = latin
    return words


# --------------------------------------------------------------------------- language detection

ZH_SHARE = 0.2  # a text is Chinese when at least this share of its letters are CJK characters


def cjk_share(text: str) -> float:
    """share = #CJK characters / #letters (str.isalpha; CJK characters count as letters); 0 if none."""
    letters = sum(1 for ch in text if ch.isalpha())
    return count_cjk(text) / letters if letters else 0.0


def detect_lang(texts: str | Iterable[str]) -> str:
    """'zh' when CJK characters make up at least ZH_SHARE of all letters, else 'en'.

    One Chinese character carries about one word, an English word about five letters, so a
    text that is 20% CJK by letters is mostly Chinese by words."""
    text = texts if isinstance(texts, str) else "\n".join(texts)
    return "zh" if cjk_share(text) >= ZH_SHARE else "en"


def resolve_lang(lang: str, texts: Iterable[str]) -> str:
    """`lang` itself when 'zh' or 'en'; detect_lang(texts) when 'auto'."""
    if lang == "auto":
        return detect_lang(texts)
    if lang not in ("zh", "en"):
        raise ConfigError(f"unknown language {lang!r}; expected zh, en or auto", field="lang")
    return lang


def detect_lang_by_words(text: str) -> str:
    """ "zh" when Chinese characters are at least as many as Latin words ([A-Za-z]+), else "en"."""
    cjk = count_cjk(text)
    return "zh" if cjk and cjk >= count_latin_words(text) else "en"


def language_of(text: str) -> str:
    """The language class of `text`, "zh", "en", "mixed" or "other", from character classes.

    Each CJK ideograph (plane 2 included) and each run of Latin letters (a word) is one unit;
    share = cjk / (cjk + latin_words): zh if share >= 0.8, en if share <= 0.2, else mixed;
    other when the text has neither.
    """
    cjk = count_cjk(text, supplementary=True)
    latin_words = count_latin_words(text, extended=True)
    if cjk + latin_words == 0:
        return "other"
    share = cjk / (cjk + latin_words)
    return "zh" if share >= 0.8 else "en" if share <= 0.2 else "mixed"


# --------------------------------------------------------------------------- segmentation


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)  # silence "Building prefix dict ..." on first use
    return jieba


def segment(text: str, *, search: bool = False) -> list[str]:
    """jieba's tokens of `text`, whitespace and punctuation included: precise mode, or with
    `search` its search mode (each word and the sub-words inside it, for retrieval)."""
    return _jieba().lcut_for_search(text) if search else _jieba().lcut(text)


def jieba_words(text: str) -> list[str]:
    """Segment with jieba (precise mode), dropping whitespace and punctuation-only tokens."""
    return [w for w in segment(text) if _WORDLIKE_RE.search(w)]


def char_words(text: str) -> list[str]:
    """Each CJK character is a token; runs of other letters/digits are one token each."""
    return _CHAR_TOKEN_RE.findall(text)
