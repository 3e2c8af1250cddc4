"""The bilingual text helpers the metrics and instruction checks use, re-exported from their one
owner, `instructgen.text` (import them from there in new code)."""

from __future__ import annotations

from instructgen.text import (
    CJK_CLASS,
    CJK_RE,
    ZH_SHARE,
    char_words,
    cjk_share,
    detect_lang,
    jieba_words,
    resolve_lang,
)

__all__ = [
    "CJK_CLASS",
    "CJK_RE",
    "ZH_SHARE",
    "char_words",
    "cjk_share",
    "detect_lang",
    "jieba_words",
    "resolve_lang",
]
