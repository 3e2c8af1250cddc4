"""`instructgen quickstart --fast`: every stage, the report, and reuse of finished stages."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch

from instructgen.errors import ConfigError
from instructgen.model.checkpoint import load_model, save_model
from instructgen.quickstart import FAST, FULL, SCRATCH, SHIPPED_BASE, quickstart
from instructgen.tokenizer import Tokenizer

from .conftest import run_cli


@pytest.mark.slow
def test_fast_quickstart_end_to_end_and_rerun(tmp_path, monkeypatch):
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
    assert "smoke test" in result.stderr and "near 0 by design" in (out / "report.md").read_text()
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
    assert "fast from scratch, scale 0.5: drills 3 steps" in (out / "report.md").read_text()

    # a quickstart that starts from a pretrained base (here the one just built) fine-tunes it and
    # evaluates it against the tuned model; new weights in the base re-run everything after data
    base = tmp_path / "base"
    shutil.copytree(out / "pretrained", base)
    plan = replace(FAST, name="fast-base", base=str(base))
    started = quickstart(tmp_path / "from-base", plan=plan, show_progress=False)
    assert set(started["seconds"]) == {"data", "finetune", "evaluate"}
    assert started["start"] == str(base) and started["steps"] == {"finetune": 40}
    assert started["model_shape"]["d_model"] == FAST.model["d_model"]
    text = (tmp_path / "from-base" / "report.md").read_text()
    assert f"Plan fast-base from {base}" in text and "finetune 40 steps" in text
    again = quickstart(tmp_path / "from-base", plan=plan, show_progress=False)
    assert again["seconds"] == started["seconds"]
    model = load_model(base)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_model(model, base, tokenizer=Tokenizer.from_dir(base), keep_other_files=True)
    changed = quickstart(tmp_path / "from-base", plan=plan, show_progress=False)
    assert changed["seconds"]["data"] == started["seconds"]["data"]
    assert changed["seconds"]["finetune"] != started["seconds"]["finetune"]

    # --align: pairs from the tuned model's samples (the reference answer chosen where every
    # sample fails), DPO, and the aligned model evaluated on test and val beside the tuned one
    aligned = quickstart(tmp_path / "from-base", plan=plan, align=True, show_progress=False)
    assert aligned["seconds"]["finetune"] == changed["seconds"]["finetune"]  # reused
    assert {"preferences", "align"} <= set(aligned["seconds"])
    assert 0.0 <= aligned["aligned_score"] <= 1.0 and 0.0 <= aligned["aligned_seen_score"] <= 1.0
    assert aligned["align"]["pairs"] > 0 and "rewards/margins" in aligned["align"]
    assert "aligned" in aligned["per_family"]["add"]
    assert "After DPO on" in (tmp_path / "from-base" / "report.md").read_text()
    pairs = (tmp_path / "from-base" / "preferences.jsonl").read_text().splitlines()
    assert len(pairs) == aligned["align"]["pairs"]

    # the plan's SFT options reach the fine-tuning stage, and changing them re-runs it
    noisy = quickstart(
        tmp_path / "from-base", plan=replace(plan, sft={"neftune_alpha": 5.0}), show_progress=False
    )
    assert noisy["seconds"]["data"] == changed["seconds"]["data"]
    assert noisy["seconds"]["finetune"] != changed["seconds"]["finetune"]
    card = json.loads((tmp_path / "from-base" / "model" / "instructgen.json").read_text())
    assert card["history"][-1]["options"]["neftune_alpha"] == 5.0
    assert card["history"][-1]["config"]["seed"] == FAST.seed
    # a stage's own seed wins over the plan's (the data stays the plan's)
    reseeded = replace(plan, finetune=plan.finetune | {"seed": 5})
    quickstart(tmp_path / "from-base", plan=reseeded, show_progress=False)
    card = json.loads((tmp_path / "from-base" / "model" / "instructgen.json").read_text())
    assert card["history"][-1]["config"]["seed"] == 5
    # a new version of the data generator makes new data, and everything after it runs again
    monkeypatch.setattr("instructgen.data.builtin.GENERATOR_VERSION", "next")
    regenerated = quickstart(tmp_path / "from-base", plan=reseeded, show_progress=False)
    stages = json.loads((tmp_path / "from-base" / "stages.json").read_text())
    assert regenerated["seconds"]["data"] != changed["seconds"]["data"]
    assert stages["data"]["seconds"] == regenerated["seconds"]["data"]


def test_full_plan_starts_from_the_shipped_base(tmp_path):
    """The shipped base is a model directory of the documented format, under 50 MB, and a plan
    naming a base that is not there is a one-line error."""
    from transformers import AutoModelForCausalLM

    assert FULL.base == "shipped" and SCRATCH.base is None
    weights = sum(f.stat().st_size for f in SHIPPED_BASE.glob("*.safetensors"))
    assert 0 < weights <= 50 * 2**20
    model = AutoModelForCausalLM.from_pretrained(SHIPPED_BASE)
    assert model.config.max_position_embeddings >= FULL.finetune["seq_len"]
    assert (SHIPPED_BASE / "metrics.jsonl").is_file() and (SHIPPED_BASE / "README.md").is_file()
    with pytest.raises(ConfigError, match="tools/base/build.sh"):
        quickstart(tmp_path / "q", plan=replace(FAST, base=str(tmp_path / "missing")))


def test_scaled_plan_and_bad_scale(tmp_path):
    from instructgen.quickstart import scaled

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
