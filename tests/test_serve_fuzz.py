"""Fuzz the real server from its own OpenAPI schema: no input gives a 5xx or stops it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve_support import server

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
FUZZ = settings(
    max_examples=70,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def from_schema(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> st.SearchStrategy:
    """Values that mostly follow a JSON schema (OpenAPI's subset: $ref, anyOf, enum, ranges)."""
    if depth > 6:
        return JSON
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, defs, depth + 1) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    low, high = schema.get("minimum"), schema.get("maximum")
    if kind == "string":
        return st.text(max_size=12)
    if kind == "integer":
        low = int(low) if low is not None else None
        high = int(high) if high is not None else None
        return st.integers(low, high)
    if kind == "number":
        low = schema.get("exclusiveMinimum", low)
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        size = min(schema.get("maxItems", 4), 4)
        return st.lists(from_schema(schema.get("items", {}), defs, depth + 1), max_size=size)
    if kind == "object" and "properties" in schema:
        props = schema["properties"]
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs, depth + 1) for k, v in props.items() if k in required},
            optional={
                k: from_schema(v, defs, depth + 1) for k, v in props.items() if k not in required
            },
        )
    return JSON


def bodies(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy:
    """Schema-shaped bodies, the same with one field replaced by junk, and plain junk."""
    valid = from_schema(schema, defs)
    names = list(defs[schema["$ref"].rsplit("/", 1)[-1]].get("properties", {}))
    broken = st.builds(
        lambda body, key, junk: {**body, key: junk}, valid, st.sampled_from(names), JSON
    )
    return st.one_of(valid, broken, JSON)


@pytest.fixture(scope="module")
def url(gpt2_dir):
    with server(gpt2_dir, "--max-batch", "8", "--max-body-mb", "0.25") as base:
        yield base


@pytest.fixture(scope="module")
def openapi(url):
    return httpx.get(url + "/openapi.json").json()


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}


def json_operations(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """POST path → its JSON body schema."""
    out = {}
    for path, ops in openapi["paths"].items():
        body = ops.get("post", {}).get("requestBody", {}).get("content", {})
        if "application/json" in body:
            out[path.replace("{engine}", "fuzz")] = body["application/json"]["schema"]
    return out


POSTS = [
    "/v1/completions",
    "/v1/engines/fuzz/completions",
    "/v1/chat/completions",
    "/tokenize",
    "/detokenize",
]


def test_the_schema_has_every_post(openapi):
    assert set(json_operations(openapi)) == set(POSTS)


@pytest.mark.parametrize("path", POSTS)
@FUZZ
@given(data=st.data())
def test_schema_fuzz_never_5xx(url, openapi, path, data):
    schema = json_operations(openapi)[path]
    body = data.draw(bodies(schema, openapi["components"]["schemas"]))
    check(httpx.post(url + path, json=body, timeout=60))


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(["/v1/completions", "/v1/models", "/tokenize", "/health", "/v1/x"])
    | st.text(alphabet="/abcv1-_.%", min_size=1, max_size=20).map(lambda p: "/" + p),
    raw=st.binary(max_size=64),
)
def test_raw_fuzz_never_5xx(url, method, path, raw):
    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.request(
            method, path, content=raw, headers={"Content-Type": "application/json"}
        )
    assert response.status_code < 500, response.text[:300]


def nested_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"prompt": "x", "temperature": NaN}',
        b'{"prompt": "x", "max_tokens": 1e400}',
        b'{"prompt": "x", "seed": 99999999999999999999999999}',
        b'{"prompt": "x", "temperature": 1e-300, "max_tokens": 2}',
        json.dumps({"prompt": [[]], "max_tokens": 2, "echo": True, "logprobs": 20}).encode(),
        json.dumps({"prompt": "x", "repetition_penalty": 1e-9, "max_tokens": 2}).encode(),
        json.dumps({"prompt": "x", "min_tokens": 5, "max_tokens": 2}).encode(),
        json.dumps(
            {
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 7}}},
            }
        ).encode(),
        json.dumps(
            {
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 2,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "deep", "schema": nested_schema(400)},
                },
            }
        ).encode(),
        json.dumps(
            {
                "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
                "max_tokens": 2,
            }
        ).encode(),
    ],
)
def test_nasty_bodies(url, raw):
    path = "/v1/chat/completions" if b"messages" in raw else "/v1/completions"
    response = httpx.post(
        url + path, content=raw, headers={"Content-Type": "application/json"}, timeout=60
    )
    check(response)
    assert httpx.get(url + "/health").status_code == 200


def test_still_serving_after_fuzz(url):
    out = httpx.post(url + "/v1/completions", json={"prompt": "Hi", "max_tokens": 3}, timeout=60)
    assert out.status_code == 200 and out.json()["choices"][0]["finish_reason"]
