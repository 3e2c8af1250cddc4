"""Byte-level BPE: exact round trips, special tokens, chat template, loading in transformers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructgen.errors import DataError, UserError
from instructgen.tokenizer import (
    EOS,
    GRANULARITIES,
    IM_END,
    IM_START,
    MASK,
    PAD,
    Tokenizer,
    train_tokenizer,
)

TRICKY = [
    "请用中文写一首关于春天的诗。",
    "Hello, world! It's 2026.",
    "emoji 🌸🎉👩‍👩‍👧 and flags 🇨🇳",
    "def f(x):\n\treturn x  # tabs\tand  double  spaces\n",
    "   leading and trailing   \n\n\n",
    "混合 mixed 文本 text 123456789",
    "\u200b zero width \ufeff bom \u00a0 nbsp",
]

text_strategy = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=30),
    st.text(alphabet=" \t\n\r{}()[];:=+-*/#'\"abcXYZ0123456789", max_size=60),
    st.sampled_from(TRICKY),
)


@pytest.fixture(scope="module")
def tok(tokenizer_dir) -> Tokenizer:
    return Tokenizer.from_dir(tokenizer_dir)


@pytest.fixture(scope="module")
def auto_tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


@settings(max_examples=300, deadline=None)
@given(text_strategy)
def test_round_trip_is_exact(tok, auto_tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert auto_tok.encode(text, add_special_tokens=False) == ids
    assert auto_tok.decode(ids) == text


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_special_tokens(tok, auto_tok):
    for token in (EOS, PAD, MASK, IM_START, IM_END):
        ids = tok.encode(token)
        assert len(ids) == 1, token
    assert tok.eos_id == auto_tok.eos_token_id
    assert tok.pad_id == auto_tok.pad_token_id
    assert auto_tok.mask_token == MASK
    assert tok.stop_ids == [tok.eos_id, tok.token_id(IM_END)]
    assert tok.decode(tok.encode(f"hi{EOS}"), skip_special_tokens=True) == "hi"
    assert tok.special_ids == set(auto_tok.all_special_ids) | {tok.token_id(IM_START)}


def test_digits_are_single_tokens(tok):
    assert len(tok.encode("1234567")) == 7


def test_chat_template_in_transformers(auto_tok, tok):
    messages = [
        {"role": "system", "content": "你是助手。"},
        {"role": "user", "content": "你好"},
        {"role": "assistant", "content": "你好！"},
    ]
    text = auto_tok.apply_chat_template(messages, tokenize=False)
    assert (
        text
        == "<|im_start|>system\n你是助手。<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n你好！<|im_end|>\n"
    )
    prompt = auto_tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert tok.chat_template == auto_tok.chat_template


def test_training_reads_jsonl(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"text": f"第{i}行 line {i} 春夏秋冬"}, ensure_ascii=False)
            for i in range(200)
        ),
        encoding="utf-8",
    )
    out = train_tokenizer([data], 300, tmp_path / "tok", show_progress=False)
    t = Tokenizer.from_dir(out)
    assert 0 < len(t) <= 300
    assert t.decode(t.encode("第7行 line 7")) == "第7行 line 7"


def test_training_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        train_tokenizer([tmp_path / "missing.txt"], 400, tmp_path / "o", show_progress=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        train_tokenizer([bad], 400, tmp_path / "o", show_progress=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no text"):
        train_tokenizer([empty], 400, tmp_path / "o", show_progress=False)
    with pytest.raises(UserError, match="vocab-size"):
        train_tokenizer([bad], 10, tmp_path / "o", show_progress=False)
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def granular_dirs(tmp_path_factory) -> dict[str, str]:
    """One tokenizer directory per granularity, trained on the same mixed-script text."""
    root = tmp_path_factory.mktemp("granular")
    data = root / "d.txt"
    lines = [f"春天的花开了 spring flowers bloom {i} 司马云舒 thumbtack papaya" for i in range(300)]
    data.write_text("\n\n".join(lines), encoding="utf-8")
    return {
        g: str(train_tokenizer([data], 600, root / g, granularity=g, show_progress=False))
        for g in GRANULARITIES
    }


@pytest.fixture(scope="module")
def granular(granular_dirs) -> dict[str, tuple]:
    from transformers import AutoTokenizer

    return {
        g: (Tokenizer.from_dir(d), AutoTokenizer.from_pretrained(d))
        for g, d in granular_dirs.items()
    }


@settings(max_examples=100, deadline=None)
@given(text=text_strategy)
def test_every_granularity_round_trips_in_transformers(granular, text):
    for tok, auto in granular.values():
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert auto.encode(text, add_special_tokens=False) == ids


def test_granularity_bounds_what_a_token_spans(granular_dirs):
    pieces = {
        g: [Tokenizer.from_dir(d).decode([i]) for i in Tokenizer.from_dir(d).encode(text)]
        for g, d in granular_dirs.items()
        for text in ["春天的花 papaya"]
    }
    assert any(len(p.strip()) > 1 and "\u4e00" <= p[0] <= "\u9fff" for p in pieces["words"])
    assert all(len(p) <= 1 for p in pieces["cjk-chars"] if "\u4e00" <= p[:1] <= "\u9fff")
    assert any(len(p.strip()) > 1 for p in pieces["cjk-chars"] if p.strip().isascii())
    assert pieces["chars"] == list("春天的花 papaya")  # every character one token


def test_unknown_granularity_is_a_user_error(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text("some text\n", encoding="utf-8")
    with pytest.raises(UserError, match="granularity"):
        train_tokenizer([data], 400, tmp_path / "o", granularity="bytes", show_progress=False)
    assert not (tmp_path / "o").exists()
