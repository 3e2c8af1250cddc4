"""The `instructgen` command: parses arguments, calls the library, prints.

Every verb exits 0 on success and 2 on a user mistake, with one line that names the file, line
and field; tracebacks are for bugs only. Each verb group lives in its own module here and
registers its parsers; the handlers import the library lazily, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
