"""`instructgen app support|write|personalize ...`."""

from __future__ import annotations

import sys

from instructgen.cli.common import Parser, add, add_model_flags, print_json
from instructgen.errors import ConfigError, DataError


def _llm(args):
    from instructgen.apps.common import open_llm

    return open_llm(args.model, args.backend, api_key=args.api_key)


def _read_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        with open(source, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", file=source) from None


def _length(value: str | None):
    if not value:
        return None
    try:
        if "-" in value:
            lo, hi = value.split("-", 1)
            return int(lo), int(hi)
        return int(value)
    except ValueError:
        raise ConfigError(f"expected N or MIN-MAX, got {value!r}", field="--length") from None


def _items(value: str | None) -> list[str]:
    from instructgen.apps.common import split_list

    return split_list(value)


# ----------------------------------------------------------------------------------------------
# support


def cmd_app_support(args) -> int:
    from instructgen.apps import KnowledgeBase, SupportBot, evaluate_support

    llm = _llm(args)
    if args.eval:
        print_json(
            evaluate_support(llm, seed=args.seed, limit=args.limit, min_score=args.min_score)
        )
        return 0
    if not args.kb:
        raise ConfigError("--kb F is required (or --eval)", field="--kb")
    import uuid

    bot = SupportBot(
        llm,
        KnowledgeBase.load(args.kb),
        db=args.db,
        shop=args.shop or "",
        min_score=args.min_score,
        max_tokens=args.max_tokens,
    )
    session = args.session or f"cli-{uuid.uuid4().hex[:8]}"
    user = {k: v for k, v in (("name", args.user_name), ("tier", args.user_tier)) if v} or None
    stored = bot.store.get(session)
    print(
        f"session {session}" + (" (resumed)" if stored else "") + " — /quit or Ctrl-D to leave",
        file=sys.stderr,
    )
    interactive = sys.stdin.isatty()
    try:
        while True:
            try:
                line = input("you> " if interactive else "")
            except EOFError:
                break
            if line.strip() in ("/quit", "/exit"):
                break
            if not line.strip():
                continue
            reply = bot.reply(session, line, user=user)
            user = None  # stored with the session after the first turn
            note = "  [escalated to a human agent]" if reply.escalated else ""
            print(f"bot> {reply.text}{note}", flush=True)
    finally:
        bot.close()
    return 0


# ----------------------------------------------------------------------------------------------
# write


def _print_draft(result, as_json: bool) -> int:
    if as_json:
        print_json(result.to_dict())
    else:
        print(result.text)
        status = "passed" if result.passed else "FAILED: " + "; ".join(result.failures)
        print(f"[{result.attempts} attempt(s), checks {status}]", file=sys.stderr)
    return 0 if result.passed else 1


def cmd_app_write_draft(args) -> int:
    from instructgen.apps import draft

    result = draft(
        _llm(args),
        args.topic,
        _items(args.outline),
        length=_length(args.length),
        tone=args.tone,
        language=args.language,
        keywords=_items(args.keywords),
        max_attempts=args.attempts,
        seed=args.seed,
    )
    return _print_draft(result, args.json)


def cmd_app_write_improve(args) -> int:
    from instructgen.apps import improve

    result = improve(_llm(args), _read_text(args.input))
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.revised)
        if result.suggestions:
            print("\nSuggestions:\n" + result.numbered())
    return 0


def cmd_app_write_continue(args) -> int:
    from instructgen.apps import continue_text

    result = continue_text(_llm(args), _read_text(args.input), words=args.words, seed=args.seed)
    return _print_draft(result, args.json)


# ----------------------------------------------------------------------------------------------
# personalize


def cmd_app_personalize(args) -> int:
    from instructgen.apps import load_catalog, load_profiles, personalize

    profiles = load_profiles(args.profiles)
    catalog = load_catalog(args.catalog) if args.catalog else None
    summary = personalize(
        _llm(args),
        profiles,
        args.task,
        args.out,
        catalog=catalog,
        workers=args.workers,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        seed=args.seed,
        progress=not args.quiet,
    )
    print_json(summary)
    return 0


def register(verbs) -> None:
    """`app` and its apps, one function each."""
    sub = _register_app(verbs)
    _register_support(sub)
    _register_write(sub)
    _register_personalize(sub)


def _register_app(verbs):
    """The `app` verb; returns its table of apps."""
    app = verbs.add_parser(
        "app", help="writing assistant, customer-service bot, personalized content"
    )
    return app.add_subparsers(dest="app", metavar="APP", required=True, parser_class=Parser)


