"""Shared fixtures: the app in this process (`client`), and a real uvicorn server (`server`,
`live`) for the tests whose point is a socket.

`client` is an `httpx.Client` whose transport hands each request to httpx's
`ASGITransport` on an event loop in another thread (an anyio blocking portal), with the
app's lifespan run on that loop: the tests stay plain functions with the same client API
as against a server, starlette's own `TestClient` does the same thing (and warns of its
deprecation here), and nothing of the app is replaced.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI

from app.config import Settings
from app.main import create_app
from bench.chromium import CHROMIUM, launch
from bench.server import running
from tests.pages import PHONE, Page

# Small limits so that limit tests stay cheap; the same for the app here and the server.
LIMITS = {
    "max_upload_bytes": 4 * 1024 * 1024,
    "max_values": 2 * 1024 * 1024,
    "max_image_pixels": 1024 * 1024,
}


def environment(settings: dict[str, Any]) -> dict[str, str]:
    """Settings as the ONEBYONE_ variables a server process reads."""
    return {f"ONEBYONE_{name.upper()}": str(value) for name, value in settings.items()}


class _AsyncOf(httpx.AsyncByteStream):
    """A request body given as a sync iterator (a chunked upload), for ASGITransport."""

    def __init__(self, stream: httpx.SyncByteStream) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.stream:
            yield chunk


class InProcess(httpx.BaseTransport):
    """httpx's ASGITransport for a sync client: each request runs on the portal's loop.

    App exceptions are raised (ASGITransport's default): a bug fails its test with the
    traceback instead of a 500, unless `raise_app_exceptions` is False (the 500 is the test).
    """

    def __init__(
        self, portal: BlockingPortal, app: FastAPI, raise_app_exceptions: bool = True
    ) -> None:
        self.portal = portal
        self.transport = httpx.ASGITransport(app, raise_app_exceptions=raise_app_exceptions)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.portal.call(self._handle, request)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            assert isinstance(request.stream, httpx.SyncByteStream)
            request.stream = _AsyncOf(request.stream)
        response = await self.transport.handle_async_request(request)
        body = await response.aread()
        return httpx.Response(
            response.status_code, headers=response.headers, stream=httpx.ByteStream(body)
        )


@contextmanager
def in_process(app: FastAPI, raise_app_exceptions: bool = True) -> Iterator[httpx.Client]:
    """A client for `app` in this process, its lifespan started and, at the end, ended."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
        httpx.Client(
            transport=InProcess(portal, app, raise_app_exceptions),
            base_url="http://localhost",
            timeout=60,
        ) as c,
    ):
        yield c


@asynccontextmanager
async def concurrent(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An async client for `app`, its lifespan run on the caller's loop: for tests that send
    several requests at once, or bodies that take their time (`anyio.run` them)."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://localhost", timeout=60
        ) as c,
    ):
        yield c


def app_with(**settings: Any) -> FastAPI:
    """The app with the test limits and `settings` besides (other limits, timeouts, origins)."""
    return create_app(Settings(**{**LIMITS, **settings}))


def assert_short_refusal(r: httpx.Response) -> None:
    """A 4xx under 2 KiB that quotes user input only as a short, escaped excerpt."""
    assert 400 <= r.status_code < 500, r.text[:300]
    assert len(r.content) < 2048, r.text[:300]
    assert "\x1b" not in r.text
    # As the client reads it, JSON-decoded: control characters only as escapes (\x00).
    detail = r.json()["detail"]
    assert detail and not any(ord(ch) < 32 for ch in detail), detail[:300]


@pytest.fixture(scope="session")
def app() -> FastAPI:
    return app_with()


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[httpx.Client]:
    """The app in this process, with the small limits."""
    with in_process(app) as c:
        yield c


@pytest.fixture(scope="session")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server") / "server.log"


@pytest.fixture(scope="session")
def server(server_log: Path) -> Iterator[str]:
    """The real app under uvicorn on a loopback port, with the same small limits."""
    with running(env=environment(LIMITS), log_path=server_log) as (url, _):
        yield url


@pytest.fixture(scope="session")
def live(server: str) -> Iterator[httpx.Client]:
    """A client of the real server, for tests whose point is the socket."""
    with httpx.Client(base_url=server, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (CI requires it).

    Per module: Playwright's sync API keeps an event loop running in this thread while
    it is open, and other modules' tests call asyncio.run().
    """
    if not shutil.which(CHROMIUM):
        if os.environ.get("ONEBYONE_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing; scripts/test installs it when run as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    """The page at the test server, in a fresh context; no console error may be left."""
    p = Page(browser, server)
    yield p
    p.close()
    assert p.errors == [], p.errors


@pytest.fixture
def phone(browser: Any, server: str) -> Iterator[Page]:
    """The page at a 390 px phone's size, touch and all; no console error may be left."""
    p = Page(browser, server, viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2)
    yield p
    p.close()
    assert p.errors == [], p.errors
