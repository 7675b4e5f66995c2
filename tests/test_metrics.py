"""GET /metrics in-process: parsed by prometheus-client's own parsers, counted as requests
come, free of the compute gate, and refused to foreign pages and hosts like every endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.main import create_app

CATDOG = {"input": {"generator": "catdog", "height": 8, "width": 8, "channels": 2}}


@asynccontextmanager
async def serving(**settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings(**settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            yield app, c


def run(test: Callable[..., Awaitable[None]], **settings: Any) -> None:
    async def main() -> None:
        async with serving(**settings) as (app, client):
            await test(app, client)

    asyncio.run(main())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels, as prometheus-client parses it."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def test_the_scrape_has_the_gate_the_requests_the_latency_and_the_caches() -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient) -> None:
        assert (await client.post("/api/v1/compare", json=CATDOG)).status_code == 200
        png = await client.post("/api/v1/compare", params={"format": "png"}, json=CATDOG)
        assert png.status_code == 200
        bad = await client.post("/api/v1/compare", params={"format": "gif"}, json=CATDOG)
        assert bad.status_code == 422
        r = await client.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = r.text
        assert value(text, "onebyone_admission_capacity") == 3 + 5
        assert value(text, "onebyone_admission_slots") == 3
        for name in ("admitted", "computing", "waiting", "abandoned"):
            assert value(text, f"onebyone_admission_{name}") == 0
        assert value(text, "onebyone_draining") == 0
        compare = {"route": "/api/v1/compare", "method": "POST"}
        assert value(text, "onebyone_requests_total", **compare, status="200") == 2
        assert value(text, "onebyone_requests_total", **compare, status="422") == 1
        latency = "onebyone_request_duration_seconds_count"
        for fmt in ("json", "png", "error"):
            assert value(text, latency, route="/api/v1/compare", format=fmt) == 1
        # A histogram: cumulative buckets, the last of them every observation.
        inf = value(text, "onebyone_request_duration_seconds_bucket",
                    route="/api/v1/compare", format="png", le="+Inf")  # fmt: skip
        assert inf == 1
        # The same generated maps twice: one entry, its bytes as the cache counts them.
        cache = app.state.sources.generated
        assert len(cache) == 1 and cache.size > 0
        assert value(text, "onebyone_cache_entries", cache="generated") == 1
        assert value(text, "onebyone_cache_bytes", cache="generated") == cache.size
        assert value(text, "onebyone_cache_limit_bytes", cache="generated") == 1 << 20
        assert value(text, "process_resident_memory_bytes") > 0

    run(test, compute_slots=3, queue_limit=5, generator_cache_bytes=1 << 20)


def test_routes_are_labelled_by_template_and_unknown_paths_share_one_label() -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient) -> None:
        for path in ("/nope", "/nope/again", "/static/nothing.js"):
            await client.get(path)
        await client.head("/healthz")
        await client.request("BREW", "/healthz")
        text = (await client.get("/metrics")).text
        assert value(text, "onebyone_requests_total",
                     route="unmatched", method="GET", status="404") == 2  # fmt: skip
        assert value(text, "onebyone_requests_total",
                     route="/static", method="GET", status="404") == 1  # fmt: skip
        assert value(text, "onebyone_requests_total",
                     route="/healthz", method="GET", status="200") == 1  # fmt: skip
        assert value(text, "onebyone_requests_total",
                     route="/healthz", method="other", status="405") == 1  # fmt: skip
        assert not any("/nope" in str(labels) for _, labels in samples(text))

    run(test)


def test_scraping_costs_no_compute_slot() -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient) -> None:
        held = app.state.gate.admit()  # the only place there is
        busy = await client.post("/api/v1/compare", json=CATDOG)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        r = await client.get("/metrics")
        assert r.status_code == 200
        assert value(r.text, "onebyone_admission_admitted") == 1
        assert value(r.text, "onebyone_admission_capacity") == 1
        assert value(r.text, "onebyone_requests_total",
                     route="/api/v1/compare", method="POST", status="503") == 1  # fmt: skip
        held.close()

    run(test, compute_slots=1, queue_limit=0)


def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient) -> None:
        r = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        assert r.headers["content-type"].startswith("application/openmetrics-text")
        families = {f.name: f for f in openmetrics_families(r.text)}
        assert families["onebyone_admission_capacity"].samples[0].value == 66
        assert families["onebyone_requests"].type == "counter"

    run(test)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Origin": "http://evil.example"}, 403, "foreign_origin"),
        ({"Host": "evil.example"}, 403, "foreign_host"),
        (
            {"Host": "rebind.example:8000", "Origin": "http://rebind.example:8000"},
            403,
            "foreign_host",
        ),
        ({"Origin": "http://localhost"}, 200, None),  # the page's own origin
        ({"Host": "127.0.0.1:8000"}, 200, None),
    ],
)
def test_foreign_pages_and_hosts_get_the_same_answer_as_from_every_endpoint(
    headers: dict[str, str], status: int, code: str | None
) -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient) -> None:
        answers = [await client.get(path, headers=headers) for path in ("/metrics", "/healthz")]
        assert [a.status_code for a in answers] == [status, status]
        if code is not None:
            bodies = [a.json() for a in answers]
            assert bodies[0] == bodies[1] and bodies[0]["code"] == code

    run(test, host="127.0.0.1")


def test_an_unknown_query_parameter_is_refused_as_everywhere() -> None:
    async def test(app: FastAPI, client: httpx.AsyncClient) -> None:
        r = await client.get("/metrics", params={"fromat": "json"})
        assert r.status_code == 422 and r.json()["code"] == "unknown_parameter"

    run(test)
