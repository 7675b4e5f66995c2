"""The REST API: /healthz, /readyz, /api/v1/catalogue, /api/v1/colormaps, /api/v1/compare."""

from __future__ import annotations

import tempfile
import time
from typing import IO, Annotated, Literal

import torch
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from app import __version__, catalogue, compare, devices, montage, render, report
from app.routes.admission import ComputeRoute
from app.routes.deps import GateDep, SettingsDep, SourcesDep, StrictQuery, answers
from app.routes.output import JSONResponse, file_response, json_bytes
from app.routes.pipeline import BodyReader, Incoming, Parsed
from app.schemas.catalogue import Catalogue
from app.schemas.requests import HARD_SIDE, CompareRequest, Format
from app.schemas.responses import Admission, Colormaps, CompareReport, Health, Readiness

router = APIRouter(dependencies=[StrictQuery])
# Routes that compute: admitted by the gate before their body is read.
compute_router = APIRouter(dependencies=[StrictQuery], route_class=ComputeRoute)

CompareBody = Annotated[
    Incoming[CompareRequest],
    Depends(
        BodyReader(
            CompareRequest,
            {
                "input": ".npy, .npz, .pt, .safetensors, PNG or JPEG",
                "weights": "(K, C) or (K, C, 1, 1) array, or a state dict with weight and "
                "optional bias, or a whole checkpoint (name its layer in weights.layer)",
            },
            photos={
                "photo": 'PNG or JPEG: a photo for "generator": "network" in place of a '
                "built-in one",
            },
            required=("input", "photo"),
            spec_example='{"input": {"layout": "chw"}, "device": "cpu"}',
        )
    ),
]


@router.get(
    "/healthz", response_model=Health, tags=["service"], responses=answers(Health, errors=False)
)
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
        **answers(Readiness, errors=False),
        503: {
            "model": Readiness,
            "description": "Every slot and queue place is taken, or the server is shutting down.",
        },
    },
)
async def readyz(gate: GateDep) -> JSONResponse:
    """Readiness: 200 when this worker would admit one more request, 503 when it would not."""
    admission = Admission.model_validate(gate.snapshot())
    ready = admission.ready
    return JSONResponse(
        Readiness(
            status="ready" if ready else "draining" if admission.draining else "busy",
            admission=admission,
        ),
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


@router.get(
    "/api/v1/catalogue",
    response_model=Catalogue,
    tags=["compare"],
    responses=answers(Catalogue, errors=False),
)
def catalogue_endpoint(settings: SettingsDep, sources: SourcesDep) -> Catalogue:
    """Generators, weight presets (each with parameters, defaults and limits), layouts,
    devices, accepted files, formats, the page's scenarios, the server's limits, and the
    trained networks (with every 1×1 layer) and photos it ships."""
    return catalogue.build(settings, sources.trained)


@router.get(
    "/api/v1/presets",
    response_model=Catalogue,
    tags=["compare"],
    responses=answers(Catalogue, errors=False),
    deprecated=True,
)
def presets(settings: SettingsDep, sources: SourcesDep) -> Catalogue:
    """The catalogue under its first name; use /api/v1/catalogue."""
    return catalogue.build(settings, sources.trained)


@router.get(
    "/api/v1/colormaps",
    response_model=Colormaps,
    tags=["compare"],
    responses=answers(Colormaps, errors=False),
)
def colormaps() -> Colormaps:
    """The colour maps the PNG montage uses, as base64 of 256×3 RGB bytes, for the page."""
    return report.colormaps()


@compute_router.post(
    "/api/v1/compare",
    tags=["compare"],
    response_model=CompareReport,
    responses=answers(
        CompareReport,
        {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/x-npz": {"schema": {"type": "string", "format": "binary"}},
        },
        description="format=json: the report below. format=png: one montage image. "
        "format=npz: the arrays input (C,H,W), weight (K,C), bias (K,), pre_activation "
        "(K,H,W), relu_only (C,H,W), conv_relu (K,H,W), float32.",
    ),
)
async def compare_endpoint(
    body: CompareBody,
    sources: SourcesDep,
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

    Send JSON (a generator and weights), or multipart/form-data with an `input` file (or a
    `photo` for the network's maps), an optional `weights` file and an optional `spec` JSON
    part.
    """
    montage.check_picture(channel, channels)
    settings, ticket = body.settings, body.ticket

    def work(p: Parsed[CompareRequest]) -> tuple[bytes | IO[bytes], dict[str, float], str]:
        ticket.token.check()
        # compare.run gets the only references to the decoded files, so a checkpoint's
        # other tensors are let go once its layer is built (docs/HARDENING.md, J).
        cmp = compare.run(p.spec, settings, p.take("input"), p.take("weights"), sources, p.photo())
        ticket.token.check()
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        with torch.inference_mode():
            if format == "png":
                out: bytes | IO[bytes]
                out, stages = montage.comparison_png(
                    cmp,
                    panels=panel or montage.DEFAULT_PANELS,
                    channel=channel,
                    cap=channels or settings.max_png_channels,
                    scale=scale,
                )
            elif format == "npz":
                # To disk, streamed back in pieces: a 500 MB answer is not held in RAM.
                out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the ticket)
                ticket.on_release(out.close)
                render.write_npz(cmp.arrays(), out)
            else:
                rep = report.build(
                    cmp,
                    heatmap_budget=settings.max_heatmap_values,
                    with_heatmaps=heatmaps,
                    echo_weights=settings.max_echo_weights,
                )
        timings = {"decode": p.decode_ms, **cmp.timings_ms}
        timings["encode"] = (time.perf_counter() - t0) * 1e3
        timings.update(stages)
        if format == "json":
            rep.timings_ms = {k: round(v, 3) for k, v in timings.items()}
            out = json_bytes(rep)
        return out, timings, cmp.device

    out, timings, device = await body.run(work)
    server_timing = ", ".join(f"{k};dur={v:.2f}" for k, v in timings.items())
    headers = {"Server-Timing": server_timing, "X-Onebyone-Device": device}
    if isinstance(out, bytes):
        media_type = "image/png" if format == "png" else "application/json"
        return Response(out, media_type=media_type, headers=headers)
    headers["Content-Disposition"] = 'attachment; filename="onebyone.npz"'
    return file_response(out, "application/x-npz", headers)
