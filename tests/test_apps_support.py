"""The customer-service bot: retrieval (en/zh, JSONL/CSV/Markdown), grounding and citations,
escalation, SQLite sessions and resume, PII never stored raw, moderation, the HTTP router and
the evaluation on the built-in support set — against a scripted model behind a real
OpenAI-compatible server, and a real local model directory for the plumbing."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from instructgen.apps import KnowledgeBase, SupportBot, evaluate_support, support_router
from instructgen.apps.kb import Hit
from instructgen.errors import DataError
from instructgen.inference import load
from tests.apps_scripted import ScriptedLLM, scripted_server, wide_model_dir

EN_KB = [
    {
        "id": "returns",
        "question": "How do I return an item?",
        "answer": "Items can be returned within 30 days of delivery.",
    },
    {
        "id": "warranty",
        "question": "How long is the warranty?",
        "answer": "The warranty on every kettle is 12 months.",
    },
    {
        "id": "shipping",
        "question": "Is shipping free?",
        "answer": "Shipping is free on orders over $49.",
    },
]
ZH_MD = """# 退货政策 {#returns}
签收后7天内可以无理由退货。

# 保修 {#warranty}
空气炸锅保修18个月。

# 客服时间
客服每天9点到21点在线。
"""


@pytest.fixture(scope="module")
def scripted():
    model = ScriptedLLM()
    with scripted_server(model) as url:
        yield model, load(url)


@pytest.fixture()
def en_kb(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in EN_KB), encoding="utf-8")
    return KnowledgeBase.load(path)


@pytest.fixture()
def zh_kb(tmp_path):
    path = tmp_path / "faq.md"
    path.write_text(ZH_MD, encoding="utf-8")
    return KnowledgeBase.load(path)


def test_retrieval_english_and_chinese(en_kb, zh_kb, tmp_path):
    assert en_kb.search("Can I return the kettle I bought?")[0].entry.id == "returns"
    assert en_kb.search("what's the warranty period")[0].entry.id == "warranty"
    assert [e.id for e in zh_kb.entries] == ["returns", "warranty", "3"]
    assert zh_kb.search("空气炸锅的保修期是多久？")[0].entry.id == "warranty"
    assert zh_kb.search("你们的客服几点在线？")[0].entry.id == "3"
    assert zh_kb.search("你们有实体店吗？") == []
    csv = tmp_path / "faq.csv"
    csv.write_text("id,question,answer\nh,Opening hours,We are open 9 to 5.\n", encoding="utf-8")
    assert KnowledgeBase.load(csv).search("when are you open?")[0].entry.id == "h"


def test_kb_errors_name_file_line_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "answer": "a"}\n{"id": "b", "question": "q"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'answer'"):
        KnowledgeBase.load(bad)
    with pytest.raises(DataError, match="not found"):
        KnowledgeBase.load(tmp_path / "missing.jsonl")


def test_grounded_answer_cites_retrieved_entries_only(scripted, en_kb):
    _, llm = scripted
    bot = SupportBot(llm, en_kb)
    reply = bot.reply(
        "s1", "How long is the warranty on the kettle?", user={"name": "Ada", "tier": "gold"}
    )
    assert not reply.escalated and reply.reason == "answered"
    assert reply.citations == ["warranty"]
    assert "12 months" in reply.text and "[kb:warranty]" in reply.text
    assert "[kb:made-up]" not in reply.text  # a citation of nothing retrieved is removed
    assert reply.text.startswith("Dear Ada")  # the profile reaches the model


def test_escalation_on_human_request_and_unknown_question(scripted, en_kb, zh_kb):
    model, llm = scripted
    bot = SupportBot(llm, en_kb)
    before = model.calls
    human = bot.reply("h1", "I'd like to speak to a person please")
    unknown = bot.reply("u1", "Do you sell gift cards?")
    zh = SupportBot(llm, zh_kb).reply("z1", "转人工")
    assert (human.escalated, human.reason) == (True, "user_request")
    assert (unknown.escalated, unknown.reason) == (True, "no_answer")
    assert "human agent" in unknown.text and unknown.citations == []
    assert zh.escalated and "人工客服" in zh.text
    assert model.calls == before  # nothing was invented: the model was not asked
    assert bot.store.escalated() == ["h1", "u1"]
    assert bot.store.get("u1")["escalation_reason"] == "no_answer"


def test_sessions_persist_and_resume(scripted, en_kb, tmp_path):
    _, llm = scripted
    db = tmp_path / "support.db"
    first = SupportBot(llm, en_kb, db=db)
    first.reply(
        "abc", "Is shipping free?", user={"name": "Bo", "tier": "silver", "history": ["kettle"]}
    )
    first.close()
    again = SupportBot(llm, en_kb, db=db)
    reply = again.reply("abc", "And the warranty?")
    assert reply.text.startswith("Dear Bo")  # the stored profile is used on resume
    session = again.store.get("abc")
    assert session["user"]["tier"] == "silver"
    assert [m["role"] for m in session["messages"]] == ["user", "assistant"] * 2
    assert session["messages"][1]["citations"] == ["shipping"]


def test_pii_is_never_stored_or_logged_raw(scripted, en_kb, tmp_path, caplog):
    _, llm = scripted
    db = tmp_path / "pii.db"
    bot = SupportBot(llm, en_kb, db=db)
    secrets = ("ada@example.com", "13812345678", "4111111111111111")
    with caplog.at_level(logging.INFO, logger="instructgen.apps.support"):
        bot.reply(
            "p1",
            f"My email is {secrets[0]}, phone {secrets[1]}, card {secrets[2]}. Is shipping free?",
            user={"name": "Ada", "email": secrets[0]},
        )
        bot.reply("p1", f"call me on {secrets[1]}, I want a human agent")
    bot.close()
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert "[EMAIL]" in dump and "[PHONE]" in dump
    for secret in secrets:
        assert secret not in dump
        assert secret not in caplog.text
    # the log holds ids and counts, none of what the customer wrote (redacted or not)
    assert "a message of" in caplog.text and "Is shipping free" not in caplog.text


def test_moderation_refuses_politely(scripted, en_kb):
    model, llm = scripted
    bot = SupportBot(llm, en_kb)
    before = model.calls
    reply = bot.reply("m1", "I will kill you if the refund is late")
    assert reply.refused and not reply.escalated and model.calls == before
    assert "can't" in reply.text.lower() or "cannot" in reply.text.lower()


def test_router_serves_messages(scripted, en_kb):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    _, llm = scripted
    app = FastAPI()
    app.include_router(support_router(SupportBot(llm, en_kb)))
    client = TestClient(app)
    r = client.post("/support/sessions/w1/messages", json={"message": "Is shipping free?"})
    assert r.status_code == 200 and r.json()["citations"] == ["shipping"]
    assert client.post("/support/sessions/w1/messages", json={"message": " "}).status_code == 400
    assert len(client.get("/support/sessions/w1").json()["messages"]) == 2
    assert client.get("/support/sessions/nope").status_code == 404


def test_evaluation_on_builtin_support_set(scripted):
    _, llm = scripted
    report = evaluate_support(llm, seed=0)
    print(json.dumps(report))
    assert report["answerable"] >= 30 and report["escalation_cases"] >= 18
    assert set(report["by_family"]) == {
        "faq_answer",
        "order_status",
        "complaint",
        "out_of_kb",
        "human_request",
    }
    assert report["accuracy"] >= 0.9
    assert report["correct_escalation_rate"] >= 0.9
    assert report["escalation_recall"] == 1.0


@pytest.fixture(scope="module")
def local_llm(tmp_path_factory, tokenizer_dir):
    with load(wide_model_dir(tmp_path_factory, tokenizer_dir)) as llm:
        yield llm


def test_local_model_directory_plumbing(local_llm, en_kb):
    bot = SupportBot(local_llm, en_kb, max_tokens=8)
    reply = bot.reply("l1", "How long is the warranty?", user={"name": "Ada"})
    assert reply.reason in ("answered", "moderation")
    if reply.reason == "answered":
        assert reply.citations and f"[kb:{reply.citations[0]}]" in reply.text


def test_prompt_fits_a_short_context(tmp_path, tokenizer_dir, en_kb):
    """On a 400-token model the bot drops old exchanges, then weaker entries, so that the answer
    keeps its room; the best entry and the message stay."""
    from tests.conftest import make_model_dir

    with load(make_model_dir(tmp_path / "short", tokenizer_dir, "llama", max_seq_len=400)) as llm:
        bot = SupportBot(llm, en_kb, k=3, min_score=0.0, max_tokens=24)
        session = {
            "id": "s",
            "user": {"name": "Ada"},
            "messages": [
                {"role": r, "content": "a long earlier message about kettles and orders " * 3}
                for r in ("user", "assistant") * 3
            ],
        }
        best = en_kb.search("How long is the warranty?")[0]
        hits = [best] + [Hit(e, 0.1) for e in en_kb.entries if e.id != "warranty"]
        assert (
            llm.room([{"role": "system", "content": bot.system_prompt({}, hits, "en")}]) < 24
        )  # all three entries leave the answer no room
        messages, kept = bot.conversation(session, hits, "How long is the warranty?", "en")
        assert llm.room(messages) >= 24
        assert kept[0].entry.id == "warranty" and len(kept) < 3
        assert messages[-1] == {"role": "user", "content": "How long is the warranty?"}
        assert [m["role"] for m in messages[:-1]] == ["system"]
        long_answer = SupportBot(llm, en_kb, max_tokens=200)  # brief instructions, a cut entry
        messages, kept = long_answer.conversation(session, hits, "How long is the warranty?", "en")
        assert messages[0]["content"].startswith("Answer the customer from these entries")
        assert (
            llm.room(messages) >= 200
            and kept[0].entry.answer
            == "The warranty on every kettle is 12 months."[: len(kept[0].entry.answer)]
        )
        bot.store.open("s2", {"name": "Ada"})
        for m in session["messages"]:
            bot.store.add("s2", m["role"], m["content"])
        reply = bot.reply("s2", "How long is the warranty?")  # no 400: the answer has its room
        assert reply.reason in ("answered", "moderation")


def test_cli_support_session_and_escalation(scripted, tmp_path):
    """`instructgen app support` in a real subprocess against the scripted model's URL."""
    import subprocess
    import sys

    model, llm = scripted
    kb = tmp_path / "faq.jsonl"
    kb.write_text("".join(json.dumps(r) + "\n" for r in EN_KB), encoding="utf-8")
    url = llm.base_url
    args = [
        sys.executable,
        "-m",
        "instructgen",
        "app",
        "support",
        "--model",
        str(url),
        "--kb",
        str(kb),
        "--db",
        str(tmp_path / "s.db"),
        "--session",
        "s1",
    ]
    result = subprocess.run(
        args,
        input="How long do refunds take?\nI want a human agent\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[kb:" in result.stdout and "escalated" in result.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "instructgen", "app", "support", "--model", str(url)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "--kb" in missing.stderr


def test_support_page_and_api_key_on_the_server_app(llama_dir, en_kb):
    """On `instructgen serve` the page is open but the bot's JSON routes need the server's key,
    and their errors come back in OpenAI's shape."""
    import re

    from fastapi.testclient import TestClient

    from instructgen.apps.support import support_extension
    from instructgen.serve.app import create_app

    bot = support_extension(lambda: SupportBot(None, en_kb))  # human requests need no model
    app = create_app(llama_dir, api_keys=["sk-page"], extensions=[bot])
    client = TestClient(app)  # no lifespan: the model is never loaded
    page = client.get("/support")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "data-state" in page.text and 'id="api-key"' in page.text
    assert not re.search(r"https?://|//cdn|@import|<link|src=", page.text)  # self-contained
    url = "/support/sessions/k1/messages"
    denied = client.post(url, json={"message": "I want to talk to a human"})
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/support/sessions/k1").status_code == 401
    key = {"Authorization": "Bearer sk-page"}
    human = client.post(url, json={"message": "I want to talk to a human"}, headers=key)
    assert human.status_code == 200 and human.json()["escalated"] is True
    assert client.get("/support/sessions/k1", headers=key).json()["escalated"] is True
    missing = client.get("/support/sessions/nope", headers=key)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no session 'nope'"
    empty = client.post(url, json={"message": " "}, headers=key)
    assert empty.status_code == 400 and "empty" in empty.json()["error"]["message"]
    assert client.get("/nowhere", headers=key).json()["error"]["message"].startswith("Invalid URL")
