"""Instruction data formats: detection, normalisation, every file type, validation, lossless
conversion and exact statistics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructgen.data.formats import (
    Conversation,
    Problem,
    convert,
    detect_format,
    format_counts,
    iter_records,
    language_of,
    percentiles,
    read_conversations,
    stats,
    to_conversation,
    to_record,
    validate_file,
)
from instructgen.data.records import raw_records
from instructgen.errors import DataError


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def msgs(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in pairs]


# ----------------------------------------------------------------------------------------------
# Detection and normalisation

CASES = [
    (
        {"id": 1, "instruction": "把这句话翻译成英文", "input": "我爱你", "output": "I love you."},
        "alpaca",
        msgs(("user", "把这句话翻译成英文\n\n我爱你"), ("assistant", "I love you.")),
        {"id": 1, "input": "我爱你"},
    ),
    (
        {
            "instruction": "And in French?",
            "output": "Bonjour",
            "system": "Be brief.",
            "history": [["Say hello.", "Hello"]],
            "checker": "exact",
        },
        "alpaca",
        msgs(
            ("system", "Be brief."),
            ("user", "Say hello."),
            ("assistant", "Hello"),
            ("user", "And in French?"),
            ("assistant", "Bonjour"),
        ),
        {"checker": "exact"},
    ),
    (
        {
            "conversations": [
                {"from": "system", "value": "你是一个有帮助的助手。"},
                {"from": "human", "value": "你好"},
                {"from": "gpt", "value": "你好！有什么可以帮你？"},
            ],
            "lang": "zh",
        },
        "sharegpt",
        msgs(
            ("system", "你是一个有帮助的助手。"),
            ("user", "你好"),
            ("assistant", "你好！有什么可以帮你？"),
        ),
        {"lang": "zh"},
    ),
    (
        {
            "system": "Answer in one word.",
            "conversations": [
                {"from": "user", "value": "Capital of France?"},
                {"from": "assistant", "value": "Paris"},
            ],
        },
        "sharegpt",
        msgs(
            ("system", "Answer in one word."),
            ("user", "Capital of France?"),
            ("assistant", "Paris"),
        ),
        {},
    ),
    (
        {
            "messages": msgs(
                ("user", "Write a haiku about spring."), ("assistant", "Petals drift…")
            ),
            "family": "poem",
        },
        "messages",
        msgs(("user", "Write a haiku about spring."), ("assistant", "Petals drift…")),
        {"family": "poem"},
    ),
    (
        {"prompt": "请用中文写一首关于春天的诗。", "completion": "春风吹绿柳。", "id": "c1"},
        "completion",
        msgs(("user", "请用中文写一首关于春天的诗。"), ("assistant", "春风吹绿柳。")),
        {"id": "c1"},
    ),
]


@pytest.mark.parametrize(("record", "fmt", "messages", "meta"), CASES)
def test_each_format_is_detected_and_normalised(record, fmt, messages, meta):
    assert detect_format(record) == fmt
    conv = to_conversation(record)
    assert conv == Conversation(messages, meta)
    assert to_conversation(record, fmt) == conv


def test_unknown_format_and_non_objects_raise_data_error():
    with pytest.raises(DataError, match="unknown format"):
        detect_format({"text": "hello"})
    with pytest.raises(DataError, match="JSON object"):
        to_conversation([1, 2])  # type: ignore[arg-type]
    with pytest.raises(DataError, match="field 'output': missing"):
        to_conversation({"instruction": "x"}, "alpaca")


# ----------------------------------------------------------------------------------------------
# File types

RECORDS = [CASE[0] for CASE in CASES]


def test_jsonl_and_json_shapes_read_alike(tmp_path):
    expected = [to_conversation(r) for r in RECORDS]
    jsonl = write_jsonl(tmp_path / "a.jsonl", RECORDS)
    array = tmp_path / "b.json"
    array.write_text(json.dumps(RECORDS, ensure_ascii=False, indent=2), "utf-8")
    wrapped = tmp_path / "c.json"
    wrapped.write_text(json.dumps({"version": 2, "data": RECORDS}, ensure_ascii=False), "utf-8")
    lines_json = write_jsonl(tmp_path / "d.json", RECORDS)  # JSON Lines under a .json name
    for path in (jsonl, array, wrapped, lines_json):
        assert read_conversations(path) == expected, path
    single = tmp_path / "e.json"
    single.write_text(json.dumps(RECORDS[2], ensure_ascii=False, indent=1), "utf-8")
    assert read_conversations(single) == [expected[2]]
    assert [line for line, _ in iter_records(jsonl)] == [1, 2, 3, 4, 5, 6]
    assert format_counts(jsonl) == {"alpaca": 2, "sharegpt": 2, "messages": 1, "completion": 1}


def test_json_array_records_keep_their_line_numbers(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(
        '[\n  {"instruction": "a", "output": "b"},\n\n  {\n    "instruction": "c",\n'
        '    "output": "d"\n  }, {"prompt": "[1, 2]", "completion": "x"}\n]\n',
        "utf-8",
    )
    assert [line for line, _ in iter_records(path)] == [2, 4, 7]
    nested = tmp_path / "nested.json"
    nested.write_text(
        '{"name": "demo", "meta": {"x": [1]},\n "rows": [\n  {"prompt": "p", "completion": "c"},\n'
        '  {"prompt": "q", "completion": "d"}]}',
        "utf-8",
    )
    assert [line for line, _ in iter_records(nested)] == [3, 4]


def test_parquet_and_csv_through_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    chat = [
        {"id": 1, "messages": msgs(("user", "你好"), ("assistant", "你好！"))},
        {"id": 2, "messages": msgs(("system", "Be kind."), ("user", "Hi"), ("assistant", "Hey"))},
    ]
    parquet = tmp_path / "chat.parquet"
    datasets.Dataset.from_list(chat).to_parquet(str(parquet))
    assert read_conversations(parquet) == [to_conversation(r) for r in chat]
    assert [line for line, _ in iter_records(parquet)] == [1, 2]

    csv = tmp_path / "alpaca.csv"
    csv.write_text(
        "id,instruction,input,output\n"
        "1,翻译成英文,早上好,Good morning\n"
        '2,"Say hi, politely",,Hello there\n',
        "utf-8",
    )
    convs = read_conversations(csv)
    assert convs[0] == Conversation(
        msgs(("user", "翻译成英文\n\n早上好"), ("assistant", "Good morning")),
        {"id": 1, "input": "早上好"},
    )
    assert convs[1] == Conversation(
        msgs(("user", "Say hi, politely"), ("assistant", "Hello there")), {"id": 2}
    )
    # an empty cell is an absent field; the header is line 1
    csv.write_text(csv.read_text("utf-8") + '3,Chat,"",""\n4,,x,y\n', "utf-8")
    problems = validate_file(csv)
    assert [(p.line, p.field, p.message) for p in problems] == [
        (4, "output", "missing"),
        (5, "instruction", "missing"),
    ]

    chat_csv = tmp_path / "chat.csv"
    chat_csv.write_text(
        "messages,lang\n"
        + "".join(
            '"' + json.dumps(r["messages"], ensure_ascii=False).replace('"', '""') + '",x\n'
            for r in chat
        ),
        "utf-8",
    )
    assert [c.messages for c in read_conversations(chat_csv)] == [r["messages"] for r in chat]


# ----------------------------------------------------------------------------------------------
# Validation

BAD_LINES = [
    ({"instruction": "Say hi", "output": "Hi"}, None, None),
    ('{"instruction": "x", "output": "y"', None, "invalid JSON"),
    ({"text": "hello"}, None, "unknown format"),
    ({"instruction": "写诗"}, "output", "missing"),
    ({"instruction": "  ", "output": "y"}, "instruction", "is empty"),
    (
        {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]},
        "messages[0].content",
        "must be a string",
    ),
    ({"messages": msgs(("bot", "hi"), ("assistant", "a"))}, "messages[0].role", "unknown role"),
    ({"messages": msgs(("user", "hi"))}, "messages", "no assistant turn"),
    (
        {"messages": msgs(("user", "a"), ("user", "b"), ("assistant", "c"))},
        "messages[1].role",
        "two user turns",
    ),
    (
        {"messages": msgs(("assistant", "a"), ("user", "b"), ("assistant", "c"))},
        "messages[0].role",
        "starts with an assistant",
    ),
    (
        {"messages": msgs(("user", "a"), ("system", "b"), ("assistant", "c"))},
        "messages[1].role",
        "system message must come first",
    ),
    (
        {"conversations": [{"from": "human", "value": ""}, {"from": "gpt", "value": "a"}]},
        "conversations[0].value",
        "is empty",
    ),
    (
        {"conversations": [{"from": "robot", "value": "x"}, {"from": "gpt", "value": "a"}]},
        "conversations[0].from",
        "unknown role",
    ),
    ({"instruction": "a", "output": "b", "history": "x"}, "history", "must be a list"),
    ({"prompt": "p"}, "completion", "missing"),
    ("", None, None),  # blank lines are skipped
    ("[1, 2]", None, "JSON object"),
    ({"messages": msgs(("user", "你好"), ("assistant", "你好！"))}, None, None),
    (
        {"messages": msgs(("user", "a"), ("assistant", "b"), ("user", "c"))},
        "messages[2].role",
        "ends with a user turn",
    ),
    ({"instruction": "a", "input": 3, "output": "b"}, "input", "must be a string"),
    (
        {"messages": msgs(("user", "a"), ("assistant", "b"), ("assistant", "c"))},
        "messages[2].role",
        "two assistant turns",
    ),
    ({"conversations": []}, "conversations", "is empty"),
]


def test_validate_reports_every_bad_record_with_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
        for item, _, _ in BAD_LINES
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    problems = validate_file(path)
    expected = [(n, field) for n, (_, field, message) in enumerate(BAD_LINES, 1) if message]
    assert [(p.line, p.field) for p in problems] == expected
    for problem in problems:
        assert problem.file == str(path)
        message = BAD_LINES[problem.line - 1][2]
        assert message in problem.message
    assert str(problems[2]) == f"{path}:4: field 'output': missing"
    assert str(problems[0]).startswith(f"{path}:2: invalid JSON")
    with pytest.raises(DataError) as exc:
        read_conversations(path)
    assert str(exc.value).startswith(f"{path}:2: invalid JSON")


def test_read_names_file_line_and_field_of_first_bad_record(tmp_path):
    path = write_jsonl(
        tmp_path / "x.jsonl", [RECORDS[0], {"instruction": "a", "output": ""}, {"x": 1}]
    )
    with pytest.raises(DataError) as exc:
        read_conversations(path)
    assert (exc.value.file, exc.value.line, exc.value.field) == (str(path), 2, "output")
    assert str(exc.value) == f"{path}:2: field 'output': is empty"


def test_whole_file_problems(tmp_path):
    def only(path: Path) -> Problem:
        problems = validate_file(path)
        assert len(problems) == 1
        return problems[0]

    assert only(tmp_path / "missing.jsonl").message == "file not found"
    (tmp_path / "a.txt").write_text("hello", "utf-8")
    assert "unsupported file type" in only(tmp_path / "a.txt").message
    (tmp_path / "empty.jsonl").write_text("\n\n", "utf-8")
    assert only(tmp_path / "empty.jsonl").message == "no records found"
    (tmp_path / "broken.json").write_text('[\n  {"prompt": "p",\n  "completion" "c"}\n]', "utf-8")
    problem = only(tmp_path / "broken.json")
    assert problem.line == 3 and "invalid JSON" in problem.message
    (tmp_path / "latin1.jsonl").write_bytes('{"prompt": "café"}'.encode("latin-1"))
    assert "not UTF-8" in only(tmp_path / "latin1.jsonl").message
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    assert only(tmp_path / "junk.parquet").message.startswith("cannot read parquet file: ")
    with pytest.raises(DataError, match="no records found"):
        read_conversations(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="file not found"):
        list(iter_records(tmp_path / "missing.jsonl"))


# ----------------------------------------------------------------------------------------------
# Lossless conversion

EXTRA_KEYS = ["id", "checker", "family", "lang", "source", "score", "tags"]
text = st.one_of(
    st.text(min_size=1, max_size=40),
    st.text(
        alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=20
    ),
    st.sampled_from(["a\n\nb", "\n\nx", "line\n", " spaced ", "混合 mixed 文本"]),
).filter(lambda s: s.strip() != "")
extras = st.dictionaries(
    st.sampled_from(EXTRA_KEYS),
    st.one_of(st.integers(), st.text(max_size=10), st.lists(st.integers(), max_size=3), st.none()),
    max_size=3,
)
ABSENT = object()


@st.composite
def alpaca_records(draw) -> dict:
    record = {"instruction": draw(text)}
    optional = {
        "input": draw(st.one_of(st.just(ABSENT), st.just(""), text)),
        "system": draw(st.one_of(st.just(ABSENT), st.just(""), text)),
        "history": draw(
            st.one_of(
                st.just(ABSENT),
                st.just([]),
                st.lists(st.lists(text, min_size=2, max_size=2), min_size=1, max_size=3),
            )
        ),
    }
    record.update({k: v for k, v in optional.items() if v is not ABSENT})
    record["output"] = draw(text)
    record.update(draw(extras))
    return record


@st.composite
def messages_records(draw) -> dict:
    turns = []
    if draw(st.booleans()):
        turns.append({"role": "system", "content": draw(text)})
    for _ in range(draw(st.integers(1, 4))):
        turns += [
            {"role": "user", "content": draw(text)},
            {"role": "assistant", "content": draw(text)},
        ]
    return {"messages": turns, **draw(extras)}


def through(record: dict, *formats: str) -> dict:
    for fmt in formats:
        record = to_record(to_conversation(record), fmt)
    return record


@settings(max_examples=200, deadline=None)
@given(alpaca_records())
def test_alpaca_to_messages_to_alpaca_is_identical(record):
    messages = through(record, "messages")
    assert detect_format(messages) == "messages"
    assert through(messages, "alpaca") == record
    assert through(record, "sharegpt", "alpaca") == record


@settings(max_examples=200, deadline=None)
@given(messages_records())
def test_messages_to_alpaca_to_messages_is_identical(record):
    alpaca = through(record, "alpaca")
    assert detect_format(alpaca) == "alpaca"
    assert len(alpaca.get("history", [])) == len(record["messages"]) // 2 - 1
    assert through(alpaca, "messages") == record
    assert through(record, "sharegpt", "messages") == record


def test_input_rides_along_as_a_field_of_the_messages_record():
    record = {"id": 7, "instruction": "Translate.", "input": "早上好", "output": "Good morning"}
    assert through(record, "messages") == {
        "messages": msgs(("user", "Translate.\n\n早上好"), ("assistant", "Good morning")),
        "id": 7,
        "input": "早上好",
    }
    edited = through(record, "messages")
    edited["messages"][0]["content"] = "Translate this."
    with pytest.raises(DataError, match="field 'input': the last user message does not end"):
        through(edited, "alpaca")
    unfinished = Conversation(msgs(("user", "a"), ("assistant", "b"), ("user", "c")), {})
    with pytest.raises(DataError, match="field 'messages\\[2\\].role': the conversation ends"):
        to_record(unfinished, "messages")


def test_convert_files_round_trip(tmp_path):
    source = [
        {
            "id": 1,
            "instruction": "写一首诗",
            "input": "",
            "output": "春眠不觉晓",
            "checker": "none",
        },
        {"id": 2, "instruction": "Translate.", "input": "Bonjour", "output": "Hello", "system": ""},
        {"id": 3, "instruction": "And now?", "output": "Bye", "history": [["Hi", "Hello"]]},
    ]
    path = write_jsonl(tmp_path / "alpaca.jsonl", source)
    assert convert(path, "messages", tmp_path / "out" / "messages.jsonl") == 3
    assert convert(tmp_path / "out" / "messages.jsonl", "alpaca", tmp_path / "back.jsonl") == 3
    assert read_jsonl(tmp_path / "back.jsonl") == source
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "messages.jsonl"
    ]  # no temp left
    sharegpt = write_jsonl(tmp_path / "s.jsonl", [RECORDS[2]])
    assert convert(sharegpt, "messages", tmp_path / "s2.jsonl") == 1
    assert read_jsonl(tmp_path / "s2.jsonl") == [{"messages": CASES[2][2], "lang": "zh"}]
    # --out's suffix picks the format, and each reads back as the same records
    messages = read_jsonl(tmp_path / "out" / "messages.jsonl")
    for suffix in ("json", "parquet", "csv"):
        out = tmp_path / f"messages.{suffix}"
        assert convert(path, "messages", out) == 3
        if suffix == "json":
            assert json.loads(out.read_text(encoding="utf-8")) == messages
        back = [r for _, r in raw_records(out)]
        assert [_filled(r) for r in back] == [_filled(r) for r in messages], suffix


def _filled(record: dict) -> dict:
    """A record without its empty fields (tabular files cannot tell "" from absent)."""
    return {k: v for k, v in record.items() if v not in ("", None)}


def test_convert_refuses_to_lose_data(tmp_path):
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [RECORDS[4], {"messages": msgs(("user", "a"), ("assistant", "b")), "instruction": "clash"}],
    )
    with pytest.raises(DataError) as exc:
        convert(path, "alpaca", tmp_path / "out.jsonl")
    assert (exc.value.line, exc.value.field) == (2, "instruction")
    assert not (tmp_path / "out.jsonl").exists()
    with pytest.raises(DataError, match="cannot convert to 'yaml'"):
        convert(path, "yaml", tmp_path / "out.jsonl")


# ----------------------------------------------------------------------------------------------
# Statistics

STATS_RECORDS = [
    {
        "instruction": "请写一句关于春天的诗",
        "output": "春风又绿江南岸",
    },  # prompt 10, response 7, zh
    {
        "instruction": "Translate to French.",
        "input": "Good morning",
        "output": "Bonjour",
    },  # 34, 7, en
    {
        "messages": msgs(
            ("system", "You are helpful."),
            ("user", "用Python写hello world"),
            ("assistant", "print('hello world')"),
            ("user", "谢谢"),
            ("assistant", "不客气"),
        )
    },  # prompt 16 + 19 + 20 + 2 = 57, response 3, mixed (7 CJK vs 6 Latin words)
    {"conversations": [{"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4"}]},
    {"prompt": "12345", "completion": "67890"},  # 5, 5, other
    {
        "id": 6,
        "conversations": [
            {"from": "human", "value": "What is 2+2?"},
            {"from": "gpt", "value": "4"},
        ],
    },
]


def test_stats_on_a_hand_made_file_are_exact(tmp_path):
    path = write_jsonl(tmp_path / "mix.jsonl", STATS_RECORDS)
    result = stats(path)
    assert result["records"] == 6
    assert result["messages"] == 15
    assert result["turns"] == 7
    assert result["formats"] == {"alpaca": 2, "messages": 1, "sharegpt": 2, "completion": 1}
    # prompts sorted [5, 10, 12, 12, 34, 57], responses [1, 1, 3, 5, 7, 7]; nearest rank
    assert result["chars"]["prompt"] == {"p50": 12, "p90": 57, "p99": 57, "max": 57}
    assert result["chars"]["response"] == {"p50": 3, "p90": 7, "p99": 7, "max": 7}
    assert result["languages"] == {"zh": 1, "en": 3, "mixed": 1, "other": 1}
    assert result["duplicates"] == {"exact": pytest.approx(1 / 6), "near": pytest.approx(1 / 6)}
    assert "tokens" not in result
    json.dumps(result)  # printable as JSON


def test_stats_counts_tokens_with_a_tokenizer(tmp_path, tokenizer_dir):
    from instructgen.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(tokenizer_dir)
    path = write_jsonl(tmp_path / "mix.jsonl", STATS_RECORDS)
    convs = read_conversations(path)
    prompt = [sum(len(tok.encode(m["content"])) for m in c.messages[:-1]) for c in convs]
    response = [len(tok.encode(c.messages[-1]["content"])) for c in convs]
    result = stats(path, tokenizer=tok)
    assert result["tokens"] == {"prompt": percentiles(prompt), "response": percentiles(response)}
    assert stats(path, tokenizer=tokenizer_dir)["tokens"] == result["tokens"]
    assert result["tokens"]["response"]["max"] == max(response) > 0


def test_percentiles_and_languages():
    assert percentiles(list(range(1, 101))) == {"p50": 50, "p90": 90, "p99": 99, "max": 100}
    assert percentiles([7]) == {"p50": 7, "p90": 7, "p99": 7, "max": 7}
    assert language_of("请用中文写一首关于春天的诗。") == "zh"
    assert language_of("请用Python写一个函数") == "zh"  # 8 CJK, 1 Latin word
    assert language_of("Write a short poem about the sea.") == "en"
    assert language_of("Café déjà vu") == "en"
    assert language_of("I love 饺子") == "mixed"
    assert language_of("12345 !?") == "other"
    assert language_of("Привет") == "other"


TOOL_RECORD = {
    "tools": [{"type": "function", "function": {"name": "get_time", "parameters": {}}}],
    "messages": [
        {"role": "user", "content": "What time is it?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
        {"role": "assistant", "content": "It is noon."},
    ],
}


def test_tool_calling_conversations_are_read_and_masked(tokenizer_dir):
    """OpenAI-shaped tool conversations read as ChatML-convention turns: the tools join the
    system turn, the call is assistant text (in the assistant mask, so it is trained on), the
    result a user turn (not trained on)."""
    from instructgen.data.templates import encode_example
    from instructgen.tokenizer import Tokenizer

    conv = to_conversation(TOOL_RECORD)
    assert [m["role"] for m in conv.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert '"name": "get_time"' in conv.messages[0]["content"]
    assert (
        conv.messages[2]["content"]
        == '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    )
    assert conv.messages[3]["content"] == "<tool_response>\n12:00\n</tool_response>"
    assert "tools" not in conv.meta
    tok = Tokenizer.from_dir(tokenizer_dir)
    example = encode_example(tok, conv.messages)
    trained = tok.decode([i for i, m in zip(example.input_ids, example.loss_mask) if m])
    assert "<tool_call>" in trained and "It is noon." in trained
    assert "12:00" not in trained and "What time" not in trained


@pytest.mark.parametrize(
    "change,field",
    [
        (
            lambda r: r["messages"][1]["tool_calls"][0]["function"].update(arguments="{oops"),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (lambda r: r["messages"][1]["tool_calls"][0].pop("function"), "messages[1].tool_calls[0]"),
        (lambda r: r["messages"][2].update(role="robot"), "messages[2].role"),
        (lambda r: r["messages"][2].update(content=""), "messages[2].content"),
        (lambda r: r.update(tools="get_time"), "tools"),
        (
            lambda r: r["messages"][0].update(tool_calls=[{"function": {"name": "x"}}]),
            "messages[0].tool_calls",
        ),
    ],
)
def test_bad_tool_records_name_the_field(change, field):
    record = json.loads(json.dumps(TOOL_RECORD))
    change(record)
    with pytest.raises(DataError, match=re.escape(f"field '{field}'")):
        to_conversation(record)
