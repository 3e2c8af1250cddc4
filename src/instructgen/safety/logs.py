"""Keep PII and secrets out of logs: a logging.Filter that redacts each record before it is
formatted, and a one-call installer for servers."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from instructgen.safety.pii import check_kinds, find_pii, redact


class RedactingFilter(logging.Filter):
    """Redact a record's message, arguments, exception text and stack text; never drops it.

    String arguments are redacted in place and other arguments whose str() holds PII are
    replaced by their redacted str(), so formatters that unpack `record.args` (uvicorn's access
    log) keep working. When PII only appears once the message is formatted (it was split across
    arguments), the record is collapsed to its redacted, formatted message.
    """

    def __init__(
        self,
        *,
        kinds: Iterable[str] | None = None,
        style: str = "tag",
        salt: str | None = None,
        name: str = "",
    ):
        super().__init__(name)
        self.kinds = None if kinds is None else sorted(check_kinds(kinds))
        self.style, self.salt = style, salt

    def _redact(self, text: str) -> str:
        return redact(text, kinds=self.kinds, style=self.style, salt=self.salt)[0]

    def _arg(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redact(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        text = str(value)
        clean = self._redact(text)
        return value if clean == text else clean

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self._redact(record.msg)
        elif record.msg is not None and find_pii(str(record.msg), self.kinds):
            record.msg = self._redact(str(record.msg))
        if isinstance(record.args, Mapping):
            record.args = {k: self._arg(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(self._arg(v) for v in record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = None  # a malformed call; leave it to the handler to report
        if message is not None and find_pii(message, self.kinds):
            record.msg, record.args = self._redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


def install_log_redaction(
    logger: logging.Logger | str | None = None,
    *,
    kinds: Iterable[str] | None = None,
    style: str = "tag",
    salt: str | None = None,
) -> RedactingFilter:
    """Attach one RedactingFilter to `logger` and to each of its handlers (idempotent).

    Handler filters see the records of child loggers that propagate to them; a logger's own
    filter sees only records logged on it. With logger=None the root logger is covered, and so
    is every existing logger that has handlers of its own (uvicorn's, when configured first).
    """
    flt = RedactingFilter(kinds=kinds, style=style, salt=salt)
    if logger is None:
        targets = [logging.getLogger()] + [
            lg
            for lg in logging.Logger.manager.loggerDict.values()
            if isinstance(lg, logging.Logger) and lg.handlers
        ]
    else:
        targets = [logging.getLogger(logger) if isinstance(logger, str) else logger]
    for lg in targets:
        for owner in [lg, *lg.handlers]:
            if not any(isinstance(f, RedactingFilter) for f in owner.filters):
                owner.addFilter(flt)
    return flt
