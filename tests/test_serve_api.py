"""The OpenAI-compatible server through the official `openai` SDK, against a real server process."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
import torch

from tests.serve_support import server, sse_events

KEY = "sk-test-key"


@pytest.fixture(scope="module")
def url(gpt2_dir):
    with server(gpt2_dir, "--api-key", KEY, "--max-body-mb", "0.5") as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as c:
        yield c


def post(url: str, path: str, body: dict, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(url + path, json=body, headers=headers, timeout=60)


def assert_error_shape(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


# -- models, health, page, metrics -------------------------------------------------------------


def test_models_health_and_page(url, client, gpt2_dir):
    models = client.models.list()
    assert [m.id for m in models.data] == [gpt2_dir.name]
    assert client.models.retrieve("anything-maps-here").id == gpt2_dir.name
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    page = httpx.get(url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "instructgen chat" in page.text and "中文" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no external assets


def test_metrics_after_requests(url, client):
    client.completions.create(model="m", prompt="Hello", max_tokens=4, temperature=0)
    assert httpx.get(url + "/metrics").status_code == 401  # behind the key (--public-metrics)
    assert httpx.get(url + "/openapi.json").status_code == 401
    auth = {"Authorization": f"Bearer {KEY}"}
    text = httpx.get(url + "/metrics", headers=auth).text
    head = httpx.head(url + "/v1/models", headers=auth)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert httpx.head(url + "/health").status_code == 200
    for name in (
        "instructgen_requests_running",
        "instructgen_requests_waiting",
        "instructgen_prompt_tokens_total",
        "instructgen_generation_tokens_total",
        "instructgen_time_to_first_token_seconds_count",
        "instructgen_batch_size_bucket",
    ):
        assert name in text, name
    count = next(
        line for line in text.splitlines() if line.startswith("instructgen_prompt_tokens_total")
    )
    assert float(count.split()[-1]) > 0


# -- completions --------------------------------------------------------------------------------


def test_completion_prompt_forms(url, client):
    one = client.completions.create(model="m", prompt="Hello", max_tokens=5, temperature=0)
    assert len(one.choices) == 1 and one.choices[0].finish_reason in ("stop", "length")
    assert one.usage.prompt_tokens > 0 and one.usage.total_tokens == (
        one.usage.prompt_tokens + one.usage.completion_tokens
    )
    ids = post(url, "/tokenize", {"prompt": "Hello"}).json()["tokens"]
    by_ids = client.completions.create(model="m", prompt=ids, max_tokens=5, temperature=0)
    assert by_ids.choices[0].text == one.choices[0].text
    many = client.completions.create(
        model="m", prompt=["Hello", "春天来了"], max_tokens=4, temperature=0, n=2
    )
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    assert many.choices[0].text == many.choices[1].text  # greedy: both samples agree
    assert many.choices[0].text == one.choices[0].text[: len(many.choices[0].text)]
    lists = client.completions.create(model="m", prompt=[ids, ids], max_tokens=3, temperature=0)
    assert [c.index for c in lists.choices] == [0, 1]


def test_completion_stream_equals_non_stream(client):
    kwargs = dict(model="m", prompt="春天来了，", max_tokens=24, temperature=0)
    full = client.completions.create(**kwargs).choices[0].text
    chunks = list(client.completions.create(stream=True, **kwargs))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == full
    assert sum(1 for c in chunks for ch in c.choices if ch.finish_reason) == 1


def test_seed_and_sampling_extras(client):
    kwargs = dict(model="m", prompt="The sea", max_tokens=12, temperature=1.0, seed=7)
    extras = {"top_k": 50, "min_p": 0.01, "repetition_penalty": 1.1}
    a = client.completions.create(**kwargs, extra_body=extras).choices[0].text
    b = client.completions.create(**kwargs, extra_body=extras).choices[0].text
    assert a == b
    penalised = client.completions.create(
        **kwargs, presence_penalty=1.0, frequency_penalty=0.5, top_p=0.9
    )
    assert penalised.choices[0].finish_reason in ("stop", "length")


def test_stop_strings(client):
    kwargs = dict(model="m", prompt="Numbers: 12", max_tokens=30, temperature=0)
    full = client.completions.create(**kwargs).choices[0].text
    assert len(full) > 6
    stop = full[4:6]
    cut = client.completions.create(stop=[stop], **kwargs).choices[0]
    assert cut.text == full[: full.index(stop)] and cut.finish_reason == "stop"
    streamed = client.completions.create(stop=stop, stream=True, **kwargs)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == cut.text


def reference_logprobs(model_dir, ids: list[int]) -> list[float]:
    """log P(x_t | x_<t) for t >= 1, straight from the model's forward pass."""
    from instructgen.model.checkpoint import load_model

    model = load_model(model_dir)
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0]
    logp = torch.log_softmax(logits.float(), dim=-1)
    return [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]


