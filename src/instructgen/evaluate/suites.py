"""Evaluation suites on a model directory or an OpenAI-compatible URL: `run_suite`.

    builtin        the built-in world's held-out test split, each answer scored by its checker
    ifeval         verifiable instructions (IFEval style), strict and loose
    glue           GLUE/SuperGLUE-style classification (classify.py): log-likelihood or generation
    squad          extractive QA: exact match and F1 (benchmarks.py)
    summarization  CNN/DailyMail-style: ROUGE-1/2/L (benchmarks.py)
    references     any instruction file with reference answers, chosen metrics (benchmarks.py)

A run writes into out_dir: outputs.jsonl (the per-item cache a re-run resumes from),
results.json, items.jsonl, report.md and charts (report.py). Greedy decoding throughout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError, DataError
from instructgen.evaluate import benchmarks, classify
from instructgen.evaluate.report import file_fingerprint, model_fingerprint, write_run
from instructgen.evaluate.runner import ItemCache, Outcome, Scored, Task, run_cached, spread

SUITES = ("builtin", "ifeval", "glue", "squad", "summarization", "references")
CACHE = "outputs.jsonl"
BUILTIN_DATA = "builtin_data"
DEFAULT_MAX_TOKENS = {
    "builtin": 96,
    "ifeval": 256,
    "glue": 8,
    "squad": 32,
    "summarization": 128,
    "references": 256,
}


def run_suite(
    model: str | Path,
    suite: str,
    *,
    out_dir: str | Path,
    data: str | Path | None = None,
    backend: str | None = None,
    api_key: str | None = None,
    served_model: str | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    concurrency: int = 8,
    metrics: Sequence[str] | None = None,
    max_tokens: int | None = None,
    labels: Sequence[str] | None = None,
    text_fields: Sequence[str] | None = None,
    template: str | None = None,
    method: str = "auto",
    lang: str = "auto",
    retries: int = 2,
    backoff: float = 0.5,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate `model` (a model directory, hub name, or http(s) base URL) on `suite` and write
    the run into out_dir; returns results.json's content.

    Local models run `batch_size` prompts per call; URLs get one request per item, `concurrency`
    at a time. Items already in out_dir/outputs.jsonl for the same model and settings are not
    asked again. An item that fails 1 + `retries` times is listed under "failed" with its error."""
    from instructgen.inference import load

    _check_options(suite, method, metrics)
    out, started = Path(out_dir), time.time()
    tokens = max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS[suite]
    examples, data_path, build = _prepare(
        suite, data, out, limit, tokens, metrics, labels, text_fields, template, lang
    )
    notes: list[str] = []
    llm = load(model, backend, api_key=api_key, **({"model": served_model} if served_model else {}))
    try:
        remote = llm.backend == "openai"
        if suite == "glue":
            method, note = _classification_method(llm, method)
            notes += [note] if note else []
        task = build(examples, method)
        fingerprint = model_fingerprint(model, llm.model_name if remote else None)
        outcome = run_cached(
            [(it["id"], it["payload"]) for it in task.items],
            _call(llm, task),
            ItemCache(out / CACHE, _cache_salt(fingerprint, llm.backend, task)),
            batch_size=1 if remote else batch_size,
            workers=concurrency if remote else 1,
            retries=retries,
            backoff=backoff,
            progress=progress,
            desc=f"eval {suite}",
        )
    finally:
        llm.close()

    scored, rows, failed = _score(task, outcome)
    config = _run_config(
        suite, model, data_path, task, limit, batch_size, concurrency, retries, lang, template
    )
    results = {
        "suite": suite,
        "model": fingerprint,
        "backend": llm.backend,
        "config": config,
        "data": file_fingerprint(data_path),
        **_scores(task, scored, outcome, failed, notes),
        "seconds": round(time.time() - started, 3),
    }
    return write_run(results, rows, out)


def _check_options(suite: str, method: str, metrics: Sequence[str] | None) -> None:
    """Settings wrong whatever the data: an unknown suite or method, metrics for a suite other
    than references."""
    if suite not in SUITES:
        raise ConfigError(
            f"unknown suite {suite!r}; choose from {', '.join(SUITES)}", field="suite"
        )
    if method not in classify.METHODS:
        raise ConfigError(
            f"unknown method {method!r}; choose from {', '.join(classify.METHODS)}", field="method"
        )
    if metrics is not None and suite != "references":
        raise ConfigError("--metrics applies to the references suite only", field="metrics")


def _cache_salt(fingerprint: dict[str, Any], backend: str, task: Task) -> str:
    """What the cached outputs depend on besides the payload: the model (not where it lies), the
    backend, the task kind and the sampling settings; a change in any asks again."""
    return json.dumps(
        [{k: v for k, v in fingerprint.items() if k != "path"}, backend, task.kind, task.sampling],
        sort_keys=True,
    )


