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

    out = train_tokenizer(args.input, args.vocab_size, args.out, text_field=args.text_field, min_frequency=args.min_frequency, show_progress=not args.quiet)
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
        raise ModelDirError("already exists and is not empty (use --force to replace it)", file=str(out))
    if not Path(args.tokenizer).is_dir():
        raise ModelDirError("tokenizer directory not found", file=args.tokenizer)
    tok = Tokenizer.from_dir(args.tokenizer)
    values = preset(args.arch, args.preset)
    values.update(vocab_size=64 * -(-len(tok) // 64), bos_token_id=tok.bos_id, eos_token_id=tok.eos_id, pad_token_id=tok.pad_id)
    if args.context_length:
        values["max_seq_len"] = args.context_length
    if args.activation:
        values["activation"] = args.activation
    if args.config:
        values.update(load_yaml(args.config))
    config = from_dict(ModelConfig, values, source=args.config or "model init")
    torch.manual_seed(args.seed)
    model = Transformer(config)
    save_model(model, out, tokenizer=tok, provenance={"init": {"arch": args.arch, "preset": args.preset, "seed": args.seed}})
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
    tsub = tokenizer.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    p = _add(tsub, "train", cmd_tokenizer_train, "train a byte-level BPE tokenizer on text/JSONL files", "instructgen tokenizer train --input corpus.txt --vocab-size 4096 --out tok/")
    p.add_argument("--input", nargs="+", required=True, metavar="F", help="text (.txt) or JSONL files")
    p.add_argument("--vocab-size", type=int, required=True, metavar="N")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    p.add_argument("--min-frequency", type=int, default=2, help="minimum pair count for a merge")
    p.add_argument("--quiet", action="store_true")

    # model
    model = verbs.add_parser("model", help="create or inspect a model directory")
    msub = model.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    p = _add(msub, "init", cmd_model_init, "create a randomly initialised model directory (a Hugging Face checkpoint)", "instructgen model init --arch llama --preset tiny --tokenizer tok/ --out runs/init")
    p.add_argument("--arch", choices=["gpt2", "llama"], required=True)
    p.add_argument("--preset", default="tiny", help="tiny | mini | small | medium | base (default: tiny)")
    p.add_argument("--tokenizer", required=True, metavar="DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--config", metavar="F", help="YAML file of ModelConfig values that override the preset")
    p.add_argument("--context-length", type=int, metavar="T")
    p.add_argument("--activation", choices=["relu", "gelu", "gelu_new", "silu"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing directory")
    p = _add(msub, "info", cmd_model_info, "print architecture, parameters, context length, vocabulary and dtype", "instructgen model info runs/quickstart/model")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON")

    for verb, help in _PLANNED.items():
        p = verbs.add_parser(verb, help=f"{help} (not in this release yet)", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(handler=_planned)
    return parser


# Verbs of the command-line contract (DESIGN.md) that later releases bring.
_PLANNED = {
    "data": "instruction and corpus data: builtin, tokenize, validate, stats, convert, self-instruct",
    "pretrain": "pretrain a model (clm, mlm, prefix, mixture objectives)",
    "finetune": "instruction fine-tuning, full or LoRA",
    "generate": "generate from a model directory, a Hugging Face model or an OpenAI-compatible URL",
    "chat": "chat in the terminal",
    "serve": "OpenAI-compatible HTTP server with a web chat page",
    "eval": "evaluation suites and metrics",
    "quickstart": "the whole pipeline on the built-in task world",
    "app": "writing assistant, customer-service bot, personalized content",
    "safety": "moderation and PII redaction",
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
