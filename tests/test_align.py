"""Preference tuning: DPO and ORPO losses against their formulas, a few steps that raise the
chosen-minus-rejected margin, exact resume, LoRA with the adapter-free base as reference, and
TRL's preference formats read, validated and counted."""

from __future__ import annotations

import json
import math

import pytest
import torch

from instructgen.data.preferences import read_pairs, to_pair
from instructgen.data.records import BadRecord
from instructgen.errors import DataError
from instructgen.train.preference import dpo_loss, orpo_loss, sequence_logps

from .conftest import make_model_dir, run_cli

PAIRS = [
    ("Say yes.", "yes", "no"),
    ("说是。", "是", "不是"),
    ("Name a colour.", "blue", "seven"),
    ("What is 2+2?", "4", "5"),
    ("Greet me.", "Hello!", "Go away."),
    ("翻译：cat", "猫", "狗"),
]


def write_pairs(path, n=24, style="strings"):
    rows = []
    for i in range(n):
        prompt, good, bad = PAIRS[i % len(PAIRS)]
        if style == "strings":
            row = {"prompt": prompt, "chosen": good, "rejected": bad}
        else:  # whole conversations, implicit prompt
            user = {"role": "user", "content": prompt}
            row = {
                "chosen": [user, {"role": "assistant", "content": good}],
                "rejected": [user, {"role": "assistant", "content": bad}],
            }
        rows.append(json.dumps(row, ensure_ascii=False))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_dpo_loss_is_the_formula():
    pc, pr = torch.tensor([-3.0, -1.5]), torch.tensor([-2.0, -4.0])
    rc, rr = torch.tensor([-2.5, -2.0]), torch.tensor([-2.5, -3.0])
    beta = 0.3
    loss, good, bad = dpo_loss(pc, pr, rc, rr, beta)
    expected = [
        -math.log(1 / (1 + math.exp(-beta * ((a - c) - (b - d)))))
        for a, b, c, d in zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist())
    ]
    assert loss.item() == pytest.approx(sum(expected) / 2, rel=1e-6)
    assert good.tolist() == pytest.approx([beta * (-0.5), beta * 0.5])
    assert bad.tolist() == pytest.approx([beta * 0.5, beta * -1.0])


def test_orpo_loss_is_the_formula():
    sums_c, lens_c = torch.tensor([-2.0, -6.0]), torch.tensor([4, 3])
    sums_r, lens_r = torch.tensor([-9.0, -3.0]), torch.tensor([3, 6])
    lam = 0.25
    loss, _, _ = orpo_loss(sums_c, lens_c, sums_r, lens_r, lam)

    def log_odds(a):
        return a - math.log(1 - math.exp(a))

    terms = []
    for sc, lc, sr, lr in zip(sums_c.tolist(), lens_c.tolist(), sums_r.tolist(), lens_r.tolist()):
        a, b = sc / lc, sr / lr
        ratio = -math.log(1 / (1 + math.exp(-(log_odds(a) - log_odds(b)))))
        terms.append(-a + lam * ratio)
    assert loss.item() == pytest.approx(sum(terms) / 2, rel=1e-6)


def test_sequence_logps_sum_the_answer_tokens_only():
    logits = torch.randn(2, 4, 7)
    labels = torch.tensor([[-100, 3, 5, -100], [-100, -100, 1, 2]])
    sums, counts = sequence_logps(logits, labels)
    logp = torch.log_softmax(logits, -1)
    assert counts.tolist() == [2, 2]
    assert sums[0].item() == pytest.approx((logp[0, 1, 3] + logp[0, 2, 5]).item())
    assert sums[1].item() == pytest.approx((logp[1, 2, 1] + logp[1, 3, 2]).item())


def _align(model, data, out, *extra):
    args = ["align", "--model", str(model), "--data", str(data), "--out", str(out)]
    args += ["--batch-size", "4", "--seq-len", "64", "--log-every", "1", "--eval-every", "4"]
    result = run_cli(*args, "--quiet", *extra)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return result, rows


@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_a_few_steps_raise_the_margin(tokenizer_dir, tmp_path, method):
    base = make_model_dir(tmp_path / "base", tokenizer_dir, "llama")
    data = write_pairs(tmp_path / "pairs.jsonl")
    result, rows = _align(
        base,
        data,
        tmp_path / "out",
        "--method",
        method,
        "--max-steps",
        "12",
        "--lr",
        "3e-3",
        "--warmup-steps",
        "1",
        "--dtype",
        "fp32",  # the reference is computed in fp32: step 0's margin is 0 to the last bits
    )
    train = [r for r in rows if "rewards/margins" in r]
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies"} <= set(train[0])
    if method == "dpo":
        assert train[0]["rewards/margins"] == pytest.approx(0, abs=1e-5)  # policy = reference
    assert train[-1]["rewards/margins"] > train[0]["rewards/margins"] + 0.05
    assert train[-1]["rewards/accuracies"] > 0.5
    assert any("val_rewards/margins" in r for r in rows)
    assert "rewards/margins" in result.stdout and "aligned" in result.stdout
    info = json.loads((tmp_path / "out" / "instructgen.json").read_text())
    assert info["history"][-1]["stage"] == "align"
    assert info["history"][-1]["method"] == method


