"""The `instructgen` command: parses arguments, calls the library, prints.

Every verb exits 0 on success and 2 on a user mistake, with one line that names the file, line
and field; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from instructgen import __version__
from instructgen.errors import UserError

Handler = Callable[[argparse.Namespace], int | None]


class _Parser(argparse.ArgumentParser):
    """argparse with examples kept verbatim in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """One line, exit 2 (argparse would print the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add(sub, name: str, handler: Handler, help: str, example: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}")
    p.set_defaults(handler=handler)
    return p


def _print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


# ----------------------------------------------------------------------------------------------
# tokenizer / model


def cmd_tokenizer_train(args) -> None:
    from instructgen.tokenizer import Tokenizer, train_tokenizer

    out = train_tokenizer(
        args.input,
        args.vocab_size,
        args.out,
        text_field=args.text_field,
        min_frequency=args.min_frequency,
        show_progress=not args.quiet,
    )
    tok = Tokenizer.from_dir(out)
    print(f"tokenizer: {len(tok)} tokens (fingerprint {tok.fingerprint()}) -> {out}")


def cmd_model_init(args) -> None:
    import torch

    from instructgen.config import from_dict, load_yaml
    from instructgen.errors import ModelDirError
    from instructgen.model.checkpoint import save_model
    from instructgen.model.presets import preset
    from instructgen.model.transformer import ModelConfig, Transformer
    from instructgen.tokenizer import Tokenizer

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise ModelDirError(
            "already exists and is not empty (use --force to replace it)", file=str(out)
        )
    if not Path(args.tokenizer).is_dir():
        raise ModelDirError("tokenizer directory not found", file=args.tokenizer)
    tok = Tokenizer.from_dir(args.tokenizer)
    values = preset(args.arch, args.preset)
    values.update(
        vocab_size=64 * -(-len(tok) // 64),
        bos_token_id=tok.bos_id,
        eos_token_id=tok.eos_id,
        pad_token_id=tok.pad_id,
    )
    if args.context_length:
        values["max_seq_len"] = args.context_length
    if args.activation:
        values["activation"] = args.activation
    if args.config:
        values.update(load_yaml(args.config))
    config = from_dict(ModelConfig, values, source=args.config or "model init")
    torch.manual_seed(args.seed)
    model = Transformer(config)
    save_model(
        model,
        out,
        tokenizer=tok,
        provenance={"init": {"arch": args.arch, "preset": args.preset, "seed": args.seed}},
    )
    print(f"{config.arch} model, {model.num_parameters():,} parameters -> {out}")


def cmd_model_info(args) -> None:
    from instructgen.model.checkpoint import model_info

    info = model_info(args.dir)
    if args.json:
        _print_json(info)
        return
    provenance = info.pop("provenance")
    width = max(map(len, info))
    for key, value in info.items():
        if key == "parameters":
            value = f"{value:,}"
        print(f"{key:<{width}}  {value}")
    if provenance:
        print(f"{'provenance':<{width}}  {json.dumps(provenance, ensure_ascii=False)}")


# ----------------------------------------------------------------------------------------------
# data / pretrain


def cmd_data_tokenize(args) -> None:
    import time

    from instructgen.data.corpus import tokenize_corpus

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

    _print_json(stats(args.file, tokenizer=args.tokenizer))


def cmd_data_convert(args) -> None:
    from instructgen.data.formats import convert

    n = convert(args.file, args.to, args.out)
    print(f"wrote {n} records ({args.to}) to {args.out}")


def cmd_data_builtin(args) -> None:
    from instructgen.data.builtin import write_builtin

    card = write_builtin(args.out, seed=args.seed, size=args.size)
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
    _print_json(summary)


TRAIN_FLAGS = {  # flag: (TrainConfig field, type, help)
    "--max-steps": ("max_steps", int, "optimizer steps"),
    "--batch-size": ("batch_size", int, "sequences per micro-batch per process"),
    "--grad-accum": ("grad_accum", int, "micro-batches per optimizer step"),
    "--seq-len": ("seq_len", int, "tokens per training sequence"),
    "--lr": ("lr", float, "peak learning rate"),
    "--warmup-steps": ("warmup_steps", int, "linear warmup steps"),
    "--save-every": ("save_every", int, "checkpoint every N steps"),
    "--eval-every": ("eval_every", int, "validate every N steps"),
    "--keep-last": ("keep_last", int, "checkpoints to keep (the best is always kept)"),
    "--log-every": ("log_every", int, "log metrics every N steps"),
    "--seed": ("seed", int, "random seed"),
    "--dtype": ("dtype", str, "auto | fp32 | bf16 (autocast)"),
}


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="F", help="YAML file of training settings (flags override it)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --out"
    )
    for flag, (_, kind, help) in TRAIN_FLAGS.items():
        p.add_argument(flag, type=kind, help=help)
    p.add_argument(
        "--fsdp",
        action="store_true",
        default=None,
        help="shard parameters with FSDP2 (under torchrun)",
    )
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def train_config_from_args(args, **overrides):
    from instructgen.config import from_dict, load_yaml
    from instructgen.train.loop import TrainConfig

    values = load_yaml(args.config) if args.config else {}
    source = args.config or "command line"
    for flag, (name, _, _) in TRAIN_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            values[name] = value
    for name in ("fsdp", "compile"):
        if getattr(args, name):
            values[name] = True
    values.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(TrainConfig, values, source=source)


def cmd_pretrain(args) -> None:
    from instructgen.train.pretrain import pretrain

    config = train_config_from_args(args, objective=args.objective)
    summary = pretrain(
        args.model, args.data, args.out, config, resume=args.resume, show_progress=not args.quiet
    )
    if _is_main_process():
        last = next((r for r in reversed(summary["metrics"]) if "val_loss" in r), {})
        print(
            f"pretrained {summary['steps']} steps; validation loss {last.get('val_loss', float('nan')):.4f} (ppl {last.get('val_ppl', float('nan')):.2f}) -> {args.out}"
        )


def cmd_finetune(args) -> None:
    from instructgen.train.sft import SFTOptions, finetune

    config = train_config_from_args(args, early_stopping_patience=args.early_stopping)
    options = SFTOptions(
        template=args.template,
        lora=args.lora,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_targets=args.lora_targets or [],
        merge=args.merge,
        packing=not args.no_packing,
        val_data=args.val_data,
    )
    if args.merge and not args.lora:
        raise UserError("--merge needs --lora")
    summary = finetune(
        args.model,
        args.data,
        args.out,
        config,
        options,
        resume=args.resume,
        show_progress=not args.quiet,
    )
    if _is_main_process():
        best = summary["best"]
        note = " (stopped early)" if summary["stopped_early"] else ""
        print(
            f"fine-tuned {summary['steps']} steps{note}; best validation loss {best['val_loss']:.4f} at step {best['step']} -> {args.out}"
        )


def _is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


def cmd_quickstart(args) -> None:
    from instructgen.quickstart import quickstart

    quickstart(args.out, fast=args.fast, show_progress=not args.quiet)


# ----------------------------------------------------------------------------------------------
# safety


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
        _print_json(reports if args.field else reports[0])
    else:
        for report in reports:
            print(batch.format_report(report, source))
    return 1 if any(r["flagged"] for r in reports) else 0


# ----------------------------------------------------------------------------------------------
# eval


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
    _print_json(result)


def cmd_eval(args) -> None:
    raise UserError(
        "evaluation suites (--suite) are not part of this release yet; `instructgen eval metrics` and `instructgen eval ifeval-score` are"
    )


# ----------------------------------------------------------------------------------------------
# the parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="instructgen",
        description="Instruction-following generation with large language models, end to end.",
        epilog="example:\n  instructgen quickstart --out runs/quickstart --fast\n\nRun `instructgen VERB --help` for each verb's flags and an example.",
    )
    parser.add_argument("--version", action="version", version=f"instructgen {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    # tokenizer
    tokenizer = verbs.add_parser("tokenizer", help="train a byte-level BPE tokenizer")
    tsub = tokenizer.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    p = _add(
        tsub,
        "train",
        cmd_tokenizer_train,
        "train a byte-level BPE tokenizer on text/JSONL files",
        "instructgen tokenizer train --input corpus.txt --vocab-size 4096 --out tok/",
    )
    p.add_argument(
        "--input", nargs="+", required=True, metavar="F", help="text (.txt) or JSONL files"
    )
    p.add_argument("--vocab-size", type=int, required=True, metavar="N")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--text-field", default="text", help="JSONL field holding the text (default: text)"
    )
    p.add_argument("--min-frequency", type=int, default=2, help="minimum pair count for a merge")
    p.add_argument("--quiet", action="store_true")

    # model
    model = verbs.add_parser("model", help="create or inspect a model directory")
    msub = model.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    p = _add(
        msub,
        "init",
        cmd_model_init,
        "create a randomly initialised model directory (a Hugging Face checkpoint)",
        "instructgen model init --arch llama --preset tiny --tokenizer tok/ --out runs/init",
    )
    p.add_argument("--arch", choices=["gpt2", "llama"], required=True)
    p.add_argument(
        "--preset", default="tiny", help="tiny | mini | small | medium | base (default: tiny)"
    )
    p.add_argument("--tokenizer", required=True, metavar="DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--config", metavar="F", help="YAML file of ModelConfig values that override the preset"
    )
    p.add_argument("--context-length", type=int, metavar="T")
    p.add_argument("--activation", choices=["relu", "gelu", "gelu_new", "silu"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing directory")
    p = _add(
        msub,
        "info",
        cmd_model_info,
        "print architecture, parameters, context length, vocabulary and dtype",
        "instructgen model info runs/quickstart/model",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON")

    # data
    data = verbs.add_parser(
        "data",
        help="corpus and instruction data: tokenize, builtin, validate, stats, convert, self-instruct",
    )
    dsub = data.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    p = _add(
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
    p.add_argument("--quiet", action="store_true")

    p = _add(
        dsub,
        "validate",
        cmd_data_validate,
        "check an instruction file (Alpaca, ShareGPT, messages, prompt/completion); every bad record is reported",
        "instructgen data validate train.jsonl",
    )
    p.add_argument("file", metavar="F", help=".jsonl, .json, .parquet or .csv")
    p = _add(
        dsub,
        "stats",
        cmd_data_stats,
        "counts, length percentiles, language mix and duplicate rate of an instruction file",
        "instructgen data stats train.jsonl --tokenizer runs/quickstart/model",
    )
    p.add_argument("file", metavar="F")
    p.add_argument("--tokenizer", metavar="DIR", help="also measure lengths in tokens")
    p = _add(
        dsub,
        "convert",
        cmd_data_convert,
        "convert an instruction file losslessly between formats",
        "instructgen data convert alpaca.json --to messages --out train.jsonl",
    )
    p.add_argument("file", metavar="F")
    p.add_argument("--to", required=True, choices=["messages", "alpaca", "sharegpt"])
    p.add_argument("--out", required=True, metavar="F")

    p = _add(
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
    p = _add(
        dsub,
        "self-instruct",
        cmd_data_self_instruct,
        "bootstrap instruction data from seed tasks with any OpenAI-compatible teacher (Self-Instruct); rerun the same command to resume",
        "instructgen data self-instruct --teacher http://127.0.0.1:8000/v1 --seed-tasks seed_tasks.jsonl --num 100 --out si.jsonl",
    )
    p.add_argument(
        "--teacher",
        required=True,
        metavar="URL",
        help="base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1",
    )
    p.add_argument(
        "--seed-tasks",
        required=True,
        metavar="F",
        help="Self-Instruct seed tasks JSONL (or Alpaca records)",
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

    # pretrain
    p = _add(
        verbs,
        "pretrain",
        cmd_pretrain,
        "pretrain a model directory on token shards (clm, mlm, prefix or a multitask mixture)",
        "instructgen pretrain --model runs/init --data shards/ --objective clm --out runs/pretrained --max-steps 500",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="model directory to start from (`instructgen model init`)",
    )
    p.add_argument("--data", metavar="DIR", help="token shards (`instructgen data tokenize`)")
    p.add_argument(
        "--objective",
        choices=["clm", "mlm", "prefix", "mixture"],
        help="training objective (default: clm, or the config's)",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    _add_train_flags(p)

    # eval
    ev = _add(
        verbs,
        "eval",
        cmd_eval,
        "evaluate: metrics on prediction files, verifiable instruction checks",
        "instructgen eval metrics --predictions pred.txt --references ref.txt --metrics bleu,rouge,meteor",
    )
    esub = ev.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    p = _add(
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
    p = _add(
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

    # finetune
    p = _add(
        verbs,
        "finetune",
        cmd_finetune,
        "instruction fine-tuning (full or LoRA) of an instructgen or any Hugging Face causal LM; loss on the assistant's tokens only",
        "instructgen finetune --model runs/pretrained --data builtin --out runs/tuned --max-steps 600\n  instructgen finetune --model path/to/hf-model --data my.jsonl --template alpaca --lora --merge --out runs/lora",
    )
    p.add_argument(
        "--model", required=True, metavar="DIR", help="instructgen or Hugging Face model directory"
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="F|builtin",
        help="instruction file (Alpaca, ShareGPT, messages, prompt/completion) or `builtin`",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--val-data", metavar="F", help="validation file (default: 5%% of --data held out)"
    )
    p.add_argument(
        "--template",
        metavar="NAME",
        help="chatml | alpaca | a .jinja file (default: the tokenizer's template, else chatml)",
    )
    p.add_argument(
        "--lora", action="store_true", help="train a LoRA adapter (peft) instead of all weights"
    )
    p.add_argument("--lora-r", type=int, default=8, metavar="R")
    p.add_argument("--lora-alpha", type=int, default=16, metavar="A")
    p.add_argument(
        "--lora-targets",
        nargs="+",
        metavar="MODULE",
        help="module names to adapt (default: peft's choice for the architecture)",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="with --lora: write a plain merged model directory (adapter kept in OUT/adapter)",
    )
    p.add_argument(
        "--no-packing", action="store_true", help="one example per row instead of packing"
    )
    p.add_argument(
        "--early-stopping",
        type=int,
        metavar="N",
        help="stop after N evaluations without improvement",
    )
    _add_train_flags(p)

    # quickstart
    p = _add(
        verbs,
        "quickstart",
        cmd_quickstart,
        "the whole pipeline on the built-in world: data, tokenizer, pretraining, fine-tuning, evaluation of base vs tuned, report",
        "instructgen quickstart --out runs/quickstart          # about 15 minutes on a laptop CPU\n  instructgen quickstart --out runs/qs-fast --fast     # a minutes-scale version",
    )
    p.add_argument(
        "--out",
        default="runs/quickstart",
        metavar="DIR",
        help="output directory (default: runs/quickstart); a re-run reuses finished stages",
    )
    p.add_argument(
        "--fast", action="store_true", help="a small, minutes-scale version (tests, a first look)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    # safety
    safety = verbs.add_parser("safety", help="PII redaction and moderation")
    ssub = safety.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    p = _add(
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
    p = _add(
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

    for verb, help in _PLANNED.items():
        p = verbs.add_parser(verb, help=f"{help} (not in this release yet)", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(handler=_planned)
    return parser


# Verbs of the command-line contract (DESIGN.md) that later releases bring.
_PLANNED = {
    "generate": "generate from a model directory, a Hugging Face model or an OpenAI-compatible URL",
    "chat": "chat in the terminal",
    "serve": "OpenAI-compatible HTTP server with a web chat page",
    "app": "writing assistant, customer-service bot, personalized content",
}


def _planned(args) -> int:
    raise UserError(f"`instructgen {args.verb}` is not part of instructgen {__version__} yet")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0 if args.verb is None else 2
    try:
        return args.handler(args) or 0
    except UserError as exc:
        print(f"instructgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("instructgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