def _score(task: Task, outcome: Outcome) -> tuple[Scored, list[dict], list[dict]]:
    """(the scores of the answered items, items.jsonl's rows: scored ones, then failed ones,
    the failures {id, error} in item order)."""
    done = [it for it in task.items if it["id"] in outcome.outputs]
    scored = (
        task.score(done, [outcome.outputs[it["id"]] for it in done])
        if done
        else Scored({}, {}, {}, [])
    )
    prompts = {it["id"]: it["prompt"] for it in task.items}
    rows = [{"id": r["id"], "prompt": prompts[r["id"]], **r} for r in scored.rows]
    failed = [
        {"id": it["id"], "error": outcome.failures[it["id"]]}
        for it in task.items
        if it["id"] in outcome.failures
    ]
    rows += [
        {"id": f["id"], "prompt": prompts[f["id"]], "error": f["error"], "score": None}
        for f in failed
    ]
    return scored, rows, failed


def _run_config(
    suite: str,
    model: str | Path,
    data_path: str | Path | None,
    task: Task,
    limit: int | None,
    batch_size: int,
    concurrency: int,
    retries: int,
    lang: str,
    template: str | None,
) -> dict[str, Any]:
    """results.json's "config": the settings asked for, and the task's own."""
    return {
        "suite": suite,
        "model": str(model),
        "data": str(data_path) if data_path else None,
        "limit": limit,
        "batch_size": batch_size,
        "concurrency": concurrency,
        "retries": retries,
        "sampling": task.sampling,
        "method": task.kind,
        "lang": lang,
        "template": template,
        **task.config,
    }


def _scores(
    task: Task, scored: Scored, outcome: Outcome, failed: list[dict], notes: list[str]
) -> dict[str, Any]:
    """results.json's scores: primary metric, metrics, breakdown, counts, failures, per-item
    scores, and the notes (`notes`, one on the failures, then the task's)."""
    if failed:
        notes = notes + [
            f'{len(failed)} of {len(task.items)} items failed (see "failed") and are not scored'
        ]
    return {
        "primary": task.primary,
        "metrics": scored.metrics,
        "breakdown": scored.breakdown,
        "metric_info": scored.info,
        "counts": outcome.counts(len(task.items)),
        "failed": failed,
        "per_item": {r["id"]: r.get("score") for r in scored.rows},
        "notes": notes + task.notes,
    }


def _call(llm: Any, task: Task):
    if task.kind == "loglik":
        return classify.loglik_call(llm)
    sampling = task.sampling

    def generate(prompts: list[Any]) -> list[str]:
        return [c.text for c in llm.generate_batch(prompts, **sampling)]

    return generate


def _classification_method(llm: Any, method: str) -> tuple[str, str | None]:
    if method == "generate":
        return "generate", None
    if classify.supports_loglik(llm):
        return "loglik", None
    if method == "loglik":
        raise ConfigError(
            f"the {llm.backend} backend cannot return prompt log-probabilities; use method generate (--method generate) or the native backend",
            field="method",
        )
    return "generate", (
        f"the {llm.backend} backend returns no prompt log-probabilities, so labels were scored by generation"
    )


# ---------------------------------------------------------------- per-suite data


def _prepare(
    suite: str,
    data: str | Path | None,
    out: Path,
    limit: int | None,
    max_tokens: int,
    metrics: Sequence[str] | None,
    labels: Sequence[str] | None,
    text_fields: Sequence[str] | None,
    template: str | None,
    lang: str,
):
    """(examples, data path, build(examples, method) → Task), reading the data before any model
    is loaded so that a bad file fails fast."""
    if suite == "builtin":
        path = _builtin_data(data, out)
        from instructgen.data.builtin import load_split

        return (
            spread(load_split(path.parent, path.stem), limit),
            path,
            lambda ex, _m: builtin_task(ex, max_tokens),
        )
    if suite == "ifeval":
        examples = _ifeval_examples(data, lang)
        return spread(examples, limit), data, lambda ex, _m: ifeval_task(ex, max_tokens)
    if data is None:
        raise ConfigError(f"the {suite} suite needs a data file (--data F)", field="data")
    if not Path(data).is_file():
        raise DataError("file not found", file=str(data))
    if suite == "glue":
        examples, names, info = classify.load_examples(data, labels=labels, text_fields=text_fields)

        def build_glue(ex: list[dict[str, Any]], method: str) -> Task:
            task = classify.build_task(ex, names, method, template=template, max_tokens=max_tokens)
            task.config.update(
                labels=names, label_source=info["label_source"], text_fields=info["text_fields"]
            )
            if info["skipped"]:
                task.notes.append(f"{info['skipped']} unlabelled records skipped")
            return task

        return spread(examples, limit), Path(data), build_glue
    if suite == "squad":
        examples = benchmarks.load_squad(data)
        return (
            spread(examples, limit),
            Path(data),
            lambda ex, _m: benchmarks.squad_task(ex, template=template, max_tokens=max_tokens),
        )
    if suite == "summarization":
        examples = benchmarks.load_summaries(data)
        return (
            spread(examples, limit),
            Path(data),
            lambda ex, _m: benchmarks.summarization_task(
                ex, template=template, max_tokens=max_tokens, lang=lang
            ),
        )
    examples = benchmarks.load_references(data)
    chosen = metrics or benchmarks.DEFAULT_REFERENCE_METRICS
    return (
        spread(examples, limit),
        Path(data),
        lambda ex, _m: benchmarks.references_task(
            ex, metrics=chosen, max_tokens=max_tokens, lang=lang
        ),
    )


