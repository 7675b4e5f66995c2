"""The REST API: /healthz, /api/v1/presets, /api/v1/colormaps, /api/v1/compare."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import torch
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from app import __version__, compare, devices, generators, montage, render, uploads, weights
from app.errors import InvalidContent
from app.gate import ComputeGate
from app.routes.bodies import parse_body
from app.routes.deps import ERRORS, SettingsDep
from app.schemas import COMPARE_EXAMPLES, HARD_SIDE, CompareRequest, Health

router = APIRouter()


def _example(value: Any) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": value}}}}


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
        }
    ),
)
def healthz() -> dict[str, Any]:
    """Liveness and the compute devices this server has."""
    return {
        "status": "ok",
        "devices": devices.available(),
        "device_names": devices.describe(),
        "torch": torch.__version__,
        "version": __version__,
    }


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


@router.post(
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
    format: Annotated[Literal["json", "png", "npz"], Query(description="What to return.")] = "json",
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
    heatmaps: Annotated[bool, Query(description="JSON: include the compact heatmaps.")] = True,
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
    started = time.perf_counter()
    req, files = await parse_body(request, CompareRequest, ("input", "weights"), "input", settings)
    input_file, weights_file = files["input"], files["weights"]
    decode_ms = (time.perf_counter() - started) * 1e3
    gate: ComputeGate = request.app.state.gate

    def work() -> tuple[bytes | dict[str, Any], dict[str, float], str]:
        cmp = compare.run(req, settings, input_file, weights_file)
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        with torch.inference_mode():
            if format == "png":
                body: bytes | dict[str, Any]
                body, stages = montage.comparison_png(
                    cmp,
                    panels=panel or montage.DEFAULT_PANELS,
                    channel=channel,
                    cap=channels or settings.max_png_channels,
                    scale=scale,
                )
            elif format == "npz":
                body = render.npz_bytes(cmp.arrays())
            else:
                body = render.comparison_json(
                    cmp,
                    heatmap_budget=settings.max_heatmap_values,
                    heatmaps=heatmaps,
                    echo_weights=settings.max_echo_weights,
                )
        timings = {"decode": decode_ms, **cmp.timings_ms}
        timings["encode"] = (time.perf_counter() - t0) * 1e3
        timings.update(stages)
        return body, timings, cmp.device

    body, timings, device = await gate.run(work)
    server_timing = ", ".join(f"{k};dur={v:.2f}" for k, v in timings.items())
    headers = {"Server-Timing": server_timing, "X-Onebyone-Device": device}
    if isinstance(body, dict):
        body["timings_ms"] = {k: round(v, 3) for k, v in timings.items()}
        return JSONResponse(body, headers=headers)
    if format == "png":
        return Response(body, media_type="image/png", headers=headers)
    headers["Content-Disposition"] = 'attachment; filename="onebyone.npz"'
    return Response(body, media_type="application/x-npz", headers=headers)
