"""GLUE / SuperGLUE-style classification from local files, scored by the log-likelihood of each
label or by generation.

File: .jsonl, .json, .csv or .parquet (the files `datasets` exports), one example per record:

- text field(s): the first of these sets present in the first record — (premise, hypothesis),
  (sentence1, sentence2), (question1, question2), (question, sentence), (question, passage),
  (sentence), (text) — or the ones named by `text_fields`;
- `label`: an integer class index, a string class name, or a boolean (BoolQ: false/true → no/yes).
  Unlabelled rows (label -1 or missing, as in GLUE's test splits) are skipped and counted.

Label names, in this order: `labels` given by the caller (index i names class i); the
ClassLabel names a `datasets` parquet file stores in its schema; a `label_text` column beside
integer labels; the sorted distinct string labels of the file; no/yes for booleans.

Scoring. "loglik": for the context c (the fields, the label list, then "Answer:") and each
label y, log P(y | c) = Σ_t log P(y_t | c, y_<t) from the backend's prompt log-probabilities;
the prediction is argmax_y log P(y | c) (accuracy) and argmax_y log P(y | c) / bytes(y)
(accuracy_norm, lm-evaluation-harness's acc_norm). "generate": the model answers the question
greedily and the answer is matched to a label (exactly, as its first words, or as the only label
it contains); an answer naming no label is wrong and counted as invalid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructgen.data.records import raw_records
from instructgen.errors import ConfigError, DataError
from instructgen.evaluate.runner import Call, Scored, Task

TEXT_FIELD_SETS = (
    ("premise", "hypothesis"),
    ("sentence1", "sentence2"),
    ("question1", "question2"),
    ("question", "sentence"),
    ("question", "passage"),
    ("sentence",),
    ("text",),
)
METHODS = ("auto", "loglik", "generate")


# ---------------------------------------------------------------- reading


def load_examples(
    path: str | Path,
    *,
    labels: Sequence[str] | None = None,
    text_fields: Sequence[str] | None = None,
    label_field: str = "label",
) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
    """(examples {"id", "fields", "gold"}, label names, info {"text_fields", "skipped", "label_source"})."""
    path = Path(path)
    rows = []
    for line, record in raw_records(path):
        if isinstance(record, Exception):
            raise record.error(str(path), line)  # type: ignore[attr-defined]
        if not isinstance(record, dict):
            raise DataError("expected an object", file=str(path), line=line)
        rows.append((line, record))
    if not rows:
        raise DataError("file has no records", file=str(path))
    fields = list(text_fields) if text_fields else _detect_fields(rows[0][1], path)
    names, source = _label_names(path, rows, labels, label_field)
    examples, skipped = [], 0
    for index, (line, record) in enumerate(rows):
        raw = record.get(label_field)
        if raw is None or (isinstance(raw, int) and not isinstance(raw, bool) and raw == -1):
            skipped += 1
            continue
        texts = {}
        for name in fields:
            value = record.get(name)
            if not isinstance(value, str):
                problem = "missing" if value is None else "must be a string"
                raise DataError(problem, file=str(path), line=line, field=name)
            texts[name] = value
        examples.append(
            {
                "id": str(record.get("idx", record.get("id", index))),
                "fields": texts,
                "gold": _label_name(raw, names, path, line, label_field),
            }
        )
    if not examples:
        raise DataError(
            f"no labelled records ({skipped} unlabelled)", file=str(path), field=label_field
        )
    if len({e["id"] for e in examples}) != len(examples):
        for i, e in enumerate(examples):
            e["id"] = str(i)
    return examples, names, {"text_fields": fields, "skipped": skipped, "label_source": source}


def _detect_fields(record: dict[str, Any], path: Path) -> list[str]:
    for names in TEXT_FIELD_SETS:
        if all(isinstance(record.get(n), str) for n in names):
            return list(names)
    known = ", ".join("+".join(s) for s in TEXT_FIELD_SETS)
    raise DataError(
        f"no known text fields (looked for {known}); name them with text_fields / --text-fields",
        file=str(path),
        line=1,
    )


def _label_names(
    path: Path, rows: list[tuple[int, dict[str, Any]]], labels: Sequence[str] | None, field: str
) -> tuple[list[str], str]:
    if labels:
        return [str(x) for x in labels], "given"
    if path.suffix.lower() == ".parquet":
        names = _parquet_class_names(path, field)
        if names:
            return names, "parquet ClassLabel"
    values = [r.get(field) for _, r in rows if r.get(field) is not None]
    if all(isinstance(v, bool) for v in values):
        return ["no", "yes"], "boolean"
    if all(isinstance(v, str) for v in values):
        return sorted(set(values)), "file (string labels)"
    texts = {
        r[field]: r["label_text"]
        for _, r in rows
        if isinstance(r.get("label_text"), str) and isinstance(r.get(field), int)
    }
    if texts and all(isinstance(v, int) for v in values):
        top = max(texts)
        if set(texts) == set(range(top + 1)):
            return [texts[i] for i in range(top + 1)], "label_text column"
    raise ConfigError(
        f"{path}: integer labels need names: pass labels (e.g. --labels negative,positive), "
        "index i naming class i",
        field="labels",
    )


def _parquet_class_names(path: Path, field: str) -> list[str] | None:
    import json

    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        features = json.loads(meta[b"huggingface"])["info"]["features"]
        names = features[field].get("names")
    except (KeyError, ValueError, TypeError, OSError, AttributeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) and names else None


def _label_name(raw: Any, names: list[str], path: Path, line: int | None, field: str) -> str:
    if isinstance(raw, bool):
        raw = int(raw)
    if isinstance(raw, int):
        if 0 <= raw < len(names):
            return names[raw]
        raise DataError(
            f"label {raw} is out of range for {len(names)} label names",
            file=str(path),
            line=line,
            field=field,
        )
    if isinstance(raw, str) and raw in names:
        return raw
    raise DataError(
        f"label {raw!r} is not one of {', '.join(names)}", file=str(path), line=line, field=field
    )


# ---------------------------------------------------------------- prompts


def question(fields: dict[str, str], labels: Sequence[str], template: str | None = None) -> str:
    """The example as text: the template filled with the record's fields, or one 'Field: text'
    line per field followed by the choice of labels."""
    if template:
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"cannot fill the template: {exc!r}", field="template") from None
    lines = [f"{name.replace('_', ' ').capitalize()}: {text}" for name, text in fields.items()]
    lines.append(f"Question: Which label fits: {', '.join(labels)}?")
    return "\n".join(lines)


def build_task(
    examples: list[dict[str, Any]],
    labels: list[str],
    method: str,
    *,
    template: str | None = None,
    max_tokens: int = 8,
) -> Task:
    """The classification task for `method` ("loglik" or "generate")."""
    items = []
    for ex in examples:
        body = question(ex["fields"], labels, template)
        if method == "loglik":
            context = body + "\nAnswer:"
            payload: Any = {"context": context, "continuations": [f" {y}" for y in labels]}
            prompt: Any = context
        else:
            payload = prompt = [{"role": "user", "content": body + "\nAnswer with the label only."}]
        items.append({"id": ex["id"], "prompt": prompt, "payload": payload, "gold": ex["gold"]})

    def score(done: list[dict[str, Any]], outputs: list[Any]) -> Scored:
        rows, preds, norms = [], [], []
        for item, out in zip(done, outputs):
            if method == "loglik":
                pred, norm = _argmax(labels, out["logprob"]), _argmax_norm(labels, out["logprob"])
                norms.append(norm)
                extra = {"logprob": dict(zip(labels, out["logprob"])), "pred_norm": norm}
                text = pred
            else:
                pred, text, extra = match_label(out, labels), out, {}
            preds.append(pred)
            row = {"id": item["id"], "output": text, "reference": item["gold"], "pred": pred}
            rows.append({**row, "score": 100.0 * (pred == item["gold"]), **extra})
        golds = [it["gold"] for it in done]
        metrics = classification_scores(golds, preds, labels)
        if method == "loglik":
            metrics["accuracy_norm"] = classification_scores(golds, norms, labels)["accuracy"]
        else:
            metrics["invalid"] = sum(p is None for p in preds)
        per_label = {
            y: 100.0 * sum(p == g for p, g in zip(preds, golds) if g == y) / n
            for y in labels
            if (n := sum(g == y for g in golds))
        }
        confusion = {g: {p or "(invalid)": 0 for p in [*labels, None]} for g in labels}
        for g, p in zip(golds, preds):
            confusion[g][p or "(invalid)"] += 1
        return Scored(
            metrics,
            {"accuracy_per_label": per_label},
            {"labels": labels, "method": method, "confusion": confusion},
            rows,
        )

    return Task(
        "glue",
        items,
        score,
        primary="accuracy",
        kind=method,
        sampling={"max_tokens": max_tokens, "temperature": 0.0} if method == "generate" else {},
    )


def _argmax(labels: Sequence[str], values: Sequence[float]) -> str:
    return labels[max(range(len(labels)), key=lambda i: values[i])]


def _argmax_norm(labels: Sequence[str], values: Sequence[float]) -> str:
    lengths = [len(f" {y}".encode()) for y in labels]
    return labels[max(range(len(labels)), key=lambda i: values[i] / lengths[i])]


# ---------------------------------------------------------------- log-likelihood


def supports_loglik(llm: Any) -> bool:
    """Whether the backend returns prompt log-probabilities (the native engine does; the openai
    backend and transformers' generate do not)."""
    if getattr(llm, "backend", "") == "openai":
        return False
    try:
        done = llm.generate_batch(["Hello world"], max_tokens=0, prompt_logprobs=0)
    except ConfigError:
        return False
    return done[0].prompt_logprobs is not None


def loglik_call(llm: Any) -> Call:
    """call(payloads) → [{"logprob": [log P(y | c) per continuation], "tokens": [#tokens]}]."""

    def call(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        prompts = []
        for p in payloads:
            prompts += [p["context"], *(p["context"] + y for y in p["continuations"])]
        done = llm.generate_batch(prompts, max_tokens=0, prompt_logprobs=0)
        out, k = [], 0
        for p in payloads:
            context = done[k].prompt_logprobs
            k += 1
            logprobs, tokens = [], []
            for _ in p["continuations"]:
                lp, n = continuation_logprob(context, done[k].prompt_logprobs)
                k += 1
                logprobs.append(lp)
                tokens.append(n)
            out.append({"logprob": logprobs, "tokens": tokens})
        return out

    return call


def continuation_logprob(
    context: Sequence[Any] | None, full: Sequence[Any] | None
) -> tuple[float, int]:
    """Σ log P over the tokens of `full` after its longest common token prefix with `context`
    (TokenLogprob lists; entry 0 is None, the first token having no context)."""
    if context is None or full is None:
        raise RuntimeError("the backend returned no prompt log-probabilities")
    j = 1
    while j < len(context) and j < len(full) and context[j].token_id == full[j].token_id:
        j += 1
    rest = full[j:]
    if not rest:
        raise RuntimeError("the label added no tokens to the context")
    return float(sum(t.logprob for t in rest)), len(rest)


# ---------------------------------------------------------------- generation and metrics

_NON_WORD = re.compile(r"[\W_]+")


def _norm(text: str) -> str:
    return _NON_WORD.sub(" ", text.lower()).strip()


def match_label(output: str, labels: Sequence[str]) -> str | None:
    """The label an answer names: equal to it, starting with it (the longest such label), or the
    only label it contains as whole words (ignoring labels inside a longer one); else None."""
    text = _norm(output)
    normed = {y: _norm(y) for y in labels}
    for y, n in normed.items():
        if text == n:
            return y
    starts = [y for y, n in normed.items() if n and (text + " ").startswith(n + " ")]
    if starts:
        return max(starts, key=lambda y: len(normed[y]))
    padded = f" {text} "
    inside = [y for y, n in normed.items() if n and f" {n} " in padded]
    inside = [y for y in inside if not any(y != z and normed[y] in normed[z] for z in inside)]
    return inside[0] if len(inside) == 1 else None


def classification_scores(
    golds: Sequence[str], preds: Sequence[str | None], labels: Sequence[str]
) -> dict[str, float]:
    """accuracy = 100 · mean[pred = gold]; macro_f1 = 100 · mean over labels of
    F1_y = 2·TP/(2·TP + FP + FN); for two labels also mcc = 100 · (TP·TN − FP·FN) /
    √((TP+FP)(TP+FN)(TN+FP)(TN+FN)) with labels[1] positive (0 when a margin is empty); an
    invalid prediction counts as the wrong label."""
    n = len(golds)
    out: dict[str, float] = {
        "n": n,
        "accuracy": 100.0 * sum(p == g for p, g in zip(preds, golds)) / n,
    }
    f1s = []
    for y in labels:
        tp = sum(p == y and g == y for p, g in zip(preds, golds))
        fp = sum(p == y and g != y for p, g in zip(preds, golds))
        fn = sum(p != y and g == y for p, g in zip(preds, golds))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    out["macro_f1"] = 100.0 * sum(f1s) / len(f1s)
    if len(labels) == 2:
        pos = labels[1]
        eff = [
            p if p is not None else (labels[0] if g == pos else pos) for p, g in zip(preds, golds)
        ]
        tp = sum(p == pos and g == pos for p, g in zip(eff, golds))
        tn = sum(p != pos and g != pos for p, g in zip(eff, golds))
        fp = sum(p == pos and g != pos for p, g in zip(eff, golds))
        fn = sum(p != pos and g == pos for p, g in zip(eff, golds))
        denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        out["mcc"] = 100.0 * (tp * tn - fp * fn) / denom if denom else 0.0
    return out
