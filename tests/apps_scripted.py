"""A deterministic scripted model for the application tests, served through the real
OpenAI-compatible test server (tests/openai_server.py).

It behaves like a well-behaved support or writing model would: it answers from the first
knowledge-base entry in the system message (citing it), greets the customer by the name in the
profile, repeats order numbers, and follows the simple writing prompts of instructgen.apps.
"""

from __future__ import annotations

import json
import re
from typing import Any

from instructgen.inference.backends import LLM, Choice, Completion, Usage

_ENTRY = re.compile(r"^\[kb:([^\]]+)\] .*? — (.+)$", re.M)
_NAME = re.compile(r"(?:Customer|顾客)[:：] ?name ([^;.。]+)")


def support_answer(system: str, user: str) -> str:
    entry = _ENTRY.search(system)
    if entry is None:
        return "I don't know."
    zh = bool(re.search(r"[\u4e00-\u9fff]", system.split("\n")[0]))
    name = _NAME.search(system)
    answer = entry.group(2)
    if name:
        answer = (f"{name.group(1)}您好，" if zh else f"Dear {name.group(1)}, ") + answer
    for order in re.findall(r"(?<!\d)\d{6}(?!\d)", user):
        if order not in answer:
            answer += f"（订单{order}）" if zh else f" (order {order})"
    return f"{answer} [kb:{entry.group(1)}] [kb:made-up]"


class ScriptedLLM(LLM):
    """Answers chat prompts by rule; `script` maps a prompt marker to canned answers."""

    backend = "scripted"
    model_name = "scripted"

    def __init__(self, writer=None):
        self.writer = writer  # callable(messages) -> str for writing prompts, or None
        self.calls = 0

    def _generate(self, prompts: list[Any], params) -> list[Completion]:
        out = []
        for prompt in prompts:
            self.calls += 1
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            system = next((m["content"] for m in messages if m["role"] == "system"), "")
            user = messages[-1]["content"]
            if "[kb:" in system:
                text = support_answer(system, user)
            elif self.writer is not None:
                text = self.writer(messages)
            else:
                text = json.dumps({"echo": user}, ensure_ascii=False)
            out.append(Completion([Choice(text, "stop")], Usage(1, 1), self.model_name))
        return out


def wide_model_dir(tmp_path_factory, tokenizer_dir):
    """A tiny random llama directory with a context long enough for the apps' prompts."""
    from tests.conftest import make_model_dir

    path = tmp_path_factory.mktemp("wide") / "model"
    return make_model_dir(path, tokenizer_dir, "llama", max_seq_len=1024)


def scripted_server(llm: ScriptedLLM):
    """The scripted model behind the real OpenAI-compatible test server (a context manager → URL)."""
    from tests.openai_server import serve

    return serve(llm)
