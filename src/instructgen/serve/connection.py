"""HTTP connections with a deadline on each request's headers (slowloris protection).

uvicorn waits indefinitely for a request line and headers that arrive a byte at a time, and a
keep-alive connection that trickles the next request's first bytes cancels its idle timer. Here
every request's headers must be complete within `header_timeout` seconds of the connection
opening (or of the previous response); otherwise the server answers 408 and closes the
connection. The body has its own deadline (ServerApp's body_timeout).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeaderDeadlineProtocol", "protocol_with_header_timeout"]

TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s"
)
TIMEOUT_BODY = (
    b'{"error": {"message": "the request headers did not arrive within %g s", '
    b'"type": "invalid_request_error", "param": null, "code": "request_timeout"}}'
)


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request headers come too slowly."""

    def __init__(self, *args: Any, header_timeout: float = 10.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a request's headers are all in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on this keep-alive connection

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is h11.IDLE:  # nothing sent on this cycle yet: say why
            body = TIMEOUT_BODY % self.header_timeout
            self.transport.write(TIMEOUT_RESPONSE % (len(body), body))
        self.transport.close()


def protocol_with_header_timeout(seconds: float) -> Any:
    """The protocol factory uvicorn.Config(http=...) takes."""
    return functools.partial(HeaderDeadlineProtocol, header_timeout=seconds)
