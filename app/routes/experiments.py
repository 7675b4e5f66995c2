"""Experiment endpoints: fit (JSON or a Server-Sent Events stream), bottleneck, receptive field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from app import experiments, inputs
from app.errors import Cancelled, OneByOneError
from app.gate import ClientGone
from app.routes.admission import ComputeRoute
from app.routes.deps import SourcesDep, StrictQuery, answers
from app.routes.output import JSONResponse, sse
from app.routes.pipeline import BodyReader, Incoming, Parsed
from app.schemas.requests import BottleneckRequest, FitRequest, ReceptiveFieldRequest
from app.schemas.responses import (
    BottleneckResult,
    ErrorResponse,
    FitProgress,
    FitResult,
    ReceptiveFieldResult,
)

router = APIRouter(
    prefix="/api/v1/experiments",
    tags=["experiments"],
    dependencies=[StrictQuery],
    route_class=ComputeRoute,
)

MAPS = "feature maps, as for /api/v1/compare"
FitBody = Annotated[
    Incoming[FitRequest],
    Depends(BodyReader(FitRequest, {"input": MAPS, "target": "(K, H, W) or (H, W) array"})),
]
BottleneckBody = Annotated[
    Incoming[BottleneckRequest],
    Depends(
        BodyReader(
            BottleneckRequest,
            {"input": MAPS},
            photos={"photo": 'PNG or JPEG: a photo for "generator": "network", as for compare'},
        )
    ),
]
ReceptiveFieldBody = Annotated[
    Incoming[ReceptiveFieldRequest], Depends(BodyReader(ReceptiveFieldRequest, {"input": MAPS}))
]

_STREAM = {
    "text/event-stream": {
        "schema": {"type": "string"},
        "example": 'event: progress\ndata: {"step": 10, "steps": 300, "conv_loss": '
        '0.02, "relu_only_loss": 0.03}\n\nevent: result\ndata: {…FitResult…}\n\n',
    }
}


@router.post("/fit", response_model=FitResult, responses=answers(FitResult, _STREAM))
async def fit(
    body: FitBody,
    sources: SourcesDep,
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

    def prepare(p: Parsed[FitRequest]) -> experiments.FitJob:
        # Before any stream starts, so an impossible request still gets its 4xx.
        return experiments.prepare_fit(
            p.spec, p.take("input"), p.take("target"), body.settings, sources
        )

    job = await body.run(prepare)
    check = body.ticket.token.check
    if not (stream or "text/event-stream" in body.request.headers.get("accept", "")):
        result = await body.run(lambda _: experiments.run_fit(job, lambda _: None, check))
        return JSONResponse(result)
    return StreamingResponse(
        _fit_events(body, job),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _fit_events(body: Incoming[FitRequest], job: experiments.FitJob) -> AsyncIterator[bytes]:
    """progress events as the compute thread sends them, then the result (or an error).

    Events are formatted in the thread (a result with a 1024×1024 weight is megabytes of
    JSON). When the client goes away, Starlette stops this generator and `finally` stops
    the training; the ticket stays admitted until its thread has really stopped.
    """
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[bytes | None] = asyncio.Queue()
    ticket = body.ticket

    def progress(event: FitProgress) -> None:
        loop.call_soon_threadsafe(events.put_nowait, sse("progress", event))

    async def runner() -> None:
        try:
            events.put_nowait(
                await body.run(
                    lambda _: sse("result", experiments.run_fit(job, progress, ticket.token.check)),
                    watch=False,
                )
            )
        except (Cancelled, ClientGone):
            pass  # the client went away; nobody to tell
        except OneByOneError as exc:
            error = ErrorResponse(detail=exc.detail, field=exc.field, code=exc.code)
            events.put_nowait(sse("error", {"status": exc.status_code, **error.model_dump()}))
        finally:
            events.put_nowait(None)

    task = asyncio.ensure_future(runner())
    try:
        while (event := await events.get()) is not None:
            yield event
    finally:
        ticket.token.cancel("stream closed")  # a no-op once the result is out
        task.cancel()


@router.post("/bottleneck", response_model=BottleneckResult, responses=answers(BottleneckResult))
async def bottleneck(body: BottleneckBody, sources: SourcesDep) -> Response:
    """Variance kept by the best linear reduction to K channels, for every K, and its cost.

    Each row compares a 1×1 reduce C→K followed by a kernel×kernel conv K→out_channels
    with the kernel×kernel conv C→out_channels alone (`direct`), as in GoogLeNet.
    """

    def job(p: Parsed[BottleneckRequest]) -> BottleneckResult:
        maps = inputs.load(p.spec.input, p.take("input"), body.settings, sources, photo=p.photo())
        body.ticket.token.check()
        return experiments.run_bottleneck(p.spec, maps, sources)

    return JSONResponse(await body.run(job))


@router.post(
    "/receptive-field",
    response_model=ReceptiveFieldResult,
    responses=answers(ReceptiveFieldResult),
)
async def receptive_field(body: ReceptiveFieldBody, sources: SourcesDep) -> Response:
    """Who sees the neighbours? One input pixel changed under a 1×1 and a 3×3 conv, and the
    edges that a 3×3 layer finds and no 1×1 layer can."""
    s = body.settings

    def job(p: Parsed[ReceptiveFieldRequest]) -> ReceptiveFieldResult:
        maps = inputs.load(p.spec.input, p.take("input"), s, sources, s.max_experiment_values)
        return experiments.run_receptive_field(p.spec, maps, s, body.ticket.token.check)

    return JSONResponse(await body.run(job))
