"""Rule-based moderation in the shape of OpenAI's moderation API, plus a configurable policy.

This is a lexicon and pattern moderator (instructgen.safety.lexicon): it is fast, offline,
deterministic and explainable (every flag points at the matched text), and it is blind to
anything its phrases do not spell out: paraphrase, sarcasm, misspellings and leetspeak,
languages other than Chinese and English, and context (a news report quoting a threat scores
like the threat). Its scores are rule weights, not calibrated probabilities. Treat it as a first
line that catches the obvious; an LLM-judge moderator can be added later through the inference
backends and combined with it.

Categories follow OpenAI's (`harassment`, `hate`, `self-harm/intent`, `sexual/minors`,
`violence`, `illicit/violent`, ...), plus `prompt_injection` ("ignore previous instructions",
"忽略之前的指令"), which is reported but does not block unless the policy says so.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instructgen.errors import ConfigError
from instructgen.safety import lexicon
from instructgen.safety.pii import check_kinds

CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
    "prompt_injection",
)
DEFAULT_BLOCK: tuple[str, ...] = tuple(c for c in CATEGORIES if c != "prompt_injection")
_EN_L, _EN_R = r"(?<![A-Za-z])", r"(?![A-Za-z])"


def _compile(pattern: str, english: bool) -> re.Pattern:
    if english:
        return re.compile(f"{_EN_L}(?:{pattern}){_EN_R}", re.IGNORECASE)
    return re.compile(pattern, re.IGNORECASE)


def _compile_term(term: str, *, source: str, field_name: str) -> re.Pattern:
    """A policy term: "re:PATTERN" is a regular expression, anything else a literal phrase
    (matched between ASCII letter boundaries when it starts and ends with a letter)."""
    if term.startswith("re:"):
        try:
            return re.compile(term[3:], re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(
                f"invalid regular expression {term[3:]!r}: {exc}", file=source, field=field_name
            ) from None
    english = bool(re.match(r"[A-Za-z].*[A-Za-z]$|[A-Za-z]$", term))
    return _compile(re.escape(term), english)


_RULES: list[tuple[str, re.Pattern, float]] = [
    (cat, _compile(p, english), w)
    for table, english in ((lexicon.EN, True), (lexicon.ZH, False))
    for cat, entries in table.items()
    for p, w in entries
]


@dataclass(frozen=True)
class Policy:
    """What blocks. Load from YAML/JSON with `load_policy`; unknown keys are errors.

    block:            categories that make a result `flagged` (default: all but prompt_injection)
    threshold:        a category is hit when its score ≥ threshold (default 0.5)
    thresholds:       per-category overrides of `threshold`
    blocked_terms:    {category: [term, "re:regex", ...]}; these categories always block
    allowed_terms:    phrases masked before matching ("杀毒软件", "kill the process")
    default_allowlist: also mask lexicon.DEFAULT_ALLOWED
    pii_kinds:        PII kinds check_text reports (None = all)
    block_pii:        check_text flags text that contains PII
    message:          refusal text shown instead of the default
    """

    block: list[str] = field(default_factory=lambda: list(DEFAULT_BLOCK))
    threshold: float = 0.5
    thresholds: dict[str, float] = field(default_factory=dict)
    blocked_terms: dict[str, list[str]] = field(default_factory=dict)
    allowed_terms: list[str] = field(default_factory=list)
    default_allowlist: bool = True
    pii_kinds: list[str] | None = None
    block_pii: bool = False
    message: str | None = None
    source: str = field(default="policy", repr=False, compare=False)

    def __post_init__(self) -> None:
        src = self.source
        if not 0 < float(self.threshold) <= 1:
            raise ConfigError("must be in (0, 1]", file=src, field="threshold")
        known = set(CATEGORIES) | set(self.blocked_terms)
        for key in ("block", "thresholds"):
            unknown = sorted(set(getattr(self, key)) - known)
            if unknown:
                raise ConfigError(
                    f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(known))}",
                    file=src,
                    field=key,
                )
        for cat, value in self.thresholds.items():
            if not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ConfigError("must be a number in (0, 1]", file=src, field=f"thresholds.{cat}")
        if self.pii_kinds is not None:
            try:
                check_kinds(self.pii_kinds)
            except ConfigError as exc:
                raise ConfigError(
                    str(exc).split(": ", 1)[-1], file=src, field="pii_kinds"
                ) from None
        terms = [
            (cat, _compile_term(t, source=src, field_name=f"blocked_terms.{cat}"), 1.0)
            for cat, phrases in self.blocked_terms.items()
            for t in phrases
        ]
        allowed = [
            *(lexicon.DEFAULT_ALLOWED if self.default_allowlist else ()),
            *self.allowed_terms,
        ]
        # frozen: the compiled patterns can never go stale against the fields they come from
        object.__setattr__(self, "_terms", terms)
        object.__setattr__(
            self,
            "_allowed",
            [_compile_term(t, source=src, field_name="allowed_terms") for t in allowed],
        )

    @property
    def blocking(self) -> set[str]:
        return set(self.block) | set(self.blocked_terms)

    def threshold_for(self, category: str) -> float:
        return float(self.thresholds.get(category, self.threshold))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "policy") -> Policy:
        """Validate a mapping (keys as in the class docstring) into a Policy."""
        if not isinstance(data, dict):
            raise ConfigError("expected a mapping at the top level", file=source)
        names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(names))}",
                file=source,
                field=unknown[0],
            )
        _expect(data, "block", list, str, source)
        _expect(data, "allowed_terms", list, str, source)
        _expect(data, "pii_kinds", list, str, source)
        _expect(data, "thresholds", dict, (int, float), source)
        _expect(data, "blocked_terms", dict, list, source)
        for cat, terms in data.get("blocked_terms", {}).items():
            if not all(isinstance(t, str) and t for t in terms):
                raise ConfigError(
                    "expected a list of non-empty strings",
                    file=source,
                    field=f"blocked_terms.{cat}",
                )
        for key, kind in (("default_allowlist", bool), ("block_pii", bool), ("message", str)):
            if key in data and data[key] is not None and not isinstance(data[key], kind):
                raise ConfigError(f"expected {kind.__name__}", file=source, field=key)
        if "threshold" in data and (
            isinstance(data["threshold"], bool) or not isinstance(data["threshold"], (int, float))
        ):
            raise ConfigError("expected a number", file=source, field="threshold")
        return cls(**data, source=source)


def _expect(data: dict, key: str, container: type, item: Any, source: str) -> None:
    if data.get(key) is None:
        return
    value = data[key]
    items = value.values() if isinstance(value, dict) else value
    if not isinstance(value, container) or not all(
        isinstance(v, item) and not isinstance(v, bool) for v in items
    ):
        what = "list" if container is list else "mapping"
        raise ConfigError(
            f"expected a {what} of {getattr(item, '__name__', 'values')}", file=source, field=key
        )


def load_policy(path: str | Path) -> Policy:
    """Read a policy from a YAML or JSON file (keys as in `Policy`)."""
    from instructgen.config import load_yaml

    return Policy.from_dict(load_yaml(path), source=str(path))


@dataclass
class ModerationResult:
    """OpenAI's result shape (flagged, categories, category_scores) plus the evidence.

    `flagged` is true when a category the policy blocks is hit; `categories` shows every hit,
    blocking or not (prompt_injection is reported there without flagging by default).
    """

    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]
    matches: list[dict[str, Any]]
    blocked: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_openai(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "categories": self.categories,
            "category_scores": self.category_scores,
        }


@functools.cache
def _default_policy() -> Policy:
    return Policy()


def _prepare(text: str, policy: Policy) -> str:
    """Same-length normalisation, so match offsets index the original text: full-width ASCII
    → ASCII, curly apostrophes → ', and allowed phrases → NUL (matches nothing, not even \\s)."""
    chars = [
        chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else " " if c == "\u3000" else c
        for c in text
    ]
    s = "".join(chars).replace("\u2019", "'").replace("\u2018", "'")
    for pat in policy._allowed:
        s = pat.sub(lambda m: "\x00" * len(m.group()), s)
    return s


