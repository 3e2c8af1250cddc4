"""Weight-only int8 decoding: the per-channel rule and its error bound, the C step and the torch
path agreeing on int8 logits, the trained base model decoding as in float32, and --quantize on
the command line, the Python API and the server."""

from __future__ import annotations

import httpx
import pytest
import torch
import torch.nn.functional as F

from instructgen.errors import ConfigError
from instructgen.inference import Engine, SamplingParams, load, native_step, quantize
from instructgen.inference.quantize import Int8Linear, int8_linear, quantize_int8, quantize_model
from instructgen.model.checkpoint import load_model
from instructgen.quickstart import SHIPPED_BASE
from tests.conftest import make_model_dir, run_cli
from tests.serve_support import server
from tests.test_native_step import step_c_and_torch

needs_c = pytest.mark.skipif(native_step.load() is None, reason="no C compiler here")


def test_int8_error_is_bounded_per_channel():
    """|w − scale·q| ≤ scale / 2 in every row, with scale[o] = max|w[o,:]| / 127."""
    torch.manual_seed(0)
    w = torch.randn(48, 80) * torch.logspace(-3, 1, 48)[:, None]  # rows of very different size
    w[5] = 0  # an all-zero row
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and scale.dtype == torch.float32
    assert q.abs().max() <= 127
    expected = w.abs().amax(dim=1) / 127
    torch.testing.assert_close(scale[expected > 0], expected[expected > 0])
    error = (w - scale[:, None] * q.float()).abs()
    assert (error <= scale[:, None] / 2 + 1e-7 * w.abs()).all()
    assert (error.amax(dim=1) / w.abs().amax(dim=1).clamp(min=1e-30))[
        w.abs().amax(1) > 0
    ].max() < 1 / 254 + 1e-6
    assert scale[5] == 1 and (q[5] == 0).all()


def test_int8_linear_equals_the_dequantized_matmul(monkeypatch):
    torch.manual_seed(1)
    linear = torch.nn.Linear(40, 70)
    layer = Int8Linear.from_linear(linear)
    x = torch.randn(3, 5, 40)
    dequantized = F.linear(x, layer.scale[:, None] * layer.q.float(), linear.bias)
    torch.testing.assert_close(layer(x), dequantized, atol=1e-5, rtol=1e-5)
    monkeypatch.setattr(quantize, "ROWS_PER_BLOCK", 16)  # dequantized 16 output rows at a time
    torch.testing.assert_close(int8_linear(x, layer.q, layer.scale, layer.bias), layer(x))
    assert (layer(x) - linear(x)).abs().max() < 0.02


def test_quantize_model_replaces_the_linear_layers_and_keeps_embeddings(gpt2_dir):
    model = quantize_model(load_model(gpt2_dir), "int8")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == []
    assert isinstance(model.lm_head, Int8Linear) and model.tok_emb.weight.dtype == torch.float32
    assert quantize_model(model, None) is model and quantize_model(model, "none") is model
    with pytest.raises(ConfigError, match="int4.*none, int8"):
        quantize_model(model, "int4")


@needs_c
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("threads", [1, 2])
def test_c_and_torch_paths_give_the_same_int8_logits(tmp_path, tokenizer_dir, arch, threads):
    extra = {"qkv_bias": True, "n_roles": 4} if arch == "llama" else {}
    model_dir = make_model_dir(tmp_path / "m", tokenizer_dir, arch, seed=5, d_model=96, **extra)
    model = quantize_model(load_model(model_dir), "int8")
    prompts = [list(range(5, 14)), list(range(20, 24)), list(range(30, 45))]
    step_c_and_torch(model, prompts, threads=threads, steps=12, atol=3e-5)


def test_int8_base_model_decodes_as_float32():
    """The trained base model greedy-decodes the same tokens (nearly all) with int8 weights,
    and its next-token distributions stay close."""
    prompts = ["春天来了，", "The customer asked about returns. ", "Numbers: 12 + 30 ="]
    params = SamplingParams(temperature=0, max_tokens=32, ignore_eos=True)
    ours = [
        r.sequences[0].output_ids for r in Engine.from_dir(SHIPPED_BASE).generate(prompts, params)
    ]
    int8 = Engine.from_dir(SHIPPED_BASE, quantize="int8")
    theirs = [r.sequences[0].output_ids for r in int8.generate(prompts, params)]
    same = sum(a == b for x, y in zip(ours, theirs) for a, b in zip(x, y))
    assert same >= 0.9 * 32 * len(prompts)
    ids = torch.tensor([int8.encode(prompts[0])])
    with torch.inference_mode():
        p = torch.softmax(load_model(SHIPPED_BASE)(ids)[0, -1], -1)
        q = torch.softmax(int8.model(ids)[0, -1], -1)
    assert (p - q).abs().sum() < 0.05  # total variation distance × 2


def test_python_api_quantize(llama_dir):
    llm = load(llama_dir, quantize="int8")
    assert isinstance(llm.engine.model.lm_head, Int8Linear)
    assert llm.generate("春天", temperature=0, max_tokens=5).text is not None
    with pytest.raises(ConfigError, match="quantize"):
        load(llama_dir, quantize="fp4")
    with pytest.raises(ConfigError, match="native backend only"):
        load(llama_dir, backend="hf", quantize="int8")


def test_cli_quantize(llama_dir):
    greedy = ("--temperature", "0", "--max-tokens", "8", "--raw")
    out = run_cli("generate", "--model", str(llama_dir), "春天", *greedy, "--quantize", "int8")
    assert out.returncode == 0, out.stderr
    expected = load(llama_dir, quantize="int8").generate("春天", temperature=0, max_tokens=8)
    assert out.stdout == expected.text + "\n"
    bad = run_cli("generate", "--model", str(llama_dir), "春天", "--quantize", "int4")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--quantize" in bad.stderr and "int4" in bad.stderr
    hf = run_cli(
        "generate", "--model", str(llama_dir), "hi", "--backend", "hf", "--quantize", "int8"
    )
    assert hf.returncode == 2 and len(hf.stderr.strip().splitlines()) == 1, hf.stderr
    assert "quantize" in hf.stderr and "Traceback" not in hf.stderr


def test_server_serves_int8(llama_dir):
    prompt = {"prompt": "春天", "max_tokens": 6, "temperature": 0}
    expected = load(llama_dir, quantize="int8").generate("春天", temperature=0, max_tokens=6)
    with server(llama_dir, "--quantize", "int8") as url:
        reply = httpx.post(url + "/v1/completions", json=prompt, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["text"] == expected.text
