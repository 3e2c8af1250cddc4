"""`instructgen serve`: the OpenAI-compatible server."""

from __future__ import annotations

from instructgen.cli.common import add


def cmd_serve(args) -> None:
    from instructgen.serve.__main__ import run_from_args

    run_from_args(args, extend=_support_routes(args) if args.support_kb else None)  # until Ctrl-C


def _support_routes(args):
    """Mount the customer-service bot (POST /support/sessions/{id}/messages), answering through
    this same server's API so its requests join the running batch."""
    import os

    from instructgen.apps.kb import KnowledgeBase
    from instructgen.apps.support import SupportBot, support_router
    from instructgen.inference import load

    kb = KnowledgeBase.load(args.support_kb)
    keys = args.api_key or [k for k in os.environ.get("INSTRUCTGEN_API_KEY", "").split(",") if k]

    # a name the server accepts: its own when it is strict about names, any other otherwise
    name = args.served_model_name or (args.alias[0] if args.alias else "served")

    def extend(app) -> None:
        llm = load(
            f"http://127.0.0.1:{args.port}/v1", api_key=keys[0] if keys else None, model=name
        )
        app.include_router(
            support_router(SupportBot(llm, kb, db=args.support_db, shop=args.support_shop))
        )

    return extend


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
    p.add_argument(
        "--support-kb",
        metavar="F",
        help="also serve the customer-service bot over this knowledge base (JSONL/CSV/Markdown)",
    )
    p.add_argument(
        "--support-db", default="support.db", metavar="F", help="the bot's SQLite session store"
    )
    p.add_argument("--support-shop", default="", metavar="NAME", help="the shop the bot speaks for")
