"""Evaluation suites end to end: a tiny native model and a scripted OpenAI-compatible server,
resumable per-item caching, retries, failed items reported, benchmark file formats."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from instructgen.errors import ConfigError, DataError
from instructgen.evaluate import classify
from instructgen.evaluate.suites import run_suite

from .eval_stub import Refuse, make_app, serve


def _jsonl(path, records):
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


def _items(out):
    return [
        json.loads(line) for line in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def test_builtin_suite_writes_a_run_and_resumes_from_its_cache(gpt2_dir, tmp_path):
    out = tmp_path / "run"
    first = run_suite(gpt2_dir, "builtin", out_dir=out, limit=12, max_tokens=6, progress=False)
    assert (out / "builtin_data" / "test.jsonl").is_file()  # the world was generated once
    for name in ("results.json", "items.jsonl", "report.md", "outputs.jsonl", "metrics.png"):
        assert (out / name).is_file(), name
    counts = first["counts"]
    assert counts["items"] == 12 and counts["scored"] + counts["failed"] == 12
    assert counts["cached"] == 0
    assert set(first["breakdown"]["accuracy_per_lang"]) == {"zh", "en"}
    assert first["model"]["kind"] == "dir" and len(first["model"]["sha256"]) == 64
    assert first["primary"] == "accuracy" and len(first["per_item"]) == counts["scored"]
    assert (
        json.loads((out / "results.json").read_text(encoding="utf-8"))["metrics"]
        == first["metrics"]
    )

    again = run_suite(gpt2_dir, "builtin", out_dir=out, limit=12, max_tokens=6, progress=False)
    assert again["counts"]["cached"] == counts["scored"]  # nothing asked twice
    assert again["per_item"] == first["per_item"]
    assert {r["id"] for r in _items(out) if r.get("error") is None} == set(first["per_item"])
    changed = run_suite(gpt2_dir, "builtin", out_dir=out, limit=12, max_tokens=4, progress=False)
    assert changed["counts"]["cached"] == 0  # other settings: other outputs


def test_new_weights_in_the_same_directory_are_not_served_from_the_cache(gpt2_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    model, out = tmp_path / "model", tmp_path / "run"
    shutil.copytree(gpt2_dir, model)
    first = run_suite(model, "builtin", out_dir=out, limit=6, max_tokens=4, progress=False)
    weights = load_file(str(model / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 0.5  # same names, shapes and dtypes: only the values differ
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    again = run_suite(model, "builtin", out_dir=out, limit=6, max_tokens=4, progress=False)
    assert again["counts"]["cached"] == 0
    assert again["model"]["sha256"] != first["model"]["sha256"]


def test_a_failing_item_is_reported_with_its_error_not_dropped(gpt2_dir, tmp_path):
    data = _jsonl(
        tmp_path / "ref.jsonl",
        [
            {"id": "short", "instruction": "Say hello.", "output": "Hello!"},
            {"id": "long", "instruction": "word " * 400, "output": "too long for 128 tokens"},
            {"id": "sea", "instruction": "Write about the sea.", "output": "The waves roll in."},
        ],
    )
    out = tmp_path / "run"
    result = run_suite(
        gpt2_dir,
        "references",
        data=data,
        out_dir=out,
        metrics=["rouge", "chrf"],
        max_tokens=6,
        backoff=0,
        progress=False,
    )
    assert result["counts"] == {"items": 3, "scored": 2, "failed": 1, "cached": 0}
    assert [f["id"] for f in result["failed"]] == ["long"]
    assert "context window" in result["failed"][0]["error"]
    assert {"rouge1", "rougeL", "chrf"} <= set(result["metrics"]) and result["primary"] == "rougeL"
    rows = {r["id"]: r for r in _items(out)}
    assert rows["long"]["error"] and rows["long"]["score"] is None
    assert "Failed items" in (out / "report.md").read_text(encoding="utf-8")


def _manual_label_logprob(model_dir, context: str, continuation: str) -> float:
    import torch

    from instructgen.model.checkpoint import load_model
    from instructgen.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(model_dir)
    ctx, full = tok.encode(context), tok.encode(context + continuation)
    assert full[: len(ctx)] == ctx
    model = load_model(model_dir)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full]))[0].float(), dim=-1)
    return float(sum(logp[t - 1, full[t]] for t in range(len(ctx), len(full))))


def test_glue_loglik_scores_each_label_by_the_models_log_probability(gpt2_dir, tmp_path):
    data = _jsonl(
        tmp_path / "sst2.jsonl",
        [
            {"idx": 0, "sentence": "A wonderful, moving film.", "label": 1},
            {"idx": 1, "sentence": "Dull and far too long.", "label": 0},
            {"idx": 2, "sentence": "Hidden test row.", "label": -1},
        ],
    )
    out = tmp_path / "run"
    result = run_suite(
        gpt2_dir, "glue", data=data, out_dir=out, labels=["negative", "positive"], progress=False
    )
    assert result["config"]["method"] == "loglik" and result["counts"]["items"] == 2
    assert "1 unlabelled records skipped" in result["notes"]
    rows = _items(out)
    for row in rows:
        context = row["prompt"]
        assert context.endswith("\nAnswer:") and "negative, positive" in context
        for label in ("negative", "positive"):
            expected = _manual_label_logprob(gpt2_dir, context, f" {label}")
            assert row["logprob"][label] == pytest.approx(expected, abs=1e-3)
        best = max(row["logprob"], key=row["logprob"].get)
        assert row["pred"] == best and row["score"] == 100.0 * (best == row["reference"])
    assert result["metrics"]["accuracy"] == pytest.approx(sum(r["score"] for r in rows) / 2)
    assert {"accuracy_norm", "macro_f1", "mcc"} <= set(result["metrics"])


def test_classification_files_name_their_labels(tmp_path):
    import datasets

    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "not_entailment"]),
        }
    )
    parquet = tmp_path / "rte.parquet"
    datasets.Dataset.from_dict(
        {"premise": ["p1", "p2"], "hypothesis": ["h1", "h2"], "label": [1, 0]}, features=features
    ).to_parquet(parquet)
    examples, names, info = classify.load_examples(parquet)
    assert (
        names == ["entailment", "not_entailment"] and info["label_source"] == "parquet ClassLabel"
    )
    assert [e["gold"] for e in examples] == ["not_entailment", "entailment"]
    assert info["text_fields"] == ["premise", "hypothesis"]

    csv_file = tmp_path / "cb.csv"
    csv_file.write_text(
        "sentence1,sentence2,label\na,b,neutral\nc,d,contradiction\n", encoding="utf-8"
    )
    _, names, _ = classify.load_examples(csv_file)
    assert names == ["contradiction", "neutral"]
    boolq = _jsonl(tmp_path / "boolq.jsonl", [{"question": "q?", "passage": "p.", "label": True}])
    examples, names, _ = classify.load_examples(boolq)
    assert names == ["no", "yes"] and examples[0]["gold"] == "yes"
    ints = _jsonl(tmp_path / "ints.jsonl", [{"text": "x", "label": 2}])
    with pytest.raises(ConfigError, match="labels"):
        classify.load_examples(ints)
    with pytest.raises(DataError, match="out of range") as err:
        classify.load_examples(ints, labels=["a", "b"])
    assert err.value.line == 1 and err.value.field == "label"


def test_match_label_reads_generated_answers():
    labels = ["entailment", "not_entailment"]
    assert classify.match_label("Not entailment.", labels) == "not_entailment"
    assert classify.match_label("entailment", labels) == "entailment"
    assert classify.match_label("The answer is entailment, clearly", labels) == "entailment"
    assert classify.match_label("I don't know", labels) is None


def _field(text: str, name: str) -> str:
    return re.search(rf"{name}: (.*)", text).group(1)


def test_remote_suites_retry_and_report_failures(tmp_path):
    gold = {"Who wrote it?": "Ada", "Where is it?": "in Paris", "When?": "1843"}
    tries: dict[str, int] = {}

    def oracle(messages):
        text = messages[-1]["content"]
        if "Context:" in text:  # SQuAD: answer from the gold table
            question = _field(text, "Question")
            tries[question] = tries.get(question, 0) + 1
            if question == "Where is it?" and tries[question] == 1:
                raise Refuse(400, "transient")  # fails once, then succeeds
            if question == "When?":
                raise Refuse(400, "always broken")
            return f"Answer: {gold[question]}"
        if text.startswith("Summarize"):
            return text.split("\n\n", 1)[1].split(".")[0] + "."
        return "positive" if "good" in text else "negative"

    squad = tmp_path / "squad.json"
    squad.write_text(
        json.dumps(
            {
                "version": "1.1",
                "data": [
                    {
                        "title": "T",
                        "paragraphs": [
                            {
                                "context": "Ada wrote it in Paris in 1843.",
                                "qas": [
                                    {
                                        "id": "q1",
                                        "question": "Who wrote it?",
                                        "answers": [{"text": "Ada", "answer_start": 0}],
                                    },
                                    {
                                        "id": "q2",
                                        "question": "Where is it?",
                                        "answers": [{"text": "Paris", "answer_start": 15}],
                                    },
                                    {
                                        "id": "q3",
                                        "question": "When?",
                                        "answers": [{"text": "1843", "answer_start": 24}],
                                    },
                                ],
                            }
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    news = _jsonl(
        tmp_path / "cnn.jsonl",
        [
            {
                "id": "n1",
                "article": "Rain fell on Monday. Roads closed.",
                "highlights": "Rain fell on Monday.",
            }
        ],
    )
    sst = _jsonl(
        tmp_path / "sst.jsonl",
        [{"sentence": "good fun", "label": "positive"}, {"sentence": "bad", "label": "negative"}],
    )
    app = make_app(oracle)
    with serve(app) as url:
        result = run_suite(
            url,
            "squad",
            data=squad,
            out_dir=tmp_path / "squad",
            concurrency=3,
            backoff=0,
            progress=False,
        )
        assert result["model"] == {"kind": "url", "url": url, "model": "stub-model"}
        assert result["counts"]["scored"] == 2 and [f["id"] for f in result["failed"]] == ["q3"]
        assert "always broken" in result["failed"][0]["error"]
        assert tries["When?"] == 3  # tried 1 + 2 retries
        # "Ada" is exact; "in Paris" against "Paris": EM 0, F1 = 2·(1/2)·1/(1/2 + 1) = 2/3
        assert result["metrics"]["em"] == 50.0
        assert result["metrics"]["f1"] == pytest.approx((100 + 200 / 3) / 2)
        requests = app.state.requests
        again = run_suite(
            url,
            "squad",
            data=squad,
            out_dir=tmp_path / "squad",
            concurrency=3,
            backoff=0,
            progress=False,
        )
        assert (
            again["counts"]["cached"] == 2 and app.state.requests == requests + 3
        )  # only q3 again

        summary = run_suite(
            url, "summarization", data=news, out_dir=tmp_path / "sum", progress=False
        )
        assert summary["metrics"]["rougeL"] == 100.0 and summary["primary"] == "rougeL"

        glue = run_suite(url, "glue", data=sst, out_dir=tmp_path / "glue", progress=False)
        assert glue["config"]["method"] == "generate" and glue["metrics"]["accuracy"] == 100.0
        assert any("scored by generation" in n for n in glue["notes"])
        with pytest.raises(ConfigError, match="log-probabilities"):
            run_suite(
                url, "glue", data=sst, out_dir=tmp_path / "g2", method="loglik", progress=False
            )


def test_ifeval_suite_on_a_native_model(gpt2_dir, tmp_path):
    result = run_suite(
        gpt2_dir, "ifeval", out_dir=tmp_path / "if", limit=4, max_tokens=4, progress=False
    )
    assert result["counts"]["items"] == 4
    assert {"prompt_level_strict", "instruction_level_loose"} <= set(result["metrics"])
    assert result["primary"] == "prompt_level_strict"


def test_suite_input_errors_name_the_problem(tmp_path, gpt2_dir):
    with pytest.raises(ConfigError, match="unknown suite"):
        run_suite(gpt2_dir, "mmlu", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="needs a data file"):
        run_suite(gpt2_dir, "squad", out_dir=tmp_path)
    bad = _jsonl(
        tmp_path / "bad.jsonl",
        [{"context": "c", "question": "q", "answers": ["a"]}, {"context": "c", "answers": ["a"]}],
    )
    with pytest.raises(DataError) as err:
        run_suite(gpt2_dir, "squad", data=bad, out_dir=tmp_path / "x")
    assert err.value.line == 2 and err.value.field == "question"
