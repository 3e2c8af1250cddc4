"""`instructgen pretrain`, `finetune`, `align` and `quickstart`."""

from __future__ import annotations

from instructgen.cli.common import (
    add,
    add_train_flags,
    claim_out_dir,
    is_main_process,
    train_config_from_args,
)
from instructgen.errors import UserError


def cmd_pretrain(args) -> None:
    from instructgen.train.pretrain import pretrain

    config = train_config_from_args(args, objective=args.objective)
    claim_out_dir(args.out, force=args.force, resume=args.resume)
    summary = pretrain(
        args.model, args.data, args.out, config, resume=args.resume, show_progress=not args.quiet
    )
    if is_main_process():
        last = next((r for r in reversed(summary["metrics"]) if "val_loss" in r), {})
        print(
            f"pretrained {summary['steps']} steps; validation loss {last.get('val_loss', float('nan')):.4f} (ppl {last.get('val_ppl', float('nan')):.2f}) -> {args.out}"
        )


def _tuning_options(args):
    from instructgen.train.sft import SFTOptions

    if args.merge and not args.lora:
        raise UserError("--merge needs --lora")
    return SFTOptions(
        template=args.template,
        lora=args.lora,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_targets=args.lora_targets or [],
        merge=args.merge,
        packing=not getattr(args, "no_packing", False),
        val_data=args.val_data,
        neftune_alpha=args.neftune_alpha,
        loss_average=args.loss_average,
    )


def _print_tuned(verb: str, summary: dict, out: str) -> None:
    if not is_main_process():
        return
    best = summary["best"]
    note = " (stopped early)" if summary["stopped_early"] else ""
    val = (
        f"best validation loss {best['val_loss']:.4f} at step {best['step']}"
        if best["step"] is not None
        else "no validation loss (no validation examples)"
    )
    last = next((r for r in reversed(summary["metrics"]) if "rewards/margins" in r), None)
    if last is not None:
        val += (
            f"; rewards/margins {last['rewards/margins']:.3f}, "
            f"rewards/accuracies {last['rewards/accuracies']:.2f}"
        )
    print(f"{verb} {summary['steps']} steps{note}; {val} -> {out}")


def _tune(args, verb: str, recipe, *extra) -> None:
    """Claim --out, run `recipe(model, data, out, config, options, *extra, ...)`, report."""
    config = train_config_from_args(args, early_stopping_patience=args.early_stopping)
    options = _tuning_options(args)
    claim_out_dir(args.out, force=args.force, resume=args.resume)
    summary = recipe(
        args.model,
        args.data,
        args.out,
        config,
        options,
        *extra,
        resume=args.resume,
        show_progress=not args.quiet,
    )
    _print_tuned(verb, summary, args.out)


def cmd_finetune(args) -> None:
    from instructgen.train.sft import finetune

    _tune(args, "fine-tuned", finetune)


def cmd_align(args) -> None:
    from instructgen.train.preference import PreferenceOptions, align

    preference = PreferenceOptions(method=args.method, beta=args.beta, orpo_lambda=args.orpo_lambda)
    _tune(args, f"aligned ({args.method})", align, preference)


def cmd_quickstart(args) -> None:
    from instructgen.quickstart import quickstart

    quickstart(
        args.out,
        fast=args.fast,
        scale=args.scale,
        from_scratch=args.from_scratch,
        align=args.align,
        show_progress=not args.quiet,
    )


def register(verbs) -> None:
    """The training verbs, one function each."""
    _register_pretrain(verbs)
    _register_finetune(verbs)
    _register_align(verbs)
    _register_quickstart(verbs)


