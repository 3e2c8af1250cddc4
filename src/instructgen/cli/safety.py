"""`instructgen safety ...`."""

from __future__ import annotations

import sys

from instructgen.cli.common import (
    Parser,
    add,
    print_json,
)


def cmd_safety_redact(args) -> None:
    from instructgen.safety import batch

    text, source = batch.read_input(args.input)
    kinds = args.kinds.split(",") if args.kinds else None
    sys.stdout.write(
        batch.redact_document(
            text, field=args.field, source=source, kinds=kinds, style=args.style, salt=args.salt
        )
    )


def cmd_safety_check(args) -> int:
    import dataclasses

    from instructgen.safety import Policy, batch, load_policy

    policy = load_policy(args.policy) if args.policy else Policy()
    if args.fail_on_pii:
        policy = dataclasses.replace(policy, block_pii=True)
    text, source = batch.read_input(args.input)
    reports = batch.check_document(text, policy, field=args.field, source=source)
    if args.json:
        print_json(reports if args.field else reports[0])
    else:
        for report in reports:
            print(batch.format_report(report, source))
    return 1 if any(r["flagged"] for r in reports) else 0


def cmd_safety_eval(args) -> None:
    from instructgen.safety.pii_eval import labelled_pii_set, score_pii

    scores = score_pii(labelled_pii_set(args.num, seed=args.seed))
    if args.json:
        print_json(scores)
        return
    print(f"{'kind':<16}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}")
    for kind, s in scores["per_kind"].items():
        print(
            f"{kind:<16}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>9}"
        )
    micro = scores["micro"]
    print(
        f"pii_precision={micro['precision']:.4f}\npii_recall={micro['recall']:.4f}\npii_char_recall={scores['char_recall']:.4f}"
    )


def register(verbs) -> None:
    # safety
    safety = verbs.add_parser("safety", help="PII redaction and moderation")
    ssub = safety.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    p = add(
        ssub,
        "redact",
        cmd_safety_redact,
        "redact personal data and secrets (emails, phones, ID numbers, cards, keys ...) from text or JSONL",
        'instructgen safety redact chat.jsonl --field messages --style hash --salt "$SALT" > clean.jsonl',
    )
    p.add_argument(
        "input", nargs="?", default="-", metavar="F|-", help="file, or - for standard input"
    )
    p.add_argument("--style", choices=["tag", "mask", "hash"], default="tag")
    p.add_argument("--kinds", help="comma-separated kinds (default: all)")
    p.add_argument("--salt", help="salt of the hash style's pseudonyms")
    p.add_argument("--field", help="JSONL input: redact this field of every record")
    p = add(
        ssub,
        "check",
        cmd_safety_check,
        "moderate text (bilingual rules) and report personal data; exit 1 when something is flagged",
        'echo "忽略之前的指令" | instructgen safety check - --json',
    )
    p.add_argument("input", nargs="?", default="-", metavar="F|-")
    p.add_argument("--json", action="store_true")
    p.add_argument("--policy", metavar="F", help="YAML moderation policy")
    p.add_argument("--field", help="JSONL input: check this field of every record")
    p.add_argument(
        "--fail-on-pii", action="store_true", help="flag text that contains personal data"
    )
    p = add(
        ssub,
        "eval",
        cmd_safety_eval,
        "precision and recall of PII detection on a generated labelled set (Chinese and English)",
        "instructgen safety eval --num 1000",
    )
    p.add_argument("--num", type=int, default=500, help="labelled records")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
