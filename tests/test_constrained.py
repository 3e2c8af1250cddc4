"""JSON mode and JSON-schema-constrained decoding: random weights, yet every output validates."""

from __future__ import annotations

import json

import jsonschema
import pytest

from instructgen.errors import ConfigError
from instructgen.inference import load

SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
        },
        "required": ["name", "age"],
    },
    {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 5},
    {
        "type": "object",
        "properties": {
            "color": {"enum": ["red", "green", "blue"]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "score": {"type": "number"},
            "nested": {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}, "note": {"type": ["string", "null"]}},
                "required": ["ok", "note"],
            },
        },
        "required": ["color", "tags", "score", "nested"],
    },
    {"type": "string", "pattern": "^[a-z]{2,6}$"},
]


@pytest.fixture(scope="module")
def llm(llama_dir):
    return load(llama_dir)


@pytest.mark.parametrize("schema", SCHEMAS, ids=["person", "bools", "nested", "pattern"])
def test_every_output_validates(llm, schema):
    prompts = ["请用中文写一首关于春天的诗。", [{"role": "user", "content": "Give me JSON."}]]
    for prompt in prompts:
        for seed in range(3):
            out = llm.generate(prompt, json_schema=schema, max_tokens=96, seed=seed)
            assert out.finish_reason == "stop", out.text
            jsonschema.validate(json.loads(out.text), schema)
    greedy = llm.generate("hi", json_schema=json.dumps(schema), max_tokens=96, temperature=0)
    jsonschema.validate(json.loads(greedy.text), schema)


def test_batched_constrained_and_free_requests_share_a_batch(llm):
    schema = SCHEMAS[0]
    outs = llm.generate_batch(["a", "bb", "春天"], json_schema=schema, max_tokens=40, n=2, seed=1)
    for out in outs:
        for choice in out.choices:
            jsonschema.validate(json.loads(choice.text), schema)
    free = llm.engine.add_request("hello", None)
    constrained = llm.generate("春天", json_schema=schema, max_tokens=40, seed=2)
    jsonschema.validate(json.loads(constrained.text), schema)
    while not free.finished:
        llm.engine.step()


def test_json_mode_gives_an_object(llm):
    for seed in range(4):
        out = llm.generate("hi", json_mode=True, max_tokens=40, seed=seed)
        assert isinstance(json.loads(out.text), dict)


def test_a_tight_budget_still_ends_the_document(llm):
    """Random weights write long keys; near the budget's end the constraint closes the JSON."""
    for seed in range(6):
        out = llm.generate("hi", json_mode=True, max_tokens=12, seed=seed, temperature=1.5)
        assert out.finish_reason == "stop"
        assert isinstance(json.loads(out.text), dict)


def test_bad_schemas_are_user_errors(llm):
    with pytest.raises(ConfigError, match="json_schema"):
        llm.generate("hi", json_schema="{not json", max_tokens=4)
    with pytest.raises(ConfigError, match="json_schema"):
        llm.generate("hi", json_schema={"type": "no-such-type"}, max_tokens=4)


@pytest.mark.parametrize(
    "schema",
    [
        {"enum": []},
        {"type": "string", "minLength": 5, "maxLength": 2},
        {"type": "integer", "minimum": 5, "maximum": 1},
        {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "required": ["b"],
            "additionalProperties": False,
        },
        {"type": "object", "properties": {"a": False}, "required": ["a"]},
        {"type": "array", "items": {"enum": []}, "minItems": 1},
        {"allOf": [{"type": "string", "minLength": 3, "maxLength": 1}]},
    ],
)
def test_a_schema_nothing_satisfies_is_refused(llm, schema):
    with pytest.raises(ConfigError, match="no JSON value satisfies"):
        llm.generate("hi", json_schema=schema, max_tokens=4)


def test_hf_backend_is_constrained_too(llama_dir):
    hf = load(llama_dir, backend="hf")
    schema = SCHEMAS[0]
    out = hf.generate("春天", json_schema=schema, max_tokens=60, seed=0, n=2)
    for choice in out.choices:
        if choice.finish_reason == "stop":
            jsonschema.validate(json.loads(choice.text), schema)
    assert any(c.finish_reason == "stop" for c in out.choices)
