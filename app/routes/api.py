"""The REST API: /healthz, /readyz, /api/v1/presets, /api/v1/colormaps, /api/v1/compare."""

from __future__ import annotations

import tempfile
import time
from typing import IO, Annotated, Any, Literal

import numpy as np
import torch
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from app import __version__, compare, devices, generators, montage, render, uploads, weights
from app.routes.admission import ComputeRoute, file_response, json_bytes
from app.routes.bodies import parse_body, receive_body
from app.routes.deps import ERRORS, GateDep, SettingsDep, StrictQuery, TicketDep
from app.schemas import COMPARE_EXAMPLES, HARD_SIDE, CompareRequest, Health, Readiness

router = APIRouter(dependencies=[StrictQuery])
# Routes that compute: admitted by the gate before their body is read.
compute_router = APIRouter(dependencies=[StrictQuery], route_class=ComputeRoute)


def _example(value: Any) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": value}}}}


_ADMISSION_EXAMPLE = {
    "worker": 4242,
    "slots": 2,
    "capacity": 66,
    "admitted": 0,
    "computing": 0,
    "waiting_for_slot": 0,
    "abandoned": 0,
    "ready": True,
}


@router.get(
    "/healthz",
    response_model=Health,
    tags=["service"],
    responses=_example(
        {
            "status": "ok",
            "devices": ["cuda", "cpu"],
            "device_names": {"cpu": "CPU", "cuda": "NVIDIA H100 80GB HBM3"},
            "torch": "2.13.0",
            "version": __version__,
            "admission": _ADMISSION_EXAMPLE,
        }
    ),
)
async def healthz(gate: GateDep) -> dict[str, Any]:
    """Liveness, the compute devices this server has, and what its compute gate holds."""
    return {
        "status": "ok",
        "devices": devices.available(),
        "device_names": devices.describe(),
        "torch": torch.__version__,
        "version": __version__,
        "admission": gate.snapshot(),
    }


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["service"],
    responses={
        **_example({"status": "ready", "admission": _ADMISSION_EXAMPLE}),
        503: {"model": Readiness, "description": "Every slot and queue place is taken."},
    },
)
async def readyz(gate: GateDep) -> JSONResponse:
    """Readiness: 200 when this worker would admit one more request, 503 when it would not."""
    admission = gate.snapshot()
    ready = admission["ready"]
    return JSONResponse(
        {"status": "ready" if ready else "busy", "admission": admission},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


@router.get(
    "/api/v1/presets",
    tags=["compare"],
    responses=_example(
        {
            "generators": {
                "catdog": {
                    "description": "Channel 0 is cat evidence, channel 1 dog evidence, …",
                    "min_channels": 2,
                    "params": {
                        "height": {"default": 28, "min": 1, "max": 1024},
                        "blobs": {"default": 2, "min": 1, "max": 32, "description": "…"},
                    },
                }
            },
            "weight_presets": {"pca": {"description": "…", "params": ["out_channels"]}},
            "layouts": {"values": ["auto", "chw", "hwc", "nchw", "nhwc"], "auto_rule": "…"},
            "devices": ["cpu"],
            "limits": {"max_values": 33554432, "max_upload_bytes": 134217728},
        }
    ),
)
def presets(settings: SettingsDep) -> dict[str, Any]:
    """Generators and weight presets, with each one's parameters, defaults and limits."""
    common = {
        "height": {"default": 28, "min": 1, "max": settings.max_height},
        "width": {"default": 28, "min": 1, "max": settings.max_width},
        "channels": {"default": 4, "min": 1, "max": settings.max_channels},
        "seed": {"default": 0, "min": 0, "max": 2**32 - 1},
    }
    return {
        "generators": {
            name: {
                "description": g.description,
                "min_channels": g.min_channels,
                "params": common
                | {
                    k: {"default": d, "min": lo, "max": hi, "description": text}
                    for k, (d, lo, hi, text) in g.params.items()
                },
            }
            for name, g in generators.GENERATORS.items()
        },
        "weight_presets": {
            name: {"description": p.description, "params": list(p.params)}
            for name, p in weights.PRESETS.items()
        },
        "layouts": {"values": list(uploads.LAYOUTS), "auto_rule": uploads.AUTO_RULE},
        "devices": devices.available(),
        "limits": {
            "max_values": settings.max_values,
            "max_out_channels": settings.max_out_channels,
            "max_macs": settings.max_macs,
            "max_upload_bytes": settings.max_upload_bytes,
            "max_image_pixels": settings.max_image_pixels,
            "max_png_channels": settings.max_png_channels,
        },
    }


@router.get(
    "/api/v1/colormaps",
    tags=["compare"],
    responses=_example(
        {
            "sequential": {"name": "viridis", "rgb": "RAFUR…(768 bytes, base64)"},
            "diverging": {"name": "RdBu_r", "rgb": "BTBh…(768 bytes, base64)"},
        }
    ),
)
def colormaps() -> dict[str, Any]:
    """The colour maps the PNG montage uses, as base64 of 256×3 RGB bytes, for the page."""
    return render.colormaps_payload()


_OPENAPI_BODY = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/CompareRequest"},
                "examples": COMPARE_EXAMPLES,
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["input"],
                    "properties": {
                        "input": {
                            "type": "string",
                            "format": "binary",
                            "description": ".npy, .npz, .pt, .safetensors, PNG or JPEG",
                        },
                        "weights": {
                            "type": "string",
                            "format": "binary",
                            "description": "(K, C) or (K, C, 1, 1) array, or a state dict "
                            "with weight and optional bias",
                        },
                        "spec": {
                            "type": "string",
                            "description": "JSON with the same fields as the JSON body, "
                            "for what the files do not give",
                            "example": '{"input": {"layout": "chw"}, "device": "cpu"}',
                        },
                    },
                }
            },
        },
    }
}


