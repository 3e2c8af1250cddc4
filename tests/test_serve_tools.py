"""Tool calling in /v1/chat/completions through the official openai SDK and raw HTTP, against
the real server on a random-weight model: forced calls validate against the function's schema
whatever the weights; `auto` parses the model's own blocks; conversations with calls and results
render in the ChatML tool convention; bad tool requests are 400s naming the field."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

from instructgen.chat_template import parse_tool_calls, tool_call_text, tool_conversation

from .conftest import make_model_dir
from .serve_support import server

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 12},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "description": "The time now."}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def url(tmp_path_factory, tokenizer_dir):
    model = make_model_dir(
        tmp_path_factory.mktemp("tools") / "model", tokenizer_dir, "llama", max_seq_len=1024
    )
    with server(model) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def _schema(tool: dict) -> dict:
    return tool["function"].get("parameters") or {"type": "object", "properties": {}}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_named_function_arguments_always_validate(client, seed):
    r = client.chat.completions.create(
        model="m",
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=1.0,
        seed=seed,
        max_tokens=160,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), _schema(WEATHER))


def test_required_picks_one_of_the_tools(client):
    names = set()
    for seed in range(4):
        r = client.chat.completions.create(
            model="m",
            messages=ASK,
            tools=[WEATHER, TIME],
            tool_choice="required",
            temperature=1.0,
            seed=seed,
            max_tokens=160,
        )
        (call,) = r.choices[0].message.tool_calls
        tool = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]
        jsonschema.validate(json.loads(call.function.arguments), _schema(tool))
        names.add(call.function.name)
    assert names <= {"get_weather", "get_time"}


def test_streamed_call_deltas_join_to_the_call(client):
    kwargs = dict(
        model="m",
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0.7,
        seed=3,
        max_tokens=160,
    )
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls[0]
    deltas, finish = [], None
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for choice in chunk.choices:
            deltas += choice.delta.tool_calls or []
            assert not choice.delta.content
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    head = deltas[0]
    assert head.index == 0 and head.id.startswith("call_") and head.type == "function"
    assert head.function.name == "get_weather"
    assert all(d.index == 0 and d.id is None and d.function.name is None for d in deltas[1:])
    arguments = "".join(d.function.arguments or "" for d in deltas)
    assert json.loads(arguments) == json.loads(whole.function.arguments)  # same seed, same call


def test_none_and_auto_answer_with_a_message(client):
    for choice in ("none", "auto"):
        r = client.chat.completions.create(
            model="m", messages=ASK, tools=[WEATHER], tool_choice=choice, max_tokens=8
        )
        c = r.choices[0]
        if c.message.tool_calls is None:  # a random model almost never writes a call block
            assert c.finish_reason in ("stop", "length") and isinstance(c.message.content, str)


def test_a_conversation_with_calls_and_results(client, url):
    """The assistant's earlier call and the tool's result go back to the model (SDK objects as
    the SDK's own users send them), rendered in the ChatML convention, as /tokenize shows."""
    first = (
        client.chat.completions.create(
            model="m",
            messages=ASK,
            tools=[WEATHER],
            tool_choice="required",
            max_tokens=160,
        )
        .choices[0]
        .message
    )
    messages = [
        *ASK,
        first.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": '{"temp": 21}'},
    ]
    r = client.chat.completions.create(model="m", messages=messages, tools=[WEATHER], max_tokens=8)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    tokens = httpx.post(url + "/tokenize", json={"messages": messages}, timeout=30).json()
    text = httpx.post(url + "/detokenize", json={"tokens": tokens["tokens"]}, timeout=30).json()
    call = first.tool_calls[0].function
    assert tool_call_text(call.name, call.arguments) in text["prompt"]
    assert '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response>' in text["prompt"]


def test_auto_parses_the_models_own_blocks():
    """What `auto` does with an answer: blocks of known functions become calls, the rest is the
    content; a block that is not a call stays text."""
    from instructgen.serve.protocol import ChatCompletionRequest
    from instructgen.serve.tools import ToolStream, plan_tools

    plan = plan_tools(ChatCompletionRequest(messages=ASK, tools=[WEATHER, TIME]))
    answer = (
        "Let me look.\n"
        + tool_call_text("get_time", {})
        + "\n"
        + tool_call_text("get_weather", {"city": "Paris", "unit": "celsius", "days": 1})
    )
    content, calls = plan.calls(answer)
    assert content == "Let me look."
    assert [c.function.name for c in calls] == ["get_time", "get_weather"]
    assert json.loads(calls[1].function.arguments)["city"] == "Paris"
    assert plan.calls("<tool_call>\nnot json\n</tool_call>") == (
        "<tool_call>\nnot json\n</tool_call>",
        [],
    )
    assert plan.calls(tool_call_text("unknown", {}))[1] == []
    single = plan_tools(
        ChatCompletionRequest(messages=ASK, tools=[WEATHER, TIME], parallel_tool_calls=False)
    )
    assert [c.function.name for c in single.calls(answer)[1]] == ["get_time"]
    stream = ToolStream(plan)  # streamed in pieces: the tag is never sent as content
    sent = ""
    for i in range(0, len(answer), 3):
        text, deltas = stream.feed(answer[i : i + 3])
        sent += text
        assert not deltas
    rest, deltas = stream.finish()
    assert sent + rest == "Let me look.\n"
    assert [d.function.name for d in deltas if d.function.name] == ["get_time", "get_weather"]


def test_tool_convention_round_trip():
    messages = tool_conversation(
        [
            {"role": "system", "content": "Be brief."},
            *ASK,
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_time", "arguments": "{}"}}],
            },
            {"role": "tool", "content": "12:00"},
            {"role": "tool", "content": "13:00"},
            {"role": "assistant", "content": "It is noon."},
        ],
        [TIME],
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[0]["content"].startswith("Be brief.\n\n# Tools")
    assert json.dumps(TIME) in messages[0]["content"]
    assert parse_tool_calls(messages[2]["content"]) == ("", [{"name": "get_time", "arguments": {}}])
    assert messages[3]["content"].count("<tool_response>") == 2


BAD = [
    ({"tool_choice": "auto"}, "tool_choice"),
    (
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        "tool_choice.function.name",
    ),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools.0.function.name"),
    ({"tools": [WEATHER, WEATHER]}, "tools"),
    (
        {
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "parameters": {
                            "type": "object",
                            "required": ["a"],
                            "properties": {"a": {"enum": []}},
                        },
                    },
                }
            ]
        },
        "tools.0.function.parameters",
    ),
    (
        {"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}},
        "response_format",
    ),
    (
        {
            "messages": [
                *ASK,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{oops"},
                        }
                    ],
                },
            ]
        },
        "messages.1.tool_calls.0.function.arguments",
    ),
    ({"messages": [*ASK, {"role": "tool", "tool_call_id": "1"}]}, "messages.1.content"),
]


@pytest.mark.parametrize("body,param", BAD, ids=[p for _, p in BAD])
def test_bad_tool_requests_are_400_naming_the_field(url, body, param):
    r = httpx.post(
        url + "/v1/chat/completions",
        json={"messages": ASK, "max_tokens": 4, **body},
        timeout=30,
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert httpx.get(url + "/health", timeout=5).status_code == 200