def test_resume_is_exact(tokenizer_dir, tmp_path):
    from safetensors.torch import load_file

    base = make_model_dir(tmp_path / "base", tokenizer_dir, "gpt2", dropout=0.1)
    data = write_pairs(tmp_path / "pairs.jsonl", style="conversations")
    common = ["--save-every", "2", "--lr", "1e-3"]
    _align(base, data, tmp_path / "straight", "--max-steps", "6", *common)
    _align(base, data, tmp_path / "resumed", "--max-steps", "4", *common)
    _align(base, data, tmp_path / "resumed", "--max-steps", "6", "--resume", *common)
    step = "checkpoints/step_0000006/model.safetensors"
    a, b = load_file(str(tmp_path / "straight" / step)), load_file(str(tmp_path / "resumed" / step))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_lora_dpo_on_a_hugging_face_model(tokenizer_dir, tmp_path):
    """The reference is the base without adapters: the first step's margin is exactly 0, and
    the adapter trains."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from instructgen.data.templates import set_template
    from instructgen.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(tokenizer_dir)
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
        )
    ).save_pretrained(tmp_path / "hf")
    set_template(tok, "alpaca").save(tmp_path / "hf")
    data = write_pairs(tmp_path / "pairs.jsonl")
    _, rows = _align(
        tmp_path / "hf",
        data,
        tmp_path / "lora",
        "--lora",
        "--dtype",
        "fp32",  # as the reference, so step 0's margin is 0 on CPUs that train in bf16 too
        "--max-steps",
        "6",
        "--lr",
        "5e-3",
        "--seq-len",
        "128",
    )
    train = [r for r in rows if "rewards/margins" in r]
    assert train[0]["rewards/margins"] == pytest.approx(0, abs=1e-5)
    assert train[-1]["rewards/margins"] > 0
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()


def test_builtin_pairs_train(tokenizer_dir, tmp_path):
    base = make_model_dir(tmp_path / "base", tokenizer_dir, "llama", max_seq_len=256)
    result = run_cli(
        "align",
        "--model",
        str(base),
        "--data",
        "builtin",
        "--out",
        str(tmp_path / "out"),
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--seq-len",
        "256",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr


# -- data -------------------------------------------------------------------------------------


def test_trl_formats_are_read(tmp_path):
    strings = to_pair({"prompt": "Hi", "chosen": "Hello", "rejected": "Go"})
    assert strings.prompt == [{"role": "user", "content": "Hi"}]
    assert strings.chosen == [{"role": "assistant", "content": "Hello"}]
    system = {"role": "system", "content": "Be kind."}
    user = {"role": "user", "content": "Hi"}
    implicit = to_pair(
        {
            "chosen": [system, user, {"role": "assistant", "content": "Hello"}],
            "rejected": [system, user, {"role": "assistant", "content": "Go"}],
            "id": 7,
        }
    )
    assert implicit.prompt == [system, user] and implicit.meta == {"id": 7}
    assert implicit.rejected == [{"role": "assistant", "content": "Go"}]
    conversational = to_pair(
        {
            "prompt": [user],
            "chosen": [{"role": "assistant", "content": "Hello"}],
            "rejected": [{"role": "assistant", "content": "Go"}],
        }
    )
    assert conversational.conversations()[0] == [user, {"role": "assistant", "content": "Hello"}]
    for suffix in (".json", ".parquet", ".csv"):
        from instructgen.data.preferences import write_pairs as save

        path = tmp_path / f"pairs{suffix}"
        save(path, [strings, implicit])
        assert [p.chosen for p in read_pairs(path)] == [strings.chosen, implicit.chosen]


@pytest.mark.parametrize(
    "record,field,message",
    [
        ({"prompt": "Hi", "chosen": "Hello"}, "rejected", "missing"),
        ({"prompt": "Hi", "chosen": "Same", "rejected": "Same"}, "rejected", "identical"),
        ({"prompt": "Hi", "chosen": "  ", "rejected": "No"}, "chosen", "empty"),
        (
            {"prompt": "Hi", "chosen": [{"role": "assistant", "content": ""}], "rejected": "No"},
            "chosen[0].content",
            "empty",
        ),
        (
            {
                "chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                "rejected": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": "y"},
                ],
            },
            "prompt",
            "share no beginning",
        ),
    ],
)
def test_bad_pairs_name_the_field(record, field, message):
    with pytest.raises(BadRecord) as err:
        to_pair(record)
    assert err.value.field == field and message in err.value.message


def test_data_validate_and_stats_know_pairs(tmp_path):
    good = write_pairs(tmp_path / "pairs.jsonl", n=6)
    result = run_cli("data", "validate", str(good))
    assert result.returncode == 0 and "preference 6" in result.stdout
    stats = json.loads(run_cli("data", "stats", str(good)).stdout)
    assert stats["pairs"] == 6 and stats["formats"] == {"preference": 6}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": "b"}\n'
        '{"prompt": "a", "chosen": "b", "rejected": "b"}\n',
        encoding="utf-8",
    )
    result = run_cli("data", "validate", str(bad))
    assert result.returncode == 2
    assert "bad.jsonl:2: field 'rejected': missing" in result.stderr
    assert "bad.jsonl:3: field 'rejected': chosen and rejected are identical" in result.stderr
    with pytest.raises(DataError, match="bad.jsonl:2"):
        read_pairs(bad)


def test_data_preferences_pairs_by_checker_and_resumes(tokenizer_dir, tmp_path):
    """A random model's samples judged by each record's checker: chosen passes, rejected fails;
    prompts with nothing to prefer are counted; a rerun with a larger --limit continues."""
    from instructgen.data.checkers import check

    model = make_model_dir(tmp_path / "m", tokenizer_dir, "llama")
    checker = {"type": "regex", "pattern": "^[a-mA-M]"}
    rows = [
        {
            "id": f"r{i}",
            "messages": [
                {"role": "user", "content": f"Write something, number {i}."},
                {"role": "assistant", "content": "anything"},
            ],
            "checker": checker,
        }
        for i in range(12)
    ]
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "pairs.jsonl"
    args = ["data", "preferences", "--model", str(model), "--data", str(data), "--out", str(out)]
    args += ["--samples", "6", "--max-tokens", "3", "--batch-size", "4", "--quiet"]
    first = run_cli(*args, "--limit", "4")
    assert first.returncode == 0, first.stderr
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "from 12 prompts" in again.stdout
    pairs = read_pairs(out)
    assert pairs and len({p.meta["id"] for p in pairs}) == len(pairs)  # none made twice
    for pair in pairs:
        assert check(checker, pair.chosen[0]["content"])
        assert not check(checker, pair.rejected[0]["content"])
    progress = (tmp_path / "pairs.jsonl.progress.jsonl").read_text().splitlines()
    assert len(progress) == 12
    assert int(again.stdout.split()[0]) == len(pairs)
    trained = run_cli(
        "align",
        "--model",
        str(model),
        "--data",
        str(out),
        "--out",
        str(tmp_path / "aligned"),
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        "--seq-len",
        "64",
        "--quiet",
    )
    assert trained.returncode == 0, trained.stderr


def test_data_preferences_ranks_by_a_judge_without_checkers(tokenizer_dir, tmp_path):
    """Records without a checker: a judge (a scripted one behind the real OpenAI-compatible test
    server, rating longer answers higher) grades each sample; best is chosen, worst rejected."""
    import re

    from instructgen.evaluate.judges import Judge
    from instructgen.evaluate.preferences import make_preferences, prompts_of
    from instructgen.inference import load

    from .apps_scripted import ScriptedLLM, scripted_server

    def rate(messages):
        answer = re.search(
            r"\[The Start of Assistant's Answer\]\n(.*)\n\[The End", messages[-1]["content"], re.S
        ).group(1)
        return f"Longer is better. Rating: [[{min(10, 1 + len(answer) // 3)}]]"

    data = write_pairs(tmp_path / "unused.jsonl", n=1)  # a file of the wrong kind is refused
    with pytest.raises(DataError):
        prompts_of(str(data))
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Tell me a story, {i}."},
                {"role": "assistant", "content": "Once."},
            ]
        }
        for i in range(5)
    ]
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    prompts = prompts_of(str(data))
    assert prompts[0]["reference"] == "Once." and "checker" not in prompts[0]
    model = make_model_dir(tmp_path / "m", tokenizer_dir, "llama")
    with scripted_server(ScriptedLLM(writer=rate)) as url, load(model) as llm:
        judge = Judge(url)
        summary = make_preferences(
            llm,
            prompts,
            tmp_path / "pairs.jsonl",
            samples=4,
            max_tokens=12,
            judge=judge,
            progress=False,
        )
        without = make_preferences(
            llm, prompts, tmp_path / "none.jsonl", samples=4, max_tokens=12, progress=False
        )
    assert without["pairs"] == 0 and without["skipped"] == {"no_checker": 5}
    pairs = read_pairs(tmp_path / "pairs.jsonl")
    assert summary["pairs"] == len(pairs) > 0
    for pair in pairs:
        assert len(pair.chosen[0]["content"]) // 3 >= len(pair.rejected[0]["content"]) // 3
        assert pair.meta["judge"]
