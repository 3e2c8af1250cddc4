"""Tool calling for /v1/chat/completions: OpenAI's `tools` and `tool_choice` on the ChatML
convention of chat_template.py (definitions in the system turn, `<tool_call>{json}</tool_call>`
blocks, results in `<tool_response>`).

- `none`: the tools are left out of the prompt and the answer is a plain message;
- `auto` (the default with tools): the model decides; its answer is parsed for call blocks of
  known functions, which become `tool_calls` (finish_reason "tool_calls"; the first one only
  with parallel_tool_calls false);
- `required` or a named function: the answer is opened with `<tool_call>\\n` and constrained to
  the JSON of one call, {"name": ..., "arguments": {...}}, whose arguments validate against the
  function's parameters schema whatever the weights.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from instructgen.chat_template import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, parse_tool_calls
from instructgen.errors import ConfigError, UserError
from instructgen.inference.constrained import check_json_schema
from instructgen.serve.protocol import (
    ChatCompletionRequest,
    FunctionCall,
    FunctionCallDelta,
    ToolCall,
    ToolCallDelta,
)

__all__ = ["ToolPlan", "ToolStream", "plan_tools"]

NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}
# the opening of a forced call as the constraint writes it, up to where the arguments begin
_CALL_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')


@dataclass
class ToolPlan:
    """What one request does with its tools."""

    mode: str  # "none" | "auto" | "forced"
    tools: list[dict[str, Any]] = field(default_factory=list)  # as the template takes them
    names: set[str] = field(default_factory=set)
    schema: dict[str, Any] | None = None  # forced: the JSON schema of one call
    parallel: bool = True  # auto: several calls in one answer (else the first only)

    @property
    def prefix(self) -> str:
        """Text the answer starts with (put at the end of the prompt)."""
        return TOOL_CALL_OPEN + "\n" if self.mode == "forced" else ""

    def calls(self, text: str) -> tuple[str | None, list[ToolCall]]:
        """(content, tool calls) of one finished answer."""
        if self.mode == "forced":
            call = _forced_call(text)
            return (None, [call]) if call is not None else (text, [])
        if self.mode == "none" or TOOL_CALL_OPEN not in text:
            return text, []
        content, found = parse_tool_calls(text)
        known = [c for c in found if c["name"] in self.names]
        if len(known) < len(found):  # a call of an unknown function stays text
            return text, []
        if not self.parallel:
            known = known[:1]
        return (content or None), [_tool_call(c["name"], c["arguments"]) for c in known]


def plan_tools(req: ChatCompletionRequest) -> ToolPlan | None:
    """The request's ToolPlan (None without tools); 400 for a choice that names no tool or a
    parameters schema no JSON satisfies."""
    choice = req.tool_choice
    if choice is not None and not req.tools:
        raise UserError("tool_choice is only allowed when tools are given", field="tool_choice")
    if not req.tools:
        return None
    tools = [t.model_dump(exclude_none=True) for t in req.tools]
    functions = {t.function.name: t.function for t in req.tools}
    if len(functions) < len(req.tools):
        raise UserError("two tools have the same function name", field="tools")
    for i, tool in enumerate(req.tools):
        if tool.function.parameters is not None:
            _check_schema(tool.function.parameters, f"tools.{i}.function.parameters")
    if choice == "none":
        return ToolPlan("none")
    if choice is None or choice == "auto":
        return ToolPlan(
            "auto", tools, set(functions), parallel=req.parallel_tool_calls is not False
        )
    if choice == "required":
        chosen = list(functions.values())
    else:
        if choice.function.name not in functions:
            raise UserError(
                f"tool_choice names {choice.function.name!r}, which is not among the tools",
                field="tool_choice.function.name",
            )
        chosen = [functions[choice.function.name]]
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [f.name]},
                "arguments": f.parameters if f.parameters is not None else NO_ARGUMENTS,
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in chosen
    ]
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return ToolPlan("forced", tools, set(functions), schema)


class ToolStream:
    """One streamed choice's deltas: content while it cannot be part of a call, then each call
    as OpenAI streams it (a delta naming it, then pieces of its arguments)."""

    def __init__(self, plan: ToolPlan):
        self.plan = plan
        self.text = ""
        self.sent = 0  # characters of text already sent as content (auto) or arguments (forced)
        self.calls = 0
        self._head: re.Match | None = None

    def feed(self, delta: str) -> tuple[str, list[ToolCallDelta]]:
        """(content to send now, call deltas to send now) after `delta` arrived."""
        self.text += delta
        if self.plan.mode == "forced":
            return "", self._forced()
        if self.plan.mode == "none":
            return delta, []
        safe = self.text.find(TOOL_CALL_OPEN)
        if safe == -1:  # hold back what could be the start of a call tag
            safe = len(self.text) - _partial_tag(self.text)
        out = self.text[self.sent : max(safe, self.sent)]
        self.sent = max(safe, self.sent)
        return out, []

    def finish(self) -> tuple[str, list[ToolCallDelta]]:
        """What is left to send once the answer is complete."""
        if self.plan.mode == "forced":
            if self._head is None:
                call = _forced_call(self.text)
                if call is None:
                    return self.text, []
                return "", self._named(call.id, call.function.name, call.function.arguments)
            rest = self.text[self._head.end() :].rstrip()
            rest = rest[:-1] if rest.endswith("}") else rest  # the call object's own brace
            return "", self._pieces(rest[self.sent :])
        _, calls = self.plan.calls(self.text)
        if not calls:
            return self.text[self.sent :], []
        deltas: list[ToolCallDelta] = []
        for call in calls:
            deltas += self._named(call.id, call.function.name, call.function.arguments)
        return parse_tool_calls(self.text[self.sent :])[0], deltas

    def _forced(self) -> list[ToolCallDelta]:
        if self._head is None:
            self._head = _CALL_HEAD.match(self.text)
            if self._head is None:
                return []
            name = json.loads(f'"{self._head.group(1)}"')
            deltas = self._named(_call_id(), name, "")
        else:
            deltas = []
        rest = self.text[self._head.end() :]
        end = rest.rfind("}")  # the last brace may close the call object: hold it back
        if end > self.sent:
            deltas += self._pieces(rest[self.sent : end])
            self.sent = end
        return deltas

    def _named(self, call_id: str, name: str, arguments: str) -> list[ToolCallDelta]:
        self.calls += 1
        head = ToolCallDelta(
            index=self.calls - 1,
            id=call_id,
            type="function",
            function=FunctionCallDelta(name=name, arguments=""),
        )
        return [head, *self._pieces(arguments)]

    def _pieces(self, arguments: str) -> list[ToolCallDelta]:
        if not arguments:
            return []
        return [
            ToolCallDelta(index=self.calls - 1, function=FunctionCallDelta(arguments=arguments))
        ]


def _partial_tag(text: str) -> int:
    """Length of the longest end of `text` that is a proper start of the call tag."""
    for n in range(min(len(TOOL_CALL_OPEN) - 1, len(text)), 0, -1):
        if TOOL_CALL_OPEN.startswith(text[-n:]):
            return n
    return 0


def _forced_call(text: str) -> ToolCall | None:
    """The call a forced answer holds (its JSON, maybe followed by the closing tag)."""
    body = text.strip().removesuffix(TOOL_CALL_CLOSE).strip()
    try:
        call = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("arguments"), dict):
        return None
    return _tool_call(str(call.get("name", "")), call["arguments"])


def _tool_call(name: str, arguments: dict[str, Any]) -> ToolCall:
    return ToolCall(
        id=_call_id(),
        function=FunctionCall(name=name, arguments=json.dumps(arguments, ensure_ascii=False)),
    )


def _call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _check_schema(schema: dict[str, Any], param: str) -> None:
    try:
        check_json_schema(schema)
    except ConfigError as exc:
        raise UserError(str(exc).removeprefix("field 'json_schema': "), field=param) from None
