"""Pieces the applications share: language detection, bilingual tokenisation, reading JSONL/CSV
records, opening a model, and pulling a JSON object out of a model's answer."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from instructgen.errors import DataError
from instructgen.jsonl import read_json_lines
from instructgen.text import CJK_CLASS, count_cjk, detect_lang_by_words, segment

_CJK_RUN = re.compile(f"[{CJK_CLASS}]+")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")

STOPWORDS = frozenset(
    """a an the and or but if of to in on at for from by with about as into is are was were be
    been being do does did done have has had i me my we our you your it its this that these those
    what which who whom how when where why can could would should will shall may might must
    please kindly tell let know just any some there their them they he she his her am not so
    s t""".split()
) | frozenset(
    "的 了 吗 呢 吧 啊 呀 是 我 你 您 们 我们 你们 请 请问 一下 在 有 和 与 就 都 也 还 这 那 个 么 什么 怎么 多少 可以 能 能否 会 要 想".split()
)


detect_lang = detect_lang_by_words  # "zh" when Chinese characters >= Latin words (instructgen.text)


def tokenize(text: str) -> list[str]:
    """Retrieval terms: Chinese runs through jieba's search mode (words and their sub-words),
    everything else as lowercase, lightly stemmed words and numbers; stopwords dropped."""
    terms: list[str] = []
    pos = 0
    for m in _CJK_RUN.finditer(text):
        terms += _WORD.findall(text[pos : m.start()].lower())
        terms += segment(m.group(), search=True)
        pos = m.end()
    terms += _WORD.findall(text[pos:].lower())
    return [stem(t) for t in terms if t.strip() and t not in STOPWORDS]


def stem(word: str) -> str:
    """A light English suffix stripper (returned, returns, returning → return); others unchanged."""
    for suffix in ("ing", "ed", "es", "s"):
        if (
            word.isascii()
            and word.isalpha()
            and len(word) > len(suffix) + 3
            and word.endswith(suffix)
        ):
            return word[: -len(suffix)]
    return word


def count_units(text: str) -> int:
    """Length as people count it: Chinese characters plus Latin words and numbers."""
    return count_cjk(text) + len(_WORD.findall(text))


def read_records(path: str | Path, *, what: str = "records") -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of a JSONL or CSV file (CSV by its .csv suffix)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file not found", file=str(path))
    rows: list[tuple[int, dict[str, Any]]] = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(f)
            if not reader.fieldnames:
                raise DataError("CSV file has no header row", file=str(path), line=1)
            for row in reader:
                rows.append(
                    (reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k})
                )
        else:
            for line_no, record in read_json_lines(f, file=str(path)):
                if not isinstance(record, dict):
                    raise DataError("each line must be a JSON object", file=str(path), line=line_no)
                rows.append((line_no, record))
    if not rows:
        raise DataError(f"no {what} in the file", file=str(path))
    return rows


def split_list(value: Any) -> list[str]:
    """A list field given as a JSON list or as a string separated by ; , ， 、 or |."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in re.split(r"[;,，、|；]", str(value)) if v.strip()]


def open_llm(model: str, backend: str | None = None, **options: Any):
    """The model an app drives: a model directory, a Hugging Face name or an OpenAI-compatible URL."""
    from instructgen.inference import load

    return load(model, backend, **options)


def extract_json(text: str) -> Any:
    """The first JSON object in a model's answer (fenced or bare); None when there is none."""
    start = text.find("{")
    while start != -1:
        depth = 0
        in_string = escaped = False
        for i in range(start, len(text)):
            ch = text[i]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
                continue
            if ch == '"':
                in_string = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        return json.loads(text[start : i + 1])
                    except json.JSONDecodeError:
                        break
        start = text.find("{", start + 1)
    return None
