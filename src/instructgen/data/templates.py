"""Chat templates for instruction tuning, and conversations → token ids + assistant masks.

A template is a Jinja string stored as the tokenizer's `chat_template`, so `transformers`'
apply_chat_template renders it the same way. Built-ins:

  chatml   <|im_start|>role\\n content <|im_end|>\\n per message; the turn ends with <|im_end|>
  alpaca   Stanford Alpaca's prompts (with-input and no-input), the response ends with eos

Assistant text sits inside `{% generation %}` blocks: the assistant mask marks exactly the
assistant's tokens plus its end-of-turn token, and only those are scored in fine-tuning.

"Instruction embedding" (brief 3.3.2, 4.3.1: e_instruction = Embedding(instruction)) is realised
twice: by the template (the instruction sits in marked positions of the sequence), and optionally
by learned role embeddings (ModelConfig.n_roles = 4): every token also gets Embedding(role), with
role ∈ {other, system, user, assistant} taken from the same rendering.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError
from instructgen.tokenizer import CHATML_TEMPLATE, Tokenizer

ALPACA_PROMPT_INPUT = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n"
ALPACA_PROMPT_NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"

ALPACA_TEMPLATE = (
    "{%- set users = messages | selectattr('role', 'equalto', 'user') | list %}"
    "{%- if messages and messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}"
    "{%- elif users and users[0].get('input') %}{{- '"
    + ALPACA_PROMPT_INPUT.replace("\n", "\\n")
    + "' }}"
    "{%- else %}{{- '" + ALPACA_PROMPT_NO_INPUT.replace("\n", "\\n") + "' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}"
    "{{- '### Instruction:\\n' + message['content'] + '\\n\\n' }}"
    "{%- if message.get('input') %}{{- '### Input:\\n' + message['input'] + '\\n\\n' }}{%- endif %}"
    "{{- '### Response:\\n' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + eos_token }}{% endgeneration %}{{- '\\n\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
)

TEMPLATES = {"chatml": CHATML_TEMPLATE, "alpaca": ALPACA_TEMPLATE}


def get_template(name_or_path: str) -> str:
    """A built-in template by name, or a Jinja template read from a file."""
    if name_or_path in TEMPLATES:
        return TEMPLATES[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise ConfigError(
        f"unknown template {name_or_path!r}; choose {', '.join(TEMPLATES)} or give a .jinja file",
        field="template",
    )


def set_template(tokenizer: Tokenizer, name_or_path: str) -> Tokenizer:
    """Store the template in the tokenizer (saved as tokenizer_config.json's chat_template)."""
    tokenizer.config["chat_template"] = tokenizer.chat_template = get_template(name_or_path)
    return tokenizer


def template_messages(
    messages: list[dict[str, Any]], meta: dict[str, Any], template: str
) -> list[dict[str, Any]]:
    """Messages as the template wants them: templates that read a separate `input` (alpaca) get the
    Alpaca record's input split off the first user message (formats.py joins them with a blank line)."""
    alpaca_input = meta.get("input")
    if not alpaca_input or "'input'" not in template:
        return messages
    out = [dict(m) for m in messages]
    first = next(m for m in out if m["role"] == "user")
    suffix = "\n\n" + alpaca_input
    if first["content"].endswith(suffix):
        first["content"], first["input"] = first["content"][: -len(suffix)], alpaca_input
    return out


@dataclass
class Example:
    input_ids: list[int]
    loss_mask: list[int]  # 1 on tokens the model learns to produce
    role_ids: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_example(
    tokenizer: Tokenizer,
    messages: list[dict[str, Any]],
    *,
    meta: dict[str, Any] | None = None,
    max_len: int | None = None,
) -> Example | None:
    """Tokenise one conversation for fine-tuning; None when truncation would leave no assistant token.

    Sequences longer than max_len keep their beginning (the instruction) and lose the end.
    """
    messages = template_messages(messages, meta or {}, tokenizer.chat_template or "")
    encoding = tokenizer.encode_chat(messages)
    ids, mask, roles = encoding.ids, encoding.assistant_mask, encoding.role_ids
    if max_len is not None and len(ids) > max_len:
        ids, mask, roles = ids[:max_len], mask[:max_len], roles[:max_len]
    if not any(mask):
        return None
    return Example(ids, mask, roles)
