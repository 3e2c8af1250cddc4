"""`instructgen eval ...`."""

from __future__ import annotations

import json

from instructgen.cli.common import (
    Parser,
    add,
    print_json,
)
from instructgen.errors import UserError


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
            metrics.compute(args.metrics.split(","), predictions, references, lang=args.lang),
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


def cmd_eval(args) -> None:
    raise UserError(
        "evaluation suites (--suite) are not part of this release yet; `instructgen eval metrics` and `instructgen eval ifeval-score` are"
    )


def register(verbs) -> None:
    # eval
    ev = add(
        verbs,
        "eval",
        cmd_eval,
        "evaluate: metrics on prediction files, verifiable instruction checks",
        "instructgen eval metrics --predictions pred.txt --references ref.txt --metrics bleu,rouge,meteor",
    )
    esub = ev.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
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
