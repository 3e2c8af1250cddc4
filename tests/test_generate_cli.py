"""`instructgen generate` end to end in a subprocess: native and openai backends (hf is tested
in process), output forms, and bad input answered with one line and exit code 2."""

from __future__ import annotations

import json

import pytest

from instructgen.inference import load
from tests.conftest import run_cli
from tests.openai_server import free_port, serve

INSTRUCTION = "请用中文写一首关于春天的诗。"


@pytest.fixture(scope="module", autouse=True)
def wired():
    if "--model" not in run_cli("generate", "--help").stdout:
        pytest.skip("`instructgen generate` is not wired into the CLI yet")


def _generate(model, *flags: str):
    return run_cli("generate", "--model", str(model), INSTRUCTION, *flags, timeout=120)


def test_generate_prints_the_answer(llama_dir):
    greedy = ("--temperature", "0", "--max-tokens", "12")
    out = _generate(llama_dir, *greedy)
    assert out.returncode == 0, out.stderr
    expected = load(llama_dir).generate(
        [{"role": "user", "content": INSTRUCTION}], temperature=0, max_tokens=12
    )
    assert out.stdout == expected.text + "\n"
    streamed = _generate(llama_dir, *greedy, "--stream", "--backend", "native")
    assert streamed.returncode == 0 and streamed.stdout == out.stdout


def test_generate_json_n_raw_and_schema(llama_dir, tmp_path):
    out = _generate(llama_dir, "--json", "--n", "2", "--seed", "1", "--max-tokens", "8", "--raw")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["choices"]) == 2 and data["usage"]["completion_tokens"] <= 16
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "array", "items": {"type": "integer"}, "maxItems": 3}))
    out = _generate(llama_dir, "--json-schema", str(schema), "--max-tokens", "40", "--seed", "2")
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout), list)


def test_generate_through_an_openai_compatible_url(llama_dir):
    with serve(load(llama_dir)) as url:
        out = _generate(url, "--temperature", "0", "--max-tokens", "12", "--input", "春天")
        local = load(llama_dir).generate(
            [{"role": "user", "content": INSTRUCTION + "\n\n春天"}], temperature=0, max_tokens=12
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout == local.text + "\n"


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--top-p", "1.5"), "top_p"),
        (("--backend", "vllm"), "invalid choice"),
        (("--json-schema", "missing.json"), "missing.json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(llama_dir, flags, message):
    out = _generate(llama_dir, *flags)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_prompt_longer_than_the_context(llama_dir):
    out = _generate(llama_dir, "--input", "春天 " * 300)
    assert out.returncode == 2 and "context window" in out.stderr


def test_unreachable_url(llama_dir):
    out = _generate(f"http://127.0.0.1:{free_port()}/v1", "--max-tokens", "4")
    assert out.returncode == 2 and "cannot reach" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
