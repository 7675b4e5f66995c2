"""The REST API: /healthz, /readyz, /api/v1/catalogue, /api/v1/colormaps, /api/v1/compare."""

from __future__ import annotations

import tempfile
import time
from typing import IO, Annotated, Any, Literal

import torch
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from app import __version__, catalogue, compare, devices, montage, render, report
from app.errors import InvalidContent
from app.routes.admission import ComputeRoute, file_response
from app.routes.bodies import parse_body, receive_body
from app.routes.deps import ERRORS, CacheDep, GateDep, SettingsDep, StrictQuery, TicketDep
from app.schemas import (
    COMPARE_EXAMPLES,
    HARD_SIDE,
    Admission,
    Catalogue,
    Colormaps,
    CompareReport,
    CompareRequest,
    Format,
    Health,
    Readiness,
)

router = APIRouter(dependencies=[StrictQuery])
# Routes that compute: admitted by the gate before their body is read.
compute_router = APIRouter(dependencies=[StrictQuery], route_class=ComputeRoute)


def ok(example: Any, media: str = "application/json") -> dict[int | str, dict[str, Any]]:
    """An OpenAPI 200 entry with an example (tests check it validates against the model)."""
    return {200: {"content": {media: {"example": example}}}}


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
HEALTH_EXAMPLE = {
    "status": "ok",
    "devices": ["cuda", "cpu"],
    "device_names": {"cpu": "CPU", "cuda": "NVIDIA H100 80GB HBM3"},
    "torch": "2.13.0",
    "version": __version__,
    "admission": _ADMISSION_EXAMPLE,
}


