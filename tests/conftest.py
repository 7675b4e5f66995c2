"""Shared fixtures: a real uvicorn server on a free loopback port, and an httpx client for it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.chromium import CHROMIUM, launch
from bench.server import running
from tests.pages import Page


@pytest.fixture(scope="session")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server") / "server.log"


@pytest.fixture(scope="session")
def server(server_log: Path) -> Iterator[str]:
    """The real app under uvicorn, with small limits so limit tests stay cheap."""
    env = {
        "ONEBYONE_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024),
        "ONEBYONE_MAX_VALUES": str(2 * 1024 * 1024),
        "ONEBYONE_MAX_IMAGE_PIXELS": str(1024 * 1024),
    }
    with running(env=env, log_path=server_log) as (url, _):
        yield url


@pytest.fixture(scope="session")
def client(server: str) -> Iterator[httpx.Client]:
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
