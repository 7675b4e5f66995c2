"""What leaves the service: one JSON writer, answers sent in timed pieces, files streamed.

Every JSON body (reports, experiment results, errors, health, Server-Sent Events) is
written by `json_bytes`: pydantic's serializer, in Rust, straight to bytes (a 20 MB report
in a fraction of json.dumps's time, with no str → bytes copy).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO, Any

import anyio
import pydantic_core
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import StreamingResponse
from starlette.types import Message, Send

from app.gate import ClientGone, Ticket

# Pieces of an answer: each must be taken by the client within ONEBYONE_SEND_TIMEOUT_S.
CHUNK = 64 * 1024
# Bytes of a streamed file read at a time, off the event loop.
FILE_READ = 1024 * 1024


def json_bytes(content: Any) -> bytes:
    """JSON bytes of models, dicts, lists and numbers; a NaN or infinity becomes null."""
    return pydantic_core.to_json(content, inf_nan_mode="null")


class JSONResponse(StarletteJSONResponse):
    """The app's default response class: content written by `json_bytes` (or bytes as they are).

    A subclass of Starlette's, so FastAPI documents the route's model as its JSON answer.
    """

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else json_bytes(content)


def sse(event: str, data: Any) -> bytes:
    """One Server-Sent Event whose data is JSON."""
    return b"event: " + event.encode() + b"\ndata: " + json_bytes(data) + b"\n\n"


class Sender:
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


def file_response(file: IO[bytes], media_type: str, headers: dict[str, str]) -> StreamingResponse:
    """A temporary file streamed back in pieces; the ticket that owns it closes it."""
    size = file.seek(0, 2)
    file.seek(0)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await anyio.to_thread.run_sync(file.read, FILE_READ):
            yield chunk

    headers = {**headers, "Content-Length": str(size)}
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)
