"""The page reads every name from the server's catalogue: none is written in static/ or templates/,
and a generator or preset registered on the server shows on the page with no JavaScript change."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import uvicorn

from app import generators, uploads, weights
from app.main import create_app
from app.schemas.requests import Device
from bench.server import free_port
from tests.pages import Page

ROOT = Path(__file__).resolve().parent.parent
# The offline API docs are a third-party bundle's page, not the page built from the catalogue.
PAGE_FILES = [
    p
    for p in [
        *ROOT.glob("static/**/*.js"),
        *ROOT.glob("static/**/*.css"),
        *ROOT.glob("templates/**/*.html"),
    ]
    if p.name not in {"docs.js", "docs.html", "redoc.html"}
]


def names() -> set[str]:
    devices = set(get_args(Device))
    return devices | set(uploads.LAYOUTS) | set(generators.GENERATORS) | set(weights.PRESETS)


# The generator "photo" shares its name with the network generator's parameter and the
# multipart part that carries a photo (PRODUCT.md), which the page must write; as a generator
# it may still never be named next to "generator".
CONTRACT_FIELDS = {"photo"}


def test_no_device_layout_generator_or_preset_name_is_written_in_the_page() -> None:
    found = []
    for path in PAGE_FILES:
        text = path.read_text()
        for i, line in enumerate(text.splitlines(), 1):
            for name in CONTRACT_FIELDS:
                if re.search(rf"""generator\W.*["'`]{name}["'`]""", line):
                    found.append(f"{path.relative_to(ROOT)}:{i}: {name}: {line.strip()[:90]}")
        for name in names() - CONTRACT_FIELDS:
            # As a string in JS or markup ("cpu", 'pca', `catdog`), or as an option or value.
            quoted = re.compile(
                rf"""["'`]{re.escape(name)}["'`]|value={name}\b|>{re.escape(name)}<"""
            )
            # Names that are no English word must not appear at all.
            bare = (
                re.compile(rf"\b{re.escape(name)}\b")
                if name
                in {
                    "catdog",
                    "cuda",
                    "mps",
                    "pca",
                    "chw",
                    "hwc",
                    "nchw",
                    "nhwc",
                    "nonnegative",
                    "gaussian",
                }
                else None
            )
            for i, line in enumerate(text.splitlines(), 1):
                if quoted.search(line) or (bare and bare.search(line)):
                    found.append(f"{path.relative_to(ROOT)}:{i}: {name}: {line.strip()[:90]}")
    assert found == [], "\n".join(found)


def test_the_name_check_would_catch_a_hard_coded_name(tmp_path: Path) -> None:
    line = 'fillSelect($("device"), ["auto", "cpu", "cuda"]);'
    hits = [n for n in names() if re.search(rf"""["'`]{re.escape(n)}["'`]""", line)]
    assert sorted(hits) == ["auto", "cpu", "cuda"]


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A generator and a preset added to the registries in this process, and the app serving them."""

    def stripes(
        rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]
    ) -> generators.Generated:
        period = int(p["rectangles"])
        xx = np.arange(w)[None, None, :] + np.arange(c)[:, None, None]
        maps = np.broadcast_to(np.sin(2 * np.pi * xx / period), (c, h, w)).astype(np.float32)
        return generators.Generated(np.ascontiguousarray(maps), [f"stripe {i}" for i in range(c)])

    def negate(spec: Any, x: Any, k: int) -> Any:
        return -np.eye(x.shape[0], dtype=np.float32), {}

    monkeypatch.setitem(
        generators.GENERATORS,
        "stripes",
        generators.GeneratorInfo(
            stripes, "Test stripes: sines along x.", {"rectangles": (6, 2, 9, "period in pixels")}
        ),
    )
    monkeypatch.setitem(
        weights.PRESETS,
        "negate",
        weights.PresetInfo(
            negate, "W = −I: flips every sign.", ("bias",), lambda c: c, "C", fixes_k=True
        ),
    )
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "in-process server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.browser
def test_a_generator_and_a_preset_added_on_the_server_show_on_the_page(
    browser: Any, registered: str
) -> None:
    page = Page(browser, registered)
    try:
        page.open("?scenario=relu-on-relu")
        assert "stripes" in page.page.locator("#generator option").all_inner_texts()
        assert "negate" in page.page.locator("#preset option").all_inner_texts()
        page.after(lambda: page.page.select_option("#generator", "stripes"))
        period = page.page.locator("#f-input-rectangles")
        # Its own parameter, with the default and limits the server gave it.
        assert (period.input_value(), period.get_attribute("min"), period.get_attribute("max")) == (
            "6",
            "2",
            "9",
        )
        assert page.page.is_visible("text=period in pixels")
        page.after(lambda: page.page.select_option("#preset", "negate"))
        assert page.request()["input"]["generator"] == "stripes"
        assert page.request()["weights"] == {"preset": "negate"}
        assert "the negate preset" in page.text("#point") and "flips every sign" in page.text(
            "#point"
        )
        page.after(lambda: period.fill("4"))
        assert page.request()["input"]["rectangles"] == 4
        # W = −I: the 1×1 output is relu(−x), the mirror of ReLU-only.
        page.page.hover('canvas.cell[data-col="conv_relu"][data-ch="0"]')
        v = page.readout()
        assert v["conv_relu"] == max(0.0, -v["input"])
    finally:
        page.close()
    assert page.errors == []
