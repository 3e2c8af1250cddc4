"""Bilingual (zh/en) text helpers shared by the metrics and the instruction checks:
language detection by the share of CJK characters, and word segmentation (jieba for Chinese)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache

from instructgen.errors import ConfigError

# CJK Unified Ideographs, Extension A, Compatibility Ideographs.
CJK_CLASS = "\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff"
CJK_RE = re.compile(f"[{CJK_CLASS}]")
ZH_SHARE = 0.2  # a text is Chinese when at least this share of its letters are CJK characters


def cjk_share(text: str) -> float:
    """share = #CJK characters / #letters (str.isalpha; CJK characters count as letters); 0 if none."""
    letters = sum(1 for ch in text if ch.isalpha())
    return len(CJK_RE.findall(text)) / letters if letters else 0.0


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


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)  # silence "Building prefix dict ..." on first use
    return jieba


def jieba_words(text: str) -> list[str]:
    """Segment with jieba (precise mode), dropping whitespace and punctuation-only tokens."""
    return [w for w in _jieba().lcut(text) if _WORDLIKE.search(w)]


def char_words(text: str) -> list[str]:
    """Each CJK character is a token; runs of other letters/digits are one token each."""
    return _CHAR_TOKEN_RE.findall(text)


_WORDLIKE = re.compile(r"[^\W_]")
_CHAR_TOKEN_RE = re.compile(f"[{CJK_CLASS}]|[^\\W_{CJK_CLASS}]+")
