"""Verbs that write a directory never replace another run without being told (--resume, --force)."""

from __future__ import annotations

import json

from .conftest import make_model_dir, run_cli


def _refused(result, path) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert str(path) in line and "--force" in line


def test_pretrain_refuses_another_runs_dir_and_force_removes_its_checkpoints(
    tmp_path, tokenizer_dir, corpus_file
):
    model = make_model_dir(tmp_path / "init", tokenizer_dir, "llama")
    shards, out = tmp_path / "shards", tmp_path / "run"
    tokenize = ("data", "tokenize", "--input", str(corpus_file), "--tokenizer", str(tokenizer_dir))
    assert run_cli(*tokenize, "--out", str(shards), "--quiet").returncode == 0
    _refused(run_cli(*tokenize, "--out", str(shards), "--quiet"), shards)

    train = ("pretrain", "--model", str(model), "--data", str(shards), "--out", str(out))
    flags = ("--batch-size", "2", "--seq-len", "32", "--save-every", "2", "--eval-every", "2")
    first = run_cli(*train, *flags, "--max-steps", "4", "--quiet")
    assert first.returncode == 0, first.stderr[-2000:]
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints

    _refused(run_cli(*train, *flags, "--max-steps", "2", "--quiet"), out)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == checkpoints  # untouched

    resumed = run_cli(*train, *flags, "--max-steps", "6", "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    forced = run_cli(*train, *flags, "--max-steps", "2", "--force", "--quiet")
    assert forced.returncode == 0, forced.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows if "step" in r) == 2  # only the new run's metrics
    assert all(int(p.name.split("_")[-1]) <= 2 for p in (out / "checkpoints").iterdir())


def test_tokenizer_finetune_and_builtin_refuse_too(tmp_path, corpus_file, llama_dir):
    tok = tmp_path / "tok"
    train = ("tokenizer", "train", "--input", str(corpus_file), "--vocab-size", "300")
    assert run_cli(*train, "--out", str(tok), "--quiet").returncode == 0
    _refused(run_cli(*train, "--out", str(tok), "--quiet"), tok)
    assert run_cli(*train, "--out", str(tok), "--quiet", "--force").returncode == 0

    data = tmp_path / "world"
    builtin = ("data", "builtin", "--out", str(data), "--size", "200")
    assert run_cli(*builtin).returncode == 0
    assert run_cli(*builtin).returncode == 0  # the same seed and size: the same bytes again
    _refused(run_cli(*builtin, "--seed", "1"), data)
    assert run_cli(*builtin, "--seed", "1", "--force").returncode == 0
    assert json.loads((data / "card.json").read_text())["seed"] == 1
    bad = run_cli(*builtin, "--seed", "1", "--made-share", "1.5", "--force")
    assert bad.returncode == 2 and "made_share" in bad.stderr
    assert (data / "card.json").is_file()  # checked before --force clears anything
    _refused(run_cli(*builtin, "--seed", "1", "--made-share", "0.3"), data)
    assert run_cli(*builtin, "--seed", "1", "--made-share", "0.3", "--force").returncode == 0
    assert json.loads((data / "card.json").read_text())["made_share"] == 0.3

    out = tmp_path / "tuned"
    out.mkdir()
    (out / "notes.txt").write_text("someone else's\n")
    tune = ("finetune", "--model", str(llama_dir), "--data", str(data / "train.jsonl"))
    _refused(run_cli(*tune, "--out", str(out), "--max-steps", "1", "--quiet"), out)
    assert (out / "notes.txt").is_file()

    here = run_cli(*train, "--out", ".", "--force", "--quiet", cwd=tok)
    assert here.returncode == 2 and "current directory" in here.stderr
    assert (tok / "tokenizer.json").is_file()
