"""A customer-service bot grounded in a knowledge base.

    bot = SupportBot(load("runs/quickstart/model"), KnowledgeBase.load("faq.jsonl"), db="support.db")
    r = bot.reply("s-42", "How long is the warranty?", user={"name": "Ada", "tier": "gold"})
    r.text, r.citations, r.escalated     # "... 12 months [kb:3]", ["3"], False

Each turn: moderate the message (polite refusal when flagged); escalate when the user asks for
a human or when no entry scores above `min_score`; otherwise answer from the k best entries,
citing them as [kb:ID]. Messages are redacted before they are stored, logged or sent on.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from instructgen import pages
from instructgen.apps.common import detect_lang
from instructgen.apps.kb import Hit, KnowledgeBase
from instructgen.apps.sessions import SessionStore, scrub
from instructgen.errors import UserError
from instructgen.safety import Policy, install_log_redaction, moderate, refusal
from instructgen.serve.extensions import Extension

log = logging.getLogger("instructgen.apps.support")

HUMAN_REQUEST = re.compile(
    r"转人工|人工客服|人工服务|找人工|接人工|真人客服|找真人|"
    r"\b(?:human|live|real)[\s-]+(?:agent|person|being|operator|representative)\b|"
    r"\b(?:speak|talk|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|someone|somebody)?"
    r"(?:human|person|agent|representative|operator|manager|real)\b|"
    r"\brepresentative\b",
    re.I,
)
MIN_ANSWER_TOKENS = 64  # what the context must leave for an answer when max_tokens is unset
MIN_ENTRY_CHARS = 40  # an entry's answer is never cut shorter than this to fit the context
_CITATION = re.compile(r"\[kb:([^\]\s]+)\]")

_TEXT = {
    "en": {
        "system": "You are the customer service assistant{shop}. Answer the customer's question "
        "using only the knowledge-base entries below, and cite each entry you use as [kb:ID]. "
        "If the entries do not answer it, say that you will pass the question to a human agent.",
        "brief": "Answer the customer{shop} from these entries; cite them as [kb:ID].",
        "customer": "Customer",
        "history": "Recent history",
        "entries": "Knowledge base",
        "human": "Of course. I'm passing this conversation to a human agent, who will reply to you here shortly.",
        "unknown": "I'm sorry, I couldn't find an answer to that in our help articles, so I've passed "
        "your question to a human agent, who will reply to you here shortly.",
    },
    "zh": {
        "system": "你是{shop}的客服助手。只根据下面的知识库条目回答顾客的问题，并用 [kb:ID] "
        "标注所用的条目。如果条目中没有答案，就告诉顾客会转交人工客服。",
        "brief": "根据下列条目回答{shop}顾客，用 [kb:ID] 标注。",
        "customer": "顾客",
        "history": "近期记录",
        "entries": "知识库",
        "human": "好的，正在为您转接人工客服，请稍候，客服会在这里回复您。",
        "unknown": "抱歉，知识库里没有找到这个问题的答案，已为您转交人工客服，请稍候。",
    },
}


@dataclass
class Reply:
    """One answer of the bot. reason: "answered" | "user_request" | "no_answer" | "moderation"."""

    session_id: str
    text: str
    reason: str
    citations: list[str] = field(default_factory=list)
    escalated: bool = False
    refused: bool = False
    scores: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SupportBot:
    """Grounded, personalised, escalating support over any instructgen LLM backend."""

    def __init__(
        self,
        llm: Any,
        kb: KnowledgeBase,
        *,
        db: str | Path = ":memory:",
        shop: str = "",
        k: int = 3,
        min_score: float = 0.4,
        max_history: int = 6,
        policy: Policy | None = None,
        max_tokens: int | None = None,  # None: whatever the model's context leaves
    ):
        self.llm, self.kb, self.shop = llm, kb, shop
        self.store = SessionStore(db)
        self.k, self.min_score, self.max_history = k, min_score, max_history
        self.policy = policy or Policy()
        self.max_tokens = max_tokens
        self._lock = threading.Lock()  # one turn at a time: local engines are not thread-safe
        install_log_redaction(log)

    def close(self) -> None:
        self.store.close()

    def reply(self, session_id: str, message: str, *, user: dict[str, Any] | None = None) -> Reply:
        """Answer one user message in session `session_id` (created or resumed)."""
        if not isinstance(message, str) or not message.strip():
            raise UserError("the message is empty", field="message")
        with self._lock:
            session = self.store.open(session_id, user)
            reply = self._turn(session, message)
            self.store.add(session_id, "user", message)
            self.store.add(session_id, "assistant", reply.text, reply.citations)
            if reply.escalated:
                self.store.escalate(session_id, reply.reason)
            log.info(  # ids and counts only: what customers write stays out of logs
                "session %s: a message of %d characters -> %s %s",
                ascii(session_id[:64]),
                len(message),
                reply.reason,
                reply.citations,
            )
            return reply

    def _turn(self, session: dict[str, Any], message: str) -> Reply:
        sid, lang = session["id"], detect_lang(message)
        text = _TEXT[lang]
        verdict = moderate(message, self.policy)
        if verdict.flagged:
            return Reply(sid, refusal(verdict, lang, self.policy), "moderation", refused=True)
        if HUMAN_REQUEST.search(message):
            return Reply(sid, text["human"], "user_request", escalated=True)
        clean = scrub(message)
        hits = self.kb.search(clean, self.k, self.min_score)
        if not hits:
            return Reply(sid, text["unknown"], "no_answer", escalated=True)
        messages, hits = self.conversation(session, hits, clean, lang)
        answer = self.llm.chat(messages, max_tokens=self.max_tokens, temperature=0.0).text.strip()
        verdict = moderate(answer, self.policy)
        if verdict.flagged:
            return Reply(sid, refusal(verdict, lang, self.policy), "moderation", refused=True)
        answer, cited = ground(answer, hits)
        return Reply(sid, scrub(answer), "answered", cited, scores=[h.score for h in hits])

    def conversation(
        self, session: dict[str, Any], hits: list[Hit], message: str, lang: str
    ) -> tuple[list[dict[str, str]], list[Hit]]:
        """The messages sent to the model and the entries they hold: the system prompt, recent
        history and the message, fitted to the model's context so that the answer keeps
        `max_tokens` (or MIN_ANSWER_TOKENS) tokens. What gives way, in order: the oldest
        exchanges, the lowest-scoring entries, the long instructions (for the brief ones), then
        the end of the best entry's answer; the message always stays."""
        history = [
            {"role": m["role"], "content": m["content"]}
            for m in session["messages"][-self.max_history :]
        ]
        need, brief = self.max_tokens or MIN_ANSWER_TOKENS, False
        while True:
            system = self.system_prompt(session["user"], hits, lang, brief=brief)
            messages = [{"role": "system", "content": system}, *history]
            messages.append({"role": "user", "content": message})
            room = self.llm.room(messages)
            if room is None or room >= need:
                return messages, hits
            answer = hits[0].entry.answer
            if history:
                history = history[2:] if len(history) > 1 else []
            elif len(hits) > 1:
                hits = hits[:-1]
            elif not brief:
                brief = True
            elif len(answer) > MIN_ENTRY_CHARS:
                cut = answer[: max(MIN_ENTRY_CHARS, len(answer) - (need - room))]
                hits = [replace(hits[0], entry=replace(hits[0].entry, answer=cut))]
            else:
                return messages, hits  # the model says the prompt is too long

    def system_prompt(
        self, user: dict[str, Any], hits: list[Hit], lang: str, *, brief: bool = False
    ) -> str:
        """Instructions (brief ones for a small context), the customer's profile (name, tier,
        history) and the retrieved entries."""
        text = _TEXT[lang]
        shop = (f" of {self.shop}" if lang == "en" else self.shop) if self.shop else ""
        lines = [text["brief" if brief else "system"].format(shop=shop)]
        profile = {k: v for k, v in user.items() if k != "history" and v not in (None, "")}
        if profile:
            sep = "：" if lang == "zh" else ": "
            lines.append(
                text["customer"] + sep + "; ".join(f"{k} {v}" for k, v in profile.items()) + "."
            )
        history = user.get("history")
        if history:
            items = history if isinstance(history, list) else [history]
            lines.append(text["history"] + ": " + "; ".join(str(h) for h in items[-5:]))
        lines.append(text["entries"] + ":")
        lines += [f"[kb:{h.entry.id}] {h.entry.question} — {h.entry.answer}" for h in hits]
        return "\n".join(lines)


