"""`instructgen eval ...`."""

from __future__ import annotations

import argparse
import json
import sys

from instructgen.cli.common import (
    Parser,
    add,
    add_force_flag,
    add_model_flags,
    claim_out_dir,
    print_json,
)
from instructgen.errors import UserError


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def cmd_eval_metrics(args) -> None:
    from instructgen.evaluate import metrics

    predictions, references = (
        metrics.read_lines(args.predictions),
        metrics.read_lines(args.references),
    )
    if len(predictions) != len(references):
        raise UserError(
            f"{len(predictions)} predictions in {args.predictions} but {len(references)} references in {args.references}"
        )
    print(
        json.dumps(
            metrics.compute(
                args.metrics.split(","),
                predictions,
                references,
                lang=args.lang,
                normalization=args.normalization,
            ),
            ensure_ascii=False,
        )
    )


def cmd_eval_ifeval(args) -> None:
    from instructgen.evaluate import ifeval, metrics

    prompts = ifeval.load_prompts(args.lang)
    responses = metrics.read_lines(args.responses)
    result = ifeval.score(prompts, responses)
    result.pop("results", None)
    print_json(result)


def _summary(results: dict, out: str) -> int:
    """Print the headline of a run; exit 1 when every item failed."""
    print_json(
        {
            "suite": results["suite"],
            "metrics": results["metrics"],
            "counts": results["counts"],
            **({"cost": results["cost"]} if "cost" in results else {}),
            "notes": results.get("notes", []),
            "report": f"{out}/report.md",
        }
    )
    counts = results["counts"]
    if counts["failed"]:
        print(
            f'instructgen: warning: {counts["failed"]} of {counts["items"]} items failed; their errors are under "failed" in {out}/results.json',
            file=sys.stderr,
        )
    return 1 if counts["failed"] and not counts["scored"] else 0


def cmd_eval(args) -> int:
    from instructgen.evaluate.suites import run_suite

    missing = [f for f in ("model", "suite", "out") if getattr(args, f) is None]
    if missing:
        raise UserError(
            f"give {', '.join('--' + m for m in missing)} to run a suite, or an action: "
            "metrics, ifeval-score, compare, judge, human, perplexity"
        )
    results = run_suite(
        args.model,
        args.suite,
        out_dir=args.out,
        data=args.data,
        backend=args.backend,
        api_key=args.api_key,
        served_model=args.served_model,
        limit=args.limit,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        metrics=_csv(args.metrics),
        max_tokens=args.max_tokens,
        labels=_csv(args.labels),
        text_fields=_csv(args.text_fields),
        template=args.template,
        method=args.method,
        lang=args.lang,
        retries=args.retries,
        progress=not args.quiet,
    )
    return _summary(results, args.out)


def cmd_eval_compare(args) -> None:
    from instructgen.evaluate.report import compare, compare_markdown
    from instructgen.files import atomic_write_json, atomic_write_text

    result = compare(args.run_a, args.run_b, n_boot=args.n_boot, seed=args.seed)
    text = compare_markdown(result)
    if args.out:
        atomic_write_json(f"{args.out}/compare.json", result)
        atomic_write_text(f"{args.out}/compare.md", text)
    print(text)


def cmd_eval_judge(args) -> int:
    from instructgen.evaluate.judges import run_judge

    results = run_judge(
        args.judge,
        args.answers,
        out_dir=args.out,
        against=args.against,
        judge_model=args.judge_model,
        api_key=args.api_key,
        use_reference=args.reference,
        limit=args.limit,
        concurrency=args.concurrency,
        seed=args.seed,
        max_tokens=args.max_tokens,
        progress=not args.quiet,
    )
    return _summary(results, args.out)


def cmd_eval_human(args) -> None:
    raise UserError(
        "choose an action: `instructgen eval human export` or `instructgen eval human import`"
    )


def cmd_eval_human_export(args) -> None:
    from instructgen.evaluate.human import export

    claim_out_dir(
        args.out, force=args.force
    )  # a new mapping.json would orphan the old sheet's ratings
    info = export(
        args.outputs,
        args.out,
        seed=args.seed,
        scale=args.scale,
        title=args.title,
        limit=args.limit,
    )
    print_json(info)
    print(
        f"hand out {args.out}/sheet/ to the raters; keep {info['mapping']} to yourself",
        file=sys.stderr,
    )


def cmd_eval_human_import(args) -> None:
    from instructgen.evaluate.human import import_ratings
    from instructgen.files import atomic_write_json

    report = import_ratings(args.ratings, args.mapping)
    if args.out:
        atomic_write_json(args.out, report)
    print_json(report)


def cmd_eval_perplexity(args) -> None:
    from instructgen.evaluate.perplexity import perplexity

    print_json(
        perplexity(
            args.model,
            args.data,
            seq_len=args.seq_len,
            stride=args.stride,
            device=args.device,
            dtype=args.dtype,
            progress=not args.quiet,
        )
    )


