"""Safety: PII and secret redaction, log redaction, and rule-based moderation (zh/en).

from instructgen.safety import redact, moderate, check_text
redact("邮箱 a@b.com，电话 13812345678")   # → ("邮箱 [EMAIL]，电话 [PHONE]", spans)
moderate("I will kill you").flagged          # → True
"""

from __future__ import annotations

from typing import Any

from instructgen.safety.logs import RedactingFilter, install_log_redaction
from instructgen.safety.moderation import (
    CATEGORIES,
    DEFAULT_BLOCK,
    ModerationResult,
    Policy,
    load_policy,
    moderate,
    moderation_response,
    refusal,
)
from instructgen.safety.pii import (
    PII_KINDS,
    STYLES,
    Span,
    cn_id_check_digit,
    find_pii,
    luhn_valid,
    pseudonym,
    redact,
    valid_cn_id,
)

__all__ = [
    "CATEGORIES",
    "DEFAULT_BLOCK",
    "PII_KINDS",
    "STYLES",
    "ModerationResult",
    "Policy",
    "RedactingFilter",
    "Span",
    "check_text",
    "cn_id_check_digit",
    "find_pii",
    "install_log_redaction",
    "load_policy",
    "luhn_valid",
    "moderate",
    "moderation_response",
    "pseudonym",
    "redact",
    "refusal",
    "valid_cn_id",
]


def check_text(text: str, policy: Policy | None = None) -> dict[str, Any]:
    """Moderation and PII findings for one text: flagged = moderation flagged ∨ (block_pii ∧ PII)."""
    policy = policy or Policy()
    result = moderate(text, policy)
    spans = find_pii(text, policy.pii_kinds)
    pii_blocks = policy.block_pii and bool(spans)
    return {
        "flagged": result.flagged or pii_blocks,
        "blocked": result.blocked + (["pii"] if pii_blocks else []),
        "categories": [c for c, hit in result.categories.items() if hit],
        "moderation": result.to_dict(),
        "pii": [s.to_dict() for s in spans],
    }