def test_echo_logprobs_as_lm_eval_reads_them(url, client, gpt2_dir):
    ids = post(url, "/tokenize", {"prompt": "春天来了，花开了。"}).json()["tokens"]
    # lm-evaluation-harness local-completions: echo, max_tokens 0 (or 1), logprobs 1
    out = client.completions.create(
        model="m", prompt=ids, max_tokens=0, echo=True, logprobs=1, temperature=0
    )
    lp = out.choices[0].logprobs
    assert out.choices[0].text == "春天来了，花开了。"
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(ids)
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)
    assert lp.token_logprobs[1:] == pytest.approx(reference_logprobs(gpt2_dir, ids), abs=1e-4)
    for value, top in zip(lp.token_logprobs[1:], lp.top_logprobs[1:]):
        assert value <= max(top.values()) + 1e-6
    one = client.completions.create(
        model="m", prompt=ids, max_tokens=1, echo=True, logprobs=2, temperature=0
    )
    lp1 = one.choices[0].logprobs
    assert len(lp1.token_logprobs) == len(ids) + 1
    assert lp1.token_logprobs[-1] == pytest.approx(max(lp1.top_logprobs[-1].values()))
    assert one.choices[0].text.startswith("春天来了，花开了。")


def test_generated_logprobs(client):
    out = client.completions.create(model="m", prompt="Hello", max_tokens=6, logprobs=3)
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset)
    assert all(v <= 0 for v in lp.token_logprobs)
    assert all(3 <= len(top) <= 4 for top in lp.top_logprobs)


# -- chat ---------------------------------------------------------------------------------------


def test_chat_stream_equals_non_stream(client):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "请用中文写一首关于春天的诗。"},
        {"role": "assistant", "content": "好的。"},
        {"role": "user", "content": "Again"},
    ]
    kwargs = dict(model="m", messages=messages, max_tokens=20, temperature=0)
    full = client.chat.completions.create(**kwargs)
    assert full.choices[0].message.role == "assistant"
    chunks = list(
        client.chat.completions.create(
            stream=True, stream_options={"include_usage": True}, **kwargs
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert sum(1 for c in chunks for ch in c.choices if ch.finish_reason) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == full.usage.total_tokens


def test_chat_raw_sse_shape(url):
    body = {
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 5,
        "n": 2,
        "stream": True,
        "seed": 1,
    }
    response = post(url, "/v1/chat/completions", body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all("usage" not in c for c in chunks)  # only sent when include_usage is asked for
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"][0]["index"] == index]
        assert mine[0]["delta"] == {"role": "assistant", "content": ""}
        assert [c["finish_reason"] for c in mine if c["finish_reason"]] in (["stop"], ["length"])


def test_chat_n_and_logprobs(client):
    out = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Hello"}],
        max_completion_tokens=5,
        n=2,
        seed=3,
        logprobs=True,
        top_logprobs=3,
    )
    assert [c.index for c in out.choices] == [0, 1]
    for choice in out.choices:
        for item in choice.logprobs.content:
            assert item.logprob <= 0 and len(item.top_logprobs) == 3
            assert bytes(item.bytes).decode("utf-8", "replace")
    assert out.usage.completion_tokens <= 10


def test_json_schema_and_json_object(client):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    out = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "A person as JSON"}],
        max_tokens=60,
        seed=0,
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    )
    value = json.loads(out.choices[0].message.content)
    assert set(value) == {"name", "age"} and isinstance(value["age"], int)
    obj = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "JSON please"}],
        max_tokens=40,
        temperature=0,
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(obj.choices[0].message.content), dict)


