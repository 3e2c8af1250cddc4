"""The `instructgen` command: parses arguments, calls the library, prints.

Every verb exits 0 on success and 2 on a user mistake, with one line that names the file, line
and field; tracebacks are for bugs only. Each verb group lives in its own module here and
registers its parsers; the handlers import the library lazily, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from instructgen import __version__
from instructgen.cli import apps, data, evaluation, generation, models, safety, serving, training
from instructgen.cli.common import Parser
from instructgen.errors import UserError

# ----------------------------------------------------------------------------------------------
# the parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="instructgen",
        description="Instruction-following generation with large language models, end to end.",
        epilog="example:\n  instructgen quickstart --out runs/quickstart --fast\n\nRun `instructgen VERB --help` for each verb's flags and an example.",
    )
    parser.add_argument("--version", action="version", version=f"instructgen {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)

    for group in (models, data, training, generation, serving, evaluation, apps, safety):
        group.register(verbs)

    return parser


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")  # "gpt2", "Qwen/Qwen2.5-0.5B"


def names_hub_model(value: object) -> bool:
    """A model argument that can only mean the Hugging Face hub: owner/name (or a bare name) that
    is no local path, and whose first part is no local directory either (so a mistyped
    runs/qs/model, or runs/typo, stays a local path)."""
    if not isinstance(value, str) or not _HUB_ID.fullmatch(value) or value.endswith("."):
        return False
    return not Path(value).exists() and not Path(value.split("/")[0]).exists()


def _offline_unless_hub(args: argparse.Namespace) -> None:
    """instructgen runs as if HF_HUB_OFFLINE=1 unless the user set the variable or names a hub
    model: a mistyped path then fails at once instead of after a minute of hub retries."""
    if "HF_HUB_OFFLINE" in os.environ:
        return
    values = [getattr(args, name, None) for name in ("model", "models", "tokenizer")]
    flat = [v for value in values for v in (value if isinstance(value, list) else [value])]
    if not any(names_hub_model(v) for v in flat):
        os.environ["HF_HUB_OFFLINE"] = "1"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0 if args.verb is None else 2
    _offline_unless_hub(args)
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
