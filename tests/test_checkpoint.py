"""Model directories are Hugging Face checkpoints, in both directions."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from instructgen.errors import ModelDirError
from instructgen.model.checkpoint import load_model, model_info, save_model
from instructgen.model.transformer import ModelConfig, Transformer

from .conftest import make_model_dir

OURS = {
    "gpt2": dict(arch="gpt2"),
    "gpt2-relu-untied": dict(arch="gpt2", activation="relu", tie_embeddings=False),
    "llama": dict(arch="llama", n_kv_head=2),
    "llama-untied-biases": dict(
        arch="llama", n_kv_head=2, qkv_bias=True, o_bias=True, tie_embeddings=False
    ),
    "qwen2-style": dict(arch="llama", n_kv_head=1, qkv_bias=True, tie_embeddings=False),
}


def scramble(model) -> None:
    """Random weights far from the init, so a wrong mapping cannot hide behind zeros and ones."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)


@pytest.mark.parametrize("name", OURS)
def test_transformers_loads_our_directory(tmp_path, tokenizer_dir, name):
    out = make_model_dir(tmp_path / name, tokenizer_dir, **OURS[name])
    ours = load_model(out)
    scramble(ours)
    save_model(ours, out, tokenizer=tokenizer_dir)
    hf = AutoModelForCausalLM.from_pretrained(out).eval()
    x = torch.randint(0, ours.config.vocab_size, (2, 24))
    with torch.no_grad():
        diff = (hf(x).logits - ours(x)).abs().max().item()
    assert diff <= 1e-4, diff
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "instructgen.json",
    }


HF_MODELS = {
    "GPT2LMHeadModel": lambda: GPT2LMHeadModel(
        GPT2Config(vocab_size=300, n_embd=48, n_layer=2, n_head=4, n_positions=64)
    ),
    "LlamaForCausalLM": lambda: LlamaForCausalLM(
        LlamaConfig(
            vocab_size=300,
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            rope_theta=5000.0,
        )
    ),
    "Qwen2ForCausalLM": lambda: Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=300,
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            tie_word_embeddings=True,
        )
    ),
}


@pytest.mark.parametrize("name", HF_MODELS)
def test_we_load_a_transformers_directory(tmp_path, name):
    torch.manual_seed(0)
    hf = HF_MODELS[name]().eval()
    scramble(hf)
    hf.save_pretrained(tmp_path)
    ours = load_model(tmp_path)
    x = torch.randint(0, 300, (2, 20))
    with torch.no_grad():
        diff = (hf(x).logits - ours(x)).abs().max().item()
    assert diff <= 1e-4, diff
    if name == "Qwen2ForCausalLM":
        assert ours.config.qkv_bias and not ours.config.o_bias


def test_sharded_checkpoint(tmp_path):
    torch.manual_seed(0)
    hf = HF_MODELS["LlamaForCausalLM"]().eval()
    hf.save_pretrained(tmp_path, max_shard_size="50KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    x = torch.randint(0, 300, (1, 10))
    with torch.no_grad():
        assert (hf(x).logits - load_model(tmp_path)(x)).abs().max() <= 1e-4


def test_pickle_weights_are_refused(tmp_path):
    hf = HF_MODELS["GPT2LMHeadModel"]()
    hf.config.save_pretrained(tmp_path)
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelDirError, match="pickle"):
        load_model(tmp_path)


def test_errors(tmp_path):
    with pytest.raises(ModelDirError, match="not found"):
        load_model(tmp_path / "nope")
    with pytest.raises(ModelDirError, match="config.json"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 10}))
    with pytest.raises(ModelDirError, match="bert"):
        load_model(tmp_path)


def test_model_info(gpt2_dir):
    info = model_info(gpt2_dir)
    model = load_model(gpt2_dir)
    assert info["arch"] == "gpt2" and info["model_type"] == "gpt2"
    assert info["parameters"] == model.num_parameters()
    assert info["context_length"] == 128 and info["dtype"] == "F32" and info["chat_template"]


def test_generation_config_carries_stop_tokens(gpt2_dir):
    from instructgen.tokenizer import Tokenizer

    gen = json.loads((gpt2_dir / "generation_config.json").read_text())
    tok = Tokenizer.from_dir(gpt2_dir)
    assert gen["eos_token_id"] == tok.stop_ids
    assert gen["pad_token_id"] == tok.pad_id


def test_save_is_atomic(tmp_path, tokenizer_dir):
    out = make_model_dir(tmp_path / "m", tokenizer_dir)
    before = (out / "model.safetensors").read_bytes()

    class Boom(Transformer):
        def state_dict(self, *a, **k):
            raise RuntimeError("disk full")

    broken = Boom(ModelConfig(vocab_size=10, d_model=16, n_layer=1, n_head=2, max_seq_len=8))
    with pytest.raises(RuntimeError):
        save_model(broken, out)
    assert (out / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_role_embeddings_are_saved_and_loaded(tmp_path, tokenizer_dir):
    out = make_model_dir(tmp_path / "roles", tokenizer_dir, "llama", n_roles=4)
    model = load_model(out)
    assert model.config.n_roles == 4 and model.role_emb is not None
    scramble(model)
    save_model(model, out, tokenizer=tokenizer_dir)
    again = load_model(out)
    assert torch.equal(again.role_emb.weight, model.role_emb.weight)
    x = torch.randint(0, model.config.vocab_size, (1, 6))
    roles = torch.tensor([[2, 2, 2, 3, 3, 3]])
    with torch.no_grad():
        assert torch.equal(again(x, role_ids=roles), model(x, role_ids=roles))
        assert not torch.allclose(again(x, role_ids=roles), again(x))
    assert json.loads((out / "config.json").read_text())["instructgen_n_roles"] == 4


@pytest.mark.parametrize(
    "window,native",
    [
        (dict(use_sliding_window=True, sliding_window=8, max_window_layers=1), False),
        (dict(use_sliding_window=True, sliding_window=8, max_window_layers=2), True),  # no layer
        (dict(use_sliding_window=False, sliding_window=8), True),
        (dict(use_sliding_window=True, sliding_window=64), True),  # as long as the context
    ],
)
def test_qwen2_sliding_window_falls_back_to_hf(tmp_path, tokenizer_dir, caplog, window, native):
    """A Qwen2 checkpoint whose layers attend through a window runs on the hf backend, with a
    one-line notice (as Mistral's does); one whose window binds no layer runs natively and
    matches transformers."""
    from instructgen.inference import load
    from instructgen.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(tokenizer_dir)
    torch.manual_seed(0)
    hf = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tok),
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            **window,
        )
    ).eval()
    scramble(hf)
    hf.save_pretrained(tmp_path)
    tok.save(tmp_path)
    with caplog.at_level("WARNING", logger="instructgen.inference"):
        llm = load(tmp_path)
    assert llm.backend == ("native" if native else "hf")
    notices = [r.getMessage() for r in caplog.records if "hf backend" in r.getMessage()]
    assert len(notices) == (0 if native else 1)
    if not native:
        assert "sliding-window attention" in notices[0] and "\n" not in notices[0]
    if not native:
        with pytest.raises(ModelDirError, match="sliding-window"):
            load_model(tmp_path)
        return
    x = torch.randint(0, len(tok), (2, 24))  # 3 windows long: a window ignored would show
    with torch.no_grad():
        assert (hf(x).logits - load_model(tmp_path)(x)).abs().max().item() <= 1e-4