def _register_support(sub) -> None:
    """`app support`: customer-service chat grounded in a knowledge base."""
    p = add(
        sub,
        "support",
        cmd_app_support,
        "customer-service chat grounded in a knowledge base (JSONL/CSV/Markdown), sessions in SQLite",
        "instructgen app support --kb faq.md --model runs/quickstart/model --user-name Ada --session s1",
    )
    add_model_flags(p, served_model=False)
    p.add_argument(
        "--kb", metavar="F", help="knowledge base: JSONL/CSV (id, question, answer) or Markdown"
    )
    p.add_argument("--session", metavar="ID", help="session id to resume (default: a new one)")
    p.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="longest answer (default: whatever the model's context leaves)",
    )
    p.add_argument("--db", metavar="F", default="support.db", help="SQLite file of the sessions")
    p.add_argument("--user-name", help="customer's name (personalises the answers)")
    p.add_argument("--user-tier", help="customer's tier, e.g. gold")
    p.add_argument("--shop", help="the shop's name, for the system prompt")
    p.add_argument(
        "--min-score",
        type=float,
        default=0.4,
        help="retrieval score (about the number of distinctive matching terms) below which the bot escalates",
    )
    p.add_argument(
        "--eval", action="store_true", help="evaluate on the built-in support set; print JSON"
    )
    p.add_argument("--seed", type=int, default=0, help="--eval: seed of the built-in world")
    p.add_argument(
        "--limit", type=int, help="--eval: at most N built-in cases (plus escalation cases)"
    )


def _register_write(sub) -> None:
    """`app write draft|improve|continue`: the writing assistant."""
    write = sub.add_parser("write", help="drafts, improvement suggestions, continuation")
    wsub = write.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    p = add(
        wsub,
        "draft",
        cmd_app_write_draft,
        "a draft from a topic and outline, regenerated until length, language and keywords check out (exit 1 if never)",
        'instructgen app write draft --model runs/quickstart/model --topic "spring" --outline "parks;rain" --length 80-150 --keywords cherry',
    )
    add_model_flags(p, served_model=False)
    p.add_argument("--topic", required=True)
    p.add_argument("--outline", help="outline points separated by ;")
    p.add_argument("--length", metavar="N|MIN-MAX", help="words (characters for Chinese)")
    p.add_argument("--tone", default="neutral")
    p.add_argument("--language", choices=["en", "zh"], default="en")
    p.add_argument("--keywords", help="required words separated by , or ;")
    p.add_argument("--attempts", type=int, default=3, help="generations at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p = add(
        wsub,
        "improve",
        cmd_app_write_improve,
        "a revised text plus numbered suggestions tied to character spans of the original",
        "instructgen app write improve essay.txt --model http://127.0.0.1:8000/v1",
    )
    add_model_flags(p, served_model=False)
    p.add_argument("input", nargs="?", default="-", metavar="F|-")
    p.add_argument("--json", action="store_true")
    p = add(
        wsub,
        "continue",
        cmd_app_write_continue,
        "continue a text in its style and language, checked for length (exit 1 if never)",
        "instructgen app write continue story.txt --words 150 --model runs/quickstart/model",
    )
    add_model_flags(p, served_model=False)
    p.add_argument("input", nargs="?", default="-", metavar="F|-")
    p.add_argument("--words", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")


def _register_personalize(sub) -> None:
    """`app personalize`: recommendations or marketing copy for many profiles."""
    p = add(
        sub,
        "personalize",
        cmd_app_personalize,
        "recommendations or marketing copy for many profiles (JSONL/CSV): checked, redacted, resumable",
        "instructgen app personalize --profiles users.jsonl --task recommend --catalog catalog.csv --out recs.jsonl --model runs/quickstart/model",
    )
    add_model_flags(p, served_model=False)
    p.add_argument("--profiles", required=True, metavar="F")
    p.add_argument("--task", required=True, choices=["recommend", "marketing"])
    p.add_argument("--out", required=True, metavar="F", help="JSONL output, appended (resumable)")
    p.add_argument("--catalog", metavar="F", help="JSONL/CSV with name and category")
    p.add_argument("--workers", type=int, default=4, help="concurrent requests to a URL backend")
    p.add_argument("--batch-size", type=int, default=8, help="profiles per batch on a local model")
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
