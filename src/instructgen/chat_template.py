"""Chat templates: Jinja strings rendered the way `transformers`' apply_chat_template renders them.

Same environment (sandboxed, trim_blocks, lstrip_blocks, loop controls, `tojson`,
`raise_exception`, `strftime_now`) and the same `{% generation %}` block, which marks the text
the assistant produces. Rendering also reports character spans: where each message lies and
where the generation blocks lie; tokenizer.py maps them to tokens (assistant masks, role ids).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

ROLE_IDS = {"other": 0, "system": 1, "user": 2, "assistant": 3}  # role/segment embedding ids


@dataclass
class Rendered:
    text: str
    generation_spans: list[tuple[int, int]] = field(default_factory=list)  # [start, end) in text
    role_spans: list[tuple[int, int, str]] = field(default_factory=list)  # [start, end, role]


@lru_cache(maxsize=16)
def _compile(template: str):
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationTracker(Extension):
        """{% generation %}...{% endgeneration %}: renders its body and records where it landed."""

        tags = {"generation"}

        def __init__(self, environment):
            super().__init__(environment)
            environment.extend(_tracking=None)

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_track", []), [], [], body).set_lineno(lineno)

        def _track(self, caller):
            text = caller()
            tracking = self.environment._tracking
            if tracking is not None:
                start = sum(map(len, tracking["blocks"]))
                tracking["spans"].append((start, start + len(text)))
            return text

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTracker, loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def render(
    template: str,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = False,
    special_tokens: dict[str, str] | None = None,
    spans: bool = False,
    **kwargs: Any,
) -> Rendered:
    """Render `messages` with `template`; spans=True also reports generation and per-message spans.

    A message's span is the text that rendering it appended (the template renders a prefix of
    the conversation as a prefix of the text, as chat templates do); a template for which that
    fails gets no role spans.
    """
    compiled = _compile(template)
    context = dict(
        special_tokens or {},
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        **kwargs,
    )
    if not spans:
        return Rendered("".join(compiled.generate(**context)))
    tracking: dict[str, list] = {"blocks": [], "spans": []}
    env = compiled.environment
    env._tracking = tracking
    try:
        for block in compiled.generate(**context):
            tracking["blocks"].append(block)
    finally:
        env._tracking = None
    text = "".join(tracking["blocks"])
    return Rendered(text, tracking["spans"], _role_spans(compiled, text, messages, context))


def _role_spans(
    compiled, text: str, messages: list[dict[str, Any]], context: dict[str, Any]
) -> list[tuple[int, int, str]]:
    out, start = [], 0
    for k in range(1, len(messages) + 1):
        prefix = "".join(
            compiled.generate(**dict(context, messages=messages[:k], add_generation_prompt=False))
        )
        if not text.startswith(prefix) or len(prefix) < start:
            return []
        out.append((start, len(prefix), messages[k - 1]["role"]))
        start = len(prefix)
    if start < len(text):
        out.append((start, len(text), "assistant" if context["add_generation_prompt"] else "other"))
    return out


# -- tool calls: the ChatML convention Qwen2.5 and Hermes models use -------------------------------
#
# Tool definitions go at the end of the system turn inside <tools></tools>, one JSON object a
# line; each call the assistant makes is a block `<tool_call>\n{"name": ..., "arguments": {...}}
# \n</tool_call>` in its message; each tool result comes back in a user turn inside
# <tool_response></tool_response> (consecutive results share one turn). Every template renders
# such a conversation as plain messages, so serving and fine-tuning see the same text.

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
TOOLS_PROMPT = (  # short: a small model's context holds it with room to answer
    "# Tools\nYou may call these functions:\n<tools>\n{tools}\n</tools>\nTo call one, write "
    '<tool_call>\n{{"name": <name>, "arguments": <object>}}\n</tool_call>'
)
_TOOL_CALL = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(TOOL_CALL_CLOSE) + r"|\Z)", re.S
)


def tool_call_text(name: str, arguments: Any) -> str:
    """One call as the assistant writes it: <tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>."""
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    call = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}\n{call}\n{TOOL_CALL_CLOSE}"


def tool_conversation(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> list[dict[str, str]]:
    """Messages with tool definitions, assistant `tool_calls` and `tool` results rewritten as the
    plain system/user/assistant text of the convention above.

    messages: OpenAI's shape, `tool_calls` as [{"function": {"name", "arguments"}}] (arguments
    a JSON string or an object); tools: [{"type": "function", "function": {...}}]."""
    out: list[dict[str, str]] = []
    if tools:
        listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        block = TOOLS_PROMPT.format(tools=listing)
        if messages and messages[0]["role"] == "system":
            first, messages = messages[0], messages[1:]
            out.append({"role": "system", "content": (first.get("content") or "") + "\n\n" + block})
        else:
            out.append({"role": "system", "content": block})
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            result = f"<tool_response>\n{content}\n</tool_response>"
            if (
                out
                and out[-1]["role"] == "user"
                and out[-1]["content"].endswith("</tool_response>")
            ):
                out[-1] = {"role": "user", "content": out[-1]["content"] + "\n" + result}
            else:
                out.append({"role": "user", "content": result})
            continue
        calls = message.get("tool_calls") or []
        if calls:
            blocks = [
                tool_call_text(c["function"]["name"], c["function"].get("arguments")) for c in calls
            ]
            content = "\n".join(([content] if content else []) + blocks)
        out.append({"role": role, "content": content})
    return out


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """(the text outside the calls, [{"name": str, "arguments": dict}]) of an assistant message;
    a block whose JSON is not a call stays in the text, and text without calls is unchanged."""
    calls: list[dict[str, Any]] = []
    kept, pos = [], 0
    for m in _TOOL_CALL.finditer(text):
        try:
            call = json.loads(m.group(1))
        except json.JSONDecodeError:
            continue
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            continue
        arguments = call.get("arguments", call.get("parameters"))
        if not isinstance(arguments, dict):
            continue
        kept.append(text[pos : m.start()])
        pos = m.end()
        calls.append({"name": call["name"], "arguments": arguments})
    kept.append(text[pos:])
    return ("".join(kept).strip() if calls else text), calls
