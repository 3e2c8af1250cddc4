"""The command line: verbs, model init/info, tokenizer train, and one-line errors with exit 2."""

from __future__ import annotations

import json
import os

from instructgen.cli import names_hub_model

from .conftest import run_cli

DESIGN_VERBS = [
    "tokenizer",
    "model",
    "data",
    "pretrain",
    "finetune",
    "generate",
    "chat",
    "serve",
    "eval",
    "quickstart",
    "app",
    "safety",
]


def test_help_lists_every_verb():
    result = run_cli("--help")
    assert result.returncode == 0
    for verb in DESIGN_VERBS:
        assert verb in result.stdout, verb


def test_tokenizer_train_model_init_and_info(tmp_path, corpus_file):
    tok = tmp_path / "tok"
    result = run_cli(
        "tokenizer",
        "train",
        "--input",
        str(corpus_file),
        "--vocab-size",
        "400",
        "--out",
        str(tok),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    for arch in ("gpt2", "llama"):
        out = tmp_path / arch
        result = run_cli(
            "model",
            "init",
            "--arch",
            arch,
            "--preset",
            "tiny",
            "--tokenizer",
            str(tok),
            "--out",
            str(out),
        )
        assert result.returncode == 0, result.stderr
        info = run_cli("model", "info", str(out), "--json")
        data = json.loads(info.stdout)
        assert (
            data["arch"] == arch and data["vocab_size"] % 64 == 0 and data["context_length"] == 256
        )
        text = run_cli("model", "info", str(out)).stdout
        assert "parameters" in text and "context_length" in text and "dtype" in text


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_user_errors_exit_2_with_one_line(tmp_path, tokenizer_dir):
    assert "nope" in one_line_error(run_cli("model", "info", str(tmp_path / "nope")))
    bad = tmp_path / "bad.yaml"
    bad.write_text("d_model: 64\nn_layers: 3\n")
    line = one_line_error(
        run_cli(
            "model",
            "init",
            "--arch",
            "gpt2",
            "--tokenizer",
            str(tokenizer_dir),
            "--out",
            str(tmp_path / "m"),
            "--config",
            str(bad),
        )
    )
    assert "bad.yaml" in line and "n_layers" in line
    wrong_type = tmp_path / "wrong.yaml"
    wrong_type.write_text("n_layer: many\n")
    line = one_line_error(
        run_cli(
            "model",
            "init",
            "--arch",
            "gpt2",
            "--tokenizer",
            str(tokenizer_dir),
            "--out",
            str(tmp_path / "m"),
            "--config",
            str(wrong_type),
        )
    )
    assert "n_layer" in line
    assert "arch" in one_line_error(
        run_cli(
            "model",
            "init",
            "--arch",
            "bert",
            "--tokenizer",
            str(tokenizer_dir),
            "--out",
            str(tmp_path / "m"),
        )
    )
    assert "preset" in one_line_error(
        run_cli(
            "model",
            "init",
            "--arch",
            "gpt2",
            "--preset",
            "huge",
            "--tokenizer",
            str(tokenizer_dir),
            "--out",
            str(tmp_path / "m"),
        )
    )
    assert "missing.txt" in one_line_error(
        run_cli(
            "tokenizer",
            "train",
            "--input",
            str(tmp_path / "missing.txt"),
            "--vocab-size",
            "400",
            "--out",
            str(tmp_path / "t"),
        )
    )
    assert not (tmp_path / "m").exists()


def test_offline_unless_a_hub_model_is_named(tmp_path):
    """Without HF_HUB_OFFLINE a mistyped local path fails at once, with no hub retries."""
    (tmp_path / "runs").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    result = run_cli("generate", "--model", "runs/typo", "hi", cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2
    assert "Retry" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "runs/typo" in result.stderr
    assert names_hub_model("Qwen/Qwen2.5-0.5B") and names_hub_model("gpt2")
    assert not names_hub_model(str(tmp_path / "runs" / "x"))  # an absolute path
    assert not names_hub_model("runs/qs/model") and not names_hub_model("../model")