@router.get("/healthz", response_model=Health, tags=["service"], responses=ok(HEALTH_EXAMPLE))
async def healthz(gate: GateDep) -> Health:
    """Liveness, the compute devices this server has, and what its compute gate holds."""
    return Health(
        status="ok",
        devices=devices.available(),
        device_names=devices.describe(),
        torch=torch.__version__,
        version=__version__,
        admission=Admission.model_validate(gate.snapshot()),
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["service"],
    responses={
        **ok({"status": "ready", "admission": _ADMISSION_EXAMPLE}),
        503: {
            "model": Readiness,
            "description": "Every slot and queue place is taken, or the server is shutting down.",
        },
    },
)
async def readyz(gate: GateDep) -> JSONResponse:
    """Readiness: 200 when this worker would admit one more request, 503 when it would not."""
    admission = gate.snapshot()
    ready = admission["ready"]
    status = "ready" if ready else "draining" if admission["draining"] else "busy"
    return JSONResponse(
        {"status": status, "admission": admission},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


CATALOGUE_EXAMPLE = {
    "generators": {
        "catdog": {
            "description": "Channel 0 is cat evidence, channel 1 dog evidence, …",
            "min_channels": 2,
            "fixed_channels": None,
            "params": {
                "height": {"type": "int", "default": 28, "min": 1, "max": 1024},
                "blobs": {
                    "type": "int",
                    "default": 2,
                    "min": 1,
                    "max": 32,
                    "description": "blobs of each animal; each dog overlaps a cat",
                },
            },
        }
    },
    "weight_presets": {
        "pca": {
            "description": "Projection onto the input's top-K principal directions …",
            "params": {
                "out_channels": {
                    "type": "int",
                    "default": None,
                    "min": 1,
                    "max": 1024,
                    "description": "K, the number of filters; default min(C, 64)",
                }
            },
        }
    },
    "layouts": {"values": [{"id": "chw", "label": "C, H, W"}], "auto_rule": "…"},
    "devices": {"choices": ["auto", "cpu", "cuda", "mps"], "available": ["cpu"], "names": {}},
    "files": {"weights": {"extensions": [".npy", ".pt"], "description": "A 1×1 layer …"}},
    "formats": ["json", "png", "npz"],
    "scenarios": [
        {
            "id": "identity",
            "title": "Identity weights",
            "point": "With W = I and b = 0 …",
            "endpoint": "/api/v1/compare",
            "request": {"input": {"generator": "gaussian"}, "weights": {"preset": "identity"}},
        }
    ],
    "limits": {"max_values": 33554432, "max_upload_bytes": 134217728},
    "checkpoint": {
        "layers_endpoint": "/api/v1/checkpoints/layers",
        "batchnorm": [{"id": "auto", "label": "fold the batch norm that follows it"}],
        "eps": {"type": "float", "default": 1e-5, "min": None, "max": 1.0},
    },
}


@router.get(
    "/api/v1/catalogue", response_model=Catalogue, tags=["compare"], responses=ok(CATALOGUE_EXAMPLE)
)
def catalogue_endpoint(settings: SettingsDep) -> Catalogue:
    """Generators, weight presets (each with parameters, defaults and limits), layouts,
    devices, accepted files, formats, the page's scenarios and the server's limits."""
    return catalogue.build(settings)


@router.get(
    "/api/v1/presets",
    response_model=Catalogue,
    tags=["compare"],
    responses=ok(CATALOGUE_EXAMPLE),
    deprecated=True,
)
def presets(settings: SettingsDep) -> Catalogue:
    """The catalogue under its first name; use /api/v1/catalogue."""
    return catalogue.build(settings)


COLORMAPS_EXAMPLE = {
    "sequential": {"name": "viridis", "rgb": "RAFUR…(768 bytes, base64)"},
    "diverging": {"name": "RdBu_r", "rgb": "BTBh…(768 bytes, base64)"},
}


@router.get(
    "/api/v1/colormaps", response_model=Colormaps, tags=["compare"], responses=ok(COLORMAPS_EXAMPLE)
)
def colormaps() -> Colormaps:
    """The colour maps the PNG montage uses, as base64 of 256×3 RGB bytes, for the page."""
    return report.colormaps()


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


COMPARE_REPORT_EXAMPLE = {
    "device": "cpu",
    "input_source": "generator:catdog",
    "weights_source": "matrix",
    "shapes": {
        "input": [2, 2, 2],
        "weight": [1, 2],
        "bias": [1],
        "pre_activation": [1, 2, 2],
        "relu_only": [2, 2, 2],
        "conv_relu": [1, 2, 2],
    },
    "channel_names": ["cat evidence", "dog evidence"],
    "summary": {
        "relu_only_changed": 0,
        "relu_only_values": 8,
        "conv_relu_changed": 2,
        "conv_relu_values": 4,
        "paths_identical": False,
        "paths_max_abs_difference": None,
    },
    "stats": {
        name: {"min": [0.0], "max": [0.9], "mean": [0.4], "zero_fraction": [0.25]}
        | ({"changed_fraction": [0.0]} if name.endswith("relu") or name == "relu_only" else {})
        for name in ("input", "pre_activation", "relu_only", "conv_relu")
    },
    "cost": {
        "conv1x1": {"parameters": 3, "macs": 8},
        "conv3x3": {"parameters": 19, "macs": 72},
    },
    "layer": {"weight": [[1.0, -1.0]], "bias": [0.0]},
    "truth": {
        "cat_over_dog": {
            "fraction_true": 0.25,
            "relu_only": {"best_channel": 0, "agreement": 0.5},
            "conv_relu": {"best_channel": 0, "agreement": 1.0},
        }
    },
    "heatmaps": {
        "stride": 1,
        "height": 2,
        "width": 2,
        "input": {"shape": [2, 2, 2], "data": "ZmZmP83MzD0AAAAAmpkZP83MTD4AAAA/AAAAADMzMz8="},
        "pre_activation": {"shape": [1, 2, 2], "data": "MzMzP83MzL4AAAAAyMzMvQ=="},
        "weight": {"shape": [1, 2], "data": "AACAPwAAgL8="},
        "bias": {"shape": [1], "data": "AAAAAA=="},
        "masks": {"cat_over_dog": "AQAAAA=="},
    },
    "timings_ms": {"decode": 0.1, "prepare": 0.4, "compute": 0.05, "encode": 0.3},
}


@compute_router.post(
    "/api/v1/compare",
    tags=["compare"],
    response_model=CompareReport,
    responses={
        200: {
            "description": "format=json: the report below. format=png: one montage image. "
            "format=npz: the arrays input (C,H,W), weight (K,C), bias (K,), pre_activation "
            "(K,H,W), relu_only (C,H,W), conv_relu (K,H,W), float32.",
            "content": {
                "application/json": {"example": COMPARE_REPORT_EXAMPLE},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "application/x-npz": {"schema": {"type": "string", "format": "binary"}},
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
    cache: CacheDep,
    format: Annotated[Format, Query(description="What to return.")] = "json",
    scale: Annotated[
        Literal["shared", "channel"],
        Query(description="PNG colour scale: one range per panel, or one per channel."),
    ] = "shared",
    channels: Annotated[
        int | None,
        Query(
            ge=1,
            le=HARD_SIDE,
            description="PNG: draw at most this many channels of each panel (default: "
            "ONEBYONE_MAX_PNG_CHANNELS, 256). The image says when channels were left out.",
        ),
    ] = None,
    panel: Annotated[
        list[montage.PanelName] | None,
        Query(
            description="PNG: the panels to draw, in order; repeat it for several "
            "(`panel=input&panel=pre_activation&panel=conv_relu&panel=difference`). Default: "
            "input, relu_only, conv_relu. `difference` is conv_relu − relu_only and needs K = C.",
        ),
    ] = None,
    channel: Annotated[
        int | None,
        Query(
            ge=0,
            le=HARD_SIDE,
            description="PNG: draw only this channel of each panel, enlarged: with one `panel` "
            "it is a single picture (`panel=conv_relu&channel=3`). Not with `channels`.",
        ),
    ] = None,
    heatmaps: Annotated[
        bool, Query(description="JSON: include the exact values the page draws.")
    ] = True,
) -> Response:
    """Run ReLU-only and 1×1 conv + ReLU on the same feature maps.

    Send JSON (a generator and weights), or multipart/form-data with an `input` file,
    an optional `weights` file and an optional `spec` JSON part.
    """
    if channel is not None and channels is not None:
        raise InvalidContent(
            "Give channel (one channel, enlarged) or channels (how many to draw), not both.",
            field="channel",
            code="conflict",
        )
    received = await receive_body(request, settings, ticket)

    def work() -> tuple[bytes | IO[bytes], dict[str, float], str]:
        started = time.perf_counter()
        req, files = parse_body(received, CompareRequest, ("input", "weights"), "input", settings)
        decode_ms = (time.perf_counter() - started) * 1e3
        ticket.token.check()
        # compare.run gets the only references to the decoded files, so a checkpoint's
        # other tensors are let go once its layer is built (docs/HARDENING.md, J).
        cmp = compare.run(req, settings, files.pop("input"), files.pop("weights"), cache)
        ticket.token.check()
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        with torch.inference_mode():
            if format == "png":
                body: bytes | CompareReport | IO[bytes]
                body, stages = montage.comparison_png(
                    cmp,
                    panels=panel or montage.DEFAULT_PANELS,
                    channel=channel,
                    cap=channels or settings.max_png_channels,
                    scale=scale,
                )
            elif format == "npz":
                # To disk, streamed back in pieces: a 500 MB answer is not held in RAM.
                body = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the ticket)
                ticket.on_release(body.close)
                render.write_npz(cmp.arrays(), body)
            else:
                body = report.build(
                    cmp,
                    heatmap_budget=settings.max_heatmap_values,
                    with_heatmaps=heatmaps,
                    echo_weights=settings.max_echo_weights,
                )
        timings = {"decode": decode_ms, **cmp.timings_ms}
        timings["encode"] = (time.perf_counter() - t0) * 1e3
        timings.update(stages)
        if isinstance(body, CompareReport):
            body.timings_ms = {k: round(v, 3) for k, v in timings.items()}
            # pydantic writes the report in Rust, straight to bytes: 3× json.dumps, and no
            # str → bytes copy of the 9 MB (model_dump_json would make one).
            body = CompareReport.__pydantic_serializer__.to_json(body)
        return body, timings, cmp.device

    body, timings, device = await ticket.run(work, request.receive)
    server_timing = ", ".join(f"{k};dur={v:.2f}" for k, v in timings.items())
    headers = {"Server-Timing": server_timing, "X-Onebyone-Device": device}
    if isinstance(body, bytes):
        media_type = "image/png" if format == "png" else "application/json"
        return Response(body, media_type=media_type, headers=headers)
    headers["Content-Disposition"] = 'attachment; filename="onebyone.npz"'
    return file_response(body, "application/x-npz", headers)
