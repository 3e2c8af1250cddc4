"""`instructgen data ...`: corpora, instruction files, the built-in world, Self-Instruct."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from instructgen.cli.common import (
    Parser,
    add,
    add_force_flag,
    claim_out_dir,
    print_json,
)


def cmd_data_tokenize(args) -> None:
    import time

    from instructgen.data.corpus import tokenize_corpus

    claim_out_dir(args.out, force=args.force)
    start = time.perf_counter()
    meta = tokenize_corpus(
        args.input,
        args.tokenizer,
        args.out,
        text_field=args.text_field,
        shard_tokens=args.shard_tokens,
        append_eos=not args.no_eos,
        show_progress=not args.quiet,
    )
    print(
        f"tokenized {meta['num_documents']:,} documents, {meta['num_tokens']:,} tokens ({meta['dtype']}, {len(meta['shards'])} shards) in {time.perf_counter() - start:.1f}s -> {args.out}"
    )


def cmd_data_validate(args) -> int:
    from instructgen.data.formats import format_counts, validate_file

    problems = validate_file(args.file)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"instructgen: error: {len(problems)} bad record(s) in {args.file}", file=sys.stderr)
        return 2
    counts = format_counts(args.file)
    print(
        f"OK: {sum(counts.values())} records ({', '.join(f'{k} {v}' for k, v in counts.items())})"
    )
    return 0


def cmd_data_stats(args) -> None:
    from instructgen.data.formats import stats

    print_json(stats(args.file, tokenizer=args.tokenizer))


def cmd_data_convert(args) -> None:
    from instructgen.data.formats import convert

    n = convert(args.file, args.to, args.out)
    print(f"wrote {n} records ({args.to}) to {args.out}")


def cmd_data_builtin(args) -> None:
    from instructgen.data.builtin import (
        GENERATOR_VERSION,
        MADE_SHARE,
        check_arguments,
        write_builtin,
    )

    made_share = MADE_SHARE if args.made_share is None else args.made_share
    check_arguments(args.seed, args.size, made_share)  # before --force may clear --out
    card = Path(args.out) / "card.json"
    wanted = {
        "generator_version": GENERATOR_VERSION,
        "seed": args.seed,
        "size": args.size,
        "made_share": made_share,
    }
    same = (
        card.is_file()
        and {k: json.loads(card.read_text(encoding="utf-8")).get(k) for k in wanted} == wanted
    )
    if not same:  # the same settings write the same bytes again; anything else is a new run
        claim_out_dir(args.out, force=args.force)
    card = write_builtin(args.out, seed=args.seed, size=args.size, made_share=made_share)
    splits = " ".join(f"{s}={card['splits'][s]['records']}" for s in ("train", "val", "test"))
    corpus = card["corpus"]
    print(
        f"wrote {args.out}: {splits}, corpus {corpus['documents']} docs ({corpus['bytes'] / 1e6:.1f} MB), {len(card['families'])} families"
    )


def cmd_data_self_instruct(args) -> None:
    from instructgen.data.selfinstruct import run_self_instruct

    summary = run_self_instruct(
        args.teacher,
        args.seed_tasks,
        args.num,
        args.out,
        api_key=args.api_key,
        model=args.model,
        concurrency=args.concurrency,
        api=args.api,
        seed=args.seed,
        max_retries=args.max_retries,
        timeout=args.timeout,
        progress=not args.quiet,
    )
    print_json(summary)


def cmd_data_preferences(args) -> None:
    from instructgen.evaluate.preferences import check_out, make_preferences, prompts_of
    from instructgen.inference import load

    check_out(args.out)
    prompts = prompts_of(args.data, seed=args.seed)
    judge = None
    if args.judge:
        from instructgen.evaluate.judges import Judge

        judge = Judge(args.judge if "://" in args.judge else load(args.judge))
    with load(args.model) as llm:
        summary = make_preferences(
            llm,
            prompts,
            args.out,
            samples=args.samples,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            seed=args.seed,
            judge=judge,
            batch_size=args.batch_size,
            limit=args.limit,
            reference_chosen=args.reference_chosen,
            progress=not args.quiet,
        )
    skipped = ", ".join(f"{k} {v}" for k, v in summary["skipped"].items()) or "none"
    reference = (
        f", {summary['reference_pairs']} with the reference chosen"
        if summary["reference_pairs"]
        else ""
    )
    print(
        f"{summary['pairs']} pairs from {summary['prompts']} prompts{reference} -> "
        f"{summary['out']} (skipped: {skipped})"
    )


def register(verbs) -> None:
    """`data` and its sub-commands, one function each."""
    dsub = _register_data(verbs)
    _register_tokenize(dsub)
    _register_validate(dsub)
    _register_stats(dsub)
    _register_convert(dsub)
    _register_builtin(dsub)
    _register_self_instruct(dsub)
    _register_preferences(dsub)


def _register_data(verbs):
    """The `data` verb; returns its sub-command table."""
    data = verbs.add_parser(
        "data",
        help="corpus and instruction data: tokenize, builtin, validate, stats, convert, self-instruct, preferences",
    )
    return data.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)


def _register_tokenize(dsub) -> None:
    """`data tokenize`: text or JSONL corpora into token shards."""
    p = add(
        dsub,
        "tokenize",
        cmd_data_tokenize,
        "tokenize text files into memory-mapped token shards for pretraining",
        "instructgen data tokenize --input corpus.txt wiki.jsonl --tokenizer tok/ --out shards/",
    )
    p.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="F",
        help=".txt, .jsonl, .json, .parquet or .csv files",
    )
    p.add_argument("--tokenizer", required=True, metavar="DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--text-field", default="text", help="field/column holding the text (default: text)"
    )
    p.add_argument(
        "--shard-tokens", type=int, default=64 * 2**20, metavar="N", help="tokens per shard file"
    )
    p.add_argument("--no-eos", action="store_true", help="do not append eos after each document")
    add_force_flag(p)
    p.add_argument("--quiet", action="store_true")


def _register_validate(dsub) -> None:
    """`data validate`: check an instruction file, record by record."""
    p = add(
        dsub,
        "validate",
        cmd_data_validate,
        "check an instruction file (Alpaca, ShareGPT, messages, prompt/completion); every bad record is reported",
        "instructgen data validate train.jsonl",
    )
    p.add_argument("file", metavar="F", help=".jsonl, .json, .parquet or .csv")


def _register_stats(dsub) -> None:
    """`data stats`: counts and lengths of an instruction file."""
    p = add(
        dsub,
        "stats",
        cmd_data_stats,
        "counts, length percentiles, language mix and duplicate rate of an instruction file",
        "instructgen data stats train.jsonl --tokenizer runs/quickstart/model",
    )
    p.add_argument("file", metavar="F")
    p.add_argument("--tokenizer", metavar="DIR", help="also measure lengths in tokens")


def _register_convert(dsub) -> None:
    """`data convert`: an instruction file into another format."""
    p = add(
        dsub,
        "convert",
        cmd_data_convert,
        "convert an instruction file losslessly between formats",
        "instructgen data convert alpaca.json --to messages --out train.jsonl",
    )
    p.add_argument("file", metavar="F")
    p.add_argument("--to", required=True, choices=["messages", "alpaca", "sharegpt"])
    p.add_argument("--out", required=True, metavar="F")


def _register_builtin(dsub) -> None:
    """`data builtin`: the built-in world's splits and corpus."""
    p = add(
        dsub,
        "builtin",
        cmd_data_builtin,
        "write the built-in bilingual task world: a pretraining corpus and train/val/test instruction splits with checkers",
        "instructgen data builtin --out data/builtin --seed 0 --size 6000",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--size", type=int, default=6000, help="training instances (val and test scale with it)"
    )
    p.add_argument(
        "--made-share",
        type=float,
        metavar="F",
        help="share of made-up names, cities, products and words in train and val, 0 to 1 (default: the generator's, written to card.json); the test split and the corpus stay the same",
    )
    add_force_flag(p)


