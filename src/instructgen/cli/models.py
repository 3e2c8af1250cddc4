"""`instructgen tokenizer ...` and `instructgen model ...`."""

from __future__ import annotations

import json
from pathlib import Path

from instructgen.cli.common import (
    Parser,
    add,
    add_force_flag,
    claim_out_dir,
    print_json,
)
from instructgen.tokenizer import GRANULARITIES


def cmd_tokenizer_train(args) -> None:
    from instructgen.tokenizer import Tokenizer, train_tokenizer

    claim_out_dir(args.out, force=args.force)
    out = train_tokenizer(
        args.input,
        args.vocab_size,
        args.out,
        text_field=args.text_field,
        min_frequency=args.min_frequency,
        granularity=args.granularity,
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
    claim_out_dir(out, force=args.force)
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


def cmd_model_grow(args) -> None:
    from instructgen.model.checkpoint import check_model_dir
    from instructgen.model.grow import check_factor, grow_model_dir

    check_factor(args.factor)
    check_model_dir(args.model)
    claim_out_dir(args.out, force=args.force)
    stage = grow_model_dir(args.model, args.out, args.factor)
    before, after = stage["layers"]
    print(f"{before} -> {after} layers (the same outputs until trained) -> {args.out}")


def cmd_model_info(args) -> None:
    from instructgen.model.checkpoint import model_info

    info = model_info(args.dir)
    if args.json:
        print_json(info)
        return
    provenance = info.pop("provenance")
    width = max(map(len, info))
    for key, value in info.items():
        if key == "parameters":
            value = f"{value:,}"
        print(f"{key:<{width}}  {value}")
    if provenance:
        print(f"{'provenance':<{width}}  {json.dumps(provenance, ensure_ascii=False)}")


def register(verbs) -> None:
    # tokenizer
    tokenizer = verbs.add_parser("tokenizer", help="train a byte-level BPE tokenizer")
    tsub = tokenizer.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    p = add(
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
    add_force_flag(p)
    p.add_argument(
        "--granularity",
        choices=list(GRANULARITIES),
        default="words",
        help="the most one token may span: "
        + "; ".join(f"{k}: {v}" for k, v in GRANULARITIES.items()),
    )
    p.add_argument("--quiet", action="store_true")

    # model
    model = verbs.add_parser("model", help="create or inspect a model directory")
    msub = model.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    p = add(
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
    add_force_flag(p)
    p = add(
        msub,
        "grow",
        cmd_model_grow,
        "a deeper copy of a trained model that computes the same function (each block followed by copies with zero output projections), to train further",
        "instructgen model grow --model runs/base --factor 2 --out runs/base-deep",
    )
    p.add_argument("--model", required=True, metavar="DIR")
    p.add_argument(
        "--factor", type=int, default=2, help="layers are multiplied by this (default 2)"
    )
    p.add_argument("--out", required=True, metavar="DIR")
    add_force_flag(p)
    p = add(
        msub,
        "info",
        cmd_model_info,
        "print architecture, parameters, context length, vocabulary and dtype",
        "instructgen model info runs/quickstart/model",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
