"""LLM-as-judge through any OpenAI-compatible endpoint (MT-Bench's prompts, Zheng et al. 2023).

- single-answer grading: the judge rates one answer 1–10 ("[[rating]]"), optionally against a
  reference answer;
- pairwise comparison: the judge picks the better of two answers ("[[A]]", "[[B]]", "[[C]]" for a
  tie). Each pair is judged twice, in both orders (the first order drawn at random, seeded per
  item); a winner counts only when both orders agree, otherwise the pair is a tie — this cancels
  the judge's position bias.

Verdicts are parsed robustly ("[[7]]", "Rating: 7/10", "评分：7", a bare "7"; "[[A]]", "Verdict: B",
"平局"), and the judge's token usage is summed from the API's `usage` as the cost.
`run_judge` judges whole output files (or run folders) and writes a run like any suite.
"""

from __future__ import annotations

import random
import re
import threading
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instructgen.errors import ConfigError, DataError

if TYPE_CHECKING:
    from instructgen.evaluate.runner import Outcome

SYSTEM_SINGLE = "You are a helpful assistant."
SINGLE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response "
    "provided by an AI assistant to the user question displayed below. Your evaluation should "
    "consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level "
    "of detail of the response. Begin your evaluation by providing a short explanation. Be as "
    "objective as possible. After providing your explanation, you must rate the response on a "
    'scale of 1 to 10 by strictly following this format: "[[rating]]", for example: '
    '"Rating: [[5]]".\n\n[Question]\n{question}\n\n'
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)
SINGLE_REFERENCE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response "
    "provided by an AI assistant to the user question displayed below. Your evaluation should "
    "consider correctness and helpfulness. You will be given a reference answer and the "
    "assistant's answer. Begin your evaluation by comparing the assistant's answer with the "
    "reference answer. Identify and correct any mistakes. Be as objective as possible. After "
    "providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
    'following this format: "[[rating]]", for example: "Rating: [[5]]".\n\n'
    "[Question]\n{question}\n\n[The Start of Reference Answer]\n{reference}\n"
    "[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\n{answer}\n"
    "[The End of Assistant's Answer]"
)
SYSTEM_PAIR = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user question displayed below. You should choose the assistant that "
    "follows the user's instructions and answers the user's question better. Your evaluation "
    "should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, "
    "and level of detail of their responses. Begin your evaluation by comparing the two "
    "responses and provide a short explanation. Avoid any position biases and ensure that the "
    "order in which the responses were presented does not influence your decision. Do not allow "
    "the length of the responses to influence your evaluation. Do not favor certain names of the "
    "assistants. Be as objective as possible. After providing your explanation, output your "
    'final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" '
    'if assistant B is better, and "[[C]]" for a tie.'
)
PAIR = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)
PAIR_REFERENCE = (
    "[User Question]\n{question}\n\n[The Start of Reference Answer]\n{reference}\n"
    "[The End of Reference Answer]\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

_NUMBER = r"(\d+(?:\.\d+)?)"
_RATING_PATTERNS = [
    re.compile(r"\[\[\s*" + _NUMBER + r"\s*(?:/\s*10)?\s*\]\]"),
    re.compile(r"(?:rating|score|grade)\**\s*(?:is|of|:|=)?\s*\**\s*\[?\s*" + _NUMBER, re.I),
    re.compile(r"(?:评分|得分|分数|打分|评级)\s*(?:为|是|:)?\s*\**\s*" + _NUMBER),
    re.compile(_NUMBER + r"\s*(?:/|out of)\s*10\b", re.I),
    re.compile(_NUMBER + r"\s*分(?!钟|之)"),
    re.compile(r"^\W*" + _NUMBER + r"\W*$"),
]
_VERDICT_PATTERNS = [
    re.compile(r"\[\[\s*((?-i:A|B|C)|tie)\s*\]\]", re.I),
    re.compile(
        r"(?:final verdict|verdict|winner|better (?:answer|response|assistant))\**\s*(?:is|:)?"
        r"\s*\**\s*(?:assistant\s*)?\[?\s*((?-i:A|B|C)|tie)\b",
        re.I,
    ),
    re.compile(r"\bassistant\s*((?-i:A|B))\s*is\s*(?:better|the winner)", re.I),
    re.compile(
        r"(?:结论|判决|裁决|胜者|获胜者|更好的是)\s*(?:为|是|:)?\s*(?:助手)?\s*(A|B|C|平局)"
    ),
    re.compile(r"(?:助手)?\s*(A|B)\s*更好"),
    re.compile(r"\b(?:a|is)\s+(tie)\b", re.I),
    re.compile(r"(平局)"),
    re.compile(r"^\W*((?-i:A|B|C)|tie)\W*$", re.I),
]


def _normalise(text: str) -> str:
    """NFKC (full-width digits and colons become ASCII) and no markdown bold."""
    return unicodedata.normalize("NFKC", text).replace("**", "")


def parse_rating(text: str, *, low: float = 1, high: float = 10) -> float | None:
    """The judge's rating: the last match of the first pattern that matches, in order: "[[7]]",
    "Rating: 7" / "Score: 7", "评分：7", "7/10" / "7 out of 10", "7分", a reply that is just a
    number; None when nothing matches or the number is outside [low, high]."""
    text = _normalise(text)
    for pattern in _RATING_PATTERNS:
        found = pattern.findall(text.strip())
        if found:
            value = float(found[-1])
            return value if low <= value <= high else None
    return None


def parse_verdict(text: str) -> str | None:
    """ "A", "B" or "tie" from "[[A]]"/"[[B]]"/"[[C]]", "Final verdict: B", "Assistant A is
    better", "结论：A", "B更好", "平局", or a reply that is just the letter; None if unparsed."""
    text = _normalise(text)
    for pattern in _VERDICT_PATTERNS:
        found = pattern.findall(text.strip())
        if found:
            value = found[-1].upper()
            return "tie" if value in ("C", "TIE", "平局") else value
    return None


class Judge:
    """A judge model behind an OpenAI-compatible URL (or an LLM from instructgen.inference.load).

    Greedy by default; `cost()` returns the tokens used so far (summed over every request)."""

    def __init__(
        self,
        judge: str | Any,
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ):
        if isinstance(judge, str):
            from instructgen.inference import load

            judge = load(judge, "openai", api_key=api_key, **({"model": model} if model else {}))
        self.llm = judge
        self.sampling = {"max_tokens": max_tokens, "temperature": temperature}
        self._lock = threading.Lock()
        self._cost = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "requests": 0}

    @property
    def name(self) -> str:
        return self.llm.model_name

    def close(self) -> None:
        self.llm.close()

    def ask(self, system: str, user: str) -> tuple[str, dict[str, int]]:
        """The judge's reply and this request's token usage."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        done = self.llm.chat(messages, **self.sampling)
        usage = {
            "prompt_tokens": done.usage.prompt_tokens,
            "completion_tokens": done.usage.completion_tokens,
            "total_tokens": done.usage.total_tokens,
            "requests": 1,
        }
        with self._lock:
            for k, v in usage.items():
                self._cost[k] += v
        return done.text, usage

    def cost(self) -> dict[str, int]:
        with self._lock:
            return dict(self._cost)

    def grade(self, question: str, answer: str, *, reference: str | None = None) -> dict[str, Any]:
        """{"score": 1–10 or None (unparsed), "judgment": the judge's text, "usage"}."""
        if reference is None:
            reply, usage = self.ask(SYSTEM_SINGLE, SINGLE.format(question=question, answer=answer))
        else:
            prompt = SINGLE_REFERENCE.format(question=question, answer=answer, reference=reference)
            reply, usage = self.ask(SYSTEM_SINGLE, prompt)
        return {"score": parse_rating(reply), "judgment": reply, "usage": usage}

    def compare(
        self,
        question: str,
        answer_1: str,
        answer_2: str,
        *,
        reference: str | None = None,
        first_swapped: bool = False,
    ) -> dict[str, Any]:
        """Judge the pair in both orders (answer_1 shown as A first, unless first_swapped).

        winner: "1", "2" or "tie"; consistent: both orders named the same winner (a tie in both
        orders is consistent too); otherwise the result is a tie."""
        orders = [False, True] if not first_swapped else [True, False]
        verdicts, judgments, usage = [], [], _zero_usage()
        for swapped in orders:
            a, b = (answer_2, answer_1) if swapped else (answer_1, answer_2)
            template = PAIR if reference is None else PAIR_REFERENCE
            prompt = template.format(question=question, answer_a=a, answer_b=b, reference=reference)
            reply, used = self.ask(SYSTEM_PAIR, prompt)
            verdict = parse_verdict(reply)
            if verdict in ("A", "B"):
                verdict = (
                    {"A": "2", "B": "1"}[verdict] if swapped else {"A": "1", "B": "2"}[verdict]
                )
            verdicts.append(verdict)
            judgments.append(reply)
            usage = _add_usage(usage, used)
        consistent = verdicts[0] is not None and verdicts[0] == verdicts[1]
        return {
            "winner": verdicts[0] if consistent else "tie",
            "consistent": consistent,
            "verdicts": verdicts,  # in the order asked; None = unparsed
            "orders": ["2 as A" if s else "1 as A" for s in orders],
            "judgments": judgments,
            "usage": usage,
        }


def _zero_usage() -> dict[str, int]:
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "requests": 0}


