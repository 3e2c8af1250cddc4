"""Run reports: results.json / items.jsonl / report.md / charts, fingerprints, and comparing two
runs with a paired bootstrap."""

from __future__ import annotations

import json
import shutil

import pytest

from instructgen.errors import DataError
from instructgen.evaluate.report import (
    compare,
    compare_markdown,
    load_run,
    model_fingerprint,
    read_items,
    write_run,
)


def _run(out, scores: dict[str, float], model: str, metric_value: float):
    results = {
        "suite": "squad",
        "model": {"kind": "name", "name": model},
        "data": {"path": "squad.json", "sha256": "abc"},
        "primary": "f1",
        "metrics": {"n": len(scores), "f1": metric_value, "em": metric_value / 2},
        "breakdown": {"f1_per_lang": {"en": metric_value}},
        "counts": {"items": len(scores), "scored": len(scores), "failed": 0, "cached": 0},
        "failed": [],
        "per_item": scores,
    }
    rows = [
        {
            "id": k,
            "prompt": f"question {k}",
            "output": f"answer {k}",
            "reference": "gold",
            "score": v,
        }
        for k, v in scores.items()
    ]
    return write_run(results, rows, out)


def test_write_run_writes_every_file(tmp_path):
    result = _run(tmp_path / "a", {"1": 100.0, "2": 0.0}, "m", 50.0)
    out = tmp_path / "a"
    assert load_run(out)["metrics"] == result["metrics"]
    assert set(result["charts"]) == {"metrics.png", "breakdown_f1_per_lang.png"}
    for chart in result["charts"]:
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| f1 | 50 |" in report and "![metrics.png](metrics.png)" in report
    items = read_items(out)
    assert [i["id"] for i in items] == ["1", "2"] and items[0]["output"] == "answer 1"
    assert result["instructgen_version"] and result["created"]


def test_compare_side_by_side_with_a_paired_bootstrap(tmp_path):
    ids = [str(i) for i in range(40)]
    _run(tmp_path / "a", dict.fromkeys(ids, 0.0) | {"x": 5.0}, "base", 0.0)
    _run(tmp_path / "b", {i: 100.0 * (int(i) % 4 != 0) for i in ids}, "tuned", 75.0)
    result = compare(tmp_path / "a", tmp_path / "b", n_boot=2000, seed=3)
    assert result["metrics"]["f1"] == {"a": 0.0, "b": 75.0, "diff": 75.0}
    assert result["breakdown"]["f1_per_lang"]["en"]["diff"] == 75.0
    paired = result["paired"]
    assert paired["n"] == 40 and paired["diff"] == pytest.approx(75.0)
    assert paired["p_value"] < 0.01 and paired["ci_low"] > 50
    assert result["items"] == {"shared": 40, "only_a": 1, "only_b": 0}
    assert compare(tmp_path / "a", tmp_path / "b", n_boot=2000, seed=3) == result
    text = compare_markdown(result)
    assert "| f1 | 0 | 75 | +75 |" in text and "Paired bootstrap" in text
    with pytest.raises(DataError, match="results.json"):
        compare(tmp_path / "a", tmp_path / "nowhere")


def test_model_fingerprint_follows_the_weights_and_config(tmp_path, tokenizer_dir):
    from tests.conftest import make_model_dir

    one = make_model_dir(tmp_path / "one", tokenizer_dir, seed=0)
    fp = model_fingerprint(one)
    assert fp["kind"] == "dir" and fp == model_fingerprint(one)
    other = make_model_dir(tmp_path / "two", tokenizer_dir, seed=0, n_layer=1)
    assert model_fingerprint(other)["sha256"] != fp["sha256"]
    # the same shapes with other values (another seed's weights copied in) is another model
    reseeded = make_model_dir(tmp_path / "three", tokenizer_dir, seed=1)
    shutil.copy(reseeded / "model.safetensors", one / "model.safetensors")
    assert model_fingerprint(one)["sha256"] != fp["sha256"]
    fp = model_fingerprint(one)
    config = json.loads((one / "config.json").read_text())
    config["rope_theta"] = 1234.0
    (one / "config.json").write_text(json.dumps(config))
    assert model_fingerprint(one)["sha256"] != fp["sha256"]
    assert model_fingerprint("http://h:1/v1", "m") == {
        "kind": "url",
        "url": "http://h:1/v1",
        "model": "m",
    }


def test_read_items_accepts_plain_output_files(tmp_path):
    path = tmp_path / "outs.jsonl"
    path.write_text(
        '{"instruction": "Translate", "input": "猫", "output": "cat"}\n{"question": "2+2?", "answer": "4"}\n',
        encoding="utf-8",
    )
    items = read_items(path)
    assert items[0] == {"id": "0", "prompt": "Translate\n\n猫", "output": "cat", "reference": None}
    assert items[1]["output"] == "4"
    path.write_text('{"id": 1, "prompt": "p"}\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_items(path)
    assert err.value.line == 1 and err.value.field == "output"