@compute_router.post(
    "/api/v1/compare",
    tags=["compare"],
    responses={
        200: {
            "description": "JSON statistics and heatmaps, a PNG montage, or an npz of the arrays.",
            "content": {
                "application/json": {},
                "image/png": {},
                "application/x-npz": {},
            },
        },
        **ERRORS,
    },
    openapi_extra=_OPENAPI_BODY,
)
async def compare_endpoint(
    request: Request,
    settings: SettingsDep,
    ticket: TicketDep,
    format: Annotated[Literal["json", "png", "npz"], Query(description="What to return.")] = "json",
    scale: Annotated[
        Literal["shared", "channel"],
        Query(description="PNG colour scale: one per panel, or one per channel."),
    ] = "shared",
    channels: Annotated[
        int | None,
        Query(ge=1, le=HARD_SIDE, description="PNG: draw at most this many channels."),
    ] = None,
    heatmaps: Annotated[bool, Query(description="JSON: include the compact heatmaps.")] = True,
) -> Response:
    """Run ReLU-only and 1×1 conv + ReLU on the same feature maps.

    Send JSON (a generator and weights), or multipart/form-data with an `input` file,
    an optional `weights` file and an optional `spec` JSON part.
    """
    received = await receive_body(request, settings, ticket)

    def work() -> tuple[bytes | IO[bytes], dict[str, float], str]:
        started = time.perf_counter()
        req, files = parse_body(received, CompareRequest, ("input", "weights"), "input", settings)
        input_file, weights_file = files["input"], files["weights"]
        decode_ms = (time.perf_counter() - started) * 1e3
        ticket.token.check()
        cmp = compare.run(req, settings, input_file, weights_file)
        ticket.token.check()
        t0 = time.perf_counter()
        with torch.inference_mode():
            if format == "png":
                body: bytes | dict[str, Any] | IO[bytes] = montage.comparison_png(
                    cmp, scale, channels or settings.max_png_channels
                )
            elif format == "npz":
                # To disk, streamed back in pieces: a 500 MB answer is not held in RAM.
                body = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the ticket)
                ticket.on_release(body.close)
                arrays: dict[str, Any] = {
                    k: np.ascontiguousarray(v, np.float32) for k, v in cmp.arrays().items()
                }
                np.savez(body, **arrays)
            else:
                body = render.comparison_json(
                    cmp,
                    heatmap_budget=settings.max_heatmap_values,
                    heatmaps=heatmaps,
                    echo_weights=settings.max_echo_weights,
                )
        timings = {"decode": decode_ms, **cmp.timings_ms}
        timings["encode"] = (time.perf_counter() - t0) * 1e3
        if isinstance(body, dict):
            body["timings_ms"] = {k: round(v, 3) for k, v in timings.items()}
            body = json_bytes(body)
        return body, timings, cmp.device

    body, timings, device = await ticket.run(work, request.receive)
    server_timing = ", ".join(f"{k};dur={v:.2f}" for k, v in timings.items())
    headers = {"Server-Timing": server_timing, "X-Onebyone-Device": device}
    if isinstance(body, bytes):
        media_type = "image/png" if format == "png" else "application/json"
        return Response(body, media_type=media_type, headers=headers)
    headers["Content-Disposition"] = 'attachment; filename="onebyone.npz"'
    return file_response(body, "application/x-npz", headers)
