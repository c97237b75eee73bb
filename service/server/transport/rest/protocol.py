"""uvicorn's h11 protocol with two limits it lacks: a bounded request head and a deadline to finish it.

uvicorn picks ``httptools`` when it is installed, and that parser accepts a request head of any size (a
16 MB header was read whole). h11 bounds what it buffers before a head is complete
(``max_incomplete_event_size``), so the server always runs this h11 subclass, whatever is installed; an
oversized head is answered 431 instead of uvicorn's generic 400.

uvicorn has no header read timeout either: its keep-alive timer runs only between requests and is
cancelled by the first byte, so a client that opens a connection and sends nothing, or half a request
head, holds that socket (and a slot of ``limit_concurrency``) forever ("slowloris"). Here a timer runs
whenever the connection is waiting for a request head: from the connection's start, and again from the
first byte of each later request on a kept-alive connection. If the head is not complete when it fires,
the client gets 408 and the connection is closed. Once a head is complete the timer stops: the body
and the handler are bounded elsewhere (the upload byte cap, the call deadline).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def _close_with(transport: asyncio.Transport, status: int, phrase: str, message: str) -> None:
    # Written raw, not through h11: the connection is being dropped, so its state machine no longer matters.
    body = message.encode("ascii")
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode("ascii")
    transport.write(head + body)
    transport.close()


class GuardedH11Protocol(H11Protocol):
    """``H11Protocol`` that closes connections whose request head is too slow (408) or too large (431).

    The limits are class attributes so that uvicorn, which builds one protocol object per connection from
    the class alone, gets them: ``guarded_protocol(...)`` makes a configured subclass.
    """

    header_timeout_s: float = 10.0
    max_head_bytes: int = 32 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that sends nothing at all is held by nothing else

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # still reading a head (a new one on a kept-alive connection)
            self._arm_head_timer()
        else:
            self._cancel_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        # h11 raised RemoteProtocolError; a buffer above the bound means the head was too large (h11's own
        # hint for that case is 431, which uvicorn drops).
        if len(self.conn.trailing_data[0]) > self.max_head_bytes:
            self._cancel_head_timer()
            _close_with(
                self.transport,
                431,
                "Request Header Fields Too Large",
                f"The request head is larger than {self.max_head_bytes} bytes.",
            )
            return
        super().send_400_response(msg)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        _close_with(
            self.transport,
            408,
            "Request Timeout",
            f"The request head did not arrive within {self.header_timeout_s:g} s.",
        )


def guarded_protocol(header_timeout_s: float, max_head_bytes: int) -> type[GuardedH11Protocol]:
    """A ``GuardedH11Protocol`` subclass with these limits, for ``uvicorn.Config(http=...)``."""
    return type(
        "AtelierH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "max_head_bytes": max_head_bytes},
    )