def _add_usage(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in _zero_usage()}


def first_swapped(seed: int, item_id: str) -> bool:
    """The random order of a pair's first judgment: a coin seeded by (seed, item id), so it does
    not depend on which thread judges the item or on the other items."""
    return random.Random(f"{seed}:{item_id}").random() < 0.5


# ---------------------------------------------------------------- judging files


def run_judge(
    judge_url: str,
    answers: str | Path,
    *,
    out_dir: str | Path,
    against: str | Path | None = None,
    judge_model: str | None = None,
    api_key: str | None = None,
    use_reference: bool = False,
    limit: int | None = None,
    concurrency: int = 8,
    seed: int = 0,
    retries: int = 2,
    backoff: float = 0.5,
    progress: bool = True,
    max_tokens: int = 1024,
) -> dict[str, Any]:
    """Grade every answer of `answers` (single), or compare it with the same item of `against`
    (pairwise), and write the run (results.json, items.jsonl, report.md, charts) to out_dir.

    `answers` / `against`: run folders or files report.read_items reads (id, prompt, output).
    Judgments are cached in out_dir/outputs.jsonl like a suite's outputs, so a re-run resumes.
    Per-item score: the rating (single), or 1 / 0.5 / 0 for a win / tie / loss of `answers`."""
    from instructgen.evaluate.report import file_fingerprint, write_run
    from instructgen.evaluate.runner import ItemCache, run_cached

    started = time.time()
    items, other = _judged_items(answers, against, limit, use_reference)
    judge = Judge(judge_url, model=judge_model, api_key=api_key, max_tokens=max_tokens)
    mode = "pairwise" if other is not None else "single"
    payloads = _payloads(items, other, use_reference=use_reference, seed=seed)
    try:
        fingerprint = {"kind": "url", "url": judge_url, "model": judge.name}
        cache = ItemCache(
            Path(out_dir) / "outputs.jsonl", f"judge:{mode}:{judge_url}:{judge.name}:{max_tokens}"
        )
        outcome = run_cached(
            payloads,
            _judge_call(judge, mode),
            cache,
            batch_size=1,
            workers=concurrency,
            retries=retries,
            backoff=backoff,
            progress=progress,
            desc=f"judge {mode}",
        )
    finally:
        judge.close()

    rows, per_item, cost = _judged_rows(items, outcome, dict(payloads), mode)
    config = {
        "answers": str(answers),
        "against": str(against) if against else None,
        "judge_url": judge_url,
        "judge_model": judge.name,
        "use_reference": use_reference,
        "limit": limit,
        "concurrency": concurrency,
        "seed": seed,
        "max_tokens": max_tokens,
    }
    results = {
        "suite": f"judge-{mode}",
        "model": model_or_path(answers),
        "judge": fingerprint,
        "config": config,
        "data": file_fingerprint(answers),
        **_judge_scores(mode, items, outcome, per_item, cost),
        "seconds": round(time.time() - started, 3),
    }
    return write_run(results, rows, out_dir)


