"""What every route shares: the settings, the compute gate, and the error table for OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.config import Settings, get_settings
from app.gate import ComputeGate
from app.schemas import ErrorResponse

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_gate(request: Request) -> ComputeGate:
    gate: ComputeGate = request.app.state.gate
    return gate


GateDep = Annotated[ComputeGate, Depends(get_gate)]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "A file or body that cannot be read (truncated, malformed, bad JSON).",
        403: "A request from a foreign web page (Origin) or for a foreign host name.",
        413: "Body, file or array over a limit.",
        415: "Unsupported file type or Content-Type, or content that would need unpickling.",
        422: "A valid request of impossible content: shape mismatch, NaN, unknown name or field, "
        "absent device.",
        503: "Every compute slot is busy, or the time budget ran out; retry after the "
        "Retry-After header's seconds.",
    }.items()
}
