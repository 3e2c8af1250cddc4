"""`python -m instructgen.serve --model DIR ...`: the server without the rest of the CLI.

The flags are serve.options' (the same as `instructgen serve`'s, less the application ones).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from instructgen.errors import UserError
from instructgen.serve.options import EXAMPLE, SUMMARY, add_arguments, run_from_args

__all__ = ["add_arguments", "main", "run_from_args"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m instructgen.serve",
        description=SUMMARY,
        epilog=f"example:\n  {EXAMPLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_from_args(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