def _register_self_instruct(dsub) -> None:
    """`data self-instruct`: new instructions from a teacher model (Self-Instruct)."""
    p = add(
        dsub,
        "self-instruct",
        cmd_data_self_instruct,
        "bootstrap instruction data from seed tasks with any OpenAI-compatible teacher (Self-Instruct); rerun the same command to resume",
        "instructgen data self-instruct --teacher http://127.0.0.1:8000/v1 --num 100 --out si.jsonl",
    )
    p.add_argument(
        "--teacher",
        required=True,
        metavar="URL",
        help="base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1",
    )
    p.add_argument(
        "--seed-tasks",
        default="builtin",
        metavar="F",
        help="Self-Instruct seed tasks JSONL (or Alpaca records); default: the 175 human-written "
        "seed tasks of the Self-Instruct paper (Apache-2.0), shipped with instructgen",
    )
    p.add_argument("--num", type=int, required=True, metavar="N", help="instructions to keep")
    p.add_argument(
        "--out", required=True, metavar="F", help="output JSONL (appended; rerun to resume)"
    )
    p.add_argument("--api-key", help="API key (default: $OPENAI_API_KEY)")
    p.add_argument("--model", help="teacher model name (default: the first of /v1/models)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--api", choices=["chat", "completions"], default="chat")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-retries", type=int, default=6)
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--quiet", action="store_true")


def _register_preferences(dsub) -> None:
    """`data preferences`: preference pairs from a model's own samples."""
    p = add(
        dsub,
        "preferences",
        cmd_data_preferences,
        "preference pairs from a model's own samples: K answers per prompt, chosen = one its "
        "checker accepts, rejected = one it rejects (or a judge's best and worst); rerun to resume",
        "instructgen data preferences --model runs/quickstart/model --data builtin --samples 4 --out pairs.jsonl",
    )
    p.add_argument("--model", required=True, metavar="DIR|URL", help="the model that samples")
    p.add_argument(
        "--data",
        required=True,
        metavar="F|builtin",
        help="instruction file (records with a `checker` are judged by it) or `builtin`",
    )
    p.add_argument("--samples", type=int, default=4, metavar="K", help="answers per prompt")
    p.add_argument("--out", required=True, metavar="F", help="output JSONL (appended)")
    p.add_argument(
        "--judge",
        metavar="URL|DIR",
        help="grades answers of records without a checker (MT-Bench single grading)",
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16, help="prompts sampled together")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N prompts")
    p.add_argument(
        "--reference-chosen",
        action="store_true",
        help="where every sample fails its checker, pair the record's own answer (chosen) "
        "with the model's failing one instead of skipping the prompt",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
