"""uvicorn's h11 protocol with a deadline on every request head.

uvicorn times a connection out only between requests, and only until the next byte: a
client that connects and sends nothing, or sends a request head one byte every few
seconds, keeps its socket (a file descriptor) for as long as it likes. Here each
connection must deliver a complete request head within ONEBYONE_HEADER_TIMEOUT_S of
opening, and again of each response's end, or it is closed. A request's body has its own
limits (routes.receiving); a response in progress is never cut by this deadline.

`onebyone serve` passes this class to uvicorn with the timeout from its settings
(`http=functools.partial(HeadDeadline, head_timeout_s=…)`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeadDeadline(H11Protocol):
    def __init__(self, *args: Any, head_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout_s = head_timeout_s
        self._deadline: asyncio.TimerHandle | None = None
        self._armed_for: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        """From now, a new request head must arrive within the timeout."""
        self._disarm()
        if not self.transport.is_closing():
            # The request in hand when armed: a new head makes a new cycle object.
            self._armed_for = self.cycle
            self._deadline = self.loop.call_later(self.head_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is not self._armed_for:
            return  # a request head came; its response's end arms the deadline again
        if cycle is not None and not cycle.response_complete:
            return  # a pipelined request picked up when armed is still being answered
        if not self.transport.is_closing():
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()