def register(verbs) -> None:
    """`eval` (a suite on a model: flags on `eval` itself) and its actions, one function each."""
    esub = _register_suite(verbs).add_subparsers(
        dest="action", metavar="ACTION", parser_class=Parser
    )
    _register_metrics(esub)
    _register_ifeval_score(esub)
    _register_compare(esub)
    _register_judge(esub)
    _register_human(esub)
    _register_perplexity(esub)


def _register_suite(verbs) -> argparse.ArgumentParser:
    """`eval --model M --suite S --out DIR`: the flags of a suite run, on `eval` itself."""
    ev = add(
        verbs,
        "eval",
        cmd_eval,
        "evaluate: suites on a model or URL, metrics, judges, human ratings, comparisons, perplexity",
        "instructgen eval --model runs/quickstart/model --suite builtin --out runs/eval/builtin\n"
        "  instructgen eval --model http://127.0.0.1:8000/v1 --suite squad --data dev-v1.1.json --out runs/eval/squad\n"
        "  instructgen eval compare runs/eval/base runs/eval/tuned",
    )
    add_model_flags(ev, required=False)
    ev.add_argument(
        "--suite",
        choices=["builtin", "ifeval", "glue", "squad", "summarization", "references"],
        help="what to evaluate (see README: Evaluation)",
    )
    ev.add_argument(
        "--data",
        metavar="F",
        help="the suite's data file (builtin: a `data builtin` directory; ifeval: an IFEval input JSONL)",
    )
    ev.add_argument(
        "--out",
        metavar="DIR",
        help="run folder: results.json, items.jsonl, report.md, charts, and the outputs.jsonl cache a re-run resumes from",
    )
    ev.add_argument("--limit", type=int, metavar="N", help="evaluate N items spread over the data")
    ev.add_argument(
        "--metrics",
        help="references suite: comma-separated bleu,rouge,meteor,em,f1,chrf,accuracy (default bleu,rouge,meteor,chrf; the first is the per-item score)",
    )
    ev.add_argument("--max-tokens", type=int, metavar="N", help="answer length (default per suite)")
    ev.add_argument(
        "--batch-size", type=int, default=16, metavar="N", help="prompts per batch on a local model"
    )
    ev.add_argument(
        "--concurrency", type=int, default=8, metavar="N", help="requests in flight against a URL"
    )
    ev.add_argument(
        "--retries", type=int, default=2, metavar="N", help="extra tries for a failed item"
    )
    ev.add_argument("--labels", help="glue: class names, comma-separated, index i naming class i")
    ev.add_argument("--text-fields", help="glue: the record's text fields, comma-separated")
    ev.add_argument("--template", help="glue/squad/summarization: a prompt with {field} slots")
    ev.add_argument(
        "--method",
        default="auto",
        choices=["auto", "loglik", "generate"],
        help="glue: score labels by log-likelihood (auto: when the backend can) or by generation",
    )
    ev.add_argument(
        "--lang",
        default="auto",
        choices=["auto", "zh", "en"],
        help="metric tokenization; ifeval: only this language's prompts",
    )
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    return ev


def _register_metrics(esub) -> None:
    """`eval metrics`: scores of predictions against references."""
    p = add(
        esub,
        "metrics",
        cmd_eval_metrics,
        "BLEU, ROUGE, METEOR (Chinese-aware), exact match, F1, chrF, accuracy of predictions against references",
        "instructgen eval metrics --predictions pred.txt --references ref.txt --metrics bleu,rouge,meteor,em,f1,chrf --lang zh",
    )
    p.add_argument(
        "--predictions",
        required=True,
        metavar="F",
        help="one prediction per line, or JSONL with a `text` field",
    )
    p.add_argument(
        "--references",
        required=True,
        metavar="F",
        help="one reference per line, or JSONL with a `text` field",
    )
    p.add_argument(
        "--metrics",
        default="bleu,rouge,meteor,em,f1,chrf",
        help="comma-separated: bleu,rouge,meteor,em,f1,chrf,accuracy",
    )
    p.add_argument("--lang", default="auto", choices=["auto", "zh", "en"])
    p.add_argument(
        "--normalization",
        default="auto",
        choices=["auto", "squad", "squad2", "unicode"],  # metrics.NORMALIZATIONS
        help="how em and f1 compare answers: squad (the official SQuAD v1.1 script: ASCII "
        "punctuation, whitespace tokens), squad2 (v2: empty matches empty), unicode (Unicode "
        "punctuation, each CJK character a token); auto: unicode for Chinese, else squad",
    )


def _register_ifeval_score(esub) -> None:
    """`eval ifeval-score`: responses to the built-in IFEval-style prompts."""
    p = add(
        esub,
        "ifeval-score",
        cmd_eval_ifeval,
        "score responses to the built-in IFEval-style prompts (strict and loose)",
        "instructgen eval ifeval-score --responses responses.txt --lang en",
    )
    p.add_argument(
        "--responses",
        required=True,
        metavar="F",
        help="one response per prompt, in the order of the built-in prompt set (JSONL with `text` for multi-line answers)",
    )
    p.add_argument("--lang", choices=["zh", "en"], help="only the prompts of this language")


