"""Shared fixtures: a small bilingual corpus, a trained tokenizer, tiny model directories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# property tests draw the same examples every run (HYPOTHESIS_PROFILE=explore: fresh ones)
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

CORPUS = [
    "春天来了，花开了，小鸟在树上唱歌。我们一起去公园散步吧。",
    "请用中文写一首关于春天的诗。春风吹绿了柳树，细雨滋润着大地。",
    "The quick brown fox jumps over the lazy dog. Spring is the season of new beginnings.",
    "Write a short poem about the sea. The waves roll in and the gulls cry above the shore.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5",
    "客服：您好！我们的退货期限是30天，运费由我们承担。Customer service: returns are free within 30 days.",
    "Numbers: 12 + 30 = 42, 7 * 6 = 42, 100 - 58 = 42. 数字：一二三四五六七八九十。",
]


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m instructgen ARGS` in a real subprocess (`env`: its whole environment)."""
    return subprocess.run(
        [sys.executable, "-m", "instructgen", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join(CORPUS * 20) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, corpus_file) -> Path:
    from instructgen.tokenizer import train_tokenizer

    return train_tokenizer(
        [corpus_file], 512, tmp_path_factory.mktemp("tok") / "tok", show_progress=False
    )


def make_model_dir(
    path: Path, tokenizer_dir: Path, arch: str = "gpt2", seed: int = 0, **overrides
) -> Path:
    """A tiny random instructgen model directory."""
    import torch

    from instructgen.model.checkpoint import save_model
    from instructgen.model.transformer import ModelConfig, Transformer
    from instructgen.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(tokenizer_dir)
    values = dict(
        arch=arch,
        vocab_size=len(tok),
        d_model=64,
        n_layer=2,
        n_head=4,
        max_seq_len=128,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
        bos_token_id=tok.bos_id,
    )
    if arch == "llama":
        values["n_kv_head"] = 2
    values.update(overrides)
    torch.manual_seed(seed)
    return save_model(Transformer(ModelConfig(**values)), path, tokenizer=tok)


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory, tokenizer_dir) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("gpt2") / "model", tokenizer_dir, "gpt2")


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory, tokenizer_dir) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("llama") / "model", tokenizer_dir, "llama")
