"""Instruction fine-tuning: packing without leaks, native and Hugging Face models, full and LoRA, stopping."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoConfig,
    GPTNeoForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

from instructgen.data.templates import Example, set_template
from instructgen.model.checkpoint import load_model
from instructgen.tokenizer import Tokenizer
from instructgen.train.loop import model_forward, token_loss
from instructgen.train.objectives import IGNORE, Batch, loss_and_count, per_example_weights
from instructgen.train.sft import ExampleSource, add_neftune, pack

from .conftest import make_model_dir, run_cli

TEACH = [
    ({"role": "user", "content": f"Say {w}"}, {"role": "assistant", "content": w})
    for w in ["hi", "yes", "no", "ok", "好", "是", "spring", "春天"]
]


def write_data(path, n=48, multi_turn=False):
    rows = []
    for i in range(n):
        user, assistant = TEACH[i % len(TEACH)]
        messages = [user, assistant]
        if multi_turn and i % 2:
            messages += [{"role": "user", "content": "Again"}, dict(assistant)]
        rows.append(json.dumps({"messages": messages}, ensure_ascii=False))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_packing_keeps_examples_apart(tokenizer_dir, tmp_path):
    model = load_model(make_model_dir(tmp_path / "m", tokenizer_dir, "llama"))
    a = Example([5, 6, 7, 8, 9], [0, 0, 1, 1, 1], [2, 2, 3, 3, 3])
    b = Example([10, 11, 12], [0, 1, 1], [2, 3, 3])
    rows = pack([a, b], seq_len=10, pad_id=2)
    assert rows["input_ids"].shape == (1, 10)
    assert rows["segment_ids"][0].tolist() == [0] * 5 + [1] * 3 + [2] * 2
    assert rows["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0, 0]
    # label i is token i+1 only inside one example and only on assistant tokens
    assert rows["labels"][0].tolist() == [IGNORE, 7, 8, 9, IGNORE, 11, 12, IGNORE, IGNORE, IGNORE]
    with torch.no_grad():
        packed = model(
            rows["input_ids"], segment_ids=rows["segment_ids"], position_ids=rows["position_ids"]
        )
        alone_a = model(torch.tensor([a.input_ids]))
        alone_b = model(torch.tensor([b.input_ids]))
    assert torch.allclose(packed[0, :5], alone_a[0], atol=1e-5)
    assert torch.allclose(packed[0, 5:8], alone_b[0], atol=1e-5)


def test_packing_fills_rows_best_fit():
    examples = [Example(list(range(1, n + 1)), [1] * n, [3] * n) for n in (6, 6, 4, 4)]
    rows = pack(examples, seq_len=10, pad_id=0)
    # closing a row at the first example that does not fit would need three: [6] [6 4] [4]
    assert rows["input_ids"].tolist() == [list(range(1, 7)) + list(range(1, 5))] * 2
    assert rows["segment_ids"].tolist() == [[0] * 6 + [1] * 4] * 2


@pytest.mark.parametrize("packing", [True, False])
def test_loss_average_weighs_examples_by_answer_length(tokenizer_dir, tmp_path, packing):
    model = load_model(make_model_dir(tmp_path / "m", tokenizer_dir, "llama")).eval()
    a = Example([5, 6, 7, 8, 9, 10, 11], [0, 0, 1, 1, 1, 1, 1], [2, 2, 3, 3, 3, 3, 3])
    b = Example([12, 13, 14], [0, 1, 1], [2, 3, 3])
    loss = {}
    for average in ("token", "example", "sqrt"):
        source = ExampleSource(
            "sft",
            [a, b],
            [],
            seq_len=12,
            pad_id=2,
            packing=packing,
            roles=False,
            seed=0,
            loss_average=average,
        )
        batch = source.train_batch(0, 1 if packing else 2, torch.Generator())
        with torch.no_grad():
            loss[average] = token_loss(model_forward)(model, batch)[0].item()
    nll = []  # each example alone: the NLL of each of its answer tokens
    for e in (a, b):
        with torch.no_grad():
            logits = model(torch.tensor([e.input_ids]))[0, :-1]
        nll.append(
            torch.nn.functional.cross_entropy(
                logits, torch.tensor(e.input_ids[1:]), reduction="none"
            )[torch.tensor(e.loss_mask[1:]) == 1]
        )
    # example e (n_e answer tokens) weighs n_e ("token"), 1 ("example") or √n_e ("sqrt")
    for average, weigh in (
        ("token", len),
        ("example", lambda x: 1),
        ("sqrt", lambda x: len(x) ** 0.5),
    ):
        expected = sum(weigh(x) * x.mean() for x in nll) / sum(weigh(x) for x in nll)
        assert loss[average] == pytest.approx(expected.item(), rel=1e-4), average


@pytest.mark.parametrize("arch", ["native", "hf"])
def test_neftune_noise_only_while_training(tokenizer_dir, tmp_path, arch):
    if arch == "native":
        model = load_model(make_model_dir(tmp_path / "m", tokenizer_dir, "llama"))
    else:
        model = HF_MODELS["gpt2"](64)
    emb = model.get_input_embeddings()
    ids = torch.randint(0, 64, (3, 40), generator=torch.Generator().manual_seed(0))
    clean = emb(ids).detach()
    handle = add_neftune(model, 5.0)
    model.train()
    noise = (emb(ids) - clean).detach()
    bound = 5.0 / (40 * emb.embedding_dim) ** 0.5  # α/√(L·d)
    assert noise.abs().max() <= bound * (1 + 1e-5) and noise.abs().max() > bound * 0.9
    assert abs(noise.std().item() - bound / 3**0.5) < 0.1 * bound  # U(−b, b) has std b/√3
    model.eval()
    assert torch.equal(emb(ids), clean)
    handle.remove()
    model.train()
    assert torch.equal(emb(ids), clean)


def finetune(model, data, out, *extra):
    args = [
        "finetune",
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--seq-len",
        "64",
        "--quiet",
        *extra,
    ]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_native_finetune_learns_to_stop(tokenizer_dir, tmp_path):
    base = make_model_dir(tmp_path / "base", tokenizer_dir, "llama")
    data = write_data(tmp_path / "train.jsonl", multi_turn=True)
    out = tmp_path / "tuned"
    finetune(
        base,
        data,
        out,
        "--max-steps",
        "150",
        "--lr",
        "3e-3",
        "--warmup-steps",
        "5",
        "--eval-every",
        "20",
        "--save-every",
        "20",
    )
    tok = Tokenizer.from_dir(out)
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tok.stop_ids and tok.token_id("<|im_end|>") in tok.stop_ids
    # transformers' own generate, driven by generation_config.json, stops where the answer ends
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    prompt = hf_tok.apply_chat_template(
        [{"role": "user", "content": "Say spring"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**prompt, max_new_tokens=30, do_sample=False)
    new = output[0, prompt["input_ids"].shape[1] :].tolist()
    assert new[-1] in tok.stop_ids and len(new) < 30
    assert hf_tok.decode(new, skip_special_tokens=True) == "spring"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < losses[0] / 3
    history = json.loads((out / "instructgen.json").read_text())["history"]
    assert history[-1]["stage"] == "finetune"


HF_MODELS = {
    "gpt2": lambda v: GPT2LMHeadModel(
        GPT2Config(
            vocab_size=v,
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_positions=256,
            bos_token_id=0,
            eos_token_id=0,
        )
    ),
    "llama": lambda v: LlamaForCausalLM(
        LlamaConfig(
            vocab_size=v,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=256,
        )
    ),
    "gpt_neo": lambda v: GPTNeoForCausalLM(
        GPTNeoConfig(
            vocab_size=v,
            hidden_size=32,
            num_layers=2,
            num_heads=2,
            attention_types=[[["global", "local"], 1]],
            max_position_embeddings=256,
            window_size=32,
            bos_token_id=0,
            eos_token_id=0,
        )
    ),
}


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory, tokenizer_dir):
    dirs = {}
    tok = Tokenizer.from_dir(tokenizer_dir)
    for name, build in HF_MODELS.items():
        path = tmp_path_factory.mktemp(name)
        torch.manual_seed(0)
        build(len(tok)).save_pretrained(path)
        set_template(Tokenizer.from_dir(tokenizer_dir), "alpaca").save(path)
        dirs[name] = path
    return dirs


@pytest.mark.parametrize("arch", HF_MODELS)
def test_hugging_face_models_full_and_lora(hf_dirs, arch, tmp_path):
    from peft import AutoPeftModelForCausalLM

    data = write_data(tmp_path / "train.jsonl", n=16)
    steps = ["--max-steps", "3", "--eval-every", "3", "--save-every", "3", "--seq-len", "256"]
    full = tmp_path / "full"
    finetune(hf_dirs[arch], data, full, *steps)
    reloaded = AutoModelForCausalLM.from_pretrained(full)
    assert (
        type(reloaded).__name__
        == type(AutoModelForCausalLM.from_pretrained(hf_dirs[arch])).__name__
    )
    assert not torch.equal(
        reloaded.get_input_embeddings().weight,
        AutoModelForCausalLM.from_pretrained(hf_dirs[arch]).get_input_embeddings().weight,
    )

    lora = tmp_path / "lora"
    finetune(hf_dirs[arch], data, lora, "--lora", "--lora-r", "4", *steps)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in lora.iterdir()}
    adapted = AutoPeftModelForCausalLM.from_pretrained(lora)
    x = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert adapted(x).logits.shape[-1] == reloaded.config.vocab_size

    merged = tmp_path / "merged"
    finetune(hf_dirs[arch], data, merged, "--lora", "--merge", *steps)
    plain = AutoModelForCausalLM.from_pretrained(merged)
    assert (merged / "adapter" / "adapter_config.json").is_file()
    with torch.no_grad():
        assert torch.allclose(plain(x).logits, adapted_logits(merged / "adapter", x), atol=1e-4)


def test_seed_fixes_lora_initialisation(hf_dirs, tmp_path):
    """Two LoRA runs with one --seed give identical adapters; another seed, other adapters."""
    from safetensors.torch import load_file

    data = write_data(tmp_path / "train.jsonl", n=16)
    steps = ["--lora", "--lora-r", "4", "--max-steps", "2", "--eval-every", "2", "--seq-len", "256"]
    runs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        finetune(hf_dirs["llama"], data, tmp_path / name, *steps, "--seed", seed)
        runs[name] = load_file(str(tmp_path / name / "adapter_model.safetensors"))
    assert runs["a"].keys() == runs["b"].keys() and runs["a"]
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def adapted_logits(adapter_dir, x):
    from peft import AutoPeftModelForCausalLM

    with torch.no_grad():
        return AutoPeftModelForCausalLM.from_pretrained(adapter_dir)(x).logits


def test_resume_continues_exactly(tokenizer_dir, tmp_path):
    base = make_model_dir(tmp_path / "base", tokenizer_dir, "gpt2", dropout=0.1)
    data = write_data(tmp_path / "train.jsonl")
    common = ["--eval-every", "2", "--save-every", "2", "--lr", "1e-3", "--neftune-alpha", "5"]
    common += ["--loss-average", "example"]
    finetune(base, data, tmp_path / "straight", "--max-steps", "6", *common)
    finetune(base, data, tmp_path / "resumed", "--max-steps", "4", *common)
    finetune(base, data, tmp_path / "resumed", "--max-steps", "6", "--resume", *common)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight" / "checkpoints" / "step_0000006" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoints" / "step_0000006" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_keeps_the_best(tokenizer_dir, tmp_path):
    base = make_model_dir(tmp_path / "base", tokenizer_dir, "gpt2")
    data = write_data(tmp_path / "train.jsonl")
    out = tmp_path / "out"
    result = finetune(
        base,
        data,
        out,
        "--max-steps",
        "200",
        "--lr",
        "0.5",
        "--warmup-steps",
        "1",
        "--eval-every",
        "1",
        "--save-every",
        "1",
        "--early-stopping",
        "2",
    )
    assert "stopped early" in result.stdout
    record = json.loads((out / "instructgen.json").read_text())
    best = record["best_checkpoint"]["step"]
    assert record["published_step"] == best
    assert (out / "checkpoints" / f"step_{best:07d}").is_dir()


def test_bad_input(tokenizer_dir, tmp_path):
    base = make_model_dir(tmp_path / "base", tokenizer_dir, "gpt2")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"instruction": 3}\n')
    result = run_cli(
        "finetune",
        "--model",
        str(base),
        "--data",
        str(bad),
        "--out",
        str(tmp_path / "o"),
        "--quiet",
        "--seq-len",
        "64",
    )
    assert (
        result.returncode == 2
        and "bad.jsonl" in result.stderr
        and len(result.stderr.strip().splitlines()) == 1
    )
    result = run_cli(
        "finetune",
        "--model",
        str(tmp_path / "nope"),
        "--data",
        "builtin",
        "--out",
        str(tmp_path / "o"),
    )
    assert result.returncode == 2 and "nope" in result.stderr
    result = run_cli(
        "finetune",
        "--model",
        str(base),
        "--data",
        str(bad),
        "--out",
        str(tmp_path / "o"),
        "--merge",
    )
    assert result.returncode == 2 and "--lora" in result.stderr
    data = write_data(tmp_path / "train.jsonl", n=16)
    result = run_cli(
        "finetune",
        "--model",
        str(base),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "o"),
        "--neftune-alpha",
        "-1",
        "--seq-len",
        "64",
    )
    assert result.returncode == 2 and "neftune_alpha" in result.stderr


def test_bad_lora_and_early_stopping_flags_name_themselves(tmp_path, llama_dir):
    base = (
        "finetune",
        "--model",
        str(llama_dir),
        "--data",
        "x.jsonl",
        "--out",
        str(tmp_path / "o"),
    )
    for flags, field in (
        (("--lora", "--lora-r", "-4"), "lora_r"),
        (("--lora", "--lora-alpha", "0"), "lora_alpha"),
        (("--early-stopping", "-1"), "early_stopping_patience"),
        (("--loss-average", "sample"), "loss_average"),
    ):
        result = run_cli(*base, *flags)
        assert result.returncode == 2, result.stderr[-2000:]
        (line,) = result.stderr.strip().splitlines()
        assert f"'{field}'" in line, line


@pytest.mark.parametrize("arch", HF_MODELS)
@pytest.mark.parametrize("lora", [False, True])
def test_hugging_face_loss_projects_only_labelled_positions(hf_dirs, arch, lora):
    """hf_loss (logits at the labelled positions only) gives the loss and gradients of the
    loss over every position's logits."""
    from peft import LoraConfig, get_peft_model

    from instructgen.model.model_dir import load_hf_model
    from instructgen.train.sft import hf_forward, hf_loss, keeps_masked_logits

    model = load_hf_model(hf_dirs[arch]).eval()  # no dropout: both passes see one function
    if lora:
        lora_config = LoraConfig(r=4, target_modules="all-linear", fan_in_fan_out=arch == "gpt2")
        model = get_peft_model(model, lora_config)
    assert keeps_masked_logits(model)  # every built-in architecture here slices by a mask
    torch.manual_seed(0)
    ids = torch.randint(3, 100, (2, 24))
    labels = torch.where(torch.rand(2, 24) < 0.4, ids, IGNORE)
    weights = per_example_weights(labels, None)
    batch = Batch(ids, labels, attention_mask=torch.ones_like(ids), loss_weights=weights)
    trained = [p for p in model.parameters() if p.requires_grad]

    def loss_and_grads(loss_fn):
        loss, count, _ = loss_fn(model, batch)
        grads = torch.autograd.grad(loss, trained)
        return loss.detach(), count, grads

    fast, fast_count, fast_grads = loss_and_grads(hf_loss)
    full, full_count, full_grads = loss_and_grads(
        lambda m, b: (*loss_and_count(hf_forward(m, b), b.labels, b.loss_weights), {})
    )
    assert fast_count == full_count == int((labels != IGNORE).sum())
    assert torch.allclose(fast, full, atol=1e-6)
    for fast_grad, full_grad in zip(fast_grads, full_grads, strict=True):
        assert torch.allclose(fast_grad, full_grad, atol=1e-6)
