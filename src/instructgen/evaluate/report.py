"""Run reports: every evaluation run writes, into its output folder,

    results.json   all numbers, the configuration, the model fingerprint, failed items, and the
                   per-item score of the primary metric (what `compare` tests)
    items.jsonl    one line per item: id, prompt, output, reference, score (or error)
    report.md      the same, readable, with the charts
    *.png          a chart of the metrics and one per breakdown (matplotlib, Agg)

`compare(run_a, run_b)` puts two runs side by side and tests the difference of their primary
metric with a paired bootstrap over the items both answered.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from instructgen.errors import DataError
from instructgen.evaluate.stats import paired_bootstrap
from instructgen.files import atomic_write_json, atomic_write_text

RESULTS, ITEMS, REPORT = "results.json", "items.jsonl", "report.md"
COUNT_KEYS = {"n", "num_prompts", "num_instructions", "invalid", "unparsed", "inconsistent"}


# ---------------------------------------------------------------- fingerprints


def model_fingerprint(model: str | Path, served_name: str | None = None) -> dict[str, Any]:
    """What identifies the model evaluated.

    A directory: `model_digest`, the sha256 of its weights, config and tokenizer (new weights in
    the same place are a new model). A URL: the URL and the served model's name. Anything else
    (a hub name): the name."""
    from instructgen.model.checkpoint import model_digest

    target = str(model)
    if target.startswith(("http://", "https://")):
        return {"kind": "url", "url": target, "model": served_name}
    path = Path(target)
    if not path.is_dir():
        return {"kind": "name", "name": target}
    return {
        "kind": "dir",
        "path": str(path.resolve()),
        "name": path.resolve().name,
        "sha256": model_digest(path),
    }


def file_fingerprint(path: str | Path | None) -> dict[str, Any] | None:
    """Path and sha256 of a data file (of every file, sorted, for a directory)."""
    if path is None:
        return None
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return {"path": str(path), "sha256": digest.hexdigest()}


def fingerprint_label(fp: dict[str, Any]) -> str:
    if fp.get("kind") == "url":
        return f"{fp.get('model') or '?'} @ {fp['url']}"
    if fp.get("kind") == "dir":
        return f"{fp['name']} (sha256 {fp['sha256'][:12]})"
    return str(fp.get("name", "?"))


# ---------------------------------------------------------------- writing a run


def write_run(
    results: dict[str, Any], rows: list[dict[str, Any]], out_dir: str | Path
) -> dict[str, Any]:
    """Write results.json, items.jsonl, report.md and the charts into out_dir; return results."""
    from instructgen import __version__

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    results.setdefault("instructgen_version", __version__)
    results["charts"] = charts(results, out)
    results["files"] = {"items": ITEMS, "report": REPORT}
    atomic_write_text(
        out / ITEMS, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
    )
    atomic_write_text(out / REPORT, markdown(results, rows))
    atomic_write_json(out / RESULTS, results)
    return results


def split_numbers(values: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """({name: number}, {name: everything else}) — metrics vs. their descriptions."""
    numbers, info = {}, {}
    for k, v in values.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            numbers[k] = v
        else:
            info[k] = v
    return numbers, info


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def charts(results: dict[str, Any], out: Path) -> list[str]:
    """metrics.png (the headline numbers) and breakdown_NAME.png per breakdown table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = {k: v for k, v in results.get("metrics", {}).items() if k not in COUNT_KEYS}
    tables = {"metrics": scores}
    for name, table in results.get("breakdown", {}).items():
        tables[f"breakdown_{_slug(name)}"] = table
    written = []
    for name, table in tables.items():
        values = {str(k): float(v) for k, v in table.items() if isinstance(v, (int, float))}
        if not values:
            continue
        labels = list(values)
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(labels) + 1.2)))
        ax.barh(range(len(labels)), list(values.values()), color="#4c72b0")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        for y, v in enumerate(values.values()):
            ax.text(v, y, f" {v:.3g}", va="center", fontsize=7)
        if all(0 <= v <= 100 for v in values.values()):
            ax.set_xlim(0, 108)  # a percentage scale: make 0 look like 0
        ax.set_title(f"{results.get('suite', '')} · {name.removeprefix('breakdown_')}")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=90)
        plt.close(fig)
        written.append(f"{name}.png")
    return written


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(rows: list[list[Any]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines + [""]


def _short(text: Any, limit: int = 300) -> str:
    text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[:limit] + " …"


def markdown(results: dict[str, Any], rows: list[dict[str, Any]], examples: int = 3) -> str:
    counts = results.get("counts", {})
    lines = [
        f"# instructgen eval: {results.get('suite', '?')}",
        "",
        f"- model: {fingerprint_label(results.get('model', {}))}",
        f"- data: {(results.get('data') or {}).get('path', 'built in')}",
        f"- items: {counts.get('items', '?')} (scored {counts.get('scored', '?')}, failed {counts.get('failed', 0)}, from cache {counts.get('cached', 0)})",
        f"- primary metric (per-item score used by `compare`): {results.get('primary', '?')}",
    ]
    if results.get("notes"):
        lines += [f"- note: {n}" for n in results["notes"]]
    lines += ["", "## Metrics", ""]
    lines += _table([[k, v] for k, v in results.get("metrics", {}).items()], ["metric", "value"])
    for name, table in results.get("breakdown", {}).items():
        lines += [f"## {name}", ""]
        lines += _table([[k, v] for k, v in table.items()], ["", "value"])
    if results.get("failed"):
        lines += ["## Failed items", ""]
        lines += _table(
            [[f["id"], _short(f["error"], 200)] for f in results["failed"]], ["id", "error"]
        )
    ok = [r for r in rows if r.get("error") is None][:examples]
    if ok:
        lines += ["## Examples", ""]
        for r in ok:
            lines += [f"**{r['id']}** (score {_fmt(r.get('score'))})", ""]
            lines += [
                f"- prompt: {_short(r.get('prompt', ''))}",
                f"- output: {_short(r.get('output', ''))}",
            ]
            if r.get("reference") is not None:
                lines.append(f"- reference: {_short(r['reference'])}")
            lines.append("")
    lines += [f"![{c}]({c})" for c in results.get("charts", [])]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- reading runs


def load_run(path: str | Path) -> dict[str, Any]:
    """results.json of a run folder (or the file itself)."""
    path = Path(path)
    file = path / RESULTS if path.is_dir() else path
    if not file.is_file():
        raise DataError("no results.json here (not an `instructgen eval` run)", file=str(file))
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON: {exc}", file=str(file)) from None


def read_items(path: str | Path) -> list[dict[str, Any]]:
    """Outputs of one system, as dicts with id, prompt, output (and reference when known).

    A run folder: its items.jsonl (failed items left out). A file (.jsonl, .json, .csv, .parquet):
    records with an output field (`output`, `answer`, `response` or `completion`) and a prompt
    field (`prompt`, `question`, `instruction`, or `messages`); `id` defaults to the record's
    position, so two files without ids pair line by line."""
    from instructgen.data.records import raw_records

    path = Path(path)
    file = path / ITEMS if path.is_dir() else path
    items = []
    for index, (line, record) in enumerate(raw_records(file)):
        if isinstance(record, Exception):
            raise record.error(str(file), line)  # type: ignore[attr-defined]
        if not isinstance(record, dict):
            raise DataError("expected a JSON object", file=str(file), line=line)
        if record.get("error") is not None and record.get("output") is None:
            continue
        output = _first(record, ("output", "answer", "response", "completion"))
        prompt = _first(record, ("prompt", "question", "instruction", "messages"))
        if output is None:
            raise DataError(
                "missing (or `answer`, `response`, `completion`)",
                file=str(file),
                line=line,
                field="output",
            )
        if prompt is None:
            raise DataError(
                "missing (or `question`, `instruction`, `messages`)",
                file=str(file),
                line=line,
                field="prompt",
            )
        if record.get("input") and isinstance(prompt, str):
            prompt = f"{prompt}\n\n{record['input']}"
        items.append(
            {
                "id": str(record.get("id", index)),
                "prompt": prompt,
                "output": str(output),
                "reference": record.get("reference"),
            }
        )
    ids = [it["id"] for it in items]
    if len(set(ids)) != len(ids):
        raise DataError("item ids are not unique", file=str(file), field="id")
    return items


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((record[k] for k in keys if record.get(k) is not None), None)


def prompt_text(prompt: Any) -> str:
    """A prompt as plain text: a string as is; chat messages as the lone user message, or as
    'role: content' lines for a longer conversation."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        if len(prompt) == 1 and isinstance(prompt[0], dict):
            return str(prompt[0].get("content", ""))
        return "\n\n".join(
            f"{m.get('role')}: {m.get('content')}" for m in prompt if isinstance(m, dict)
        )
    return str(prompt)


# ---------------------------------------------------------------- comparing runs


def compare(
    run_a: str | Path, run_b: str | Path, *, n_boot: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """Two runs side by side: every metric and breakdown value of each, b − a, and a paired
    bootstrap test (stats.paired_bootstrap) of the primary per-item score on their shared items."""
    a, b = load_run(run_a), load_run(run_b)
    notes = []
    if a.get("suite") != b.get("suite"):
        notes.append(f"different suites: {a.get('suite')} vs {b.get('suite')}")
    if a.get("primary") != b.get("primary"):
        notes.append(f"different primary metrics: {a.get('primary')} vs {b.get('primary')}")
    data_a, data_b = (a.get("data") or {}).get("sha256"), (b.get("data") or {}).get("sha256")
    if data_a != data_b:
        notes.append("different data files")
    per_a, per_b = a.get("per_item", {}), b.get("per_item", {})
    shared = [i for i in per_a if i in per_b and per_a[i] is not None and per_b[i] is not None]
    paired = (
        paired_bootstrap(
            [per_a[i] for i in shared], [per_b[i] for i in shared], n_boot=n_boot, seed=seed
        )
        if shared
        else None
    )
    if paired is not None:
        paired["metric"] = a.get("primary")
    return {
        "a": {"run": str(run_a), "model": a.get("model"), "suite": a.get("suite")},
        "b": {"run": str(run_b), "model": b.get("model"), "suite": b.get("suite")},
        "metrics": _side_by_side(a.get("metrics", {}), b.get("metrics", {})),
        "breakdown": {
            name: _side_by_side(
                a.get("breakdown", {}).get(name, {}), b.get("breakdown", {}).get(name, {})
            )
            for name in dict.fromkeys([*a.get("breakdown", {}), *b.get("breakdown", {})])
        },
        "paired": paired,
        "items": {
            "shared": len(shared),
            "only_a": len(set(per_a) - set(per_b)),
            "only_b": len(set(per_b) - set(per_a)),
        },
        "notes": notes,
    }


def _side_by_side(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for key in dict.fromkeys([*a, *b]):
        va, vb = a.get(key), b.get(key)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        out[key] = {"a": va, "b": vb, "diff": vb - va if numeric else None}
    return out


def compare_markdown(result: dict[str, Any]) -> str:
    """The comparison as Markdown tables (what `instructgen eval compare` prints)."""
    a, b = result["a"], result["b"]
    lines = [
        "# instructgen eval compare",
        "",
        f"- A: {a['run']} — {fingerprint_label(a.get('model') or {})} ({a.get('suite')})",
        f"- B: {b['run']} — {fingerprint_label(b.get('model') or {})} ({b.get('suite')})",
        *[f"- note: {n}" for n in result["notes"]],
        "",
    ]
    rows = [
        [k, v["a"], v["b"], "" if v["diff"] is None else f"{v['diff']:+.4g}"]
        for k, v in result["metrics"].items()
    ]
    lines += _table(rows, ["metric", "A", "B", "B − A"])
    for name, table in result["breakdown"].items():
        lines += [f"## {name}", ""]
        rows = [
            [k, v["a"], v["b"], "" if v["diff"] is None else f"{v['diff']:+.4g}"]
            for k, v in table.items()
        ]
        lines += _table(rows, ["", "A", "B", "B − A"])
    p = result.get("paired")
    if p:
        lines += [
            "## Paired bootstrap",
            "",
            f"{p['metric']} on {p['n']} shared items: A {p['mean_a']:.4g}, B {p['mean_b']:.4g}, "
            f"B − A = {p['diff']:+.4g}, {p['confidence']:.0%} CI [{p['ci_low']:+.4g}, {p['ci_high']:+.4g}], "
            f"p = {p['p_value']:.4g} ({p['n_boot']} resamples, seed {p['seed']})",
            "",
        ]
    else:
        lines += ["No shared items with per-item scores: no significance test.", ""]
    return "\n".join(lines)