def moderate(text: str, policy: Policy | None = None) -> ModerationResult:
    """Score every category: score_c = 1 − ∏_{rules r of c or its subcategories}(1 − w_r), one
    term per rule that matches (repeating a phrase does not raise the score); hit iff ≥ threshold.
    """
    policy = policy or _default_policy()
    prepared = _prepare(text, policy)
    best: dict[tuple[str, int], dict[str, Any]] = {}  # (category, rule) → its first match
    for i, (cat, pattern, weight) in enumerate([*_RULES, *policy._terms]):
        m = pattern.search(prepared)
        if m and m.end() > m.start():
            best[(cat, i)] = {
                "category": cat,
                "text": text[m.start() : m.end()],
                "start": m.start(),
                "end": m.end(),
                "weight": weight,
                "source": "lexicon" if i < len(_RULES) else "policy",
            }
    cats = list(CATEGORIES) + [c for c in policy.blocked_terms if c not in CATEGORIES]
    scores = {}
    for cat in cats:
        keep = 1.0
        for (c, _), match in best.items():
            if c == cat or c.startswith(cat + "/"):
                keep *= 1.0 - match["weight"]
        scores[cat] = round(1.0 - keep, 4)
    hits = {c: scores[c] >= policy.threshold_for(c) for c in cats}
    blocked = [c for c in cats if hits[c] and c in policy.blocking]
    matches = sorted(best.values(), key=lambda m: (m["start"], m["category"]))
    return ModerationResult(bool(blocked), hits, scores, matches, blocked)


def moderation_response(
    inputs: str | list[str], policy: Policy | None = None, *, model: str = "instructgen-rules"
) -> dict[str, Any]:
    """An OpenAI `POST /v1/moderations` response body for one input or a list of inputs."""
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    digest = hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8")).hexdigest()
    return {
        "id": f"modr-{digest[:24]}",
        "model": model,
        "results": [moderate(t, policy).to_openai() for t in texts],
    }


_CATEGORY_ZH = {
    "harassment": "骚扰",
    "hate": "仇恨",
    "illicit": "违法",
    "self-harm": "自我伤害",
    "sexual": "色情",
    "violence": "暴力",
    "prompt_injection": "提示注入",
}


def refusal(result: ModerationResult, lang: str = "en", policy: Policy | None = None) -> str:
    """The message an app or the server returns instead of an answer to a flagged text."""
    if policy is not None and policy.message:
        return policy.message
    top = sorted({c.split("/")[0] for c in result.blocked}) or ["policy"]
    if lang == "zh":
        names = "、".join(_CATEGORY_ZH.get(c, c) for c in top)
        if "self-harm" in top:
            return f"抱歉，这个请求涉及{names}内容，我无法协助。如果你正处于危险中，请立即联系当地急救或心理援助热线。"
        return f"抱歉，这个请求涉及{names}内容，违反了使用政策，我无法协助。"
    names = ", ".join(top)
    if "self-harm" in top:
        return (
            f"I can't help with that ({names}). If you are in danger or thinking about hurting "
            "yourself, please contact local emergency services or a crisis line right away."
        )
    return f"I can't help with that: the request was flagged by the content policy ({names})."
