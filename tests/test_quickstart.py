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

    # --scale re-runs the training stages (and evaluation) with scaled steps, nothing before them
    half = run_cli(
        "quickstart", "--out", str(out), "--fast", "--scale", "0.5", "--quiet", timeout=300
    )
    assert half.returncode == 0, half.stderr[-2000:]
    assert half.stderr.count("reused") == 4
    report = json.loads((out / "report.json").read_text())
    assert report["plan"] == "fast" and report["scale"] == 0.5
    assert report["steps"] == {"drills": 3, "pretrain": 15, "finetune": 20}
    rows = [json.loads(line) for line in (out / "model" / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows if "step" in r) == 20
    assert "fast, scale 0.5: drills 3 steps" in (out / "report.md").read_text()


def test_scaled_plan_and_bad_scale(tmp_path):
    from instructgen.quickstart import FULL, scaled

    assert scaled(FULL, 1) is FULL
    double = scaled(FULL, 2)
    for name in ("drills", "pretrain", "finetune"):
        before, after = getattr(FULL, name), getattr(double, name)
        assert after["max_steps"] == 2 * before["max_steps"]
        assert after["eval_every"] == 2 * before["eval_every"]
        assert after["lr"] == before["lr"] and after["batch_size"] == before["batch_size"]
    assert double.scale == 2 and double.model == FULL.model and double.size == FULL.size
    for bad in ("0", "-1", "nan", "inf"):
        result = run_cli("quickstart", "--out", str(tmp_path / "q"), "--scale", bad, timeout=120)
        assert result.returncode == 2, result.stderr
        assert "scale" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "q").exists()
