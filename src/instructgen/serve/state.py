"""What every endpoint shares: the scheduler, the metrics and the served model's names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from instructgen.errors import UserError
from instructgen.inference.engine import Engine
from instructgen.serve.logprobs import TokenTexts
from instructgen.serve.metrics import Metrics
from instructgen.serve.scheduler import NotReady, Scheduler

__all__ = ["ModelNotFound", "ServerState"]


class ModelNotFound(UserError):
    status_code = 404
    code = "model_not_found"


class ContentPolicyViolation(UserError):
    code = "content_policy_violation"


@dataclass
class ServerState:
    """served_model_name is the name /v1/models lists and responses carry. With strict_names
    (a name or aliases were configured) a request must name it or an alias; otherwise any
    model or engine name maps to the one served model."""

    scheduler: Scheduler
    metrics: Metrics
    served_model_name: str
    aliases: Sequence[str] = ()
    strict_names: bool = False
    context_length: int = 0
    policy: Any = None  # instructgen.safety.Policy: requests it blocks are refused (--moderation)
    _texts: TokenTexts | None = field(default=None, repr=False)

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys([self.served_model_name, *self.aliases]))

    def moderate(self, texts: Sequence[str], param: str) -> None:
        """Refuse (400, code content_policy_violation) input the moderation policy blocks."""
        if self.policy is None:
            return
        from instructgen.safety import moderate, refusal
        from instructgen.text import CJK_BASIC_RE

        text = "\n".join(texts)
        result = moderate(text, self.policy)
        if result.blocked:
            lang = "zh" if CJK_BASIC_RE.search(text) else "en"
            raise ContentPolicyViolation(refusal(result, lang, self.policy), field=param)

    def model_name(self, requested: str | None, param: str = "model") -> str:
        """The served model's name for a requested model (404 when it is not served)."""
        if requested is None or not self.strict_names or requested in self.names:
            return self.served_model_name
        raise ModelNotFound(
            f"The model '{requested}' does not exist; this server serves "
            + ", ".join(repr(n) for n in self.names),
            field=param,
        )

    @property
    def engine(self) -> Engine:
        """The loaded engine (503 while it loads)."""
        if not self.scheduler.ready:
            raise NotReady(self.scheduler.error or "the model is loading; retry in a few seconds")
        assert self.scheduler.engine is not None
        return self.scheduler.engine

    @property
    def texts(self) -> TokenTexts:
        if self._texts is None:
            self._texts = TokenTexts(self.engine.tokenizer)
        return self._texts
