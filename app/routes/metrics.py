"""GET /metrics: the Prometheus exposition of app.metrics, served on the event loop."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import choose_encoder

from app.metrics import Metrics
from app.routes.deps import StrictQuery

# Not in the OpenAPI schema, like the pages: the answer is not JSON, scrapers know its
# format, and the README lists what it holds.
router = APIRouter(dependencies=[StrictQuery], include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The compute gate (admitted, computing, waiting, capacity, slots, abandoned, draining),
    requests by route, method and status, latency histograms by route and format, cache
    sizes and the process's memory and CPU. Costs no compute slot: never refused as busy.
    Text format 0.0.4, or OpenMetrics when the Accept header asks for it."""
    registry: Metrics = request.app.state.metrics
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry.registry), headers={"Content-Type": content_type})
