"""Chat templates: the same text as transformers, assistant masks on exactly the assistant's tokens."""

from __future__ import annotations

import pytest

from instructgen.chat_template import ROLE_IDS
from instructgen.data.templates import (
    ALPACA_PROMPT_INPUT,
    ALPACA_PROMPT_NO_INPUT,
    encode_example,
    set_template,
)
from instructgen.tokenizer import Tokenizer

CONVERSATIONS = {
    "zh-multi-turn": [
        {"role": "system", "content": "你是一个乐于助人的助手。"},
        {"role": "user", "content": "请用中文写一首关于春天的诗。"},
        {"role": "assistant", "content": "春风吹绿柳，\n细雨润花开。"},
        {"role": "user", "content": "再写一句。"},
        {"role": "assistant", "content": "燕子归来早。"},
    ],
    "en-multi-turn": [
        {"role": "user", "content": "Sort: 3, 1, 2"},
        {"role": "assistant", "content": "1, 2, 3"},
        {"role": "user", "content": "Now descending."},
        {"role": "assistant", "content": "3, 2, 1"},
    ],
}


@pytest.fixture(params=["chatml", "alpaca"])
def tok(request, tokenizer_dir, tmp_path) -> tuple[Tokenizer, str, object]:
    from transformers import AutoTokenizer

    tokenizer = set_template(Tokenizer.from_dir(tokenizer_dir), request.param)
    tokenizer.save(tmp_path / "tok")
    return tokenizer, request.param, AutoTokenizer.from_pretrained(str(tmp_path / "tok"))


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_same_text_and_mask_as_transformers(tok, name):
    tokenizer, template, auto = tok
    messages = CONVERSATIONS[name]
    ours = tokenizer.encode_chat(messages)
    theirs = auto.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert ours.text == auto.apply_chat_template(messages, tokenize=False)
    assert ours.ids == list(theirs["input_ids"])
    assert ours.assistant_mask == list(theirs["assistant_masks"])


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_mask_marks_exactly_the_assistant_tokens_and_end_of_turn(tok, name):
    tokenizer, template, _ = tok
    messages = CONVERSATIONS[name]
    enc = tokenizer.encode_chat(messages)
    end_of_turn = (
        "<|im_end|>" if template == "chatml" else tokenizer.special_tokens_map["eos_token"]
    )
    masked = tokenizer.decode([i for i, m in zip(enc.ids, enc.assistant_mask) if m])
    assert masked == "".join(
        m["content"] + end_of_turn for m in messages if m["role"] == "assistant"
    )
    # every masked run is one whole assistant turn, ending with the end-of-turn token
    runs, current = [], []
    for token, m in zip(enc.ids, enc.assistant_mask):
        if m:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    runs += [current] if current else []
    assert [tokenizer.decode(r) for r in runs] == [
        m["content"] + end_of_turn for m in messages if m["role"] == "assistant"
    ]
    assert stop_token_ends_each_turn(tokenizer, runs)


def stop_token_ends_each_turn(tokenizer, runs) -> bool:
    return all(run[-1] in tokenizer.stop_ids for run in runs)


def test_role_ids_follow_the_messages(tokenizer_dir):
    tokenizer = set_template(Tokenizer.from_dir(tokenizer_dir), "chatml")
    messages = CONVERSATIONS["zh-multi-turn"]
    enc = tokenizer.encode_chat(messages)
    by_role = {}
    for token, role in zip(enc.ids, enc.role_ids):
        by_role.setdefault(role, []).append(token)
    assert "你是一个乐于助人的助手。" in tokenizer.decode(by_role[ROLE_IDS["system"]])
    assert "请用中文写一首关于春天的诗。" in tokenizer.decode(by_role[ROLE_IDS["user"]])
    assert "燕子归来早。" in tokenizer.decode(by_role[ROLE_IDS["assistant"]])
    prompt = tokenizer.encode_chat(messages[:2], add_generation_prompt=True)
    assert (
        prompt.text.endswith("<|im_start|>assistant\n")
        and prompt.role_ids[-1] == ROLE_IDS["assistant"]
    )


def test_alpaca_prompts_are_stanfords(tokenizer_dir):
    tokenizer = set_template(Tokenizer.from_dir(tokenizer_dir), "alpaca")
    eos = tokenizer.special_tokens_map["eos_token"]
    no_input = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Name a color."}, {"role": "assistant", "content": "Blue."}]
    )
    assert (
        no_input
        == ALPACA_PROMPT_NO_INPUT
        + "### Instruction:\nName a color.\n\n### Response:\nBlue."
        + eos
        + "\n\n"
    )
    # a converted Alpaca record keeps its input in meta; the template gets it back as its own field
    example = encode_example(
        tokenizer,
        [
            {"role": "user", "content": "Translate.\n\nbonjour"},
            {"role": "assistant", "content": "hello"},
        ],
        meta={"input": "bonjour"},
    )
    text = tokenizer.decode(example.input_ids)
    assert (
        text
        == ALPACA_PROMPT_INPUT
        + "### Instruction:\nTranslate.\n\n### Input:\nbonjour\n\n### Response:\nhello"
        + eos
        + "\n\n"
    )
    assert tokenizer.stop_ids == [tokenizer.eos_id]


def test_truncation_that_loses_every_answer_token_drops_the_example(tokenizer_dir):
    tokenizer = set_template(Tokenizer.from_dir(tokenizer_dir), "chatml")
    messages = CONVERSATIONS["en-multi-turn"][:2]
    assert encode_example(tokenizer, messages, max_len=5) is None
    full = encode_example(tokenizer, messages)
    assert len(full) > 5 and sum(full.loss_mask) > 0
