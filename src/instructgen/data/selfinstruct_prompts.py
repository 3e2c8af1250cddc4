"""Self-Instruct's prompts (Wang et al. 2022, shortened, with a Chinese example each) and the
parsers for the teacher's replies."""

from __future__ import annotations

import re
from collections.abc import Sequence

_CLASSIFICATION_PROMPT = """Can the following task be regarded as a classification task with finite output labels?

Task: Given my personality and the job, tell me if I would be suitable.
Is it classification? Yes

Task: Give me an example of a time when you had to use your sense of humor.
Is it classification? No

Task: Replace the placeholders in the given text with appropriate named entities.
Is it classification? No

Task: Fact checking - tell me if the statement is true, false, or unknown, based on your knowledge and common sense.
Is it classification? Yes

Task: Detect if the Reddit thread contains hate speech.
Is it classification? Yes

Task: 判断下面这句话的情感是正面还是负面。
Is it classification? Yes

Task: 用三句话介绍一下长城。
Is it classification? No

Task: {instruction}
Is it classification?"""

_INPUT_FIRST_PROMPT = """Come up with examples for the following tasks. Try to generate multiple examples when possible. If the task doesn't require additional input, you can generate the output directly.

Task: Which exercises are best for reducing belly fat at home?
Output:
- Lying Leg Raises
- Leg In And Out
- Plank
- Side Plank
- Sit-ups

Task: Extract all the country names in the paragraph, list them separated by commas.
Example 1
Paragraph: Dr. No is the sixth novel by the English author Ian Fleming to feature his British Secret Service agent James Bond. Written at Fleming's Goldeneye estate in Jamaica, it was first published in the United Kingdom by Jonathan Cape in 1958.
Output: English, British, Jamaica, the United Kingdom

Task: Converting 85 F to Celsius.
Output: 85°F = 29.44°C

Task: Sort the given list ascendingly.
Example 1
List: [10, 92, 2, 5, -4, 92, 5, 101]
Output: [-4, 2, 5, 5, 10, 92, 92, 101]
Example 2
List: [9.99, 10, -5, -1000, 5e6, 999]
Output: [-1000, -5, 9.99, 10, 999, 5e6]

Task: 把下面的句子翻译成英文。
Example 1
句子：今天天气很好。
Output: The weather is nice today.

Task: {instruction}
"""

_OUTPUT_FIRST_PROMPT = """Given the classification task definition and the class labels, generate an input that corresponds to each of the class labels. If the task doesn't require input, just generate possible class labels.

Task: Classify the sentiment of the sentence into positive, negative, or mixed.
Class label: Mixed
Sentence: I enjoy the flavor of the restaurant but their service is too slow.
Class label: Positive
Sentence: I had a great day today. The weather was beautiful and I spent time with friends and family.
Class label: Negative
Sentence: I was really disappointed by the latest superhero movie. I would not recommend it to anyone.

Task: Tell me if the following email is a promotion email or not.
Class label: Promotion
Email: Check out our amazing new sale! We've got discounts on all of your favorite products.
Class label: Not Promotion
Email: We hope you are doing well. Let us know if you need any help.

Task: Which of the following is not an input type? (a) number (b) date (c) phone number (d) email address (e) all of these are valid inputs.
Class label: (e)

Task: 判断下面的评论是正面还是负面。
Class label: 正面
评论：这家店的菜很好吃，服务也很周到。
Class label: 负面
评论：等了一个小时才上菜，太失望了。

Task: {instruction}
"""

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
