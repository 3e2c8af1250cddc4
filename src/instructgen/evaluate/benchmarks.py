"""Benchmark adapters for local files in the public formats: SQuAD (EM/F1), CNN/DailyMail-style
summarisation (ROUGE), and any instruction file with reference answers (chosen metrics).
GLUE/SuperGLUE-style classification lives in classify.py.

Each adapter turns a file into a Task: items with a chat prompt, and a scorer. Prompts are sent
as one user message (the model's chat template applies); decoding is greedy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructgen.data.records import raw_records
from instructgen.errors import ConfigError, DataError
from instructgen.evaluate import metrics as M
from instructgen.evaluate.runner import Scored, Task
from instructgen.evaluate.text import detect_lang, resolve_lang

DEFAULT_REFERENCE_METRICS = ("bleu", "rouge", "meteor", "chrf")


def _records(path: str | Path) -> list[tuple[int | None, dict[str, Any]]]:
    path = Path(path)
    rows = []
    for line, record in raw_records(path):
        if isinstance(record, Exception):
            raise record.error(str(path), line)  # type: ignore[attr-defined]
        if not isinstance(record, dict):
            raise DataError("expected a JSON object", file=str(path), line=line)
        rows.append((line, record))
    if not rows:
        raise DataError("file has no records", file=str(path))
    return rows


def _fill(template: str, fields: dict[str, Any]) -> str:
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"cannot fill the template: {exc!r}", field="template") from None


def _string(record: dict[str, Any], names: Sequence[str], path: Path, line: int | None) -> str:
    for name in names:
        value = record.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise DataError("must be a string", file=str(path), line=line, field=name)
            return value
    raise DataError(
        f"missing (one of: {', '.join(names)})", file=str(path), line=line, field=names[0]
    )


def _unique_ids(ids: list[str]) -> list[str]:
    return ids if len(set(ids)) == len(ids) else [str(i) for i in range(len(ids))]


# ---------------------------------------------------------------- SQuAD

SQUAD_TEMPLATE = (
    "Read the context and answer the question with a short span copied from the context.\n\n"
    "Context: {context}\n\nQuestion: {question}"
)
UNANSWERABLE = "unanswerable"
_UNANSWERABLE_WORDS = {"unanswerable", "no answer", "cannot be answered", "无法回答", "无答案"}


def load_squad(path: str | Path) -> list[dict[str, Any]]:
    """Questions with their context and gold answers.

    Accepted: SQuAD v1.1/v2.0 JSON ({"data": [{"title", "paragraphs": [{"context", "qas": [{"id",
    "question", "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}), or one record per
    question (.jsonl/.csv/.parquet, e.g. the Hugging Face `squad` export) with `context`,
    `question`, and `answers` as a list of strings, a list of {"text"} objects or
    {"text": [...], "answer_start": [...]} (or a single `answer` string); `id` is optional.
    An empty answer list (SQuAD 2.0) means unanswerable: the expected answer is "" and an
    output saying "unanswerable" counts as "" ."""
    path = Path(path)
    examples = []
    for line, record in _records(path):
        if isinstance(record.get("paragraphs"), list):  # one SQuAD JSON article
            for p in record["paragraphs"]:
                for qa in p.get("qas", []) if isinstance(p, dict) else []:
                    examples.append(
                        _squad_example(
                            {**qa, "context": p.get("context"), "title": record.get("title", "")},
                            path,
                            line,
                        )
                    )
        else:
            examples.append(_squad_example(record, path, line))
    ids = _unique_ids([e["id"] for e in examples])
    for e, i in zip(examples, ids):
        e["id"] = i
    return examples


def _squad_example(record: dict[str, Any], path: Path, line: int | None) -> dict[str, Any]:
    context = _string(record, ["context"], path, line)
    question = _string(record, ["question"], path, line)
    raw = record.get("answers", record.get("answer"))
    if isinstance(raw, str):
        answers = [raw]
    elif isinstance(raw, dict) and isinstance(raw.get("text"), list):
        answers = [str(a) for a in raw["text"]]
    elif isinstance(raw, list):
        answers = [a["text"] if isinstance(a, dict) and "text" in a else a for a in raw]
        if not all(isinstance(a, str) for a in answers):
            raise DataError(
                'answers must be strings or {"text": ...} objects',
                file=str(path),
                line=line,
                field="answers",
            )
    else:
        raise DataError(
            "missing or not a list of answers", file=str(path), line=line, field="answers"
        )
    return {
        "id": str(record.get("id", f"line-{line}")),
        "context": context,
        "question": question,
        "title": str(record.get("title", "")),
        "answers": list(dict.fromkeys(answers)) or [""],
    }


def extract_answer(output: str) -> str:
    """The first non-empty line, without an 'Answer:' / '答案：' prefix or surrounding quotes;
    '' when it says the question is unanswerable."""
    line = next((s.strip() for s in output.splitlines() if s.strip()), "")
    for prefix in ("answer:", "answer：", "答案:", "答案：", "回答:", "回答："):
        if line.lower().startswith(prefix):
            line = line[len(prefix) :].strip()
    line = line.strip("\"'“”‘’「」")
    if M.normalize_answer(line) in {M.normalize_answer(w) for w in _UNANSWERABLE_WORDS}:
        return ""
    return line


def squad_task(
    examples: list[dict[str, Any]], *, template: str | None = None, max_tokens: int = 32
) -> Task:
    unanswerable = any(e["answers"] == [""] for e in examples)
    items = []
    for e in examples:
        text = _fill(template or SQUAD_TEMPLATE, e)
        if unanswerable:
            text += f"\nIf the context does not contain the answer, reply: {UNANSWERABLE}"
        prompt = [{"role": "user", "content": text}]
        items.append({"id": e["id"], "prompt": prompt, "payload": prompt, "answers": e["answers"]})

    def score(done: list[dict[str, Any]], outputs: list[str]) -> Scored:
        answers = [extract_answer(o) for o in outputs]
        refs = [it["answers"] for it in done]
        lang = M.resolve_lang("auto", [r for ref in refs for r in ref])
        rule = "unicode" if lang == "zh" else "squad2" if unanswerable else "squad"
        values, _ = _split(
            {
                **M.exact_match(answers, refs, normalization=rule),
                **M.f1(answers, refs, normalization=rule),
            }
        )
        rows = [
            {
                "id": it["id"],
                "output": out,
                "answer": a,
                "reference": it["answers"],
                "score": 100.0 * max(M.token_f1(a, r, rule) for r in it["answers"]),
            }
            for it, out, a in zip(done, outputs, answers)
        ]
        return Scored(
            {"n": len(done), **values},
            {},
            {"normalisation": f"{rule} (metrics.NORMALIZATIONS)"},
            rows,
        )

    return Task(
        "squad", items, score, primary="f1", sampling={"max_tokens": max_tokens, "temperature": 0.0}
    )


# ---------------------------------------------------------------- summarisation

ARTICLE_FIELDS = ("article", "document", "text", "dialogue")
SUMMARY_FIELDS = ("highlights", "summary", "abstract", "reference")
SUMMARY_TEMPLATES = {
    "en": "Summarize the following article in a few sentences.\n\n{article}",
    "zh": "请用几句话概括下面这篇文章。\n\n{article}",
}


def load_summaries(path: str | Path) -> list[dict[str, Any]]:
    """Articles and reference summaries: one record per article with the text in `article`
    (or `document`, `text`, `dialogue`) and the reference in `highlights` (CNN/DailyMail; or
    `summary`, `abstract`, `reference`); `id` optional."""
    path = Path(path)
    rows = _records(path)
    examples = [
        {
            "id": str(r.get("id", i)),
            "article": _string(r, ARTICLE_FIELDS, path, line),
            "summary": _string(r, SUMMARY_FIELDS, path, line),
        }
        for i, (line, r) in enumerate(rows)
    ]
    for e, i in zip(examples, _unique_ids([e["id"] for e in examples])):
        e["id"] = i
    return examples


def summarization_task(
    examples: list[dict[str, Any]],
    *,
    template: str | None = None,
    max_tokens: int = 128,
    lang: str = "auto",
) -> Task:
    items = []
    for e in examples:
        text = _fill(template or SUMMARY_TEMPLATES[detect_lang(e["article"])], e)
        prompt = [{"role": "user", "content": text}]
        items.append({"id": e["id"], "prompt": prompt, "payload": prompt, "summary": e["summary"]})

    def score(done: list[dict[str, Any]], outputs: list[str]) -> Scored:
        refs = [it["summary"] for it in done]
        corpus_lang = resolve_lang(lang, [*outputs, *refs])
        values, info = _split(M.rouge(outputs, refs, lang=corpus_lang))
        rows = [
            {
                "id": it["id"],
                "output": out,
                "reference": it["summary"],
                "score": M.rouge([out], [it["summary"]], lang=corpus_lang)["rougeL"],
            }
            for it, out in zip(done, outputs)
        ]
        return Scored({"n": len(done), **values}, {}, {**info, "lang": corpus_lang}, rows)

    return Task(
        "summarization",
        items,
        score,
        primary="rougeL",
        sampling={"max_tokens": max_tokens, "temperature": 0.0},
    )


# ---------------------------------------------------------------- references


def load_references(path: str | Path) -> list[dict[str, Any]]:
    """Conversations from any instruction file data/formats.py reads (messages, ShareGPT, Alpaca,
    prompt/completion): the prompt is everything before the last assistant message, which is the
    reference."""
    from instructgen.data.formats import read_conversations
    from instructgen.evaluate.builtin_suite import prompts_of, reference_of

    convs = read_conversations(path)
    if not convs:
        raise DataError("file has no records", file=str(path))
    examples = []
    for i, conv in enumerate(convs):
        record = {"messages": conv.messages}
        if not any(m["role"] == "assistant" for m in conv.messages):
            raise DataError(
                f"record {i + 1} has no assistant answer to use as the reference", file=str(path)
            )
        examples.append(
            {
                "id": str(conv.meta.get("id", i)),
                "prompt": prompts_of([record])[0],
                "reference": reference_of(record),
            }
        )
    for e, i in zip(examples, _unique_ids([e["id"] for e in examples])):
        e["id"] = i
    return examples


PRIMARY_KEY = {"rouge": "rougeL"}


def references_task(
    examples: list[dict[str, Any]],
    *,
    metrics: Sequence[str] = DEFAULT_REFERENCE_METRICS,
    max_tokens: int = 256,
    lang: str = "auto",
) -> Task:
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in M.METRICS]
    if unknown or not metrics:
        raise ConfigError(
            f"unknown metric(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(M.METRICS)}",
            field="metrics",
        )
    items = [
        {"id": e["id"], "prompt": e["prompt"], "payload": e["prompt"], "reference": e["reference"]}
        for e in examples
    ]
    first = metrics[0]

    def score(done: list[dict[str, Any]], outputs: list[str]) -> Scored:
        refs = [it["reference"] for it in done]
        corpus_lang = resolve_lang(lang, [*outputs, *refs])
        values, info = _split(M.compute(metrics, outputs, refs, lang=corpus_lang))
        rows = [
            {
                "id": it["id"],
                "output": out,
                "reference": it["reference"],
                "score": item_score(first, out, it["reference"], corpus_lang),
            }
            for it, out in zip(done, outputs)
        ]
        return Scored(values, {}, info, rows)

    return Task(
        "references",
        items,
        score,
        primary=PRIMARY_KEY.get(first, first),
        sampling={"max_tokens": max_tokens, "temperature": 0.0},
        config={"metrics": metrics},
    )


def item_score(metric: str, prediction: str, reference: str, lang: str) -> float:
    """One item's score for `metric`: smoothed sentence BLEU for bleu, ROUGE-L F for rouge, else
    the corpus metric computed on the single item."""
    if metric == "bleu":
        return M.sentence_bleu(prediction, reference, lang=lang)
    result = M.compute([metric], [prediction], [reference], lang=lang)
    return float(result[PRIMARY_KEY.get(metric, metric)])


def _split(values: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    from instructgen.evaluate.report import split_numbers

    return split_numbers(values)