def ground(answer: str, hits: list[Hit]) -> tuple[str, list[str]]:
    """Keep only citations of retrieved entries; cite the best entry when the answer cites none."""
    retrieved = {h.entry.id for h in hits}
    cited: list[str] = []

    def keep(m: re.Match) -> str:
        if m.group(1) in retrieved:
            if m.group(1) not in cited:
                cited.append(m.group(1))
            return m.group(0)
        return ""

    answer = re.sub(r"[ \t]{2,}", " ", _CITATION.sub(keep, answer)).strip()
    if not cited:
        cited = [hits[0].entry.id]
        answer = f"{answer} {hits[0].entry.cite()}".strip()
    return answer, cited


class MessageIn(BaseModel):
    """The body of POST /support/sessions/{id}/messages."""

    message: str
    user: dict[str, Any] | None = None


def support_router(bot: SupportBot):
    """A FastAPI router: POST /support/sessions/{id}/messages {"message", "user"?} → the reply;
    GET /support/sessions/{id} → the stored (redacted) session; GET /support → the web page
    (resume a session with /support?session=ID)."""
    from fastapi import APIRouter, HTTPException
    from fastapi.responses import HTMLResponse

    router = APIRouter()
    page = pages.page("instructgen.apps", "support.html")

    @router.get("/support", include_in_schema=False, name="support_page")
    def support_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.post("/support/sessions/{session_id}/messages")
    def post_message(session_id: str, body: MessageIn) -> dict[str, Any]:
        try:
            return bot.reply(session_id, body.message, user=body.user).to_dict()
        except UserError as exc:
            raise HTTPException(status_code=exc.status_code, detail=str(exc)) from None

    @router.get("/support/sessions/{session_id}")
    def get_session(session_id: str) -> dict[str, Any]:
        session = bot.store.get(session_id)
        if session is None:
            raise HTTPException(status_code=404, detail=f"no session {session_id!r}")
        return session

    return router


def support_extension(bot: Callable[[], SupportBot]) -> Extension:
    """The bot on `instructgen serve`: support_router's routes, its page at /support open without
    the API key (the page asks for the key and sends it), its JSON routes behind the key. bot()
    makes the bot when the server app is built."""
    return Extension(
        "support",
        lambda: support_router(bot()),
        pages={"customer-service": "/support"},
        public_paths=("/support",),
    )
