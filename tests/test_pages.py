"""routes/pages.py in-process: the page carries what the server knows as a JSON data block,
equal to what the API serves, escaped for HTML, under a CSP that allows no inline script."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from app import generators, montage
from app.main import create_app

BLOCK = re.compile(r'<script type="application/json" id="page-data">(.*?)</script>', re.S)


def get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    """GET each path from the app in this process, inside its lifespan."""

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                return [await c.get(path) for path in paths]

    return asyncio.run(run())


def data_block(html: str) -> Any:
    found = BLOCK.findall(html)
    assert len(found) == 1, "one data block"
    return json.loads(found[0])


def test_the_data_block_holds_what_the_api_serves() -> None:
    page, cat, colormaps, health = get(
        create_app(), "/", "/api/v1/catalogue", "/api/v1/colormaps", "/healthz"
    )
    data = data_block(page.text)
    assert data["catalogue"] == cat.json()
    assert data["colormaps"] == colormaps.json()
    # The devices /healthz lists are in the catalogue: the page needs no third request.
    assert data["catalogue"]["devices"]["available"] == health.json()["devices"]


def test_panel_titles_are_the_montages() -> None:
    [page] = get(create_app(), "/")
    panels = data_block(page.text)["panels"]
    assert list(panels) == list(montage.PANELS)
    assert {k: p["title"] for k, p in panels.items()} == montage.PANELS
    assert {k: p["short"] for k, p in panels.items()} == montage.PANEL_SHORT
    assert [k for k, p in panels.items() if p["default"]] == list(montage.DEFAULT_PANELS)


def test_the_page_runs_no_inline_script() -> None:
    [r] = get(create_app(), "/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    tags = re.findall(r"<script\b[^>]*>", r.text)
    # The module from /static, and the data block, which a browser never runs.
    assert len(tags) == 2
    assert re.fullmatch(r'<script type="module" src="[^"]*/static/js/app\.js[^"]*">', tags[0])
    assert tags[1] == '<script type="application/json" id="page-data">'


def test_markup_in_a_description_cannot_leave_the_data_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile = "</script><script>alert(1)</script><!-- & ' \u2028"

    def flat(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Any:
        return generators.Generated(np.zeros((c, h, w), np.float32), [""] * c)

    monkeypatch.setitem(generators.GENERATORS, "flat", generators.GeneratorInfo(flat, hostile, {}))
    html = get(create_app(), "/")[0].text
    data = data_block(html)
    assert data["catalogue"]["generators"]["flat"]["description"] == hostile
    block = BLOCK.search(html)
    assert block is not None
    assert "alert(1)" not in html.replace(block.group(1), "")


def test_the_data_block_is_built_once_per_app(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app()
    first, again = get(app, "/", "/")
    assert again.text == first.text
    # Kept: a registry changed after the first page is not read again.
    monkeypatch.setitem(generators.GENERATORS, "late", generators.GENERATORS["gaussian"])
    [later] = get(app, "/")
    assert "late" not in data_block(later.text)["catalogue"]["generators"]
    [fresh] = get(create_app(), "/")
    assert "late" in data_block(fresh.text)["catalogue"]["generators"]