def _register_compare(esub) -> None:
    """`eval compare`: two runs side by side."""
    p = add(
        esub,
        "compare",
        cmd_eval_compare,
        "two runs side by side, with a paired bootstrap test of their per-item scores",
        "instructgen eval compare runs/eval/base runs/eval/tuned --out runs/eval/compare",
    )
    p.add_argument("run_a", metavar="RUN_A", help="run folder (or its results.json)")
    p.add_argument("run_b", metavar="RUN_B", help="run folder (or its results.json)")
    p.add_argument("--out", metavar="DIR", help="also write compare.json and compare.md here")
    p.add_argument("--n-boot", type=int, default=10_000, metavar="N", help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)


def _register_judge(esub) -> None:
    """`eval judge`: LLM-as-judge through an OpenAI-compatible URL."""
    p = add(
        esub,
        "judge",
        cmd_eval_judge,
        "LLM-as-judge through an OpenAI-compatible URL: 1-10 grades, or pairwise with both orders",
        "instructgen eval judge --judge http://127.0.0.1:8000/v1 --answers runs/eval/tuned --against runs/eval/base --out runs/eval/judge",
    )
    p.add_argument(
        "--judge", required=True, metavar="URL", help="the judge's OpenAI-compatible base URL"
    )
    p.add_argument(
        "--judge-model",
        metavar="NAME",
        help="model name to request (default: the first the URL lists)",
    )
    p.add_argument("--api-key", metavar="KEY", help="default: $OPENAI_API_KEY")
    p.add_argument(
        "--answers",
        required=True,
        metavar="RUN|F",
        help="a run folder, or JSONL/JSON/CSV/parquet with id, prompt (question, instruction) and output (answer, response)",
    )
    p.add_argument(
        "--against", metavar="RUN|F", help="pairwise: the other system's outputs (same ids)"
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--reference", action="store_true", help="show the judge each item's reference answer"
    )
    p.add_argument("--limit", type=int, metavar="N")
    p.add_argument("--concurrency", type=int, default=8, metavar="N")
    p.add_argument("--max-tokens", type=int, default=1024, metavar="N", help="judgment length")
    p.add_argument(
        "--seed", type=int, default=0, help="seeds the order each pair is shown in first"
    )
    p.add_argument("--quiet", action="store_true")


def _register_human(esub) -> None:
    """`eval human export` and `eval human import`: blinded rating sheets out, ratings in."""
    p = add(
        esub,
        "human",
        cmd_eval_human,
        "human evaluation: blinded rating sheets out, ratings in",
        "instructgen eval human export --outputs runs/eval/base runs/eval/tuned --out runs/human",
    )
    hsub = p.add_subparsers(dest="human_action", metavar="ACTION", parser_class=Parser)
    p = add(
        hsub,
        "export",
        cmd_eval_human_export,
        "write a self-contained HTML rating sheet and CSV template (blinded, shuffled) and the mapping",
        "instructgen eval human export --outputs runs/eval/base runs/eval/tuned --out runs/human --seed 0",
    )
    p.add_argument(
        "--outputs",
        required=True,
        nargs="+",
        metavar="RUN|F",
        help="two or more run folders or output files (id, prompt, output)",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="sheet/ (for raters) and mapping.json (keep it)"
    )
    p.add_argument("--seed", type=int, default=0, help="shuffles items and answers")
    p.add_argument("--scale", type=int, default=5, metavar="N", help="ratings 1..N (default 5)")
    p.add_argument("--title", default="Rating sheet")
    p.add_argument("--limit", type=int, metavar="N", help="at most N items")
    add_force_flag(p)
    p = add(
        hsub,
        "import",
        cmd_eval_human_import,
        "unblind ratings CSVs: mean with a 95 percent confidence interval per system, head-to-head counts, Cohen's/Fleiss' kappa",
        "instructgen eval human import --ratings ann.csv bob.csv --mapping runs/human/mapping.json",
    )
    p.add_argument(
        "--ratings",
        required=True,
        nargs="+",
        metavar="F",
        help="ratings CSVs downloaded from the sheet (or the filled template)",
    )
    p.add_argument("--mapping", required=True, metavar="F", help="mapping.json written by export")
    p.add_argument("--out", metavar="F", help="also write the report as JSON here")


def _register_perplexity(esub) -> None:
    """`eval perplexity`: a model directory on a text file."""
    p = add(
        esub,
        "perplexity",
        cmd_eval_perplexity,
        "perplexity of a model directory on a text file (sliding window)",
        "instructgen eval perplexity --model runs/quickstart/model --data runs/quickstart/data/corpus.txt --seq-len 256 --stride 128",
    )
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument(
        "--data", required=True, metavar="F", help="text file (.jsonl: its `text` fields)"
    )
    p.add_argument(
        "--seq-len", type=int, metavar="N", help="window length (default: the model's context)"
    )
    p.add_argument("--stride", type=int, metavar="N", help="window step (default: seq-len / 2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--quiet", action="store_true")