def _register_pretrain(verbs) -> None:
    """`pretrain`: a model directory on token shards."""
    p = add(
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
    p.add_argument(
        "--data",
        metavar="DIR",
        help="token shards (`instructgen data tokenize`); not needed by --objective copy",
    )
    p.add_argument(
        "--objective",
        choices=["clm", "mlm", "prefix", "copy", "mixture"],
        help="training objective (default: clm, or the config's)",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    add_train_flags(p)


def _register_finetune(verbs) -> None:
    """`finetune`: instruction fine-tuning, full or LoRA."""
    p = add(
        verbs,
        "finetune",
        cmd_finetune,
        "instruction fine-tuning (full or LoRA) of an instructgen or any Hugging Face causal LM; loss on the assistant's tokens only",
        "instructgen finetune --model runs/pretrained --data builtin --out runs/tuned --max-steps 600\n  instructgen finetune --model path/to/hf-model --data my.jsonl --template alpaca --lora --merge --out runs/lora",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="F|builtin",
        help="instruction file (Alpaca, ShareGPT, messages, prompt/completion) or `builtin`",
    )
    p.add_argument(
        "--no-packing", action="store_true", help="one example per row instead of packing"
    )
    _add_tuning_flags(p)


def _register_align(verbs) -> None:
    """`align`: preference tuning (DPO or ORPO)."""
    p = add(
        verbs,
        "align",
        cmd_align,
        "preference tuning (DPO or ORPO, full or LoRA) on pairs of a chosen and a rejected answer",
        "instructgen align --model runs/tuned --data pairs.jsonl --method dpo --out runs/aligned --max-steps 200\n  instructgen align --model runs/tuned --data builtin --method orpo --out runs/orpo",
    )
    p.add_argument(
        "--data",
        required=True,
        metavar="F|builtin",
        help="preference pairs (prompt/chosen/rejected, TRL's formats; `instructgen data "
        "preferences` makes them), or `builtin` (the built-in world: its reference answer "
        "chosen, a neighbour's answer its checker rejects)",
    )
    p.add_argument("--method", choices=["dpo", "orpo"], default="dpo")
    p.add_argument(
        "--beta",
        type=float,
        default=0.1,
        metavar="B",
        help="DPO's beta: how strongly the policy is held to the reference (default 0.1); "
        "ORPO: the scale of the logged rewards",
    )
    p.add_argument(
        "--orpo-lambda",
        type=float,
        default=0.1,
        metavar="L",
        help="ORPO's lambda: the weight of the odds-ratio term beside the SFT loss (default 0.1)",
    )
    _add_tuning_flags(p)


def _register_quickstart(verbs) -> None:
    """`quickstart`: the built-in world end to end."""
    p = add(
        verbs,
        "quickstart",
        cmd_quickstart,
        "the built-in world end to end: data, fine-tuning of the shipped base (or, with --from-scratch, tokenizer and pretraining too), evaluation of base vs tuned, report",
        "instructgen quickstart --out runs/quickstart          # about 13 minutes on a 2-core CPU\n  instructgen quickstart --out runs/qs-fast --fast     # a smoke test of every stage\n  instructgen quickstart --out runs/qs-x2 --scale 2    # twice the fine-tuning steps\n  instructgen quickstart --out runs/qs-s --from-scratch  # pretrain the base too",
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
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="multiply the training steps of the copy drills, pretraining and fine-tuning (default 1; 2 takes about twice as long)",
    )
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="train the tokenizer and the base model too, instead of fine-tuning the shipped base (about 30 minutes on a 2-core CPU)",
    )
    p.add_argument(
        "--align",
        action="store_true",
        help="after fine-tuning, make preference pairs from the tuned model's own samples "
        "(checkers decide chosen and rejected) and run DPO; the aligned model is evaluated too",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_tuning_flags(p) -> None:
    """The flags finetune and align share: model, output, template, LoRA, NEFTune, training."""
    p.add_argument(
        "--model", required=True, metavar="DIR", help="instructgen or Hugging Face model directory"
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
        "--neftune-alpha",
        type=float,
        default=0.0,
        metavar="A",
        help="NEFTune: uniform noise of scale A/sqrt(tokens x width) on the input embeddings while training (default 0: off; 5 is common)",
    )
    p.add_argument(
        "--loss-average",
        default="token",
        metavar="{token,example,sqrt}",
        help="what the loss averages over: every answer token alike (default), every example alike however long its answer, or each example by the square root of its answer's tokens",
    )
    p.add_argument(
        "--early-stopping",
        type=int,
        metavar="N",
        help="stop after N evaluations without improvement",
    )
    add_train_flags(p)
