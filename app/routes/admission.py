"""Compute routes: admitted before their body is read, answered in chunks that must be taken
within a time limit, and their admission given back on every path.

`ComputeRoute.handle` wraps the route: a request over the gate's capacity gets 503 before a
byte of its body is read, and whatever happens next (an answer, an error, a client that
hangs up while queued, computing or streaming, one that stops reading) the ticket is closed
in `finally`. At the drain limit of a shutdown (app.drain) a request not yet answering is
stopped wherever it is and refused with 503, and a stream already begun ends with its own
error event. Bodies are sent in pieces of at most CHUNK bytes, each taken by the client
within ONEBYONE_SEND_TIMEOUT_S, so a client that never reads holds one piece, not a whole
response, and its work is stopped.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import IO, Any

import anyio
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from app.errors import Busy
from app.gate import Cancelled, ClientGone, ComputeGate, Ticket
from app.routes.bodies import plan_body

TICKET = "onebyone.ticket"
CHUNK = 64 * 1024
FILE_READ = 1024 * 1024


class _Sender:
    """send() in pieces of at most CHUNK bytes, each within the timeout, or the client is gone."""

    def __init__(self, send: Send, ticket: Ticket, timeout_s: float) -> None:
        self.send = send
        self.ticket = ticket
        self.timeout_s = timeout_s
        self.started = False  # the response's head has been sent

    async def __call__(self, message: Message) -> None:
        body = message.get("body", b"")
        if message["type"] != "http.response.body" or len(body) <= CHUNK:
            await self._send(message)
            return
        view = memoryview(body)
        more = message.get("more_body", False)
        for start in range(0, len(body), CHUNK):
            end = start + CHUNK
            piece = bytes(view[start:end])
            await self._send({**message, "body": piece, "more_body": more or end < len(body)})

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        if self.ticket.token.reason == "client stopped reading":
            raise ClientGone("client stopped reading")
        with anyio.move_on_after(self.timeout_s) as scope:
            await self.send(message)
        if scope.cancelled_caught:
            # The client takes nothing: drop it (the server closes the connection when the
            # route returns unfinished) and stop its work.
            self.ticket.token.cancel("client stopped reading")
            raise ClientGone("client stopped reading")


class ComputeRoute(APIRoute):
    """An APIRoute whose requests are admitted by the compute gate (see the module doc)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        # A body refused by its headers (type, declared size) is refused before admission.
        plan_body(Headers(scope=scope), state.settings)
        gate: ComputeGate = state.gate
        ticket = gate.admit()  # Busy: 503 before the body is read
        scope[TICKET] = ticket
        sender = _Sender(send, ticket, state.settings.send_timeout_s)
        try:
            with anyio.CancelScope() as drained:
                ticket.on_drain = lambda: ticket.wake() if sender.started else drained.cancel()
                await super().handle(scope, receive, sender)
            if drained.cancelled_caught:
                raise Busy(gate.drain_message())
        except (ClientGone, Cancelled):
            pass  # nobody to answer
        finally:
            ticket.close()


# Strings longer than this (the heatmaps' base64) are encoded one by one.
_LONG = 1 << 20


def _dumps(content: Any) -> str:
    # As Starlette's JSONResponse writes it.
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_bytes(content: Any) -> bytes:
    """JSON bytes, made in the compute thread and in pieces.

    json.dumps holds the GIL for its whole run: 20 MB of heatmaps would hold every other
    thread, the event loop (/healthz) included, for about 70 ms. Long strings in nested
    objects are encoded one at a time and spliced in, so no single hold is long.
    """
    long: list[str] = []
    nonce = secrets.token_hex(8)

    def lift(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: lift(v) for k, v in obj.items()}
        if isinstance(obj, str) and len(obj) > _LONG:
            long.append(obj)
            return f"{nonce}:{len(long) - 1}"
        return obj

    text = _dumps(lift(content))
    if not long:
        return text.encode()
    pieces = []
    for i, value in enumerate(long):
        before, text = text.split(f'"{nonce}:{i}"', 1)
        pieces += [before.encode(), _quoted(value)]
    return b"".join([*pieces, text.encode()])


def _quoted(value: str) -> bytes:
    """One string as JSON; base64 (the heatmaps) needs no escaping, so it is only quoted."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return b'"' + value.encode("ascii") + b'"'
    return _dumps(value).encode()


def file_response(file: IO[bytes], media_type: str, headers: dict[str, str]) -> StreamingResponse:
    """A temporary file streamed back in pieces; the ticket that owns it closes it."""
    size = file.seek(0, 2)
    file.seek(0)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await anyio.to_thread.run_sync(file.read, FILE_READ):
            yield chunk

    headers = {**headers, "Content-Length": str(size)}
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)
