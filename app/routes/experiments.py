"""Experiment endpoints: fit (JSON or a Server-Sent Events stream), bottleneck, receptive field."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from app import compare, devices, experiments, generators, mixing, render, uploads
from app.config import Settings
from app.errors import InvalidContent, OneByOneError
from app.gate import Cancelled, Ticket
from app.routes.admission import ComputeRoute, json_bytes
from app.routes.bodies import parse_body, receive_body
from app.routes.deps import ERRORS, CacheDep, SettingsDep, StrictQuery, TicketDep
from app.schemas import (
    EXPERIMENT_EXAMPLES,
    BottleneckRequest,
    BottleneckResult,
    CompareRequest,
    FitRequest,
    FitResult,
    InputSpec,
    ReceptiveFieldRequest,
    ReceptiveFieldResult,
)

router = APIRouter(
    prefix="/api/v1/experiments",
    tags=["experiments"],
    dependencies=[StrictQuery],
    route_class=ComputeRoute,
)
log = logging.getLogger("onebyone")


def _body(name: str, model: type[Any], files: dict[str, str]) -> dict[str, Any]:
    props = {
        part: {"type": "string", "format": "binary", "description": text}
        for part, text in files.items()
    }
    props["spec"] = {"type": "string", "description": "JSON with the same fields as the JSON body"}
    return {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"},
                    "examples": {name: EXPERIMENT_EXAMPLES[name]},
                },
                "multipart/form-data": {"schema": {"type": "object", "properties": props}},
            },
        }
    }


def _over(what: str, count: int, limit: int, field: str) -> InvalidContent:
    return InvalidContent(
        f"This experiment takes at most {limit} values in its {what}; it has {count}. "
        "Use a smaller map (ONEBYONE_MAX_EXPERIMENT_VALUES).",
        field=field,
        code="over_limit",
    )


def _input(
    spec: InputSpec,
    upload: uploads.Decoded | None,
    settings: Settings,
    device: str,
    cache: generators.Cache,
    limit: int | None = None,
) -> tuple[np.ndarray, torch.Tensor, list[str], str]:
    """An experiment's feature maps, generated or uploaded: as numpy, on the device, their
    channel names and source. `limit` caps C·H·W for experiments that do more per value,
    checked on the uploaded array before it is converted, and on the maps made from it."""
    if limit is not None and upload is not None:
        biggest = max((a.size for a in upload.arrays.values()), default=0)
        if biggest > limit:
            raise _over("input (C·H·W)", biggest, limit, "input")
    arr, names, _, source = compare.load_input(CompareRequest(input=spec), upload, settings, cache)
    if limit is not None and arr.size > limit:
        raise _over("input (C·H·W)", arr.size, limit, "input")
    return arr, torch.from_numpy(arr).to(devices.resolve(device)), names, source


def _target(
    req: FitRequest,
    arr: np.ndarray,
    upload: uploads.Decoded | None,
    input_uploaded: bool,
    settings: Settings,
) -> np.ndarray:
    """The map to learn, (K, H, W): K·H·W and K within the limits before it is converted."""
    h, w = arr.shape[1:]
    if req.target == "upload":
        if upload is None:
            raise InvalidContent(
                'target "upload" needs a multipart file part named "target".',
                field="target",
                code="missing",
            )
        raw = uploads.pick(upload, "target", "The target file")
        if raw.size > settings.max_experiment_values:
            raise _over("target (K·H·W)", raw.size, settings.max_experiment_values, "target")
        k = raw.shape[0] if raw.ndim >= 3 else 1
        if k > settings.max_out_channels:
            raise InvalidContent(
                f"The target has K = {k} channels; the limit is {settings.max_out_channels} "
                "(ONEBYONE_MAX_OUT_CHANNELS).",
                field="target",
                code="over_limit",
            )
        t = uploads.to_chw(raw, "chw", "target")
        if t.shape[1:] != (h, w):
            raise InvalidContent(
                f"The target is {t.shape[1]}×{t.shape[2]} but the input is {h}×{w}; "
                "they must have the same height and width.",
                field="target",
                code="shape_mismatch",
            )
        return t
    if req.input.generator != "catdog" or input_uploaded:
        raise InvalidContent(
            'target "cat_over_dog" needs the catdog generator; for other inputs, upload a '
            'target and set "target": "upload".',
            field="target",
            code="needs_catdog",
        )
    target: np.ndarray = np.maximum(arr[0] - arr[1], 0.0)[None]  # (1, H, W)
    return target


def _fit_job(
    req: FitRequest,
    arr: np.ndarray,
    x: torch.Tensor,
    target: np.ndarray,
    progress: experiments.Progress,
    stop: threading.Event,
) -> dict[str, Any]:
    t = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32)).to(x.device)
    # The floor is for one target map; several targets report the trained loss instead.
    floor, floor_channel = (
        experiments.no_mixing_floor(arr.reshape(arr.shape[0], -1), target.reshape(-1), stop)
        if target.shape[0] == 1
        else (None, None)
    )
    try:
        with torch.enable_grad():
            result = experiments.fit(
                x,
                t,
                steps=req.steps,
                lr=req.lr,
                seed=req.seed,
                every=req.every,
                progress=progress,
                stop=stop,
            )
    except experiments.Cancelled as exc:
        # Logged here, in the worker: the request that started it may be gone already.
        log.info(json.dumps({"event": "fit_cancelled", "step": exc.step, "steps": req.steps}))
        raise
    result["device"] = x.device.type
    result["relu_only_floor"] = floor
    result["relu_only_floor_channel"] = floor_channel
    final = result["final"]
    bound = f"{floor:.4g}" if floor is not None else f"{final['relu_only']:.4g}"
    result["conclusion"] = (
        f"ReLU-only cannot do better than {bound} (mean squared error); "
        f"the 1×1 conv + ReLU reaches {final['conv_relu']:.4g}."
    )
    return FitResult.model_validate(result).model_dump(mode="json")


FIT_EXAMPLE = {
    "device": "cpu",
    "conv_loss": [0.031, 0.012, 0.0004],
    "relu_only_loss": [0.05, 0.03, 0.021],
    "final": {"conv_relu": 0.0004, "relu_only": 0.021},
    "conv_weight": [[0.98, -0.97, 0.01, 0.0]],
    "conv_bias": [0.002],
    "relu_only_channel": 0,
    "relu_only_scale": 0.8,
    "relu_only_shift": -0.1,
    "relu_only_floor": 0.0203,
    "relu_only_floor_channel": 0,
    "conclusion": "ReLU-only cannot do better than 0.0203 (mean squared error); the 1×1 "
    "conv + ReLU reaches 0.0004.",
}
BOTTLENECK_EXAMPLE = {
    "input_source": "generator:smooth",
    "device": "cpu",
    "channels": 2,
    "kernel": 5,
    "out_channels": 32,
    "direct": {"parameters": 1632, "macs": 1254400},
    "rows": [
        {"k": 1, "variance_kept": 0.93, "parameters": 834, "macs": 628320},
        {"k": 2, "variance_kept": 1.0, "parameters": 1670, "macs": 1256640},
    ],
}
RECEPTIVE_FIELD_EXAMPLE = {
    "input_source": "generator:edges",
    "channel_names": ["shapes 0"],
    "device": "cpu",
    "pixel": [0, 0],
    "changed": {"conv1x1": [[0, 0]], "conv3x3": [[0, 0], [0, 1], [1, 0], [1, 1]]},
    "expected": {"conv1x1": [[0, 0]], "conv3x3": [[0, 0], [0, 1], [1, 0], [1, 1]]},
    "cost": {
        "conv1x1": {"parameters": 8, "macs": 16},
        "conv3x3": {"parameters": 40, "macs": 144},
    },
    "edges": {
        "fraction": 0.5,
        "conv3x3_agreement": 1.0,
        "best_1x1_agreement": 0.75,
        "conv3x3_filters": 8,
    },
    "heatmaps": {
        "height": 1,
        "width": 2,
        "names": ["input channel 0", "3×3 edge layer", "true edges"],
        "maps": {"shape": [3, 1, 2], "data": "AAAAPwAAgL8AAIA/AAAAAAAAgD8AAAAA"},
    },
}


def _ok(example: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[int | str, Any]:
    content = {"application/json": {"example": example}} | (extra or {})
    return {200: {"content": content}, **ERRORS}


@router.post(
    "/fit",
    response_model=FitResult,
    responses=_ok(
        FIT_EXAMPLE,
        {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'event: progress\ndata: {"step": 10, "steps": 300, "conv_loss": '
                '0.02, "relu_only_loss": 0.03}\n\nevent: result\ndata: {…FitResult…}\n\n',
            }
        },
    ),
    openapi_extra=_body(
        "fit",
        FitRequest,
        {"input": "feature maps, as for /api/v1/compare", "target": "(K, H, W) or (H, W) array"},
    ),
)
async def fit(
    request: Request,
    settings: SettingsDep,
    ticket: TicketDep,
    cache: CacheDep,
    stream: Annotated[
        bool, Query(description="Stream progress as Server-Sent Events (also by Accept).")
    ] = False,
) -> Response:
    """Train a 1×1 conv + ReLU and the best model without channel mixing towards a target.

    Returns both loss curves, the final errors, the learned weights and a floor that no
    per-channel model can beat. With `stream=true` (or `Accept: text/event-stream`) it
    sends `progress` events (FitProgress) and one `result` event (FitResult), or an
    `error` event ({"status", "detail", "field", "code"}); closing the connection cancels it.
    """
    received = await receive_body(request, settings, ticket)

    def prepare() -> tuple[FitRequest, np.ndarray, torch.Tensor, np.ndarray]:
        # Before any stream starts, so an impossible request still gets its 4xx.
        req, files = parse_body(received, FitRequest, ("input", "target"), None, settings)
        limit = settings.max_experiment_values
        arr, x, _, _ = _input(req.input, files["input"], settings, req.device, cache, limit)
        target = _target(req, arr, files["target"], files["input"] is not None, settings)
        return req, arr, x, target

    req, arr, x, target = await ticket.run(prepare, request.receive)
    wants_stream = stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_stream:
        result = await ticket.run(
            lambda: json_bytes(_fit_job(req, arr, x, target, lambda _: None, ticket.token)),
            request.receive,
        )
        return Response(result, media_type="application/json")
    return StreamingResponse(
        _fit_events(ticket, req, arr, x, target),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def _fit_events(
    ticket: Ticket, req: FitRequest, arr: np.ndarray, x: torch.Tensor, target: np.ndarray
) -> AsyncIterator[str]:
    """progress events as the compute thread sends them, then the result (or an error).

    Events are formatted in the thread (a result with a 1024×1024 weight is megabytes of
    JSON). When the client goes away, Starlette stops this generator and `finally` stops
    the training; the ticket stays admitted until its thread has really stopped.
    """
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[str | None] = asyncio.Queue()
    put: Callable[[str | None], object] = events.put_nowait

    def progress(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(put, _sse("progress", event))

    def job() -> str:
        return _sse("result", _fit_job(req, arr, x, target, progress, ticket.token))

    async def runner() -> None:
        try:
            put(await ticket.run(job))
        except (experiments.Cancelled, Cancelled):
            pass  # the client went away; nobody to tell
        except OneByOneError as exc:
            error = {"status": exc.status_code, "detail": exc.detail}
            put(_sse("error", error | {"field": exc.field, "code": exc.code}))
        finally:
            put(None)

    task = asyncio.ensure_future(runner())
    try:
        while (text := await events.get()) is not None:
            yield text
    finally:
        ticket.token.cancel("stream closed")  # a no-op once the result is out
        task.cancel()


@router.post(
    "/bottleneck",
    response_model=BottleneckResult,
    responses=_ok(BOTTLENECK_EXAMPLE),
    openapi_extra=_body(
        "bottleneck", BottleneckRequest, {"input": "feature maps, as for /api/v1/compare"}
    ),
)
async def bottleneck(
    request: Request, settings: SettingsDep, ticket: TicketDep, cache: CacheDep
) -> Response:
    """Variance kept by the best linear reduction to K channels, for every K, and its cost.

    Each row compares a 1×1 reduce C→K followed by a kernel×kernel conv K→out_channels
    with the kernel×kernel conv C→out_channels alone (`direct`), as in GoogLeNet.
    """
    received = await receive_body(request, settings, ticket)

    def job() -> bytes:
        req, files = parse_body(received, BottleneckRequest, ("input",), None, settings)
        _, x, _, source = _input(req.input, files["input"], settings, req.device, cache)
        ticket.token.check()
        with torch.inference_mode():
            out = experiments.bottleneck(x, req.kernel, req.out_channels)
        out["input_source"] = source
        out["device"] = x.device.type
        return json_bytes(BottleneckResult.model_validate(out).model_dump(mode="json"))

    return Response(await ticket.run(job, request.receive), media_type="application/json")


@router.post(
    "/receptive-field",
    response_model=ReceptiveFieldResult,
    responses=_ok(RECEPTIVE_FIELD_EXAMPLE),
    openapi_extra=_body(
        "receptive_field", ReceptiveFieldRequest, {"input": "feature maps, as for /api/v1/compare"}
    ),
)
async def receptive_field(
    request: Request, settings: SettingsDep, ticket: TicketDep, cache: CacheDep
) -> Response:
    """Who sees the neighbours? One input pixel changed under a 1×1 and a 3×3 conv, and the
    edges that a 3×3 layer finds and no 1×1 layer can."""
    received = await receive_body(request, settings, ticket)

    def job() -> bytes:
        req, files = parse_body(received, ReceptiveFieldRequest, ("input",), None, settings)
        limit = settings.max_experiment_values
        arr, t, names, source = _input(
            req.input, files["input"], settings, req.device, cache, limit
        )
        device = t.device
        c, h, w = arr.shape
        if req.out_channels * h * w > limit:
            # Its outputs are (K, H, W), four of them.
            raise _over("output (K·H·W)", req.out_channels * h * w, limit, "out_channels")
        y, x = req.pixel if req.pixel is not None else (h // 2, w // 2)
        if not (0 <= y < h and 0 <= x < w):
            raise InvalidContent(
                f"pixel ({y}, {x}) is outside the {h}×{w} map.", field="pixel", code="out_of_range"
            )
        with torch.inference_mode():
            changed = experiments.receptive_field(t, req.out_channels, req.seed, (y, x), req.delta)
            edges = experiments.edge_detector(t)  # (H, W)
            truth = generators.edge_mask(arr)
            found = (edges > 0).cpu().numpy()
            best_1x1 = experiments.best_pointwise_agreement(t, torch.from_numpy(truth))
            maps_out = torch.stack(
                [t[0], edges, torch.from_numpy(truth.astype(np.float32)).to(device)]
            )
            heat = {"shape": [3, h, w], "data": render.float32_b64(maps_out)}
        k = req.out_channels
        result = ReceptiveFieldResult.model_validate(
            {
                "input_source": source,
                "channel_names": names,
                "device": device.type,
                "pixel": [y, x],
                "changed": changed,
                "expected": {
                    "conv1x1": [[y, x]],
                    "conv3x3": [
                        [yy, xx]
                        for yy in range(y - 1, y + 2)
                        for xx in range(x - 1, x + 2)
                        if 0 <= yy < h and 0 <= xx < w
                    ],
                },
                "cost": {
                    "conv1x1": mixing.layer_cost(c, k, h, w, 1),
                    "conv3x3": mixing.layer_cost(c, k, h, w, 3),
                },
                "edges": {
                    "fraction": float(truth.mean()),
                    "conv3x3_agreement": float((found == truth).mean()),
                    "best_1x1_agreement": best_1x1,
                    "conv3x3_filters": 8 * c,
                },
                "heatmaps": {
                    "height": h,
                    "width": w,
                    "names": ["input channel 0", "3×3 edge layer", "true edges"],
                    "maps": heat,
                },
            }
        )
        return json_bytes(result.model_dump(mode="json"))

    return Response(await ticket.run(job, request.receive), media_type="application/json")
