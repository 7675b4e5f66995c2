"""Reading request bodies: JSON, or multipart with files and a `spec` part; one way for all."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from app import uploads
from app.config import Settings
from app.errors import InvalidContent, UnreadableFile, UnsupportedType

M = TypeVar("M", bound=BaseModel)


def validation_detail(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{prefix}{loc}: {err['msg']}" if loc else f"{prefix}{err['msg']}")
    return "; ".join(parts)


def parse_spec(model: type[M], raw: bytes | str, what: str) -> M:
    if not raw or not raw.strip():
        return model()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise UnreadableFile(
                f"The {what} is not valid JSON: {exc.errors()[0]['msg']}. "
                'Send an object such as {"input": {"generator": "catdog"}}.'
            ) from None
        raise InvalidContent(validation_detail(exc, f"{what}: ")) from None


async def read_upload(part: Any, name: str, settings: Settings) -> uploads.Decoded | None:
    if part is None:
        return None
    if not isinstance(part, UploadFile):
        raise InvalidContent(f"The multipart part {name!r} must be a file, not a text field.")
    data = await part.read()
    return uploads.decode(
        data,
        name,
        part.filename,
        max_values=settings.max_values,
        max_pixels=settings.max_image_pixels,
    )


async def parse_body(
    request: Request,
    model: type[M],
    file_parts: tuple[str, ...],
    required: str | None,
    settings: Settings,
) -> tuple[M, dict[str, uploads.Decoded | None]]:
    """The request's spec and its decoded files (None where a part is absent)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    files: dict[str, uploads.Decoded | None] = dict.fromkeys(file_parts)
    if ctype == "multipart/form-data":
        allowed = {*file_parts, "spec"}
        async with request.form(
            max_files=len(file_parts), max_fields=len(allowed), max_part_size=1 << 20
        ) as form:
            unknown = set(form.keys()) - allowed
            if unknown:
                raise InvalidContent(
                    f"Unknown multipart parts: {', '.join(sorted(unknown))}; "
                    f"send {', '.join(sorted(allowed))}."
                )
            if required and form.get(required) is None:
                raise InvalidContent(f"The multipart body needs a file part named {required!r}.")
            spec_part = form.get("spec")
            if isinstance(spec_part, UploadFile):
                spec_part = (await spec_part.read()).decode("utf-8", "replace")
            spec = parse_spec(model, spec_part or "", "spec part")
            for name in file_parts:
                files[name] = await read_upload(form.get(name), name, settings)
        return spec, files
    if ctype in ("application/json", ""):
        return parse_spec(model, await request.body(), "JSON body"), files
    raise UnsupportedType(
        f"Content-Type {ctype!r} is not accepted; send application/json or multipart/form-data."
    )
