"""Reading request bodies: JSON, or multipart with files and a `spec` part; one way for all.

Two halves. `receive_body` runs on the event loop while the request waits its turn: it
checks the Content-Type and the declared size before reading a byte, then copies the body
into a `Spool` (a little in RAM, the rest on disk) within a byte limit and a time limit.
`parse_body` runs in a compute slot: it parses JSON or splits the multipart body and
decodes the uploaded files, so the cost of parsing is bounded by the number of slots.

The parser is strict where leniency could only hide a mistake: a body needs a
Content-Type, JSON keys and multipart parts may not repeat, numbers must be
numbers (not booleans or strings), and unknown fields are refused with the list
of the fields that exist there.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app import uploads
from app.config import Settings
from app.errors import (
    InvalidContent,
    OneByOneError,
    TooLarge,
    TooSlow,
    UnreadableFile,
    UnsupportedType,
    excerpt,
)
from app.gate import ClientGone, Ticket

M = TypeVar("M", bound=BaseModel)

_CODES = {"extra_forbidden": "unknown_field", "missing": "missing", "finite_number": "not_finite"}


def _model_at(model: type[BaseModel] | None, path: Sequence[Any]) -> type[BaseModel] | None:
    """The nested model at a pydantic location, if the path leads through models."""
    for part in path:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return model


# pydantic puts the member of a union it tried into the location ("float", "list[float]").
_UNION_TAG = re.compile(r"^(float|int|str|bool|none|[a-z-]+\[.*\])$")


def _field(loc: Sequence[Any]) -> str | None:
    parts = [p for p in loc if not (isinstance(p, str) and _UNION_TAG.match(p))]
    return ".".join(excerpt(p).strip("'") if isinstance(p, str) else str(p) for p in parts) or None


# A refusal lists this many of pydantic's errors, then counts the rest.
_MAX_ERRORS = 8
# Keys one JSON object may have: the request models have at most a few dozen fields, and
# each unknown key would be an error of its own.
_MAX_KEYS = 256


def validation_error(
    errors: Sequence[Any], model: type[BaseModel] | None, what: str = ""
) -> InvalidContent:
    """pydantic's errors as one InvalidContent: every message, the first one's field and code.

    An unknown field's message lists the fields that exist at that place.
    """
    parts = []
    for err in errors[:_MAX_ERRORS]:
        loc = tuple(err.get("loc", ()))
        where = _field(loc) or (err.get("ctx") or {}).get("field") or "request"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            known = ", ".join(parent.model_fields) if parent else ""
            msg = f"unknown field{f'; the fields here are: {known}' if known else ''}"
        parts.append(f"{what}{where}: {msg}")
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more errors")
    first = errors[0] if errors else {}
    kind = str(first.get("type"))
    # Our own model validators name their field and code (PydanticCustomError).
    field = (first.get("ctx") or {}).get("field") or _field(tuple(first.get("loc", ())))
    return InvalidContent(
        "; ".join(parts),
        field=field,
        code=_CODES.get(kind, kind if kind == "conflict" else "invalid"),
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > _MAX_KEYS:
        raise InvalidContent(
            f"A JSON object has {len(pairs)} keys; no object in a request has more than "
            f"{_MAX_KEYS}. Send only the fields the API lists (see /docs).",
            code="too_many_keys",
        )
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise UnreadableFile(
                f"The key {excerpt(key)} appears twice in one JSON object; send it once.",
                field=key if key.isidentifier() and len(key) <= 40 else None,
                code="duplicate_key",
            )
        out[key] = value
    return out


def _count_values(raw: bytes | str) -> int:
    """An upper bound on the values (and keys) a JSON text holds, counted before parsing.

    Every value but the first in a list or object follows a comma, and each list or object
    is one more: commas + brackets + 1 bounds them (brackets inside strings only add).
    """
    if isinstance(raw, str):
        return raw.count(",") + raw.count("[") + raw.count("{") + 1
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1


def parse_spec(model: type[M], raw: bytes | str, what: str, max_values: int | None = None) -> M:
    """A request model from JSON text: duplicate keys refused, numbers strictly numbers.

    `max_values` bounds what parsing may cost (about 100 bytes of memory per value).
    """
    if not raw or not raw.strip():
        return model()
    if max_values is not None and (count := _count_values(raw)) > max_values:
        raise TooLarge(
            f"The {what} holds up to {count} JSON values; the limit is {max_values} "
            "(ONEBYONE_MAX_JSON_VALUES). Send large arrays as files (multipart).",
            code="too_many_values",
        )
    try:
        obj = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and an integer longer than
        # Python's digit limit (sys.get_int_max_str_digits).
        raise UnreadableFile(
            f"The {what} is not valid JSON: {excerpt(exc, 120)}. "
            'Send an object such as {"input": {"generator": "catdog"}}.',
            code="bad_json",
        ) from None
    if not isinstance(obj, dict):
        raise InvalidContent(
            f"The {what} must be a JSON object, not {type(obj).__name__}.", code="not_an_object"
        )
    try:
        return model.model_validate(obj, strict=True)
    except ValidationError as exc:
        raise validation_error(
            exc.errors(include_url=False, include_input=False), model, f"{what}: "
        ) from None


# ---------------------------------------------------------------- receiving (event loop)

# Bytes written to disk at a time, off the event loop.
_WRITE_BATCH = 512 * 1024
# Bytes of the body's end kept to check that a multipart body is complete.
_TAIL = 1024
# Seconds a body may take before its average rate is checked, and how often it then is.
_GRACE_S = 2.0
_RATE_CHECK_S = 1.0


class Spool:
    """A request body: its first `memory` bytes in RAM, the rest in a temporary file.

    Writes go to the file in batches, on the event loop's default executor: a plain thread
    hop (anyio's to_thread costs more on the loop than the write itself).
    """

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.head = bytearray()
        self.file: IO[bytes] | None = None
        self.size = 0
        self._batch: list[bytes] = []
        self._batched = 0

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.file is None and not self._batch and len(self.head) + len(data) <= self.memory:
            self.head += data
            return
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= _WRITE_BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self._batch:
            batch, self._batch, self._batched = self._batch, [], 0
            await asyncio.get_running_loop().run_in_executor(None, self._write_file, batch)

    def _write_file(self, batch: list[bytes]) -> None:
        if self.file is None:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the ticket)
        self.file.writelines(batch)

    def chunks(self, size: int = 1024 * 1024) -> Iterator[bytes]:
        """The body again, from the start, in pieces (in a compute thread)."""
        for start in range(0, len(self.head), size):
            yield bytes(self.head[start : start + size])
        if self.file is not None:
            self.file.seek(0)
            while chunk := self.file.read(size):
                yield chunk

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        self.head = bytearray()
        if self.file is not None:
            self.file.close()


@dataclass
class Body:
    """A received body: its kind (json, multipart or empty) and its bytes, spooled."""

    kind: str
    spool: Spool
    boundary: bytes = b""
    stop: threading.Event | None = None  # the request's CancelToken: decoding looks at it


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


async def receive_body(request: Request, settings: Settings, ticket: Ticket) -> Body:
    """Read an admitted request's body into a spool, within its byte and time limits.

    The spool belongs to the ticket: it is closed when the admission is given back.
    """
    plan = plan_body(request.headers, settings)
    spool = Spool(settings.spool_bytes)
    ticket.on_release(spool.close)
    kind, boundary, limit, over = plan.kind, plan.boundary, plan.limit, plan.over
    if plan.declared == 0 or (plan.declared is None and not plan.chunked):
        return Body(kind, spool, boundary, ticket.token)
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
            await spool.write(chunk)
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
    await spool.flush()
    # The closing boundary in the body's last KiB (RFC 2046 allows a short epilogue after it).
    if kind == "multipart" and b"--" + boundary + b"--" not in tail:
        raise UnreadableFile(
            "The multipart body is cut short: it does not end with its closing boundary. "
            "Send the whole body.",
            code="bad_multipart",
        )
    return Body(kind, spool, boundary, ticket.token)


# ---------------------------------------------------------------- parsing (compute slot)


class _Sink:
    """One part's bytes: in RAM up to 1 MiB (read back as that buffer itself), the rest in a
    temporary file, read back into one bytearray by preadv, which does not hold the GIL (a
    100 MB copy held in Python would hold the event loop for tens of milliseconds)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.file: IO[bytes] | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.file is None and len(self.buf) + len(data) <= 1 << 20:
            self.buf += data
            return
        if self.file is None:
            self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            self.file.write(self.buf)
            self.buf = bytearray()
        self.file.write(data)

    def read(self) -> bytearray:
        """The part's bytes, mutable: arrays decoded from them in place are writable too."""
        if self.file is None:
            return self.buf
        self.file.flush()
        data = bytearray(self.size)
        view, done = memoryview(data), 0
        while done < self.size:  # os.preadv reads without the GIL; a short read may happen
            got = os.preadv(self.file.fileno(), [view[done:]], done)
            if got == 0:
                raise OSError(f"a spooled part ended at {done} of its {self.size} bytes")
            done += got
        return data

    def close(self) -> None:
        self.buf = bytearray()
        if self.file is not None:
            self.file.close()


@dataclass
class Part:
    """One multipart part: its filename (None for a text field) and its bytes."""

    name: str
    filename: str | None
    data: _Sink = field(default_factory=_Sink)


def _split_multipart(
    body: Body, parts: dict[str, Part], allowed: set[str], spec_limit: int
) -> None:
    """The parts of a multipart body into `parts` by name; unknown or repeated names are
    refused as they come."""
    state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "part": None}
    ended = False

    def header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def headers_finished() -> None:
        _, options = parse_options_header(state["headers"].get(b"content-disposition", b""))
        state["headers"] = {}
        if b"name" not in options:
            raise UnreadableFile(
                "A multipart part has no name in its Content-Disposition; send "
                'form-data; name="…".',
                code="bad_multipart",
            )
        name = options[b"name"].decode("utf-8", "replace")
        if name not in allowed:
            raise InvalidContent(
                f"Unknown multipart part {excerpt(name)}; send {', '.join(sorted(allowed))}.",
                field=name if name.isidentifier() and len(name) <= 40 else None,
                code="unknown_part",
            )
        if name in parts:
            raise InvalidContent(
                f"The multipart part {name!r} is sent more than once; send it once.",
                field=name,
                code="repeated_part",
            )
        filename = options.get(b"filename")
        part = Part(name, None if filename is None else filename.decode("utf-8", "replace"))
        parts[name] = state["part"] = part

    def part_data(data: bytes, start: int, end: int) -> None:
        part: Part = state["part"]
        if part.name == "spec" and part.data.size + end - start > spec_limit:
            raise TooLarge(
                f"The spec part is over {spec_limit} bytes (ONEBYONE_MAX_SPEC_BYTES); send "
                "arrays as files.",
                field="spec",
            )
        part.data.write(data[start:end])

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        body.boundary,
        {
            "on_header_field": header_field,
            "on_header_value": header_value,
            "on_header_end": header_end,
            "on_headers_finished": headers_finished,
            "on_part_data": part_data,
            "on_end": on_end,
        },
    )
    try:
        for chunk in body.spool.chunks():
            parser.write(chunk)
    except MultipartParseError as exc:
        raise UnreadableFile(
            f"The multipart body is malformed: {excerpt(exc, 120)}.", code="bad_multipart"
        ) from None
    if not ended:
        raise UnreadableFile(
            "The multipart body is cut short: it does not end with its closing boundary. "
            "Send the whole body.",
            code="bad_multipart",
        )


