"""Applications on any instructgen LLM backend (a model directory, a Hugging Face model, an
OpenAI-compatible URL): a customer-service bot grounded in a knowledge base (support), a writing
assistant (writing) and personalized content in bulk (personalize).

    from instructgen.inference import load
    from instructgen.apps import KnowledgeBase, SupportBot
    bot = SupportBot(load("runs/quickstart/model"), KnowledgeBase.load("faq.jsonl"), db="s.db")
    bot.reply("session-1", "How long is the warranty?", user={"name": "Ada"}).text
"""

from instructgen.apps.kb import Entry, Hit, KnowledgeBase
from instructgen.apps.personalize import load_catalog, load_profiles, personalize
from instructgen.apps.sessions import SessionStore
from instructgen.apps.support import Reply, SupportBot, support_router
from instructgen.apps.support_eval import evaluate_support
from instructgen.apps.writing import Constraints, Draft, Improvement, continue_text, draft, improve

__all__ = [
    "Constraints",
    "Draft",
    "Entry",
    "Hit",
    "Improvement",
    "KnowledgeBase",
    "Reply",
    "SessionStore",
    "SupportBot",
    "continue_text",
    "draft",
    "evaluate_support",
    "improve",
    "load_catalog",
    "load_profiles",
    "personalize",
    "support_router",
]
