"""Reading request bodies: JSON, or multipart with files and a `spec` part; one way for all.

The parser is strict where leniency could only hide a mistake: a body needs a
Content-Type, JSON keys and multipart parts may not repeat, numbers must be
numbers (not booleans or strings), and unknown fields are refused with the list
of the fields that exist there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from app import uploads
from app.config import Settings
from app.errors import InvalidContent, UnreadableFile, UnsupportedType, excerpt

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


def validation_error(
    errors: Sequence[Any], model: type[BaseModel] | None, what: str = ""
) -> InvalidContent:
    """pydantic's errors as one InvalidContent: every message, the first one's field and code.

    An unknown field's message lists the fields that exist at that place.
    """
    parts = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        where = _field(loc) or (err.get("ctx") or {}).get("field") or "request"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            known = ", ".join(parent.model_fields) if parent else ""
            msg = f"unknown field{f'; the fields here are: {known}' if known else ''}"
        parts.append(f"{what}{where}: {msg}")
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
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise UnreadableFile(
                f"The key {excerpt(key)} appears twice in one JSON object; send it once.",
                field=key if key.isidentifier() else None,
                code="duplicate_key",
            )
        out[key] = value
    return out


def parse_spec(model: type[M], raw: bytes | str, what: str) -> M:
    """A request model from JSON text: duplicate keys refused, numbers strictly numbers."""
    if not raw or not raw.strip():
        return model()
    try:
        obj = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
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
        raise validation_error(exc.errors(), model, f"{what}: ") from None


async def read_upload(part: Any, name: str, settings: Settings) -> uploads.Decoded | None:
    if part is None:
        return None
    if not isinstance(part, UploadFile):
        raise InvalidContent(
            f"The multipart part {name!r} must be a file, not a text field.",
            field=name,
            code="not_a_file",
        )
    data = await part.read()
    return uploads.decode(
        data,
        name,
        part.filename,
        max_values=settings.max_values,
        max_pixels=settings.max_image_pixels,
    )


def _terminated(body: bytes, boundary: bytes) -> bool:
    """Whether a multipart body ends with its closing boundary (`--boundary--`)."""
    return body.rstrip(b"\r\n \t").endswith(b"--" + boundary + b"--")


async def parse_body(
    request: Request,
    model: type[M],
    file_parts: tuple[str, ...],
    required: str | None,
    settings: Settings,
) -> tuple[M, dict[str, uploads.Decoded | None]]:
    """The request's spec and its decoded files (None where a part is absent)."""
    ctype, _, params = request.headers.get("content-type", "").partition(";")
    ctype = ctype.strip().lower()
    files: dict[str, uploads.Decoded | None] = dict.fromkeys(file_parts)
    body = await request.body()
    if ctype == "multipart/form-data":
        boundary = ""
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "boundary":
                boundary = value.strip('"')
        if not boundary:
            raise UnreadableFile(
                "The multipart body has no boundary in its Content-Type; let your client "
                "set it (curl -F does).",
                code="bad_multipart",
            )
        if not _terminated(body, boundary.encode("latin-1")):
            raise UnreadableFile(
                "The multipart body is cut short: it does not end with its closing boundary. "
                "Send the whole body.",
                code="bad_multipart",
            )
        allowed = {*file_parts, "spec"}
        async with request.form(
            max_files=len(file_parts) + 1, max_fields=len(allowed) + 1, max_part_size=1 << 20
        ) as form:
            names = [name for name, _ in form.multi_items()]
            for name in names:
                if name not in allowed:
                    raise InvalidContent(
                        f"Unknown multipart part {excerpt(name)}; "
                        f"send {', '.join(sorted(allowed))}.",
                        field=name if name.isidentifier() and len(name) <= 40 else None,
                        code="unknown_part",
                    )
                if names.count(name) > 1:
                    raise InvalidContent(
                        f"The multipart part {name!r} is sent {names.count(name)} times; "
                        "send it once.",
                        field=name,
                        code="repeated_part",
                    )
            if required and form.get(required) is None:
                raise InvalidContent(
                    f"The multipart body needs a file part named {required!r}.",
                    field=required,
                    code="missing",
                )
            spec_part = form.get("spec")
            if isinstance(spec_part, UploadFile):
                spec_part = (await spec_part.read()).decode("utf-8", "replace")
            spec = parse_spec(model, spec_part or "", "spec part")
            for name in file_parts:
                files[name] = await read_upload(form.get(name), name, settings)
        return spec, files
    if ctype == "application/json":
        return parse_spec(model, body, "JSON body"), files
    if not ctype and not body:
        return model(), files  # nothing sent: every default
    if not ctype:
        raise UnsupportedType(
            "The request has a body but no Content-Type; send Content-Type: application/json "
            "(curl -H 'Content-Type: application/json') or multipart/form-data (curl -F).",
            code="missing_content_type",
        )
    raise UnsupportedType(
        f"Content-Type {excerpt(ctype)} is not accepted; send application/json or "
        "multipart/form-data.",
        code="unsupported_content_type",
    )
