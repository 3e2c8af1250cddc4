"""`instructgen serve`: the OpenAI-compatible server, with the applications its flags choose."""

from __future__ import annotations

from instructgen.cli.common import add


def cmd_serve(args) -> None:
    from instructgen.serve.options import run_from_args

    extensions = [_support_extension(args)] if args.support_kb else []
    run_from_args(args, extensions)  # until Ctrl-C


def _support_extension(args):
    """The customer-service bot (POST /support/sessions/{id}/messages, the page at /support),
    answering through this same server's API so its requests join the running batch."""
    from instructgen.apps.kb import KnowledgeBase
    from instructgen.apps.support import SupportBot, support_extension
    from instructgen.inference import load
    from instructgen.serve.options import api_keys

    kb = KnowledgeBase.load(args.support_kb)
    keys = api_keys(args.api_key)
    # a name the server accepts: its own when it is strict about names, any other otherwise
    name = args.served_model_name or (args.alias[0] if args.alias else "served")

    def bot() -> SupportBot:
        url = f"http://127.0.0.1:{args.port}/v1"
        llm = load(url, api_key=keys[0] if keys else None, model=name)
        return SupportBot(llm, kb, db=args.support_db, shop=args.support_shop)

    return support_extension(bot)


def register(verbs) -> None:
    from instructgen.serve.options import EXAMPLE, SUMMARY, add_arguments  # argparse only

    p = add(verbs, "serve", cmd_serve, SUMMARY, EXAMPLE)
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
