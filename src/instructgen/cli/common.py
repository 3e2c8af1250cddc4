"""Shared pieces of the command line: the parser class, verb registration, training flags."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path

Handler = Callable[[argparse.Namespace], int | None]


class Parser(argparse.ArgumentParser):
    """argparse with examples kept verbatim in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """One line, exit 2 (argparse would print the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def add(sub, name: str, handler: Handler, help: str, example: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}")
    p.set_defaults(handler=handler)
    return p


def print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


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


def add_model_flags(
    p: argparse.ArgumentParser, *, required: bool = True, served_model: bool = True
) -> None:
    """--model DIR|URL, --backend, --api-key (and --served-model): the flags of a command that
    talks to any backend (inference.load)."""
    p.add_argument(
        "--model",
        required=required,
        metavar="DIR|URL",
        help="model directory, Hugging Face model name, or OpenAI-compatible base URL",
    )
    p.add_argument(
        "--backend",
        choices=["native", "hf", "openai"],
        help="default: openai for URLs, native for instructgen/GPT-2/Llama/Qwen2 directories, else hf",
    )
    p.add_argument(
        "--api-key", metavar="KEY", help="API key for --model URL (default: $OPENAI_API_KEY)"
    )
    if served_model:
        p.add_argument(
            "--served-model",
            metavar="NAME",
            help="model name to request from a URL (default: the first it lists)",
        )


def add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="F", help="YAML file of training settings (flags override it)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --out"
    )
    add_force_flag(p)
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


def is_main_process() -> bool:
    """Rank 0 under torchrun (or the only process): the one that prints."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def add_force_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out (everything in it, old checkpoints included)",
    )


def claim_out_dir(path: str | Path, *, force: bool, resume: bool | None = None) -> None:
    """The --out of a verb that writes a directory: an existing non-empty one holds another run,
    so it is refused unless --resume continues it or --force replaces it (removed first, with
    the old run's checkpoints, so a later --resume cannot continue the wrong run).
    `resume` is None for a verb that cannot resume."""
    from instructgen.errors import UserError

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a directory", file=str(out))
    if resume or not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        hint = "--force to replace it" if resume is None else "--resume or --force"
        raise UserError(f"already exists and is not empty (use {hint})", file=str(out))
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise UserError("--force would remove the current directory", file=str(out))
    if is_main_process():
        shutil.rmtree(out)
