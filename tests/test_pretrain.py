"""Pretraining: objectives on hand-made batches, the trainer end to end, exact resume after SIGKILL, DDP."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from instructgen.train.objectives import (
    IGNORE,
    clm_batch,
    copy_batch,
    generator_for,
    mlm_batch,
    prefix_batch,
)

from .conftest import make_model_dir, run_cli

# ---------------------------------------------------------------------------------------------
# objectives


def test_clm_shifts_by_one():
    batch = clm_batch(torch.tensor([[1, 2, 3, 4, 5]]))
    assert batch.input_ids.tolist() == [[1, 2, 3, 4]]
    assert batch.labels.tolist() == [[2, 3, 4, 5]]
    assert batch.mask == "causal"


def test_mlm_chooses_15_percent_with_80_10_10():
    tokens = torch.randint(10, 1000, (64, 512))
    tokens[:, 0] = 3  # a protected id (eos) is never chosen
    batch = mlm_batch(
        tokens, mask_id=1, vocab_size=1000, generator=generator_for(0, 1), protected_ids=(3,)
    )
    chosen = batch.labels != IGNORE
    assert batch.mask == "bidirectional"
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    assert not chosen[:, 0].any()
    assert torch.equal(batch.labels[chosen], tokens[chosen])
    masked = (batch.input_ids == 1) & chosen
    kept = (batch.input_ids == tokens) & chosen
    assert abs(masked.sum().item() / chosen.sum().item() - 0.8) < 0.02
    assert (
        abs(kept.sum().item() / chosen.sum().item() - 0.1) < 0.02
    )  # 10% kept (+ random draws that hit the same id)
    assert torch.equal(batch.input_ids[~chosen], tokens[~chosen])
    again = mlm_batch(
        tokens, mask_id=1, vocab_size=1000, generator=generator_for(0, 1), protected_ids=(3,)
    )
    assert torch.equal(again.input_ids, batch.input_ids)  # same seed, same masks


def test_prefix_labels_start_at_the_prefix_end():
    chunks = torch.arange(9).view(1, 9)
    batch = prefix_batch(chunks, generator=torch.Generator().manual_seed(0))
    p = int(batch.prefix_lengths[0])
    assert 1 <= p < 8 and batch.mask == "prefix"
    labels = batch.labels[0].tolist()
    assert labels[: p - 1] == [IGNORE] * (p - 1)
    assert labels[p - 1 :] == list(range(p, 9))


def test_copy_drills_score_only_the_repeats():
    ids = torch.arange(100, 200)
    batch = copy_batch(8, 96, token_ids=ids, generator=generator_for(0, 1), span=(5, 5))
    assert batch.input_ids.shape == batch.labels.shape == (8, 96)
    assert batch.mask == "causal"
    for row, labels in zip(batch.input_ids.tolist(), batch.labels.tolist()):
        assert all(100 <= t < 200 for t in row)
        for i, label in enumerate(labels):  # label i is token i + 1 of the row a a b b …
            if (i + 1) % 10 < 5:  # a first occurrence: unpredictable, not scored
                assert label == IGNORE
            else:  # a repeat: the token five back
                assert label == row[i - 4]
    again = copy_batch(8, 96, token_ids=ids, generator=generator_for(0, 1), span=(5, 5))
    assert torch.equal(again.input_ids, batch.input_ids)  # same generator, same drills
    varied = copy_batch(64, 96, token_ids=ids, generator=generator_for(0, 2))
    assert abs((varied.labels != IGNORE).float().mean().item() - 0.5) < 0.05


def test_copy_drills_need_no_data(setup, tokenizer_dir):
    out = setup[0] / "drills"
    model = setup[2]
    args = ["--batch-size", "2", "--seq-len", "48", "--max-steps", "3", "--log-every", "1"]
    result = run_cli(
        "pretrain", "--model", str(model), "--objective", "copy", "--out", str(out), *args
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]
    assert any("val_loss" in r for r in rows)
    history = json.loads((out / "instructgen.json").read_text())["history"]
    assert history[-1]["objective"] == "copy" and history[-1]["data"] == ["copy drills"]


def _drill_losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.slow
def test_compiled_training_matches_eager(setup, tokenizer_dir):
    """--compile trains the same model: the same fp32 losses step by step, up to rounding (no
    dropout: compiled code draws its own random numbers)."""
    model = make_model_dir(setup[0] / "init-no-dropout", tokenizer_dir, "llama")
    args = ["--objective", "copy", "--batch-size", "2", "--seq-len", "48", "--max-steps", "3"]
    args += ["--dtype", "fp32"]
    runs = {}
    for name, extra in (("eager", []), ("compiled", ["--compile"])):
        out = setup[0] / f"drills-{name}"
        result = run_cli(
            "pretrain", "--model", str(model), "--out", str(out), "--log-every", "1", *args, *extra
        )
        assert result.returncode == 0, result.stderr
        runs[name] = _drill_losses(out)
    assert len(runs["eager"]) == 3
    assert runs["compiled"] == pytest.approx(runs["eager"], rel=1e-4)


def test_compile_without_a_cxx_compiler_trains_uncompiled(setup):
    out = setup[0] / "drills-no-cxx"
    env = {**os.environ, "CXX": "no-such-c++-compiler"}
    result = run_cli(
        "pretrain", "--model", str(setup[2]), "--objective", "copy", "--out", str(out),
        "--batch-size", "2", "--seq-len", "48", "--max-steps", "2", "--log-every", "1", "--compile",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "no C++ compiler (no-such-c++-compiler) found; training uncompiled" in result.stderr
    assert len(_drill_losses(out)) == 2 and (out / "model.safetensors").exists()


# ---------------------------------------------------------------------------------------------
# the trainer end to end


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer_dir):
    root = tmp_path_factory.mktemp("pretrain")
    rng = random.Random(0)
    words = "spring summer autumn winter river mountain flower tree bird sun moon 春 夏 秋 冬 山 水 花 鸟".split()
    corpus = root / "corpus.txt"
    corpus.write_text(
        "\n\n".join(" ".join(rng.choice(words) for _ in range(50)) for _ in range(300)),
        encoding="utf-8",
    )
    shards = root / "shards"
    assert (
        run_cli(
            "data",
            "tokenize",
            "--input",
            str(corpus),
            "--tokenizer",
            str(tokenizer_dir),
            "--out",
            str(shards),
            "--quiet",
        ).returncode
        == 0
    )
    model = make_model_dir(root / "init", tokenizer_dir, "llama", dropout=0.1)
    mixture = root / "mixture.yaml"
    mixture.write_text(
        "objective: mixture\nlog_every: 1\nmixture:\n  - {name: lm, objective: clm, weight: 2}\n  - {name: denoise, objective: mlm, weight: 1, prefix: '[MLM]'}\n  - {name: prefix, objective: prefix, weight: 1}\n"
    )
    return root, shards, model, mixture


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def pretrain_args(setup, out: Path, *extra: str) -> list[str]:
    root, shards, model, mixture = setup
    return [
        "pretrain",
        "--model",
        str(model),
        "--data",
        str(shards),
        "--out",
        str(out),
        "--config",
        str(mixture),
        "--batch-size",
        "4",
        "--seq-len",
        "32",
        "--save-every",
        "2",
        "--eval-every",
        "5",
        "--seed",
        "3",
        "--quiet",
        *extra,
    ]


def test_mixture_pretraining_end_to_end(setup):
    from transformers import AutoModelForCausalLM

    out = setup[0] / "mix"
    result = run_cli(*pretrain_args(setup, out, "--max-steps", "12"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert len(train_rows) == 12
    assert set().union(*(r.get("task_loss", {}).keys() for r in train_rows)) == {
        "lm",
        "denoise",
        "prefix",
    }
    assert any("val_ppl" in r and "task_val_loss" in r for r in rows)
    assert (out / "loss_curve.png").stat().st_size > 1000
    steps = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert len(steps) <= 3 and "step_0000012" in steps  # the last two plus the best
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model(torch.tensor([[1, 2, 3]])).logits.shape[-1] == model.config.vocab_size
    history = json.loads((out / "instructgen.json").read_text())["history"]
    assert history[-1]["stage"] == "pretrain" and history[-1]["objective"] == "mixture"


def test_sigkill_and_resume_gives_the_same_weights(setup):
    root = setup[0]
    reference = root / "uninterrupted"
    assert run_cli(*pretrain_args(setup, reference, "--max-steps", "24")).returncode == 0

    killed = root / "killed"
    rng = random.Random(os.getpid())
    kill_after = rng.randrange(2, 14, 2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "instructgen", *pretrain_args(setup, killed, "--max-steps", "24")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while (
        time.time() < deadline and not (killed / "checkpoints" / f"step_{kill_after:07d}").is_dir()
    ):
        time.sleep(0.01)
    time.sleep(rng.random() * 0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.safetensors").exists()

    result = run_cli(*pretrain_args(setup, killed, "--max-steps", "24", "--resume"))
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stderr
    a, b = weights(reference), weights(killed)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name

    def losses(d):
        rows = map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
        return [r["loss"] for r in rows if "loss" in r]

    assert losses(reference) == losses(killed)


def test_two_processes_match_one_with_the_same_global_batch(setup, tokenizer_dir):
    root, shards, _, _ = setup
    # fp32 and no dropout (its noise differs per rank): the tolerance covers float summation order only.
    model = make_model_dir(root / "init-no-dropout", tokenizer_dir, "llama")
    common = [
        "--model",
        str(model),
        "--data",
        str(shards),
        "--objective",
        "clm",
        "--seq-len",
        "32",
        "--max-steps",
        "5",
        "--log-every",
        "1",
        "--quiet",
        "--dtype",
        "fp32",
    ]
    one = root / "one"
    assert run_cli("pretrain", *common, "--out", str(one), "--batch-size", "4").returncode == 0
    two = root / "two"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "-m",
            "instructgen",
            "pretrain",
            *common,
            "--out",
            str(two),
            "--batch-size",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    def trajectory(d):
        return [
            r["loss"]
            for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
            if "loss" in r
        ]

    assert trajectory(one) == pytest.approx(trajectory(two), rel=1e-4)

    sharded = root / "fsdp"  # FSDP2 parameter sharding: the same trajectory as DDP
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "-m",
            "instructgen",
            "pretrain",
            *common,
            "--out",
            str(sharded),
            "--batch-size",
            "2",
            "--fsdp",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert trajectory(sharded) == pytest.approx(trajectory(two), rel=1e-4)
    assert (sharded / "model.safetensors").is_file()


# ---------------------------------------------------------------------------------------------
# bad input


def one_line_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_bad_input_is_one_line_exit_2(setup, tmp_path, tokenizer_dir, corpus_file):
    root, shards, model, _ = setup
    base = [
        "pretrain",
        "--model",
        str(model),
        "--objective",
        "clm",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
        "--seq-len",
        "32",
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_step: 10\n")
    assert "max_step" in one_line_error(run_cli(*base, "--data", str(shards), "--config", str(bad)))
    assert "missing" in one_line_error(run_cli(*base, "--data", str(tmp_path / "missing")))
    assert "batch" in one_line_error(
        run_cli(*base, "--data", str(shards), "--batch-size", "100000")
    )
    assert "seq_len" in one_line_error(run_cli(*base, "--data", str(shards), "--seq-len", "4096"))
    other_tok = tmp_path / "tok2"
    assert (
        run_cli(
            "tokenizer",
            "train",
            "--input",
            str(corpus_file),
            "--vocab-size",
            "300",
            "--out",
            str(other_tok),
            "--quiet",
        ).returncode
        == 0
    )
    other = tmp_path / "shards2"
    assert (
        run_cli(
            "data",
            "tokenize",
            "--input",
            str(corpus_file),
            "--tokenizer",
            str(other_tok),
            "--out",
            str(other),
            "--quiet",
        ).returncode
        == 0
    )
    assert "tokenizer" in one_line_error(run_cli(*base, "--data", str(other)))
    assert not (tmp_path / "o").exists()


def test_mlm_random_replacements_are_tokens_of_the_tokenizer(setup, tokenizer_dir):
    """The model's vocabulary is padded past the tokenizer (to a multiple of 64, say): random
    replacements come from the tokenizer's ids only."""
    from instructgen.tokenizer import Tokenizer
    from instructgen.train.pretrain import ShardSource, open_shards

    _, shards, _, _ = setup
    tokenizer = Tokenizer.from_dir(tokenizer_dir)
    padded = len(tokenizer) + 512
    source = ShardSource(
        "mlm",
        open_shards(shards, tokenizer, padded),
        objective="mlm",
        seq_len=64,
        val_fraction=0.1,
        seed=0,
        tokenizer=tokenizer,
        vocab_size=padded,
        mlm_probability=0.5,
    )
    batch = source.train_batch(0, 32, generator_for(0, 1))
    assert int(batch.input_ids.max()) < len(tokenizer)
    replaced = (batch.labels != IGNORE) & (batch.input_ids != batch.labels)
    assert replaced.sum() > 50  # enough draws that an id past the tokenizer would have shown