def read_upload(
    part: Part | None, name: str, settings: Settings, stop: threading.Event | None = None
) -> uploads.Decoded | None:
    if part is None:
        return None
    if part.filename is None:
        raise InvalidContent(
            f"The multipart part {name!r} must be a file, not a text field.",
            field=name,
            code="not_a_file",
        )
    data = part.data.read()
    part.data.close()  # its bytes are in `data` now
    return uploads.decode(
        data,
        name,
        part.filename,
        max_values=settings.max_values,
        max_pixels=settings.max_image_pixels,
        max_side=(settings.max_height, settings.max_width),
        stop=stop,
    )


def parse_body(
    body: Body,
    model: type[M],
    file_parts: tuple[str, ...],
    required: str | None,
    settings: Settings,
) -> tuple[M, dict[str, uploads.Decoded | None]]:
    """The request's spec and its decoded files (None where a part is absent).

    Runs in a compute slot: JSON parsing and decoding cost CPU and memory.
    """
    files: dict[str, uploads.Decoded | None] = dict.fromkeys(file_parts)
    if body.kind == "empty":
        return model(), files  # nothing sent: every default
    if body.kind == "json":
        return parse_spec(model, body.spool.read(), "JSON body", settings.max_json_values), files
    parts: dict[str, Part] = {}
    try:
        _split_multipart(body, parts, {*file_parts, "spec"}, settings.max_spec_bytes)
        if required and required not in parts:
            raise InvalidContent(
                f"The multipart body needs a file part named {required!r}.",
                field=required,
                code="missing",
            )
        spec_text = ""
        if (spec_part := parts.get("spec")) is not None:
            spec_text = spec_part.data.read().decode("utf-8", "replace")
        spec = parse_spec(model, spec_text, "spec part", settings.max_json_values)
        for name in file_parts:
            files[name] = read_upload(parts.get(name), name, settings, body.stop)
    finally:
        for part in parts.values():
            part.data.close()
    return spec, files