def _judged_items(
    answers: str | Path, against: str | Path | None, limit: int | None, use_reference: bool
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]] | None]:
    """(the items of `answers` to judge, spread to `limit`; the items of `against` by id, or
    None when grading single answers). Pairwise judges only the ids both hold."""
    from instructgen.evaluate.report import read_items
    from instructgen.evaluate.runner import spread

    items = read_items(answers)
    other = {it["id"]: it for it in read_items(against)} if against is not None else None
    if other is not None:
        items = [it for it in items if it["id"] in other]
        if not items:
            raise DataError(f"no item ids in common with {against}", file=str(answers), field="id")
    items = spread(items, limit)
    if use_reference and any(it.get("reference") is None for it in items):
        raise ConfigError("use_reference needs a reference for every item", field="reference")
    return items, other


def _payloads(
    items: list[dict[str, Any]],
    other: dict[str, dict[str, Any]] | None,
    *,
    use_reference: bool,
    seed: int,
) -> list[tuple[str, dict[str, Any]]]:
    """(id, what the judge is shown) per item: question and answer, the reference if asked for,
    and, pairwise, the other answer and which order is asked first."""
    from instructgen.evaluate.report import prompt_text

    payloads = []
    for it in items:
        payload = {"question": prompt_text(it["prompt"]), "answer": it["output"]}
        if use_reference:
            payload["reference"] = _reference_text(it["reference"])
        if other is not None:
            payload["other"] = other[it["id"]]["output"]
            payload["first_swapped"] = first_swapped(seed, it["id"])
        payloads.append((it["id"], payload))
    return payloads


