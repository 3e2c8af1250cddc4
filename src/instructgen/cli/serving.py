"""`instructgen serve`: the OpenAI-compatible server."""

from __future__ import annotations

from instructgen.cli.common import add


def cmd_serve(args) -> None:
    from instructgen.serve.__main__ import run_from_args

    run_from_args(args)  # blocks until Ctrl-C


def register(verbs) -> None:
    from instructgen.serve.__main__ import add_arguments  # argparse only: cheap to import

    p = add(
        verbs,
        "serve",
        cmd_serve,
        "OpenAI-compatible HTTP server (completions, chat, streaming, continuous batching) with a web chat page",
        "instructgen serve --model runs/quickstart/model --port 8000 --api-key sk-local",
    )
    add_arguments(p)
