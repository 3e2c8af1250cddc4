"""Perplexity with a sliding window, checked against transformers' own loss on the same model."""

from __future__ import annotations

import json
import math

import pytest

from instructgen.errors import ConfigError, DataError
from instructgen.evaluate.perplexity import perplexity

TEXT = (
    "The quick brown fox jumps over the lazy dog. Spring is the season of new beginnings.\n"
    "春天来了，花开了，小鸟在树上唱歌。我们一起去公园散步吧。\n"
)


def _reference_nll(model_dir, ids) -> float:
    """transformers' mean next-token NLL of one sequence: its `loss` with labels = input."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return float(model(torch.tensor([ids]), labels=torch.tensor([ids])).loss)


@pytest.mark.parametrize("arch_dir", ["gpt2_dir", "llama_dir"])
def test_one_window_equals_transformers_loss(arch_dir, request, tmp_path):
    from instructgen.tokenizer import Tokenizer

    model_dir = request.getfixturevalue(arch_dir)
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    ids = Tokenizer.from_dir(model_dir).encode(TEXT)
    assert len(ids) < 128  # fits the model's context: one window
    result = perplexity(model_dir, path)
    nll = _reference_nll(model_dir, ids)
    assert result["windows"] == 1 and result["scored_tokens"] == len(ids) - 1
    assert result["nll_per_token"] == pytest.approx(nll, abs=1e-4)
    assert result["perplexity"] == pytest.approx(math.exp(nll), rel=1e-4)
    assert result["bits_per_byte"] == pytest.approx(
        nll * (len(ids) - 1) / math.log(2) / len(TEXT.encode()), rel=1e-6
    )


def test_disjoint_windows_sum_the_chunks_and_overlap_scores_each_token_once(gpt2_dir, tmp_path):
    from instructgen.tokenizer import Tokenizer

    path = tmp_path / "text.jsonl"
    path.write_text(json.dumps({"text": TEXT.replace("\n", " ")}) + "\n", encoding="utf-8")
    ids = Tokenizer.from_dir(gpt2_dir).encode(TEXT.replace("\n", " "))
    disjoint = perplexity(gpt2_dir, path, seq_len=16, stride=16)
    # by hand: each 16-token chunk scored on its own (its first token has no context)
    chunks = [ids[i : i + 16] for i in range(0, len(ids), 16)]
    total = sum(_reference_nll(gpt2_dir, c) * (len(c) - 1) for c in chunks if len(c) > 1)
    assert disjoint["nll_per_token"] == pytest.approx(
        total / sum(len(c) - 1 for c in chunks if len(c) > 1), abs=1e-4
    )
    overlapping = perplexity(gpt2_dir, path, seq_len=16, stride=4)
    assert overlapping["scored_tokens"] == len(ids) - 1  # every token once, whatever the stride
    assert overlapping["windows"] > disjoint["windows"]
    assert overlapping["perplexity"] != disjoint["perplexity"]


def test_perplexity_rejects_bad_settings_and_files(gpt2_dir, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        perplexity(gpt2_dir, path, seq_len=1000)
    assert err.value.field == "seq_len"
    with pytest.raises(ConfigError) as err:
        perplexity(gpt2_dir, path, seq_len=16, stride=17)
    assert err.value.field == "stride"
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        perplexity(gpt2_dir, empty)
