"""The server's command-line flags, their one definition, and serving as they say.

`instructgen serve` (cli/serving.py) builds its sub-parser with `add_arguments` and adds the
flags that choose application extensions; `python -m instructgen.serve` (serve/__main__.py) is
the same flags without applications. Both serve through `run_from_args`. Only argparse and os
load here, so building a parser stays fast.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["API_KEY_ENV", "EXAMPLE", "SUMMARY", "add_arguments", "api_keys", "run_from_args"]

SUMMARY = (
    "OpenAI-compatible HTTP server (completions, chat, streaming, continuous batching) "
    "with a web chat page"
)
EXAMPLE = "instructgen serve --model runs/quickstart/model --port 8000 --api-key sk-local"
API_KEY_ENV = "INSTRUCTGEN_API_KEY"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve flags, on `instructgen serve` and on `python -m instructgen.serve` alike."""
    _add_model_arguments(parser)
    _add_http_arguments(parser)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """What is served and how the engine runs it."""
    parser.add_argument("--model", required=True, metavar="DIR", help="model directory to serve")
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
        "--prefix-cache-mb",
        type=float,
        default=256,
        metavar="N",
        help="memory (MiB) for the keys and values of prompt prefixes reused across requests, "
        "e.g. a shared system prompt (default 256; 0 turns prefix caching off)",
    )
    parser.add_argument(
        "--quantize",
        choices=["none", "int8"],
        help="int8: weight-only int8 linear layers (per-channel scales): faster decoding, "
        "a quarter of the weight memory read per token (default: none, float weights)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads (default: every core up to 4 cores, else cores - 1)",
    )


def _add_http_arguments(parser: argparse.ArgumentParser) -> None:
    """Who may connect, and the limits every request meets."""
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
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument(
        "--moderation",
        metavar="F",
        help="YAML moderation policy (instructgen.safety): blocked requests get a 400 refusal",
    )


def api_keys(flag_keys: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> list[str]:
    """The keys the server accepts: those of --api-key, else the comma-separated keys of
    $INSTRUCTGEN_API_KEY with surrounding whitespace stripped; none (no key required) when the
    variable is unset, empty or blank."""
    if flag_keys:
        return list(flag_keys)
    value = (os.environ if environ is None else environ).get(API_KEY_ENV, "")
    return [key.strip() for key in value.split(",") if key.strip()]


def run_from_args(args: argparse.Namespace, extensions: Sequence[Any] = ()) -> None:
    """Serve as the flags say, with these extensions (serve.extensions.Extension), until Ctrl-C."""
    from instructgen.serve.app import run

    run(
        args.model,
        host=args.host,
        port=args.port,
        api_keys=api_keys(args.api_key),
        served_model_name=args.served_model_name,
        aliases=args.alias,
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        max_body_mb=args.max_body_mb,
        threads=args.threads,
        log_level=args.log_level,
        moderation=args.moderation,
        extensions=extensions,
        body_timeout=args.body_timeout,
        header_timeout=args.header_timeout,
        public_metrics=args.public_metrics,
        shutdown_grace=args.shutdown_grace,
        prefix_cache_mb=args.prefix_cache_mb,
        quantize=args.quantize,
    )
