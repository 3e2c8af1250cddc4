"""Byte-level BPE tokenizers: training with Hugging Face `tokenizers`, special tokens, chat templates.

A tokenizer directory holds `tokenizer.json` and `tokenizer_config.json` (special tokens and the
`chat_template`), exactly what `transformers.AutoTokenizer.from_pretrained(DIR)` reads. The
`Tokenizer` class below reads the same files without importing `transformers`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructgen.chat_template import ROLE_IDS, render
from instructgen.errors import DataError, ModelDirError, UserError
from instructgen.jsonl import read_json_lines
from instructgen.text import CJK_PRETOKEN

BOS, EOS, PAD, MASK = "<|bos|>", "<|endoftext|>", "<|pad|>", "<|mask|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"  # chat turns: <|im_start|>role\n ... <|im_end|>
SPECIAL_TOKENS = [EOS, BOS, PAD, MASK, IM_START, IM_END]

# ChatML, the default chat template. The {% generation %} block marks assistant text for
# transformers' return_assistant_tokens_mask.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{%- else %}{{- message['content'] + '<|im_end|>' }}{%- endif %}"
    "{{- '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)


# ----------------------------------------------------------------------------------------------
# Reading training text


def iter_texts(files: Sequence[str | Path], text_field: str = "text") -> Iterator[str]:
    """Yield documents from .txt files (one per blank-line-separated paragraph block) and .jsonl
    files (the `text_field` of each record, or every string in it when the field is absent)."""
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise DataError("input file not found", file=str(path))
        if path.suffix in (".jsonl", ".json"):
            yield from iter_jsonl(path, text_field)
        else:
            yield from iter_txt(path)


def iter_txt(path: str | Path) -> Iterator[str]:
    """Yield the documents of a UTF-8 text file: blocks of lines separated by blank lines."""
    path = Path(path)
    block: list[str] = []
    with path.open(encoding="utf-8", errors="strict") as f:
        try:
            for line in f:
                if line.strip():
                    block.append(line)
                elif block:
                    yield "".join(block)
                    block = []
        except UnicodeDecodeError as exc:
            raise not_utf8_error(path, exc) from None
    if block:
        yield "".join(block)


def iter_jsonl(path: str | Path, text_field: str, *, require_field: bool = False) -> Iterator[str]:
    """Yield the `text_field` of each record of a JSON Lines file (or of a .json file holding one
    array of records). Without `require_field`, a record lacking the field yields all its strings;
    with it, such a record is a DataError naming the line and field."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        try:
            if path.suffix == ".json" and _first_char(f) == "[":
                array = _load_json_array(path, f)
                records: Iterable[tuple[int | None, Any]] = ((None, r) for r in array)
            else:
                records = read_json_lines(f, file=str(path))
            for line_no, record in records:
                yield _record_text(record, text_field, require_field, path, line_no)
        except UnicodeDecodeError as exc:
            raise not_utf8_error(path, exc) from None


def _first_char(f) -> str:
    while (c := f.read(1)) and c.isspace():
        pass
    f.seek(0)
    return c


def _load_json_array(path: Path, f) -> list[Any]:
    try:
        return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None


def _record_text(
    record: Any, text_field: str, require_field: bool, path: Path, line_no: int | None
) -> str:
    if isinstance(record, dict) and isinstance(record.get(text_field), str):
        return record[text_field]
    if not require_field:
        problem = "record holds no text"
        if strings := list(_strings(record)):
            return "\n".join(strings)
    elif not isinstance(record, dict):
        problem = f"expected a JSON object, got {type(record).__name__}"
    elif text_field not in record:
        keys = ", ".join(map(str, record)) or "none"
        problem = f"record has no field '{text_field}' (fields: {keys})"
    else:
        problem = f"expected a string, got {type(record[text_field]).__name__}"
    raise DataError(problem, file=str(path), line=line_no, field=text_field)


