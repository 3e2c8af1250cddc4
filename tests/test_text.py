"""instructgen.text, the one owner of script ranges, language detection and Chinese segmentation:
each caller's rule pinned where the rules differ, and the module's stdlib-only import."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from instructgen import text
from instructgen.errors import ConfigError


def test_script_ranges():
    cjk = re.compile(f"[{text.CJK_CLASS}]")
    for ch in "\u4e00\u9fff\u3400\u4dbf\uf900\ufaff春":
        assert cjk.match(ch), hex(ord(ch))
    for ch in "a\u3040ひカ한，\U00020000":
        assert not cjk.match(ch), hex(ord(ch))
    assert re.fullmatch(f"[{text.CJK_BASIC}]+", "春天") and not re.match(
        f"[{text.CJK_BASIC}]", "\u3400"
    )
    assert re.fullmatch(f"[{text.CJK_SUPPLEMENTARY}]+", "\U00020000\U0002a6d6")
    assert re.fullmatch(f"[{text.KANA}]+", "ひらがなカタカナ")
    pretoken = re.compile(text.CJK_PRETOKEN)  # kana, hangul and full-width forms as well
    assert all(pretoken.fullmatch(ch) for ch in "春ひカ한，！\u2e80")
    assert not pretoken.match("a") and not pretoken.match("\U00020000")


def test_counts():
    assert text.count_cjk("春天 spring 𠀀") == 2
    assert text.count_cjk("春天 spring 𠀀", supplementary=True) == 3
    assert text.count_latin_words("Café déjà vu") == 4  # Caf, d, j, vu
    assert text.count_latin_words("Café déjà vu", extended=True) == 3
    assert text.count_latin_words("Привет ²", extended=True) == 0


def test_detect_lang_share_of_letters():
    """metrics and IFEval: zh when CJK characters are at least 20% of the letters."""
    assert text.detect_lang("今天天气很好") == "zh"
    assert text.detect_lang("The word 你好 means hello in Chinese") == "en"
    assert text.detect_lang("你好 abcdefgh") == "zh"  # 2 / 10 letters: exactly the threshold
    assert text.detect_lang("你好 abcdefghi") == "en"  # 2 / 11
    assert text.detect_lang(["你好", "abcdefgh"]) == "zh"  # several texts count as one
    assert text.detect_lang("") == "en" and text.detect_lang("12345") == "en"
    assert text.detect_lang("𠀀𠀁") == "en"  # plane 2 is not counted by this rule


def test_resolve_lang():
    assert text.resolve_lang("auto", ["春天来了"]) == "zh"
    assert text.resolve_lang("en", ["春天来了"]) == "en"
    with pytest.raises(ConfigError) as err:
        text.resolve_lang("fr", [])
    assert err.value.field == "lang"


def test_detect_lang_by_words():
    """The apps: zh when Chinese characters are at least as many as Latin words."""
    assert text.detect_lang_by_words("你好 hello world") == "zh"  # 2 vs 2: a tie is Chinese
    assert text.detect_lang_by_words("你 hello world") == "en"
    assert text.detect_lang_by_words("你好 abcdefghi") == "zh"  # 2 vs 1
    assert text.detect_lang_by_words("你 naïve") == "en"  # na, ve: ASCII words only
    assert text.detect_lang_by_words("12345") == "en" and text.detect_lang_by_words("") == "en"


def test_language_of():
    """Data stats: zh / en / mixed / other by the share of CJK units."""
    assert text.language_of("你好 abcdefghi") == "mixed"  # 2 / (2 + 1)
    assert text.language_of("请用Python写一个函数") == "zh"  # 8 / 9 >= 0.8
    assert text.language_of("Café déjà vu") == "en"
    assert text.language_of("你 naïve") == "mixed"  # 1 / (1 + 1)
    assert text.language_of("𠀀𠀁") == "zh"  # plane 2 counts here
    assert text.language_of("Привет 12345") == "other"
    assert text.language_of("ひらがな") == "other"


def test_old_homes_reexport_the_one_owner():
    from instructgen.apps import common
    from instructgen.data import formats
    from instructgen.evaluate import text as evaluate_text

    assert evaluate_text.detect_lang is text.detect_lang
    assert evaluate_text.CJK_CLASS == text.CJK_CLASS
    assert common.detect_lang is text.detect_lang_by_words
    assert formats.language_of is text.language_of


def test_segmentation():
    assert text.char_words("我爱Python 3!") == ["我", "爱", "Python", "3"]
    words = text.jieba_words("我爱北京天安门。")
    assert "北京" in words and "。" not in words
    assert "".join(text.segment("我爱北京天安门。")) == "我爱北京天安门。"  # precise: a partition
    search = text.segment("中华人民共和国", search=True)
    assert "中华人民共和国" in search and "中华" in search  # search: words and their sub-words


def test_import_is_stdlib_only():
    """safety/ may import it: nothing outside the standard library and instructgen loads."""
    code = (
        "import sys; before = set(sys.modules); import instructgen.text; "
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split()) - {"instructgen"}
    assert loaded <= set(sys.stdlib_module_names), loaded - set(sys.stdlib_module_names)
