"""The quickstart's report: report.json, report.md and the two charts (loss curves per training
stage, checker accuracy per family on test and val side by side), from OUT/eval/scores.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructgen.files import atomic_write_json, atomic_write_text
from instructgen.jsonl import read_json_lines
from instructgen.quickstart import BRIEF_INSTRUCTION, FAST_NOTE, TRAINING_STAGES, Plan


def write_report(
    out: Path, plan: Plan, start: Path, seconds: dict[str, float], elapsed: float
) -> dict[str, Any]:
    """Write report.json, report.md and the charts into `out`; return the report."""
    scores = json.loads((out / "eval" / "scores.json").read_text(encoding="utf-8"))
    base, tuned, seen = scores["base"], scores["tuned"], scores["tuned_seen"]
    families = sorted(set(base["per_family"]) | set(tuned["per_family"]))
    report = {
        "base_score": base["score"],
        "tuned_score": tuned["score"],
        "improvement": tuned["score"] - base["score"],
        "tuned_seen_score": seen["score"],
        "n_test": tuned["n"],
        "n_seen": seen["n"],
        "seconds_total": sum(seconds.values()),
        "seconds_this_run": elapsed,
        "seconds": seconds,
        "per_family": {
            f: {
                "base": base["per_family"].get(f),
                "tuned": tuned["per_family"].get(f),
                "tuned_seen": seen["per_family"].get(f),
            }
            for f in families
        },
        "per_lang": {
            lang: {"base": base["per_lang"].get(lang), "tuned": tuned["per_lang"].get(lang)}
            for lang in sorted(tuned["per_lang"])
        },
        "brief_example": {
            "base": base["brief_example"]["output"],
            "tuned": tuned["brief_example"]["output"],
            "instruction": BRIEF_INSTRUCTION,
        },
        "plan": plan.name,
        "scale": plan.scale,
        "start": "shipped base" if plan.base == "shipped" else plan.base or "scratch",
        "steps": {
            name: getattr(plan, name)["max_steps"]
            for name in (TRAINING_STAGES if plan.base is None else ("finetune",))
        },
        "tokenizer": _tokenizer_facts(plan, start),
        "model_shape": _model_shape(start),
        "model": str(out / "model"),
        "charts": ["loss_curves.png", "family_scores.png"],
    }
    if "aligned" in scores:
        aligned, aligned_seen = scores["aligned"], scores["aligned_seen"]
        report["aligned_score"] = aligned["score"]
        report["aligned_seen_score"] = aligned_seen["score"]
        report["align"] = plan.align | _align_facts(out)
        for f, row in report["per_family"].items():
            row["aligned"] = aligned["per_family"].get(f)
            row["aligned_seen"] = aligned_seen["per_family"].get(f)
        report["brief_example"]["aligned"] = aligned["brief_example"]["output"]
    if plan.name == "fast":
        report["note"] = FAST_NOTE
    panels = [("fine-tuning", out / "model")]
    if plan.base is None:
        panels[:0] = [("copy drills", out / "drilled"), ("pretraining", out / "pretrained")]
    else:
        panels.insert(0, (f"pretraining ({report['start']})", start))
    _charts(out, report, panels)
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", _markdown(report))
    return report


def _jsonl_rows(path: Path) -> list[Any]:
    """The values of a JSON Lines file the run wrote (a torn last line is skipped)."""
    return [value for _, value in read_json_lines(path.read_text(encoding="utf-8"), lenient=True)]


def _align_facts(out: Path) -> dict[str, Any]:
    """Pairs made and the last logged DPO rewards of a `--align` run."""
    pairs = out / "preferences.jsonl"
    facts: dict[str, Any] = {"pairs": len(_jsonl_rows(pairs))}
    rows = _jsonl_rows(out / "aligned" / "metrics.jsonl")
    last = next((r for r in reversed(rows) if "rewards/margins" in r), {})
    facts.update({k: last[k] for k in last if k.startswith("rewards/")})
    return facts


def _tokenizer_facts(plan: Plan, start: Path) -> dict[str, Any]:
    from instructgen.tokenizer import Tokenizer

    facts: dict[str, Any] = {"vocab_size": len(Tokenizer.from_dir(start))}
    if plan.base is None:
        facts["granularity"] = plan.granularity
    return facts


def _model_shape(start: Path) -> dict[str, Any]:
    """Architecture, width, depth, heads and context of a model directory's config.json."""
    from instructgen.model.model_dir import CONFIG_FILE

    config = json.loads((start / CONFIG_FILE).read_text(encoding="utf-8"))
    return {
        "arch": config["model_type"],
        "d_model": config.get("hidden_size", config.get("n_embd")),
        "n_layer": config.get("num_hidden_layers", config.get("n_layer")),
        "n_head": config.get("num_attention_heads", config.get("n_head")),
        "context": config.get("max_position_embeddings", config.get("n_positions")),
    }


