"""Compute routes: admitted before their body is read, their admission given back on every path.

`ComputeRoute.handle` wraps the route: a request over the gate's capacity gets 503 before a
byte of its body is read, and whatever happens next (an answer, an error, a client that
hangs up while queued, computing or streaming, one that stops reading) the ticket is closed
in `finally`. Answers go out through `output.Sender`: in pieces, each taken within
ONEBYONE_SEND_TIMEOUT_S. At the drain limit of a shutdown (app.drain) a request not yet
answering is stopped wherever it is and refused with 503, and a stream already begun ends
with its own error event. A compute route takes its body through exactly one
`pipeline.BodyReader`, which also writes its request-body documentation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from app.errors import Busy, Cancelled
from app.gate import ClientGone, ComputeGate
from app.routes.output import Sender
from app.routes.pipeline import PLAN, TICKET, BodyReader
from app.routes.receiving import plan_body


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


class ComputeRoute(APIRoute):
    """An APIRoute whose requests are admitted by the compute gate (see the module doc)."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        readers = [d.call for d in _dependencies(self.dependant) if isinstance(d.call, BodyReader)]
        if len(readers) != 1:
            raise TypeError(f"{path}: a compute route takes its body through one BodyReader")
        self.body_reader: BodyReader[Any] = readers[0]
        self.openapi_extra = self.body_reader.openapi() | (self.openapi_extra or {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        # A body refused by its headers (type, declared size) is refused before admission.
        scope[PLAN] = plan_body(Headers(scope=scope), state.settings)
        gate: ComputeGate = state.gate
        ticket = gate.admit()  # Busy: 503 before the body is read
        scope[TICKET] = ticket
        sender = Sender(send, ticket, state.settings.send_timeout_s)
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
