"""`instructgen quickstart --fast`: every stage, the report, and reuse of finished stages."""

from __future__ import annotations

import json

import pytest

from .conftest import run_cli


@pytest.mark.slow
def test_fast_quickstart_end_to_end_and_rerun(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "qs"
    result = run_cli("quickstart", "--out", str(out), "--fast", "--quiet", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    for key in (
        "base_score",
        "tuned_score",
        "seconds_total",
        "seconds",
        "per_family",
        "brief_example",
    ):
        assert key in report, key
    assert 0.0 <= report["base_score"] <= 1.0 and 0.0 <= report["tuned_score"] <= 1.0
    assert set(report["seconds"]) == {
        "data",
        "tokenizer",
        "shards",
        "init",
        "drills",
        "pretrain",
        "finetune",
        "evaluate",
    }
    assert len(report["per_family"]) >= 20
    for name in ("report.md", "loss_curves.png", "family_scores.png"):
        assert (out / name).stat().st_size > 500, name
    assert "instructgen chat --model" in result.stderr
    # the tuned model is a Hugging Face checkpoint whose fine-tuning lowered the validation loss
    AutoModelForCausalLM.from_pretrained(out / "model")
    AutoTokenizer.from_pretrained(out / "model")
    rows = [json.loads(line) for line in (out / "model" / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    assert val[-1] < val[0]
    evaluated = (out / "eval" / "tuned.jsonl").read_text().splitlines()
    assert len(evaluated) == report["n_test"]
    # the tuned model is also scored on phrasings and entities it was trained on (val split)
    seen = [
        json.loads(line) for line in (out / "eval" / "tuned_seen.jsonl").read_text().splitlines()
    ]
    assert len(seen) == report["n_seen"] and all(r["id"].startswith("val-") for r in seen)
    assert 0.0 <= report["tuned_seen_score"] <= 1.0 and "tuned_seen" in report["per_family"]["add"]
    assert "seen phrasings" in (out / "report.md").read_text()

    again = run_cli("quickstart", "--out", str(out), "--fast", "--quiet", timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("reused") == 8
