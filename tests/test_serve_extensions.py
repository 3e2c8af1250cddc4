"""The server's extension interface (serve.extensions), its one flag table (serve.options) and
the API-key environment variable."""

from __future__ import annotations

import argparse
import subprocess
import sys

from instructgen.serve.extensions import Extension
from instructgen.serve.options import add_arguments, api_keys


def demo_extension(built: list[str]) -> Extension:
    def router():
        from fastapi import APIRouter
        from fastapi.responses import HTMLResponse

        built.append("demo")
        routes = APIRouter()

        @routes.get("/demo")
        def page() -> HTMLResponse:
            return HTMLResponse("<p>demo</p>")

        @routes.get("/demo/data")
        def data() -> dict[str, int]:
            return {"answer": 42}

        return routes

    return Extension("demo", router, pages={"demo": "/demo"}, public_paths=("/demo",))


def test_an_extension_answers_its_routes_and_only_its_public_paths_skip_the_key(llama_dir):
    from fastapi.testclient import TestClient

    from instructgen.serve.app import create_app

    built: list[str] = []
    app = create_app(llama_dir, api_keys=["sk-ext"], extensions=[demo_extension(built)])
    assert built == ["demo"]  # the router is built once, with the app
    client = TestClient(app)  # no lifespan: the model is never loaded
    page = client.get("/demo")
    assert page.status_code == 200 and page.text == "<p>demo</p>"
    denied = client.get("/demo/data")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    key = {"Authorization": "Bearer sk-ext"}
    assert client.get("/demo/data", headers=key).json() == {"answer": 42}
    assert client.get("/support").status_code == 401  # no application is mounted by name
    assert client.get("/").status_code == 200  # the server's own page stays open


def test_the_api_key_variable_is_split_stripped_and_empty_means_none():
    assert api_keys(environ={"INSTRUCTGEN_API_KEY": " sk-a , sk-b,, "}) == ["sk-a", "sk-b"]
    assert api_keys(environ={"INSTRUCTGEN_API_KEY": "  "}) == []
    assert api_keys(environ={"INSTRUCTGEN_API_KEY": ""}) == []
    assert api_keys(environ={}) == []
    assert api_keys(["sk-flag"], environ={"INSTRUCTGEN_API_KEY": "sk-env"}) == ["sk-flag"]


def test_the_api_key_variable_reaches_the_support_bot_stripped(monkeypatch, tmp_path):
    """`instructgen serve --support-kb` gives the bot the server's first key, parsed as the
    server parses it."""
    from instructgen.cli import build_parser
    from instructgen.cli.serving import _support_extension

    kb = tmp_path / "faq.jsonl"
    kb.write_text('{"question": "Is shipping free?", "answer": "Yes."}\n', encoding="utf-8")
    monkeypatch.setenv("INSTRUCTGEN_API_KEY", " sk-env ")
    args = build_parser().parse_args(
        ["serve", "--model", "m", "--support-kb", str(kb), "--support-db", ":memory:"]
    )
    ext = _support_extension(args)
    assert ext.name == "support" and list(ext.public_paths) == ["/support"]
    from instructgen.apps import support

    bots = []
    monkeypatch.setattr(support, "support_router", bots.append)
    ext.router()
    assert bots[0].llm.client.api_key == "sk-env"


def flags(parser: argparse.ArgumentParser) -> dict[str, tuple]:
    return {
        a.option_strings[0]: (a.default, a.help, a.metavar)
        for a in parser._actions
        if a.option_strings and a.dest != "help"
    }


def test_both_entry_points_take_the_same_serve_flags():
    from instructgen.cli import build_parser

    serve = argparse.ArgumentParser()
    add_arguments(serve)
    verbs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    cli = flags(verbs.choices["serve"])
    assert {k: v for k, v in cli.items() if not k.startswith("--support-")} == flags(serve)
    result = subprocess.run(
        [sys.executable, "-m", "instructgen.serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "--header-timeout" in result.stdout
    assert "--support-kb" not in result.stdout
