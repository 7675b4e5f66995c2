"""Strict validation: JSON text and pydantic's errors to one domain error.

Strict where leniency could only hide a mistake: no duplicate keys, numbers that are
numbers (not booleans or strings), unknown fields refused with the list of the fields
that exist there, and a bound on what a parse may cost before it starts. Used for request
bodies (routes.pipeline) and for query parameters (app.main's handler).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from app.errors import InvalidContent, TooLarge, UnreadableFile, excerpt

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
_UNION_TAG = re.compile(r"^(float|int|str|bool|none|constrained-[a-z]+|[a-z-]+\[.*\])$")


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
    # One sentence a field: a value no member of a union takes is one error, whose messages
    # say what each member wanted.
    said: dict[str, list[str]] = {}
    for err in errors[:_MAX_ERRORS]:
        loc = tuple(err.get("loc", ()))
        where = _field(loc) or (err.get("ctx") or {}).get("field") or "request"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            known = ", ".join(parent.model_fields) if parent else ""
            msg = f"unknown field{f'; the fields here are: {known}' if known else ''}"
        said.setdefault(where, []).append(msg)
    parts = [f"{what}{where}: {', or '.join(msgs)}" for where, msgs in said.items()]
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


def _count_values(raw: bytes | bytearray | str) -> int:
    """An upper bound on the values (and keys) a JSON text holds, counted before parsing.

    Every value but the first in a list or object follows a comma, and each list or object
    is one more: commas + brackets + 1 bounds them (brackets inside strings only add).
    """
    if isinstance(raw, str):
        return raw.count(",") + raw.count("[") + raw.count("{") + 1
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{") + 1


def parse_spec(
    model: type[M], raw: bytes | bytearray | str, what: str, max_values: int | None = None
) -> M:
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
