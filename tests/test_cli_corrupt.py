"""Corrupt inputs and impossible flags: one line naming the file or field, exit 2, never a traceback."""

from __future__ import annotations

import shutil

import pytest

from .conftest import run_cli


@pytest.fixture
def truncated(tmp_path, llama_dir):
    model = tmp_path / "model"
    shutil.copytree(llama_dir, model)
    weights = model / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    return model


def _one_line_error(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    for needle in needles:
        assert needle in line, line


def test_a_truncated_weight_file_is_one_line_in_every_verb(tmp_path, truncated):
    weights = str(truncated / "model.safetensors")
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "hi", "output": "hello"}\n')
    for args in (
        ("model", "info", str(truncated)),
        ("generate", "--model", str(truncated), "hi"),
        ("eval", "--model", str(truncated), "--suite", "builtin", "--out", str(tmp_path / "e")),
        ("finetune", "--model", str(truncated), "--data", str(data), "--out", str(tmp_path / "f")),
        ("serve", "--model", str(truncated), "--port", "0"),
    ):
        _one_line_error(run_cli(*args, timeout=120), weights, "truncated")


def test_impossible_out_and_port(tmp_path, llama_dir):
    file = tmp_path / "file"
    file.write_text("not a directory")
    _one_line_error(run_cli("quickstart", "--out", str(file), "--fast"), str(file))
    _one_line_error(run_cli("serve", "--model", str(llama_dir), "--port", "-1"), "port")
