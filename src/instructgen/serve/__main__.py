"""`python -m instructgen.serve --model DIR ...`: the server without the rest of the CLI.

`add_arguments` and `run_from_args` are what `instructgen serve` uses too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from instructgen.errors import UserError

__all__ = ["add_arguments", "main", "run_from_args"]

EXAMPLE = "example: instructgen serve --model runs/quickstart/model --port 8000 --api-key sk-local"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="model directory to serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accept this key (Authorization: Bearer KEY); repeat for several. Without it, "
        "INSTRUCTGEN_API_KEY is used if set, else no key is required",
    )
    parser.add_argument(
        "--served-model-name",
        metavar="NAME",
        help="the model's name in /v1/models (default: the directory's name); with it or "
        "--alias, requests must name the model or an alias",
    )
    parser.add_argument(
        "--alias", action="append", default=[], metavar="NAME", help="another accepted name"
    )
    parser.add_argument(
        "--max-batch", type=int, default=32, metavar="N", help="sequences decoded together"
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=256,
        metavar="N",
        help="requests waiting for a batch slot before new ones get 429",
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=8, metavar="N", help="request body limit (MiB)"
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds a request body may take to arrive before the request is closed with 408 "
        "(default 30)",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds a request's headers may take to arrive (from the connection opening or "
        "the previous response) before the server answers 408 and closes it (default 10)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=10.0,
        metavar="S",
        help="on SIGTERM or Ctrl-C, seconds running requests may take to finish before they "
        "end with an error event (default 10)",
    )
    parser.add_argument(
        "--public-metrics",
        action="store_true",
        help="serve /metrics and /openapi.json without the API key (default: behind it)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads (default: every core up to 4 cores, else cores - 1)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument(
        "--moderation",
        metavar="F",
        help="YAML moderation policy (instructgen.safety): blocked requests get a 400 refusal",
    )


def run_from_args(args: argparse.Namespace, extend=None) -> None:
    """Serve as the flags say; extend(app) may add routes before the server starts."""
    from instructgen.serve.app import run

    keys = args.api_key or [
        k.strip() for k in os.environ.get("INSTRUCTGEN_API_KEY", "").split(",") if k.strip()
    ]
    run(
        args.model,
        host=args.host,
        port=args.port,
        api_keys=keys,
        served_model_name=args.served_model_name,
        aliases=args.alias,
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        max_body_mb=args.max_body_mb,
        threads=args.threads,
        log_level=args.log_level,
        moderation=args.moderation,
        extend=extend,
        body_timeout=args.body_timeout,
        header_timeout=args.header_timeout,
        public_metrics=args.public_metrics,
        shutdown_grace=args.shutdown_grace,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m instructgen.serve",
        description="OpenAI-compatible HTTP server with a web chat page.",
        epilog=EXAMPLE,
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
