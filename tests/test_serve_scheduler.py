"""Continuous batching, queue limits, disconnects, aliases, loading and mid-stream errors."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import openai
import pytest

from tests.conftest import make_model_dir
from tests.serve_support import server, sse_events

LONG = 1900  # tokens: seconds of generation for the tiny model


@pytest.fixture(scope="module")
def long_model(tmp_path_factory, tokenizer_dir):
    path = tmp_path_factory.mktemp("serve-long") / "model"
    return make_model_dir(path, tokenizer_dir, "llama", d_model=128, n_layer=4, max_seq_len=2048)


@pytest.fixture(scope="module")
def url(long_model):
    args = ["--max-batch", "2", "--max-queue", "1", "--served-model-name", "tiny"]
    with server(long_model, *args, "--alias", "gpt-x") as base:
        yield base


def metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise KeyError(name)


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Streamer(threading.Thread):
    """A streaming chat request read on a thread; close() hangs up like a client that leaves."""

    def __init__(self, url: str, max_tokens: int = LONG):
        super().__init__(daemon=True)
        self.url = url
        self.body = {
            "model": "tiny",
            "messages": [{"role": "user", "content": "Tell me a long story"}],
            "max_tokens": max_tokens,
            "ignore_eos": True,
            "stream": True,
        }
        self.events = 0
        self.status: int | None = None
        self.done = threading.Event()
        self._hang_up = threading.Event()
        self._response: httpx.Response | None = None
        self.start()

    def run(self) -> None:
        try:
            with httpx.Client(timeout=60) as client:
                with client.stream("POST", self.url + "/v1/chat/completions", json=self.body) as r:
                    self._response, self.status = r, r.status_code
                    for line in r.iter_lines():
                        if self._hang_up.is_set():
                            return
                        if line.startswith("data: "):
                            self.events += 1
        except (httpx.HTTPError, OSError, RuntimeError):
            pass
        finally:
            self.done.set()

    def close(self) -> None:
        self._hang_up.set()
        if self._response is not None:
            self._response.close()
        self.join(10)


def running(url: str, count: int) -> list[Streamer]:
    """count long streams, started one by one (the queue holds one), all in the batch."""
    streams = []
    for _ in range(count):
        streams.append(Streamer(url))
        wait_for(lambda: metric(url, "instructgen_requests_running") == len(streams))
    return streams


def test_aliases_and_unknown_models(url):
    with openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0) as client:
        assert [m.id for m in client.models.list().data] == ["tiny", "gpt-x"]
        out = client.completions.create(model="gpt-x", prompt="Hi", max_tokens=2)
        assert out.model == "tiny"
        with pytest.raises(openai.NotFoundError) as info:
            client.completions.create(model="other", prompt="Hi", max_tokens=2)
        assert info.value.body["param"] == "model"
    legacy = httpx.post(url + "/v1/engines/other/completions", json={"prompt": "Hi"})
    assert legacy.status_code == 404 and legacy.json()["error"]["param"] == "engine"


def test_requests_join_and_leave_the_batch(url):
    (long,) = running(url, 1)
    finished_before = metric(url, "instructgen_generation_tokens_total")
    with openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0) as client:
        short = client.completions.create(model="tiny", prompt="Hi", max_tokens=3, temperature=0)
    assert short.usage.completion_tokens <= 3
    # the short request joined the running batch and left it while the long one went on
    assert not long.done.is_set()
    assert metric(url, "instructgen_requests_running") == 1
    assert metric(url, "instructgen_generation_tokens_total") > finished_before
    assert metric(url, 'instructgen_batch_size_bucket{le="2.0"}') > 0
    long.close()
    wait_for(lambda: metric(url, "instructgen_requests_running") == 0)


def test_full_queue_is_429_and_the_loop_stays_responsive(url):
    a, b = running(url, 2)
    c = Streamer(url)  # no slot: it waits in the queue (size 1)
    wait_for(lambda: metric(url, "instructgen_requests_waiting") == 1)
    with openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0) as client:
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
            )
    assert info.value.response.headers["Retry-After"] == "1"
    assert info.value.body["code"] == "rate_limit_exceeded"
    latencies = []
    for _ in range(10):  # the event loop answers while the model thread decodes
        start = time.monotonic()
        assert httpx.get(url + "/health").status_code == 200
        latencies.append(time.monotonic() - start)
    assert max(latencies) < 1.0
    assert not a.done.is_set() and not b.done.is_set()
    for s in (a, b, c):
        s.close()
    wait_for(lambda: metric(url, "instructgen_requests_running") == 0)
    assert metric(url, "instructgen_requests_waiting") == 0


@pytest.mark.parametrize("streaming", [True, False])
def test_a_client_that_leaves_frees_its_slot(url, streaming):
    """With both slots taken, a third request can only start if the leaver's slot was freed:
    no request finished in between (aborted ones do not count as generated)."""
    if streaming:
        other, leaver = running(url, 2)
        finished = metric(url, "instructgen_generation_tokens_total")
        leaver.close()
    else:
        (other,) = running(url, 1)
        body = {"model": "tiny", "prompt": "Hi", "max_tokens": LONG, "ignore_eos": True}
        with pytest.raises(httpx.ReadTimeout):
            with httpx.Client(timeout=httpx.Timeout(60, read=0.5)) as client:
                client.post(url + "/v1/completions", json=body)
        finished = metric(url, "instructgen_generation_tokens_total")
    third = Streamer(url)
    wait_for(lambda: third.events >= 2)  # role chunk, then generated text: it is running
    assert metric(url, "instructgen_generation_tokens_total") == finished
    assert not other.done.is_set()
    other.close()
    third.close()
    wait_for(lambda: metric(url, "instructgen_requests_running") == 0)


def test_health_is_503_while_loading(long_model):
    from instructgen.serve import create_app

    async def main() -> None:
        app = create_app(long_model)  # no lifespan run: the model never starts loading
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            health = await client.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "loading"
            busy = await client.post("/v1/completions", json={"prompt": "Hi"})
            assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
            assert busy.json()["error"]["type"] == "service_unavailable"

    asyncio.run(main())


def test_an_error_after_streaming_began_is_an_event(long_model):
    from instructgen.serve import create_app

    async def main() -> None:
        app = create_app(long_model)
        scheduler = app.state.server.scheduler
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                while (await client.get("/health")).status_code != 200:
                    await asyncio.sleep(0.05)
                body = {"prompt": "Hi", "max_tokens": LONG, "ignore_eos": True, "stream": True}
                request = asyncio.ensure_future(client.post("/v1/completions", json=body))
                while scheduler.running == 0:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)
                scheduler.close()  # the server stops while the answer streams
                response = await request
        events = sse_events(response)
        assert response.status_code == 200 and events[-1] == "[DONE]"
        error = json.loads(events[-2])["error"]
        assert "shutting down" in error["message"] and error["type"] == "service_unavailable"
        assert any(json.loads(e).get("choices") for e in events[:-2])

    asyncio.run(main())


def test_default_threads_keep_a_core_for_http_only_on_bigger_machines():
    from instructgen.serve.scheduler import default_threads

    assert [default_threads(n) for n in (1, 2, 4, 5, 16)] == [1, 2, 4, 4, 15]
