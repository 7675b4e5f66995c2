"""Receiving a request body: its headers checked, then its bytes spooled within limits.

`plan_body` reads only the headers (Content-Type, declared size): it runs before the
request is admitted, so a body refused anyway takes no place. `receive_body` runs on the
event loop while the admitted request waits its turn: it copies the body into a `Spool`
within a byte limit and a time limit (a total, an idle limit, and after a grace a minimum
average rate), so a slow or lying client holds nothing for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from app.config import Settings
from app.errors import OneByOneError, TooLarge, TooSlow, UnreadableFile, UnsupportedType, excerpt
from app.gate import ClientGone, Ticket
from app.routes.spool import Spool

# Bytes of the body's end kept to check that a multipart body is complete.
_TAIL = 1024
# Seconds a body may take before its average rate is checked, and how often it then is.
_GRACE_S = 2.0
_RATE_CHECK_S = 1.0


@dataclass
class Body:
    """A received body: its kind (json, multipart or empty) and its bytes, spooled."""

    kind: str
    spool: Spool
    boundary: bytes = b""


@dataclass(frozen=True)
class BodyPlan:
    """What the headers say about a body: its kind, its byte limit and how it may be read."""

    kind: str  # json, multipart or empty
    ctype: str
    limit: int
    setting: str  # the ONEBYONE_ variable that sets the limit
    boundary: bytes
    declared: int | None  # Content-Length
    chunked: bool

    def over(self, size: int) -> OneByOneError:
        if self.kind == "empty":
            return UnsupportedType(
                "The request has a body but no Content-Type; send Content-Type: "
                "application/json (curl -H 'Content-Type: application/json') or "
                "multipart/form-data (curl -F).",
                code="missing_content_type",
            )
        hint = (
            "Send large arrays as files (multipart)."
            if self.kind == "json"
            else "Send a smaller file."
        )
        return TooLarge(
            f"The request body is {size} bytes or more; the limit for {self.ctype} is "
            f"{self.limit} bytes (ONEBYONE_{self.setting}). {hint}"
        )


def plan_body(headers: Mapping[str, str], settings: Settings) -> BodyPlan:
    """Check a body's Content-Type and declared size from the headers alone.

    Called before the request is admitted, so what is refused anyway takes no place.
    """
    ctype, _, params = headers.get("content-type", "").partition(";")
    ctype = ctype.strip().lower()
    length = headers.get("content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    chunked = "transfer-encoding" in headers
    boundary = b""
    if ctype == "multipart/form-data":
        kind, limit, setting = "multipart", settings.max_upload_bytes, "MAX_UPLOAD_BYTES"
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "boundary":
                boundary = value.strip('"').encode("latin-1")
        if not boundary:
            raise UnreadableFile(
                "The multipart body has no boundary in its Content-Type; let your client "
                "set it (curl -F does).",
                code="bad_multipart",
            )
    elif ctype == "application/json":
        kind, limit, setting = "json", settings.max_json_bytes, "MAX_JSON_BYTES"
        if settings.max_upload_bytes < limit:  # the upload limit caps every body
            limit, setting = settings.max_upload_bytes, "MAX_UPLOAD_BYTES"
    elif not ctype:
        kind, limit, setting = "empty", 0, ""
    else:
        raise UnsupportedType(
            f"Content-Type {excerpt(ctype)} is not accepted; send application/json or "
            "multipart/form-data.",
            code="unsupported_content_type",
        )
    plan = BodyPlan(kind, ctype, limit, setting, boundary, declared, chunked)
    if declared is not None and declared > limit:
        raise plan.over(declared)
    return plan


async def receive_body(
    request: Request, plan: BodyPlan, settings: Settings, ticket: Ticket
) -> Body:
    """Read an admitted request's body into a spool, within its byte and time limits, as
    `plan` (its headers, checked before admission) says.

    The spool belongs to the ticket: it is closed when the admission is given back.
    """
    spool = Spool(settings.spool_bytes)
    ticket.on_release(spool.close)
    kind, boundary, limit, over = plan.kind, plan.boundary, plan.limit, plan.over
    if plan.declared == 0 or (plan.declared is None and not plan.chunked):
        return Body(kind, spool, boundary)
    tail = b""
    # One timer per request, not one per message: it cancels the read when the body
    # stalls for body_idle_timeout_s or takes longer than body_timeout_s in all.
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    start = last = loop.time()
    expired = False
    timer: asyncio.TimerHandle | None = None

    def watchdog() -> None:
        nonlocal timer, expired
        now = loop.time()
        idle_left = settings.body_idle_timeout_s - (now - last)
        total_left = settings.body_timeout_s - (now - start)
        # After a grace, a minimum average rate: a client that sends one byte every few
        # seconds (slowloris) would otherwise hold its admission for body_timeout_s.
        min_rate = settings.body_min_bytes_per_s
        slow = now - start > _GRACE_S and spool.size < min_rate * (now - start)
        if (min(idle_left, total_left) <= 0 or (min_rate and slow)) and task is not None:
            expired = True
            task.cancel()
        else:
            wait = min(idle_left, total_left)
            if min_rate:
                wait = min(wait, max(_GRACE_S - (now - start), 0) + _RATE_CHECK_S)
            timer = loop.call_later(wait, watchdog)

    timer = loop.call_later(min(settings.body_idle_timeout_s, _GRACE_S + _RATE_CHECK_S), watchdog)
    try:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone("client left while sending its body")
            chunk = message.get("body", b"")
            if spool.size + len(chunk) > limit:
                raise over(spool.size + len(chunk))
            await spool.write_async(chunk)
            last = loop.time()
            tail = (tail + chunk[-_TAIL:])[-_TAIL:]
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        if not expired:
            raise
        if task is not None and hasattr(task, "uncancel"):  # Python 3.11+
            task.uncancel()
        raise TooSlow(
            f"The request body arrived too slowly: {spool.size} bytes in "
            f"{loop.time() - start:.1f} s. A body must keep coming (a pause of at most "
            f"{settings.body_idle_timeout_s:g} s), at {settings.body_min_bytes_per_s} bytes/s "
            f"or more after {_GRACE_S:g} s, and end within {settings.body_timeout_s:g} s "
            "(ONEBYONE_BODY_IDLE_TIMEOUT_S, ONEBYONE_BODY_MIN_BYTES_PER_S, "
            "ONEBYONE_BODY_TIMEOUT_S)."
        ) from None
    finally:
        if timer is not None:
            timer.cancel()
    await spool.flush_async()
    # The closing boundary in the body's last KiB (RFC 2046 allows a short epilogue after it).
    if kind == "multipart" and b"--" + boundary + b"--" not in tail:
        raise UnreadableFile(
            "The multipart body is cut short: it does not end with its closing boundary. "
            "Send the whole body.",
            code="bad_multipart",
        )
    return Body(kind, spool, boundary)
