"""`model grow`: a deeper model that computes what the trained one computes, then trains."""

from __future__ import annotations

import json

import pytest
import torch

from instructgen.model import load_model
from instructgen.model.grow import grow_depth, output_projections

from .conftest import make_model_dir, run_cli


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_grown_model_dir_gives_the_same_logits_in_ours_and_transformers(
    tmp_path, tokenizer_dir, arch
):
    from transformers import AutoModelForCausalLM

    base = make_model_dir(tmp_path / "base", tokenizer_dir, arch, seed=3)
    done = run_cli(
        "model", "grow", "--model", str(base), "--factor", "3", "--out", str(tmp_path / "deep")
    )
    assert done.returncode == 0, done.stderr
    assert "2 -> 6 layers" in done.stdout
    ids = torch.randint(0, 200, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = AutoModelForCausalLM.from_pretrained(base).eval()(ids).logits
        got = AutoModelForCausalLM.from_pretrained(tmp_path / "deep").eval()(ids).logits
        ours = load_model(tmp_path / "deep")(ids)
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "deep").config.num_hidden_layers == 6
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, want, rtol=1e-4, atol=1e-4)
    record = json.loads((tmp_path / "deep" / "instructgen.json").read_text())
    assert record["history"][-1] == {
        "stage": "grow",
        "base_model": str(base),
        "factor": 3,
        "layers": [2, 6],
    }
    assert (tmp_path / "deep" / "tokenizer.json").read_bytes() == (
        base / "tokenizer.json"
    ).read_bytes()


def test_zeroed_projections_get_gradients_so_the_new_layers_train(tmp_path, tokenizer_dir):
    model = load_model(make_model_dir(tmp_path / "base", tokenizer_dir, "llama"))
    grown = grow_depth(model, 2).train()
    twin = grown.blocks[1]
    assert all(p.weight.abs().sum() == 0 for p in output_projections(twin))
    assert torch.equal(grown.blocks[0].attn.W_q.weight, model.blocks[0].attn.W_q.weight)
    ids = torch.randint(0, 200, (2, 16), generator=torch.Generator().manual_seed(1))
    logits = grown(ids)
    torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1)
    ).backward()
    assert all(p.weight.grad.abs().sum() > 0 for p in output_projections(twin))
    assert model.config.n_layer == 2 and grown.config.n_layer == 4  # the original is untouched


def test_bad_factor_or_model_is_one_line_and_writes_nothing(tmp_path, llama_dir):
    for args in (("--model", str(llama_dir), "--factor", "1"), ("--model", str(tmp_path / "none"))):
        done = run_cli("model", "grow", *args, "--out", str(tmp_path / "out"))
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()
