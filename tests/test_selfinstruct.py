"""Self-Instruct against a real OpenAI-compatible HTTP server on 127.0.0.1 (a scripted teacher)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from instructgen.data import dedup
from instructgen.data.selfinstruct import load_seed_tasks, run_self_instruct
from instructgen.data.teacher import TeacherError
from instructgen.errors import ConfigError, DataError, UserError

SEED_FILE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
)
FAST = dict(backoff_base=0.001, backoff_max=0.01, timeout=10.0)

# --- the scripted teacher -----------------------------------------------------------------------

VERBS = ["Describe", "Explain", "Summarize", "Compare", "List", "Analyze", "Rewrite", "Evaluate"]
ZH_CHARS = "春夏秋冬山水花鸟风雨雪月日星天云海江河湖树草林石金木火土人心手口目耳足马牛羊鱼虫米茶酒"
LONG_INPUT = (
    "The committee met on Tuesday to review the annual budget. Spending on maintenance rose by twelve percent, "
    "mostly because the old heating system in the north building failed twice during the winter. The staffing "
    "plan adds two engineers and one accountant, and moves the help desk to the second floor. Members also "
    "discussed the new travel policy: economy class for flights under six hours, a daily meal allowance of forty "
    "dollars, and approval by a manager before any booking. Several members asked for clearer rules on taxis."
)
LONG_OUTPUT = "The committee approved the budget and the staffing plan, and asked for changes to the travel policy."


def _words(rng: random.Random, n: int) -> str:
    return " ".join(
        "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        for _ in range(n)
    )


def _last_task(prompt: str) -> str:
    return re.findall(r"^Task: (.*)$", prompt, re.MULTILINE)[-1]


def scripted_reply(prompt: str, chat: bool) -> str:
    """A deterministic teacher: the reply depends only on the prompt."""
    rng = random.Random(hashlib.sha256(prompt.encode()).hexdigest())
    if prompt.startswith("Come up with a series of tasks"):
        examples = re.findall(r"^\d+\. (.*)$", prompt, re.MULTILINE)
        w = lambda n=6: _words(rng, n)  # noqa: E731
        items = [
            f"{rng.choice(VERBS)} {w()}",  # new
            "用中文介绍" + "".join(rng.choice(ZH_CHARS) for _ in range(8)),  # new, Chinese
            f"Classify {w()} as yes or no",  # new, classification
            f"{examples[0]} now",  # near copy of an example: ROUGE-L
            "Do it now",  # too short
            "Tell " + w(160),  # too long
            f"Draw a picture of {w(3)}",  # blacklisted
            "请画一只" + rng.choice(ZH_CHARS) + "色的猫",  # blacklisted, Chinese
            f"- {w()}",  # leading punctuation
            f"Quote {w()} zzempty",  # empty output
            f"Repeat {w()} zzsame",  # input == output
            f"Label {w()} zzconflict",  # same input, different outputs
            f"Finish {w()} zzcolon",  # incomplete instance
            f"Refuse {w()} zznone",  # no instance at all
            f"Condense {w()} zzlong",  # record near-duplicate of the first zzlong task
        ]
        rng.shuffle(items)
        first = len(examples) + 1
        if chat:
            return "\n".join(f"{first + i}. {item}" for i, item in enumerate(items))
        return (
            " "
            + items[0]
            + "".join(f"\n{first + i}. {item}" for i, item in enumerate(items[1:], 1))
        )
    task = _last_task(prompt)
    w = _words(rng, 4)
    if "Is it classification?" in prompt:
        return "Yes" if task.startswith("Classify") else "No"
    if prompt.startswith("Given the classification task definition"):
        return f"Class label: Yes\nText: {w} yes\nClass label: No\nText: {w} no"
    if "zzempty" in task:
        return f"Example 1\nInput: {w}\nOutput:"
    if "zzsame" in task:
        return f"Example 1\nInput: {w}\nOutput: {w}"
    if "zzconflict" in task:
        return f"Example 1\nInput: {w}\nOutput: one\nExample 2\nInput: {w}\nOutput: two"
    if "zzcolon" in task:
        return f"Example 1\nInput: {w} as follows:\nOutput: {w} done"
    if "zznone" in task:
        return "I cannot help with that."
    if "zzlong" in task:
        return f"Example 1\nInput: {LONG_INPUT}\nOutput: {LONG_OUTPUT}"
    return f"Example 1\nInput: {w}\nOutput: {_words(rng, 5)}\n\nExample 2\nInput: {_words(rng, 4)}\nOutput: {_words(rng, 5)}"


class Scripted:
    """Knobs the tests turn: status codes to answer next, a delay, a required API key."""

    def __init__(self) -> None:
        self.faults: list[int] = []
        self.delay = 0.0
        self.api_key: str | None = None
        self.requests = 0
        self.lock = threading.Lock()


def make_app(s: Scripted) -> FastAPI:
    app = FastAPI()

    async def gate(request: Request) -> JSONResponse | None:
        with s.lock:
            s.requests += 1
            fault = s.faults.pop(0) if s.faults else None
        if s.delay:
            await asyncio.sleep(s.delay)
        if s.api_key and request.headers.get("authorization") != f"Bearer {s.api_key}":
            return JSONResponse(
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
                status_code=401,
            )
        if fault == 429:
            return JSONResponse(
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                status_code=429,
                headers={"Retry-After": "0"},
            )
        if fault:
            return JSONResponse(
                {
                    "error": {
                        "message": "The server had an error",
                        "type": "server_error",
                        "code": None,
                    }
                },
                status_code=fault,
            )
        return None

    def usage(prompt: str, text: str) -> dict:
        p, c = len(prompt.split()), len(text.split())
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def finish(text: str, stop: list[str] | None) -> str:
        for s_ in stop or []:
            text = text.split(s_)[0]
        return text

    @app.get("/v1/models")
    async def models(request: Request):
        return await gate(request) or {
            "object": "list",
            "data": [
                {"id": "scripted-teacher", "object": "model", "created": 0, "owned_by": "tests"}
            ],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        if (refused := await gate(request)) is not None:
            return refused
        prompt = body["messages"][-1]["content"]
        text = finish(scripted_reply(prompt, chat=True), body.get("stop"))
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
            "logprobs": None,
        }
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [choice],
            "usage": usage(prompt, text),
        }

    @app.post("/v1/completions")
    async def completions(request: Request):
        body = await request.json()
        if (refused := await gate(request)) is not None:
            return refused
        text = finish(scripted_reply(body["prompt"], chat=False), body.get("stop"))
        choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        return {
            "id": "cmpl-1",
            "object": "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": [choice],
            "usage": usage(body["prompt"], text),
        }

    return app


@pytest.fixture(scope="module")
def teacher():
    scripted = Scripted()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(make_app(scripted), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "scripted teacher did not start"
        time.sleep(0.02)
    scripted.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    yield scripted
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(autouse=True)
def reset(request):
    yield
    if "teacher" in request.fixturenames:
        s = request.getfixturevalue("teacher")
        s.faults, s.delay, s.api_key = [], 0.0, None


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seeds") / "seeds.jsonl"
    rng = random.Random(0)
    rows = [
        {
            "instruction": f"{VERBS[i % len(VERBS)]} {_words(rng, 6)}",
            "input": "",
            "output": _words(rng, 8),
        }
        for i in range(10)
    ]
    rows.append(
        {
            "id": "s10",
            "name": "zh",
            "instruction": "判断下面这句话的情感是正面还是负面。",
            "instances": [{"input": "我很开心。", "output": "正面"}],
            "is_classification": True,
        }
    )
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_no_near_duplicates(records: list[dict]) -> None:
    index = dedup.NearDuplicateIndex(threshold=0.7)
    for i, r in enumerate(records):
        assert index.add(i, f"{r['instruction']}\n{r['input']}\n{r['output']}"), r
    for a, b in itertools.combinations([r["instruction"] for r in records], 2):
        assert dedup.rouge_l(a, b) <= 0.7, (a, b)


# --- tests --------------------------------------------------------------------------------------


def test_pipeline_counts_every_rejection_reason_and_survives_429_and_500(teacher, seeds, tmp_path):
    teacher.faults = [429, 500, 429, 503]
    out = tmp_path / "si.jsonl"
    summary = run_self_instruct(teacher.url, seeds, 12, out, concurrency=3, seed=0, **FAST)
    records = read(out)
    assert len(records) == summary["kept"] == summary["added"] == 12
    assert summary["retries"] == 4
    rejected = summary["rejected"]
    for reason in ("too_short", "too_long", "blacklisted", "punctuation_start", "rouge_similar", "no_instance",
                   "empty_output", "input_equals_output", "incomplete_instance", "conflicting_instances", "near_duplicate"):  # fmt: skip
        assert rejected[reason] > 0, (reason, rejected)
    state = [
        json.loads(line)
        for line in Path(f"{out}.state.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    logged = [e["reason"] for e in state if e["event"] == "reject"]
    assert len(logged) == summary["rejected_total"] == sum(rejected.values())
    assert all(
        r["source"] == "self-instruct"
        and set(r) >= {"instruction", "input", "output", "is_classification"}
        for r in records
    )
    assert any(r["is_classification"] for r in records) and any(
        not r["is_classification"] for r in records
    )
    assert any(
        re.search("[\u4e00-\u9fff]", r["instruction"]) for r in records
    )  # Chinese tasks survive
    assert sum("zzlong" in r["instruction"] for r in records) == 1
    assert_no_near_duplicates(records)
    assert json.loads(json.dumps(summary)) == summary  # the summary prints as JSON


def test_rerun_of_a_finished_output_does_nothing_and_completions_api_works(
    teacher, seeds, tmp_path
):
    out = tmp_path / "si.jsonl"
    first = run_self_instruct(
        teacher.url,
        seeds,
        5,
        out,
        api="completions",
        model="scripted-teacher",
        concurrency=2,
        **FAST,
    )
    assert first["kept"] == 5 and len(read(out)) == 5
    again = run_self_instruct(
        teacher.url,
        seeds,
        5,
        out,
        api="completions",
        model="scripted-teacher",
        concurrency=2,
        **FAST,
    )
    assert (
        again["added"] == 0
        and again["teacher_calls"] == 0
        and again["rejected"] == first["rejected"]
    )
    with pytest.raises(ConfigError, match="seed"):
        run_self_instruct(
            teacher.url, seeds, 6, out, api="completions", model="scripted-teacher", seed=1, **FAST
        )


RESUME_SCRIPT = """
import json, sys
from instructgen.data.selfinstruct import run_self_instruct
url, seeds, out = sys.argv[1:4]
print(json.dumps(run_self_instruct(url, seeds, 30, out, concurrency=2, seed=7, backoff_base=0.001, timeout=10.0)))
"""


def test_killed_run_resumes_without_losing_or_repeating_items(teacher, seeds, tmp_path):
    reference = tmp_path / "reference.jsonl"
    run_self_instruct(teacher.url, seeds, 30, reference, concurrency=2, seed=7, **FAST)

    out = tmp_path / "killed.jsonl"
    command = [sys.executable, "-c", RESUME_SCRIPT, teacher.url, str(seeds), str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    teacher.delay = 0.02
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text(encoding="utf-8").count("\n") >= 8):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    teacher.delay = 0.0
    text = out.read_text(encoding="utf-8")
    before = [
        json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()
    ]  # complete lines
    assert 8 <= len(before) < 30
    with out.open("a", encoding="utf-8") as f:
        f.write('{"instruction": "a torn wri')  # a write cut short by the kill

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    after = read(out)
    assert after[: len(before)] == before  # nothing accepted was lost or rewritten
    assert len(after) == summary["kept"] == 30 and summary["added"] == 30 - len(before)
    assert len({r["id"] for r in after}) == len({r["instruction"] for r in after}) == 30
    assert after == read(
        reference
    )  # a deterministic teacher gives the same data as an uninterrupted run
    assert_no_near_duplicates(after)


def test_seed_tasks_of_the_paper_load():
    if not SEED_FILE.exists():
        pytest.skip("shared seed tasks are absent")
    tasks = load_seed_tasks(SEED_FILE)
    assert len(tasks) == 175
    assert 0 < sum(t.is_classification for t in tasks) < 175
    assert all(t.instruction and t.instances and isinstance(t.instances[0][1], str) for t in tasks)


def test_the_shipped_seed_tasks_are_the_papers():
    """`--seed-tasks builtin` (the default) is the same 175 tasks, so the README's command runs
    from a clone."""
    tasks = load_seed_tasks("builtin")
    assert len(tasks) == 175
    if SEED_FILE.exists():
        assert tasks == load_seed_tasks(SEED_FILE)


def test_requests_fit_the_teachers_context(llama_dir):
    """A teacher that says its context (max_model_len in /v1/models, as vLLM and instructgen's
    server do) gets max_tokens cut to what the prompt leaves, not a 400 for asking 1,024."""
    from instructgen.data.teacher import Teacher

    from .serve_support import server

    with server(llama_dir) as url:
        teacher = Teacher(url + "/v1", max_retries=0)
        assert teacher.context == 128
        text, finish = teacher.complete("List some tasks: " * 3, max_tokens=1024)
        assert finish == "length" and text


@pytest.mark.parametrize(
    "line, line_no, field",
    [
        ('{"instruction": "ok", "output": "x"}\n{"instruction": "broken"', 2, None),
        (
            '{"instruction": "ok", "input": "", "output": "x"}\n\n{"instruction": "no output"}',
            3,
            "output",
        ),
        ('{"instruction": "x", "instances": [{"input": "a"}]}', 1, "instances[0].output"),
        ('{"instruction": "x", "output": "y", "is_classification": "yes"}', 1, "is_classification"),
        ('["not", "an", "object"]', 1, None),
    ],
)
def test_bad_seed_files_name_file_line_and_field(tmp_path, line, line_no, field):
    path = tmp_path / "bad.jsonl"
    path.write_text(line, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_seed_tasks(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line_no, field)
    assert str(path) in str(err.value)


def test_a_teacher_that_is_down_gives_a_clear_error_not_a_hang(seeds, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(TeacherError, match=r"failed after 2 retries: cannot connect"):
        run_self_instruct(
            f"http://127.0.0.1:{port}/v1",
            seeds,
            3,
            tmp_path / "o.jsonl",
            model="m",
            max_retries=2,
            **FAST,
        )
    with pytest.raises(TeacherError, match="cannot connect"):  # the model lookup fails the same way
        run_self_instruct(
            f"http://127.0.0.1:{port}/v1", seeds, 3, tmp_path / "o.jsonl", max_retries=1, **FAST
        )
    assert time.monotonic() - start < 15


def test_slow_teacher_times_out_and_bad_key_is_refused_without_retries(
    teacher, seeds, tmp_path, monkeypatch
):
    teacher.delay = 1.0
    with pytest.raises(TeacherError, match="timed out"):
        run_self_instruct(
            teacher.url,
            seeds,
            2,
            tmp_path / "a.jsonl",
            model="m",
            max_retries=1,
            backoff_base=0.001,
            timeout=0.2,
        )
    teacher.delay, teacher.api_key = 0.0, "sk-right"
    calls = teacher.requests
    with pytest.raises(TeacherError, match="HTTP 401") as err:
        run_self_instruct(
            teacher.url, seeds, 2, tmp_path / "b.jsonl", api_key="sk-wrong-secret", **FAST
        )
    assert teacher.requests == calls + 1 and "sk-wrong-secret" not in str(err.value)
    assert "OPENAI_API_KEY" in str(err.value)
    summary = run_self_instruct(
        teacher.url, seeds, 2, tmp_path / "c.jsonl", api_key="sk-right", **FAST
    )
    assert summary["kept"] == 2
    monkeypatch.setenv("OPENAI_API_KEY", "sk-right")  # the key may come from the environment
    assert run_self_instruct(teacher.url, seeds, 2, tmp_path / "d.jsonl", **FAST)["kept"] == 2


def test_bad_arguments_are_user_errors(seeds, tmp_path):
    with pytest.raises(UserError, match="http://"):
        run_self_instruct("localhost:8000/v1", seeds, 2, tmp_path / "o.jsonl", model="m")
    with pytest.raises(DataError, match="directory"):
        run_self_instruct("http://127.0.0.1:9/v1", seeds, 2, tmp_path, model="m")
    with pytest.raises(ConfigError, match="num"):
        run_self_instruct("http://127.0.0.1:9/v1", seeds, 0, tmp_path / "o.jsonl", model="m")