def _judge_call(judge: Judge, mode: str):
    """The runner's call: one payload in, its grade (single) or comparison (pairwise) out."""

    def call(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        p = batch[0]
        if mode == "single":
            return [judge.grade(p["question"], p["answer"], reference=p.get("reference"))]
        return [
            judge.compare(
                p["question"],
                p["answer"],
                p["other"],
                reference=p.get("reference"),
                first_swapped=p["first_swapped"],
            )
        ]

    return call


def _judged_rows(
    items: list[dict[str, Any]], outcome: Outcome, by_id: dict[str, dict[str, Any]], mode: str
) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, int]]:
    """(items.jsonl's rows in item order, per-item scores, the judge's summed token usage).
    Score: the rating (single), or 1 / 0.5 / 0 for a win / tie / loss of `answers`."""
    rows, per_item, cost = [], {}, _zero_usage()
    for it in items:
        if it["id"] in outcome.failures:
            error = outcome.failures[it["id"]]
            rows.append({"id": it["id"], "prompt": it["prompt"], "error": error, "score": None})
            continue
        out = outcome.outputs[it["id"]]
        cost = _add_usage(cost, out["usage"])
        score = (
            out["score"] if mode == "single" else {"1": 1.0, "2": 0.0, "tie": 0.5}[out["winner"]]
        )
        per_item[it["id"]] = score
        row = {
            "id": it["id"],
            "prompt": it["prompt"],
            "output": it["output"],
            "score": score,
            **out,
        }
        if mode == "pairwise":
            row["other"] = by_id[it["id"]]["other"]
        rows.append(row)
    return rows, per_item, cost


def _judge_scores(
    mode: str,
    items: list[dict[str, Any]],
    outcome: Outcome,
    per_item: dict[str, float],
    cost: dict[str, int],
) -> dict[str, Any]:
    """results.json's scores: primary metric, metrics, breakdown, cost, counts, failures,
    per-item scores and notes."""
    judged = [outcome.outputs[it["id"]] for it in items if it["id"] in outcome.outputs]
    metrics, breakdown = _judge_metrics(mode, judged)
    failed = [{"id": i, "error": e} for i, e in outcome.failures.items()]
    return {
        "primary": "mean_score" if mode == "single" else "win_rate",
        "metrics": metrics,
        "breakdown": breakdown,
        "metric_info": {"prompts": "MT-Bench single-v1 / pair-v2 (FastChat)"},
        "cost": cost,
        "counts": outcome.counts(len(items)),
        "failed": failed,
        "per_item": {k: v for k, v in per_item.items() if v is not None},
        "notes": [f'{len(failed)} items failed (see "failed")'] if failed else [],
    }


def model_or_path(path: str | Path) -> dict[str, Any]:
    """What was judged: the model of a run folder, else the file."""
    from instructgen.evaluate.report import RESULTS, load_run

    p = Path(path)
    if p.is_dir() and (p / RESULTS).is_file():
        return load_run(p).get("model", {})
    return {"kind": "name", "name": str(path)}


def _reference_text(reference: Any) -> str:
    return reference if isinstance(reference, str) else " / ".join(map(str, reference))


def _judge_metrics(
    mode: str, judged: list[dict[str, Any]]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """single: mean_score over parsed ratings (1–10), unparsed count, rating histogram;
    pairwise: win_rate = 100 · (wins + ½ ties) / n for `answers`, wins, losses, ties,
    inconsistent (orders disagreed), unparsed (some verdict not understood)."""
    n = len(judged)
    if mode == "single":
        scores = [j["score"] for j in judged if j["score"] is not None]
        hist: dict[str, float] = {}
        for s in sorted(scores):
            hist[f"{s:g}"] = hist.get(f"{s:g}", 0) + 1
        metrics = {
            "n": n,
            "mean_score": sum(scores) / len(scores) if scores else 0.0,
            "unparsed": n - len(scores),
        }
        return metrics, {"rating_counts": hist}
    wins = sum(j["winner"] == "1" for j in judged)
    losses = sum(j["winner"] == "2" for j in judged)
    ties = n - wins - losses
    metrics = {
        "n": n,
        "win_rate": 100.0 * (wins + 0.5 * ties) / n if n else 0.0,
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "inconsistent": sum(not j["consistent"] for j in judged),
        "unparsed": sum(any(v is None for v in j["verdicts"]) for j in judged),
    }
    return metrics, {"outcomes": {"win": wins, "tie": ties, "loss": losses}}
