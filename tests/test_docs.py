"""/docs and /redoc render in Chromium with every request to another host blocked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

# ReDoc always shows Redocly's logo from its CDN; our CSP blocks it and the page is fine.
REDOC_LOGO = "cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture
def offline(browser: Any, server: str) -> Iterator[tuple[Any, list[str], list[str]]]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    yield page, errors, foreign
    context.close()


def test_swagger_ui_renders_offline_under_the_strict_csp(
    offline: tuple[Any, list[str], list[str]], server: str
) -> None:
    page, errors, foreign = offline
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-post")
    assert page.locator(".opblock").count() >= 7
    assert "/api/v1/compare" in page.inner_text(".swagger-ui").replace("\u200b", "")
    assert "OAS 3.1" in page.inner_text("body")
    assert errors == [] and foreign == []
    csp = httpx.get(server + "/docs").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_redoc_renders_offline(offline: tuple[Any, list[str], list[str]], server: str) -> None:
    page, errors, foreign = offline
    page.goto(server + "/redoc")
    page.wait_for_selector("h2:has-text('Compare Endpoint')")
    assert "Something went wrong" not in page.inner_text("body")
    assert [e for e in errors if REDOC_LOGO not in e] == [] and foreign == []
    csp = httpx.get(server + "/redoc").headers["content-security-policy"]
    assert "script-src 'self';" in csp  # scripts stay strict; only styles are inline
