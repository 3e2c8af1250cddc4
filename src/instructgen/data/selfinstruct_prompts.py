"""Self-Instruct's prompts (Wang et al. 2022, shortened, with a Chinese example each) and the
parsers for the teacher's replies. The prompts live in tables/selfinstruct_prompts.json."""

from __future__ import annotations

import re
from collections.abc import Sequence

from instructgen.package_data import load_json

_PROMPTS = load_json("instructgen.data", "tables", "selfinstruct_prompts.json")
# The few-shot templates, one line per list item: intro, demonstrations and the task line with
# {instruction}, separated by blank lines.
_CLASSIFICATION_PROMPT: str = "\n".join(_PROMPTS["classification"])
_INPUT_FIRST_PROMPT: str = "\n".join(_PROMPTS["input_first"])
_OUTPUT_FIRST_PROMPT: str = "\n".join(_PROMPTS["output_first"])

_ITEM_RE = re.compile(r"^\s*\d+\s*[.、)）]\s*")
_ITEM_PREFIX_RE = re.compile(r"^(?:task|instruction|指令|任务)\s*\d*\s*[:：]\s*", re.IGNORECASE)
_EXAMPLE_RE = re.compile(r"^[ \t]*(?:Example|示例|例)[ \t]*\d+[ \t]*[.:：]?[ \t]*$", re.MULTILINE)
_OUTPUT_RE = re.compile(r"(?:Output|输出)\s*\d*\s*[:：]")
_INPUT_RE = re.compile(r"(?:Input|输入)\s*\d*\s*[:：]")
_INPUT_PREFIX_RE = re.compile(r"^\s*(?:Input|输入)\s*\d*\s*[:：]")
_LABEL_RE = re.compile(r"(?:Class label|类别标签)\s*[:：]")
_NEXT_TASK_RE = re.compile(r"\n\s*Task\s*[:：]")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def bootstrap_prompt(examples: Sequence[str]) -> str:
    """The paper's step-1 prompt: "Come up with a series of tasks:\\n1. ...\\n8. ...\\n9."."""
    lines = ["Come up with a series of tasks:"]
    lines += [f"{i}. {_one_line(inst).rstrip(':：')}" for i, inst in enumerate(examples, 1)]
    return "\n".join(lines) + f"\n{len(examples) + 1}."


MAX_SHOTS = 8  # more than any prompt here holds: "all of its demonstrations"


def classification_prompt(instruction: str, shots: int = MAX_SHOTS) -> str:
    """Step 2's few-shot prompt with its first `shots` demonstrations."""
    return _with_shots(_CLASSIFICATION_PROMPT, shots).format(instruction=_one_line(instruction))


def instance_prompt(instruction: str, is_classification: bool, shots: int = MAX_SHOTS) -> str:
    """Output-first for classification tasks (label, then an input for it), input-first otherwise;
    the first `shots` demonstrations."""
    template = _OUTPUT_FIRST_PROMPT if is_classification else _INPUT_FIRST_PROMPT
    return _with_shots(template, shots).format(instruction=_one_line(instruction))


def _with_shots(template: str, shots: int) -> str:
    """`template` (intro, demonstrations and the task, blank-line separated) with `shots` demos."""
    intro, *demos, task = template.split("\n\n")
    return "\n\n".join([intro, *demos[:shots], task])


def parse_instructions(
    text: str, *, truncated: bool = False, leading_item: bool = False
) -> list[str]:
    """New tasks from a numbered list ("9. ...", "10、...") in the teacher's reply. Continuation
    lines join their item; a blank line ends it. Text before the first number is an item only with
    `leading_item` (the completions API continues right after the prompt's "9."); otherwise it is
    a chat model's preamble. A reply cut by max_tokens loses its last, unfinished item."""
    items: list[list[str]] = []
    current: list[str] | None = [] if leading_item else None
    if current is not None:
        items.append(current)
    for line in text.split("\n"):
        m = _ITEM_RE.match(line)
        if m:
            current = [line[m.end() :]]
            items.append(current)
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    if truncated and items:
        items.pop()
    out = [_ITEM_PREFIX_RE.sub("", _one_line(" ".join(parts))) for parts in items]
    return [inst for inst in out if inst]


def parse_yes_no(text: str) -> bool:
    """True if the teacher's answer starts with yes (or 是)."""
    answer = text.strip().lower()
    return answer.startswith("yes") or answer.startswith("是")


def parse_instances(
    text: str, is_classification: bool, *, truncated: bool = False
) -> list[tuple[str, str]]:
    """(input, output) pairs from an instance reply; the last one is dropped if the reply was cut."""
    text = _NEXT_TASK_RE.split("\n" + text.strip(), maxsplit=1)[0].strip()
    pairs = _classification_instances(text) if is_classification else _generation_instances(text)
    return pairs[:-1] if truncated else pairs


def _classification_instances(text: str) -> list[tuple[str, str]]:
    """ "Class label: L\\n<input>" blocks: the first line is the output, the rest the input."""
    pairs = []
    for block in _LABEL_RE.split(text)[1:]:
        label, _, inp = block.strip().partition("\n")
        pairs.append((inp.strip(), label.strip()))
    return pairs


def _generation_instances(text: str) -> list[tuple[str, str]]:
    """ "Example N" blocks (or one block) of "<input> Output: <output>"."""
    if _EXAMPLE_RE.search(text):
        blocks = [b.strip() for b in _EXAMPLE_RE.split(text)[1:] if b.strip()]
    elif _OUTPUT_RE.search(text):
        blocks = [text]
    else:
        return []
    return [_input_output(block) for block in blocks]


def _input_output(block: str) -> tuple[str, str]:
    parts = _OUTPUT_RE.split(block, maxsplit=1)
    inp, out = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    out = _INPUT_RE.split(out, maxsplit=1)[0]  # a second input/output pair ran on
    return _INPUT_PREFIX_RE.sub("", inp).strip(), out.strip()