def test_async_client_concurrent_and_streaming(url):
    async def main() -> None:
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as c:
            prompts = ["Hello", "The sea", "春天", "Numbers"]
            outs = await asyncio.gather(
                *(
                    c.completions.create(model="m", prompt=p, max_tokens=8, temperature=0)
                    for p in prompts
                )
            )
            singles = [
                (await c.completions.create(model="m", prompt=p, max_tokens=8, temperature=0))
                for p in prompts
            ]
            assert [o.choices[0].text for o in outs] == [s.choices[0].text for s in singles]
            stream = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=6, stream=True
            )
            finishes = [ch.choices[0].finish_reason async for ch in stream if ch.choices]
            assert finishes[-1] in ("stop", "length")

    asyncio.run(main())


def test_tokenize_detokenize(url):
    out = post(url, "/tokenize", {"prompt": "春天 spring"}).json()
    assert out["count"] == len(out["tokens"]) and out["max_model_len"] == 128
    back = post(url, "/detokenize", {"tokens": out["tokens"]}).json()
    assert back["prompt"] == "春天 spring"
    chat = post(url, "/tokenize", {"messages": [{"role": "user", "content": "Hi"}]}).json()
    assert chat["count"] > 2
    assert_error_shape(post(url, "/detokenize", {"tokens": [10**6]}), 400)


def test_legacy_engines_route(url):
    response = post(
        url, "/v1/engines/text-davinci-002/completions", {"prompt": "Hi", "max_tokens": 3}
    )
    assert response.status_code == 200
    assert response.json()["object"] == "text_completion"


# -- errors -------------------------------------------------------------------------------------


def test_auth_errors(url):
    with openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as info:
            bad.models.list()
    assert info.value.status_code == 401
    error = assert_error_shape(post(url, "/v1/completions", {"prompt": "x"}, key=None), 401)
    assert error["code"] == "invalid_api_key"
    assert httpx.get(url + "/health").status_code == 200  # open without a key


def test_validation_errors_are_400(url, client):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="m", prompt="x", temperature=5)
    assert info.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=[{"role": "wizard", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="batch size"):
        client.completions.create(model="m", prompt="x", n=100)
    with pytest.raises(openai.BadRequestError, match="outside the vocabulary"):
        client.completions.create(model="m", prompt=[10**6], max_tokens=1)
    raw = httpx.post(
        url + "/v1/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert_error_shape(raw, 400)
    error = raw.json()["error"]
    assert error["param"] is None and "not valid JSON at character 1" in error["message"]
    assert_error_shape(post(url, "/v1/completions", {"prompt": "x", "max_tokens": "many"}), 400)


def test_context_overflow_names_both_counts(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="m", prompt="Hello world", max_tokens=1000)
    message = str(info.value)
    assert "128" in message and "1000" in message and "in the prompt" in message
    assert info.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=500
        )


def test_unknown_route_and_body_limit(url):
    error = assert_error_shape(post(url, "/v1/nope", {}), 404)
    assert "/v1/nope" in error["message"]
    big = {"prompt": "x" * (600 * 1024), "max_tokens": 1}
    assert_error_shape(post(url, "/v1/completions", big), 413)
    assert httpx.get(url + "/health").status_code == 200


def test_stream_events_survive_splitlines_readers(url):
    """U+2028, U+2029 and U+0085 are escaped, so readers that split lines like str.splitlines
    (httpx's iter_lines) still see one event per line."""
    text = "line\u2028break\x85next\u2029end"
    body = {"prompt": text, "max_tokens": 2, "echo": True, "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", url + "/v1/completions", json=body, headers=headers) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks).startswith(text)
