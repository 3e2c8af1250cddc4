"""Evaluate the support bot on a support set generated from the built-in world.

Cases come from the `faq_answer`, `order_status` and `complaint` families of
`instructgen.data.builtin.generate`: each record's FAQ or order records become a small knowledge
base (plus a complaints policy entry) and its question is asked with the customer's name in the
profile; the answer is scored by the record's checker. Out-of-KB questions and requests for a
human are added in both languages and must escalate.

    accuracy = answered cases that pass their checker / answerable cases
    correct_escalation_rate = cases whose escalated flag is what it should be / all cases
"""

from __future__ import annotations

import random
import re
from typing import Any

from instructgen.apps.kb import Entry, KnowledgeBase
from instructgen.apps.support import SupportBot
from instructgen.data.checkers import check

FAMILIES = ("faq_answer", "order_status", "complaint")

OUT_OF_KB = {
    "en": (
        "Do you sell gift cards?",
        "Can I pay with cryptocurrency?",
        "Is there a physical store I can visit?",
        "Do you offer gift wrapping?",
        "Are you hiring right now?",
        "Can I buy in bulk for my company at a wholesale price?",
    ),
    "zh": (
        "你们有实体店吗？",
        "可以用数字货币付款吗？",
        "支持开增值税专用发票吗？",
        "能提供礼品包装吗？",
        "你们最近招聘吗？",
        "公司批量采购有批发价吗？",
    ),
}
HUMAN = {
    "en": (
        "I want to speak to a person.",
        "Please get me a human agent.",
        "Can I talk to a real person about my order?",
    ),
    "zh": ("转人工", "我要找人工客服。", "别用机器人了，帮我转人工服务。"),
}
COMPLAINTS = {
    "en": Entry(
        "complaints",
        "Complaint: my order arrived broken, never arrived or came in the wrong color",
        "We are very sorry for the trouble. Your order has been logged and we will contact "
        "you within 24 hours.",
    ),
    "zh": Entry(
        "complaints",
        "投诉：商品坏了、一直没送到、发错了颜色、给个说法",
        "非常抱歉给您带来不便！订单已经登记，我们会在24小时内联系您处理。",
    ),
}
_FAQ_LINE = re.compile(r"^(\d+)\.\s*([^:：]+)[:：]\s*(.+)$")
_ORDER_LINE = re.compile(r"^(?:Order |订单)(\d+)[:：]\s*(.+)$")
_NAME = re.compile(r"(?:Customer name: |客户姓名：)([^.。]+)")


def kb_from_system(system: str, lang: str) -> list[Entry]:
    """The entries a builtin record's system message holds (FAQ lines, order records)."""
    entries = []
    for line in system.splitlines():
        if m := _FAQ_LINE.match(line):
            entries.append(Entry(f"faq-{m.group(1)}", m.group(2), m.group(3)))
        elif m := _ORDER_LINE.match(line):
            order, status = m.groups()
            answer = (
                f"订单{order}的状态是：{status}。"
                if lang == "zh"
                else f"Order {order} is {status}."
            )
            question = f"订单{order}的状态" if lang == "zh" else f"Status of order {order}"
            entries.append(Entry(f"order-{order}", question, answer))
    return [*entries, COMPLAINTS[lang]]


def support_cases(
    *, seed: int = 0, size: int = 300, limit: int | None = None
) -> list[dict[str, Any]]:
    """[{id, family, lang, kb: [Entry], user, question, checker | None, escalate: bool}]"""
    from instructgen.data.builtin import generate

    splits, _ = generate(seed=seed, size=size)
    cases = []
    for record in splits["test"]:
        if record["family"] not in FAMILIES:
            continue
        system, question = (m["content"] for m in record["messages"][:2])
        name = _NAME.search(system)
        cases.append(
            {
                "id": record["id"],
                "family": record["family"],
                "lang": record["lang"],
                "kb": kb_from_system(system, record["lang"]),
                "user": {"name": name.group(1)} if name else {},
                "question": question,
                "checker": record["checker"],
                "escalate": False,
            }
        )
    if limit is not None:
        cases = cases[:limit]
    rng = random.Random(f"support-eval:{seed}")
    kbs = {
        lang: [c["kb"] for c in cases if c["lang"] == lang and c["family"] == "faq_answer"]
        for lang in ("en", "zh")
    }
    for case in cases:  # a complaint goes to a shop whose KB has its FAQ and complaints policy
        if case["family"] == "complaint" and kbs[case["lang"]]:
            case["kb"] = rng.choice(kbs[case["lang"]])
    for family, questions in (("out_of_kb", OUT_OF_KB), ("human_request", HUMAN)):
        for lang, items in questions.items():
            for i, question in enumerate(items):
                kb = rng.choice(kbs[lang]) if kbs[lang] else [COMPLAINTS[lang]]
                cases.append(
                    {
                        "id": f"{family}-{lang}-{i}",
                        "family": family,
                        "lang": lang,
                        "kb": kb,
                        "user": {},
                        "question": question,
                        "checker": None,
                        "escalate": True,
                    }
                )
    return cases


def evaluate_support(
    llm: Any,
    *,
    seed: int = 0,
    size: int = 300,
    limit: int | None = None,
    min_score: float = 0.4,
    k: int = 3,
) -> dict[str, Any]:
    """Answer accuracy (checker) and escalation figures over `support_cases`."""
    cases = support_cases(seed=seed, size=size, limit=limit)
    per_family: dict[str, dict[str, int]] = {}
    totals = {"answerable": 0, "correct": 0, "should_escalate": 0, "escalated_right": 0}
    totals.update(false_escalations=0, agree=0)
    for case in cases:
        bot = SupportBot(llm, KnowledgeBase(case["kb"]), k=k, min_score=min_score)
        try:
            reply = bot.reply(case["id"], case["question"], user=case["user"])
        finally:
            bot.close()
        row = per_family.setdefault(case["family"], {"cases": 0, "passed": 0})
        row["cases"] += 1
        totals["agree"] += reply.escalated == case["escalate"]
        if case["escalate"]:
            totals["should_escalate"] += 1
            totals["escalated_right"] += reply.escalated
            row["passed"] += reply.escalated
        else:
            totals["answerable"] += 1
            totals["false_escalations"] += reply.escalated
            ok = not reply.escalated and check(case["checker"], reply.text)
            totals["correct"] += ok
            row["passed"] += ok
    n = len(cases)
    return {
        "cases": n,
        "answerable": totals["answerable"],
        "accuracy": _ratio(totals["correct"], totals["answerable"]),
        "escalation_cases": totals["should_escalate"],
        "escalation_recall": _ratio(totals["escalated_right"], totals["should_escalate"]),
        "false_escalation_rate": _ratio(totals["false_escalations"], totals["answerable"]),
        "correct_escalation_rate": _ratio(totals["agree"], n),
        "by_family": {
            f: {**row, "rate": _ratio(row["passed"], row["cases"])} for f, row in per_family.items()
        },
        "min_score": min_score,
        "seed": seed,
    }


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0
