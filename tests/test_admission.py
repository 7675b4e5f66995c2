"""routes.admission.ComputeRoute, in-process: a compute route takes its body through one
BodyReader; a request is admitted before its body is read (503 past capacity, a body its
headers refuse refused before it takes a place); the time budget gives 503. Clients that leave,
and the process's own CPU and memory, are in tests/test_sockets.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import anyio
import httpx
import pytest
from fastapi import APIRouter, Depends

from app.config import Settings
from app.main import create_app
from app.routes.admission import ComputeRoute
from app.routes.pipeline import BodyReader, Incoming
from app.schemas.requests import CompareRequest, FitRequest
from tests.conftest import app_with, concurrent, in_process

Compare = Annotated[Incoming[CompareRequest], Depends(BodyReader(CompareRequest))]
Fit = Annotated[Incoming[FitRequest], Depends(BodyReader(FitRequest))]


def test_a_compute_route_takes_its_body_through_one_reader() -> None:
    router = APIRouter(route_class=ComputeRoute)

    def one(body: Compare) -> None: ...

    def none() -> None: ...

    def two(a: Compare, b: Fit) -> None: ...

    router.post("/one")(one)
    reader = router.routes[0].body_reader  # type: ignore[attr-defined]
    assert isinstance(reader, BodyReader) and reader.model is CompareRequest
    # And documents it: the reader's request body is the route's.
    assert router.routes[0].openapi_extra["requestBody"] == reader.openapi()["requestBody"]  # type: ignore[attr-defined]
    for endpoint in (none, two):
        with pytest.raises(TypeError, match="one BodyReader"):
            router.post("/" + endpoint.__name__)(endpoint)


async def _admitted(c: httpx.AsyncClient, count: int) -> None:
    while (await c.get("/healthz")).json()["admission"]["admitted"] != count:
        await anyio.sleep(0.01)


def test_past_capacity_is_503_before_the_body_is_read_and_headers_are_checked_first() -> None:
    """One place; a request still sending its body holds it. Meanwhile a request gets 503
    with Retry-After, and one whose headers refuse its body gets that refusal instead."""
    app = app_with(compute_slots=1, queue_limit=0)
    release = anyio.Event()
    sent_by_the_refused = 0

    async def held() -> AsyncIterator[bytes]:
        yield b'{"input": {"generator": "catdog"}'
        await release.wait()
        yield b"}"

    async def never_read() -> AsyncIterator[bytes]:
        nonlocal sent_by_the_refused
        sent_by_the_refused += 1
        yield b"{}"

    async def main() -> dict[str, Any]:
        async with concurrent(app) as c, anyio.create_task_group() as tg:
            answers: dict[str, httpx.Response] = {}

            async def post(name: str, **send: Any) -> None:
                answers[name] = await c.post("/api/v1/compare?heatmaps=false", **send)

            json_type = {"content-type": "application/json"}
            tg.start_soon(partial(post, "held", content=held(), headers=json_type))
            await _admitted(c, 1)
            await post("busy", content=never_read(), headers=json_type)
            await post("type", content=b"x", headers={"content-type": "text/plain"})
            # Over the 4 MiB test limit by its Content-Length.
            await post("size", content=b" " * (5 << 20), headers=json_type)
            numbers = (await c.get("/healthz")).json()["admission"]
            release.set()
        return {"answers": answers, "numbers": numbers}

    out = anyio.run(main)
    answers = out["answers"]
    assert answers["busy"].status_code == 503, answers["busy"].text
    assert answers["busy"].headers["retry-after"] == "1"
    assert "all 1 places are taken" in answers["busy"].json()["detail"]
    assert sent_by_the_refused == 0  # refused before a byte of its body was read
    assert (answers["type"].status_code, answers["size"].status_code) == (415, 413)
    assert out["numbers"]["admitted"] == 1 and not out["numbers"]["ready"]
    assert answers["held"].status_code == 200, answers["held"].text


def test_request_over_its_time_budget_gets_503() -> None:
    # Default limits (this compare is over the test ones), one slot, a short budget.
    tight = create_app(Settings(compute_slots=1, queue_limit=1, request_timeout_s=0.5))
    huge = {
        "input": {"generator": "gaussian", "height": 512, "width": 512, "channels": 128},
        "weights": {"preset": "random", "out_channels": 128},
    }
    with in_process(tight) as c:
        r = c.post("/api/v1/compare", json=huge)
        assert r.status_code == 503 and "time budget" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200
        # Its job, told to stop, ends at its next check and gives the admission back.
        deadline = time.monotonic() + 10
        while c.get("/healthz").json()["admission"]["admitted"]:
            assert time.monotonic() < deadline, "the job went on past its budget"
            time.sleep(0.02)
