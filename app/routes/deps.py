"""What every route shares: the settings, the compute gate, the generated-maps cache, strict
query parameters, and how a route documents its answers in OpenAPI."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, Request

from app import inputs
from app.config import Settings
from app.errors import InvalidContent, excerpt
from app.gate import ComputeGate
from app.schemas.responses import Documented, ErrorResponse

# Dependencies are `async def`: FastAPI runs a plain `def` one in a thread pool, a hop per
# request that, with compute threads busy, waits for the GIL and slows even /healthz.


async def get_settings(request: Request) -> Settings:
    """The settings create_app() was given."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_gate(request: Request) -> ComputeGate:
    gate: ComputeGate = request.app.state.gate
    return gate


GateDep = Annotated[ComputeGate, Depends(get_gate)]


async def get_sources(request: Request) -> inputs.Sources:
    """What this process makes maps from: the generated maps' cache
    (ONEBYONE_GENERATOR_CACHE_BYTES) and the trained network with its photos' cache."""
    sources: inputs.Sources = request.app.state.sources
    return sources


SourcesDep = Annotated[inputs.Sources, Depends(get_sources)]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "A file or body that cannot be read (truncated, malformed, bad JSON).",
        403: "A request from a foreign web page (Origin) or for a foreign host name.",
        408: "The request body arrived too slowly (ONEBYONE_BODY_TIMEOUT_S).",
        413: "Body, file or array over a limit.",
        415: "Unsupported file type or Content-Type, or content that would need unpickling.",
        422: "A valid request of impossible content: shape mismatch, NaN, unknown name or field, "
        "absent device.",
        503: "Every compute slot is busy, or the time budget ran out; retry after the "
        "Retry-After header's seconds.",
    }.items()
}


def answers(
    model: type[Documented],
    other: dict[str, Any] | None = None,
    *,
    description: str | None = None,
    errors: bool = True,
) -> dict[int | str, dict[str, Any]]:
    """A route's documented answers: 200 with its model's example (tests check that it
    validates), other media types it may answer with, and the error table."""
    ok: dict[str, Any] = {
        "content": {"application/json": {"example": model.EXAMPLE}, **(other or {})}
    }
    if description:
        ok["description"] = description
    return {200: ok, **(ERRORS if errors else {})}


def _query_params(dependant: Any) -> dict[str, bool]:
    """The query parameters a route declares, its dependencies' included: name -> repeatable.

    A parameter typed as a list (e.g. `panel=input&panel=conv_relu`) may be given repeatedly.
    """
    if dependant is None:
        return {}
    params = {}
    for p in dependant.query_params:
        annotation = p.field_info.annotation
        kinds = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else ()
        params[p.alias] = any(get_origin(a) is list for a in (annotation, *kinds))
    for sub in dependant.dependencies:
        params |= _query_params(sub)
    return params


async def strict_query(request: Request) -> None:
    """Refuse a query parameter this route does not have, or one given twice.

    `?format=json&format=npz` or a typo such as `?fromat=png` can only be a mistake;
    silently taking the last value or ignoring the name would hide it.
    """
    allowed = _query_params(getattr(request.scope.get("route"), "dependant", None))
    names = [name for name, _ in request.query_params.multi_items()]
    for name in names:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise InvalidContent(
                f"Unknown query parameter {excerpt(name)}; this endpoint takes: {known}.",
                field=name if name.isidentifier() and len(name) <= 40 else None,
                code="unknown_parameter",
            )
        if names.count(name) > 1 and not allowed[name]:
            raise InvalidContent(
                f"The query parameter {name!r} is given {names.count(name)} times; give it once.",
                field=name,
                code="repeated_parameter",
            )


StrictQuery = Depends(strict_query)