def _charts(out: Path, report: dict[str, Any], panels: list[tuple[str, Path]]) -> None:
    """loss_curves.png (one panel per training stage) and family_scores.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4))
    for ax, (stage, folder) in zip(axes, panels):
        rows = _jsonl_rows(folder / "metrics.jsonl")
        train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
        val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
        if train:
            ax.plot(*zip(*train), label="train")
        if val:
            ax.plot(*zip(*val), "o-", label="validation")
        ax.set_title(f"{stage} loss")
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=100)
    plt.close(fig)

    families = list(report["per_family"])
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(families)), 4.5))
    xs = range(len(families))
    bars = (
        ("base", f"pretrained only, test ({report['base_score']:.2f})"),
        ("tuned", f"instruction-tuned, test ({report['tuned_score']:.2f})"),
        (
            "tuned_seen",
            f"instruction-tuned, seen phrasings (val, {report['tuned_seen_score']:.2f})",
        ),
    )
    for i, (key, label) in enumerate(bars):
        ax.bar(
            [x + 0.27 * (i - 1) for x in xs],
            [report["per_family"][f][key] or 0 for f in families],
            width=0.27,
            label=label,
        )
    ax.set_xticks(list(xs))
    ax.set_xticklabels(families, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.2)  # room above the bars for the legend
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("checker accuracy")
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "family_scores.png", dpi=100)
    plt.close(fig)


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# instructgen quickstart report",
        "",
        *([f"> **{report['note']}**", ""] if "note" in report else []),
        f"Held-out test split ({report['n_test']} instructions with unseen phrasings and entities), checker accuracy:",
        "",
        f"- pretrained only: **{report['base_score']:.3f}**",
        f"- instruction-tuned: **{report['tuned_score']:.3f}** ({report['improvement']:+.3f})",
        "",
        f"For comparison, the tuned model on the val split ({report['n_seen']} instructions whose phrasings "
        f"and entities come from training's pools): **{report['tuned_seen_score']:.3f}**.",
        "",
        *(
            [
                f"After DPO on {report['align']['pairs']} pairs of its own samples (`--align`): "
                f"test **{report['aligned_score']:.3f}** ({report['aligned_score'] - report['tuned_score']:+.3f}), "
                f"val **{report['aligned_seen_score']:.3f}** ({report['aligned_seen_score'] - report['tuned_seen_score']:+.3f}).",
                "",
            ]
            if "aligned_score" in report
            else []
        ),
        f"Plan {report['plan']} from {report['start']}, scale {report['scale']:g}: "
        + ", ".join(f"{name} {n} steps" for name, n in report["steps"].items())
        + f"; tokens: {_tokens_line(report['tokenizer'])}; model: "
        + "{arch} d_model {d_model} × {n_layer} layers, {n_head} heads, context {context}.".format(
            **report["model_shape"]
        ),
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in report["seconds"].items()],
        f"| **total** | **{report['seconds_total']:.1f}** |",
        "",
        "| family | pretrained | tuned | tuned, seen phrasings (val) |",
        "|---|---:|---:|---:|",
        *[
            f"| {f} | {s['base'] or 0:.2f} | {s['tuned'] or 0:.2f} | {s['tuned_seen'] or 0:.2f} |"
            for f, s in report["per_family"].items()
        ],
        "",
        f"The brief's example, “{report['brief_example']['instruction']}”, answered by the tuned model:",
        "",
        "```",
        report["brief_example"]["tuned"],
        "```",
        "",
        "![loss curves](loss_curves.png)",
        "",
        "![scores per family](family_scores.png)",
        "",
    ]
    return "\n".join(lines)


def _tokens_line(tokenizer: dict[str, Any]) -> str:
    granularity = tokenizer.get("granularity")
    return (f"{granularity}, " if granularity else "") + f"{tokenizer['vocab_size']} vocabulary"


def next_steps(out: Path, report: dict[str, Any]) -> str:
    return (
        (f"\nquickstart --fast: {report['note']}" if "note" in report else "")
        + f"\nquickstart: base {report['base_score']:.3f} -> tuned {report['tuned_score']:.3f} on the held-out test split "
        f"({report['seconds_total']:.0f}s); report: {out / 'report.md'}\n"
        f"  chat:   instructgen chat --model {out / 'model'}\n"
        f'  ask:    instructgen generate --model {out / "model"} "{BRIEF_INSTRUCTION}"\n'
        f"  serve:  instructgen serve --model {out / 'model'}"
    )