def _builtin_data(data: str | Path | None, out: Path) -> Path:
    """The test split file: DATA/test.jsonl, DATA itself when it is a split file, or a built-in
    world generated once (seed 0) into out_dir/builtin_data."""
    from instructgen.data.builtin import SPLITS, write_builtin

    if data is None:
        folder = out / BUILTIN_DATA
        if not (folder / "test.jsonl").is_file():
            write_builtin(folder, seed=0)
        return folder / "test.jsonl"
    path = Path(data)
    if path.is_dir():
        return path / "test.jsonl"
    if path.is_file() and path.stem in SPLITS and path.suffix == ".jsonl":
        return path
    raise DataError(
        "expected a built-in data directory (instructgen data builtin --out DIR) or its train/val/test.jsonl",
        file=str(path),
    )


def _ifeval_examples(data: str | Path | None, lang: str) -> list[dict[str, Any]]:
    """The built-in prompts (of one language when lang is zh/en), or an IFEval input file: JSONL
    records with `key`, `prompt`, `instruction_id_list` and `kwargs` (google-research's format)."""
    from instructgen.evaluate import ifeval

    if data is None:
        return ifeval.load_prompts(lang if lang in ("zh", "en") else None)
    rows = benchmarks._records(data)
    examples = []
    for line, record in rows:
        if not isinstance(record.get("prompt"), str):
            raise DataError("missing or not a string", file=str(data), line=line, field="prompt")
        examples.append(record)
    ifeval.score(examples, [""] * len(examples))  # validates ids and kwargs before generating
    return examples


def builtin_task(records: list[dict[str, Any]], max_tokens: int) -> Task:
    """Checker accuracy (0–100) overall, per family and per language (builtin_suite)."""
    from instructgen.evaluate.builtin_suite import prompts_of, score_outputs

    prompts = prompts_of(records)
    items = [
        {"id": str(r.get("id", i)), "prompt": p, "payload": p, "record": r}
        for i, (r, p) in enumerate(zip(records, prompts))
    ]

    def score(done: list[dict[str, Any]], outputs: list[str]) -> Scored:
        result = score_outputs([it["record"] for it in done], outputs)
        rows = [
            {**row, "id": it["id"], "score": 100.0 * row["passed"]}
            for it, row in zip(done, result["rows"])
        ]
        return Scored(
            {"n": result["n"], "accuracy": 100.0 * result["score"]},
            {
                "accuracy_per_family": {k: 100.0 * v for k, v in result["per_family"].items()},
                "accuracy_per_lang": {k: 100.0 * v for k, v in result["per_lang"].items()},
            },
            {"checker": "data/checkers.py, one checker per instance"},
            rows,
        )

    return Task(
        "builtin",
        items,
        score,
        primary="accuracy",
        sampling={"max_tokens": max_tokens, "temperature": 0.0},
    )


def ifeval_task(examples: list[dict[str, Any]], max_tokens: int) -> Task:
    """Prompt- and instruction-level accuracy, strict and loose (ifeval.score)."""
    from instructgen.evaluate import ifeval

    items = []
    for i, ex in enumerate(examples):
        prompt = [{"role": "user", "content": ex["prompt"]}]
        items.append(
            {"id": str(ex.get("key", i)), "prompt": prompt, "payload": prompt, "example": ex}
        )
    if len({it["id"] for it in items}) != len(items):
        for i, it in enumerate(items):
            it["id"] = str(i)

    def score(done: list[dict[str, Any]], outputs: list[str]) -> Scored:
        examples_done = [it["example"] for it in done]
        result = ifeval.score(examples_done, outputs)
        values = {k: v for k, v in result.items() if isinstance(v, (int, float))}
        per_lang: dict[str, list[bool]] = {}
        rows = []
        for it, out, r in zip(done, outputs, result["results"]):
            strict = all(r["strict"])
            per_lang.setdefault(it["example"].get("lang", "all"), []).append(strict)
            rows.append(
                {
                    "id": it["id"],
                    "output": out,
                    "instruction_ids": r["instruction_ids"],
                    "strict": r["strict"],
                    "loose": r["loose"],
                    "score": 100.0 * strict,
                }
            )
        return Scored(
            values,
            {
                "strict_per_instruction": {
                    k: v["strict"] for k, v in result["by_instruction"].items()
                },
                "prompt_strict_per_lang": {
                    k: 100.0 * sum(v) / len(v) for k, v in sorted(per_lang.items())
                },
            },
            {"loose": "IFEval's loose variants: first/last line dropped, markdown * removed"},
            rows,
        )

    return Task(
        "ifeval",
        items,
        score,
        primary="prompt_level_strict",
        sampling={"max_tokens": max_tokens, "temperature": 0.0},
    )
