"""Splitting a multipart/form-data body into its named parts, strictly.

Runs in a compute slot on a body already received (routes.receiving). Every part needs a
name; names outside the route's parts, or sent twice, are refused as they come; the `spec`
part has its own byte limit; a body without its closing boundary is refused as cut short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import InvalidContent, TooLarge, UnreadableFile, excerpt
from app.routes.receiving import Body
from app.routes.spool import Spool

# Bytes of one part kept in RAM; the rest goes to a temporary file.
PART_MEMORY = 1 << 20


@dataclass
class Part:
    """One multipart part: its filename (None for a text field) and its bytes."""

    name: str
    filename: str | None
    data: Spool = field(default_factory=lambda: Spool(PART_MEMORY))


def split(body: Body, parts: dict[str, Part], allowed: set[str], spec_limit: int) -> None:
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
