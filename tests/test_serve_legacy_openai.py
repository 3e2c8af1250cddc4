"""The brief's section 5.2 code, unchanged, under the pre-1.0 `openai` package (0.28.1).

That package cannot share a venv with openai>=1; `make install` builds .venv-legacy-openai.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.serve_support import server

LEGACY_PYTHON = Path(__file__).resolve().parents[1] / ".venv-legacy-openai" / "bin" / "python"

BRIEF_5_2 = """
import openai

# 设置 API 密钥
openai.api_key = "your_api_key"

# 定义指令和输入
instruction = "请用中文写一首关于春天的诗。"
input_text = ""

# 调用 GPT-3 API 生成输出
response = openai.Completion.create(
    engine="text-davinci-002",
    prompt=instruction + input_text,
    max_tokens=100,
    n=1,
    stop=None,
    temperature=0.7,
)

# 获取生成的文本
generated_text = response.choices[0].text.strip()

print(generated_text)
"""

CHECKS = """
assert response["object"] == "text_completion", response
assert response.choices[0].finish_reason in ("stop", "length"), response
assert response.usage.completion_tokens >= 1, response
openai.api_key = "wrong"
try:
    openai.Completion.create(engine="text-davinci-002", prompt="x", max_tokens=1)
    raise SystemExit("a wrong key was accepted")
except openai.error.AuthenticationError:
    pass
openai.api_key = "your_api_key"
try:
    openai.Completion.create(engine="x", prompt="x", max_tokens=5000)
    raise SystemExit("an overlong request was accepted")
except openai.error.InvalidRequestError as exc:
    assert "5000" in str(exc), exc
print("LEGACY-OK")
"""


@pytest.mark.skipif(not LEGACY_PYTHON.exists(), reason="no .venv-legacy-openai (make install)")
def test_brief_5_2_code_runs_unchanged(gpt2_dir):
    version = subprocess.run(
        [LEGACY_PYTHON, "-c", "import openai; print(openai.version.VERSION)"],
        capture_output=True,
        text=True,
    )
    if version.returncode != 0 or not version.stdout.startswith("0."):
        pytest.skip(f"no pre-1.0 openai in .venv-legacy-openai: {version.stderr[-200:]}")
    with server(gpt2_dir, "--api-key", "your_api_key") as url:
        # only api_base is added (the brief's code already sets api_key)
        script = f'import openai\nopenai.api_base = "{url}/v1"\n' + BRIEF_5_2 + CHECKS
        done = subprocess.run(
            [LEGACY_PYTHON, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.rstrip().endswith("LEGACY-OK")