def not_utf8_error(path: str | Path, exc: UnicodeDecodeError) -> DataError:
    """A DataError naming the first line of `path` that is not valid UTF-8."""
    with Path(path).open("rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return DataError(f"not UTF-8 text ({exc.reason})", file=str(path), line=line_no)
    return DataError(f"not UTF-8 text ({exc.reason})", file=str(path))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


# ----------------------------------------------------------------------------------------------
# Training


def train_tokenizer(
    files: Sequence[str | Path],
    vocab_size: int,
    out_dir: str | Path,
    *,
    text_field: str = "text",
    min_frequency: int = 2,
    chat_template: str = CHATML_TEMPLATE,
    model_max_length: int = 2048,
    granularity: str = "words",
    show_progress: bool = True,
) -> Path:
    """Train a byte-level BPE on `files` and save it as a tokenizer directory.

    `granularity` bounds what a merge may join (see GRANULARITIES): "words" merges within words
    (GPT-2's rule), "chars" only builds whole characters (a Latin letter is one token, a frequent
    CJK character one token, a rare one its UTF-8 bytes), so every name and word is a sequence of
    frequent units."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if granularity not in GRANULARITIES:
        raise UserError(
            f"--granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}"
        )
    minimum = 256 + len(SPECIAL_TOKENS) + 1
    if vocab_size < minimum:
        raise UserError(
            f"--vocab-size must be at least {minimum} (256 bytes + special tokens), got {vocab_size}"
        )
    texts = iter_texts(files, text_field)
    first = next(texts, None)
    if first is None:
        raise DataError("no text found in the input files", file=", ".join(map(str, files)))

    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = _pre_tokenizer(granularity)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tok.train_from_iterator(_chain([first], texts), trainer=trainer)
    tokenizer = Tokenizer(tok, _default_config(chat_template, model_max_length))
    tokenizer.save(out_dir)
    return Path(out_dir)


# granularity -> what one pre-token (the most a merge can join) is
GRANULARITIES = {
    "words": "a word with its leading space (GPT-2's rule; a run of CJK characters is one word)",
    "cjk-chars": "as words, but each CJK character stands alone",
    "chars": "one character",
}


def _pre_tokenizer(granularity: str):
    """Digits are single tokens (better arithmetic); ByteLevel maps every byte to a symbol, so
    any string, Chinese, emoji or code included, round-trips exactly."""
    from tokenizers import Regex, pre_tokenizers

    steps = [pre_tokenizers.Digits(individual_digits=True)]
    if granularity != "words":
        one = r"[\s\S]" if granularity == "chars" else CJK_PRETOKEN
        steps.insert(0, pre_tokenizers.Split(Regex(one), behavior="isolated"))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=granularity != "chars"))
    return pre_tokenizers.Sequence(steps)


def _chain(*parts: Iterable[str]) -> Iterator[str]:
    for part in parts:
        yield from part


def _default_config(chat_template: str, model_max_length: int) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "mask_token": MASK,
        "additional_special_tokens": [IM_START, IM_END],
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "add_prefix_space": False,
        "model_max_length": model_max_length,
    }


# ----------------------------------------------------------------------------------------------
# The runtime tokenizer


@dataclass
class ChatEncoding:
    ids: list[int]
    assistant_mask: list[int]  # 1 where the assistant's tokens (and its end-of-turn token) are
    role_ids: list[int]  # chat_template.ROLE_IDS per token
    text: str


def label_by_span(starts: list[int], spans: list[tuple[int, int, int]], default: int) -> list[int]:
    """For each offset in `starts` (ascending), the label of the span [a, b) that holds it, or
    `default`; the spans do not overlap. One walk over both lists."""
    spans = sorted(spans)
    out, j = [], 0
    for s in starts:
        while j < len(spans) and spans[j][1] <= s:
            j += 1
        out.append(spans[j][2] if j < len(spans) and spans[j][0] <= s else default)
    return out


class Tokenizer:
    """A `tokenizers.Tokenizer` plus its special tokens and chat template."""

    def __init__(self, backend, config: dict[str, Any]):
        self.backend = backend
        self.config = config
        self.chat_template: str | None = config.get("chat_template")

    @classmethod
    def from_dir(cls, path: str | Path) -> Tokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        path = Path(path)
        config_file = path / "tokenizer_config.json"
        config = (
            json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        )
        if (path / "chat_template.jinja").is_file() and not config.get("chat_template"):
            config["chat_template"] = (path / "chat_template.jinja").read_text(encoding="utf-8")
        if (path / "tokenizer.json").is_file():
            backend = HFTokenizer.from_file(str(path / "tokenizer.json"))
        elif (path / "vocab.json").is_file() or (path / "tokenizer.model").is_file():
            from transformers import (
                AutoTokenizer,
            )  # slow-format tokenizer: let transformers convert it

            backend = AutoTokenizer.from_pretrained(str(path)).backend_tokenizer
        else:
            raise ModelDirError("no tokenizer.json (or vocab.json) found", file=str(path))
        special_map = path / "special_tokens_map.json"
        if special_map.is_file():
            for key, value in json.loads(special_map.read_text(encoding="utf-8")).items():
                config.setdefault(key, value)
        return cls(backend, config)

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.backend.save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_text(
            json.dumps(self.config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )

    # -- special tokens ------------------------------------------------------------------------

    def _special(self, key: str) -> str | None:
        value = self.config.get(key)
        return value.get("content") if isinstance(value, dict) else value

    def token_id(self, token: str | None) -> int | None:
        return None if token is None else self.backend.token_to_id(token)

    @property
    def bos_id(self) -> int | None:
        return self.token_id(self._special("bos_token"))

    @property
    def eos_id(self) -> int | None:
        return self.token_id(self._special("eos_token"))

    @property
    def pad_id(self) -> int | None:
        pad = self.token_id(self._special("pad_token"))
        return pad if pad is not None else self.eos_id

    @property
    def mask_id(self) -> int | None:
        return self.token_id(self._special("mask_token"))

    @property
    def stop_ids(self) -> list[int]:
        """Token ids that end a generation: eos and the end-of-turn token of the chat template."""
        ids = [self.eos_id, self.token_id(IM_END) if IM_END in (self.chat_template or "") else None]
        return [i for i in dict.fromkeys(ids) if i is not None]

    @property
    def special_ids(self) -> set[int]:
        return (
            {i for i, t in self.backend.get_added_tokens_decoder().items() if t.special}
            if hasattr(self.backend, "get_added_tokens_decoder")
            else set()
        )

    def __len__(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @functools.cached_property
    def max_token_chars(self) -> int:
        """An upper bound on the characters one token stands for (the longest vocabulary entry:
        a byte-level token holds one symbol per byte, and a character is at least one byte), so
        a text of more than context × this characters cannot fit the context."""
        return max(map(len, self.backend.get_vocab(with_added_tokens=True)), default=1)

    # -- text <-> ids --------------------------------------------------------------------------

    def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def encode_batch(
        self, texts: Sequence[str], *, add_special_tokens: bool = False
    ) -> list[list[int]]:
        return [
            e.ids
            for e in self.backend.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        ]

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    # -- chat ----------------------------------------------------------------------------------

    @property
    def special_tokens_map(self) -> dict[str, str]:
        keys = ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token")
        return {k: v for k in keys if (v := self._special(k)) is not None}

    def _template(self, template: str | None) -> str:
        template = template or self.chat_template
        if not template:
            raise UserError(
                "this tokenizer has no chat_template; pass a template or use a raw prompt"
            )
        return template

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = False,
        template: str | None = None,
        **kwargs: Any,
    ) -> str:
        """The conversation as text, rendered exactly as transformers' apply_chat_template renders it."""
        rendered = render(
            self._template(template),
            messages,
            add_generation_prompt=add_generation_prompt,
            special_tokens=self.special_tokens_map,
            **kwargs,
        )
        return rendered.text

    def encode_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = False,
        template: str | None = None,
        **kwargs: Any,
    ) -> ChatEncoding:
        """Token ids of the rendered conversation, the assistant mask (1 on every token the
        assistant writes, its end-of-turn token included) and a role id per token."""
        rendered = render(
            self._template(template),
            messages,
            add_generation_prompt=add_generation_prompt,
            special_tokens=self.special_tokens_map,
            spans=True,
            **kwargs,
        )
        encoding = self.backend.encode(rendered.text, add_special_tokens=False)
        starts = [start for start, _ in encoding.offsets]
        mask = label_by_span(starts, [(a, b, 1) for a, b in rendered.generation_spans], 0)
        roles = label_by_span(
            starts, [(a, b, ROLE_IDS.get(r, 0)) for a, b, r in rendered.role_spans], 0
        )
        return ChatEncoding(list(encoding.ids), mask, roles, rendered.text)

    def chat_role_ids(
        self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = False
    ) -> list[int]:
        """Role ids (chat_template.ROLE_IDS) of the tokens of the rendered conversation."""
        return self.encode_chat(messages, add_generation_prompt=add_generation_prompt).role_ids

    def fingerprint(self) -> str:
        """sha256 of the vocabulary, merges and pre-tokenizer: equal fingerprints encode equally."""
        spec = json.loads(self.backend.to_str())
        keep = {k: spec.get(k) for k in ("model", "pre_tokenizer", "normalizer", "added_tokens")}
        return hashlib.sha256(
            json.dumps(keep, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()[:16]
