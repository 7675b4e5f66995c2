"""The page on a phone, a small laptop and a desktop; keyboard use; axe-core in every scenario."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from app.scenarios import SCENARIOS
from tests import files
from tests.pages import Page, axe_violations, network_files, overflow

pytestmark = pytest.mark.browser

IDS = [s.id for s in SCENARIOS]
COMPARE = [s.id for s in SCENARIOS if s.endpoint == "/api/v1/compare"]
FEW = [
    s.id
    for s in SCENARIOS
    if s.endpoint == "/api/v1/compare" and s.request["input"].get("channels", 1024) <= 8
]


@pytest.mark.parametrize("scenario", IDS)
def test_phone_has_no_sideways_scroll_in_any_scenario(phone: Page, scenario: str) -> None:
    phone.open(f"?scenario={scenario}")
    assert overflow(phone) == []
    phone.page.click("#settings summary")  # the settings, unfolded, fit too
    assert overflow(phone) == []


@pytest.mark.parametrize("scenario", FEW)
def test_phone_maps_are_wide_enough_and_a_tap_reads_a_value(phone: Page, scenario: str) -> None:
    phone.open(f"?scenario={scenario}")
    widths = phone.page.evaluate(
        "[...document.querySelectorAll('canvas.cell')].map((c) => c.getBoundingClientRect().width)"
    )
    assert min(widths) >= 160, widths
    # Colour-bar labels are readable and do not run into each other.
    labels = phone.page.evaluate(
        """() => [...document.querySelectorAll('.colhead')].map((h) => [...h.querySelectorAll('.ticks span')]
              .filter((s) => s.textContent).map((s) => { const r = s.getBoundingClientRect();
                  return [r.left, r.right, parseFloat(getComputedStyle(s).fontSize)]; }))"""
    )
    for ticks in labels:
        assert all(size >= 11 for _, _, size in ticks)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(ticks)), ticks
    cell = phone.page.locator('canvas.cell[data-col="conv_relu"][data-ch="0"]')
    cell.tap()
    assert phone.readout()["col"] == "conv_relu"
    assert not phone.page.is_visible("#zoom")  # a tap reads; enlarging has its own button
    phone.page.click("#enlarge")
    assert phone.page.is_visible("#zoom")
    assert overflow(phone) == []


@pytest.mark.parametrize("size", [(1024, 768), (1400, 1000)])
def test_laptop_and_desktop_keep_controls_beside_the_maps(
    browser: Any, server: str, size: tuple[int, int]
) -> None:
    p = Page(browser, server, viewport={"width": size[0], "height": size[1]})
    try:
        for scenario in ("relu-enough", "keep192", "fit"):
            p.open(f"?scenario={scenario}")
            assert overflow(p) == []
            controls = p.page.locator("#controls").bounding_box()
            results = p.page.locator("#results").bounding_box()
            assert controls and results
            if size[0] > 1000:
                assert controls["x"] + controls["width"] <= results["x"]
    finally:
        p.close()
    assert p.errors == []


def test_one_tab_stop_per_panel_with_arrows_and_page_keys(page: Page) -> None:
    page.open("?scenario=keep192")
    stops = page.page.evaluate(
        "[...document.querySelectorAll('canvas.cell')].filter((c) => c.tabIndex === 0).map((c) => c.dataset.col)"
    )
    assert stops == ["input", "relu_only", "conv_relu"]
    page.page.focus('canvas.cell[data-col="conv_relu"][data-ch="0"]')
    assert (page.readout()["y"], page.readout()["x"]) == (14, 14)
    page.page.keyboard.press("ArrowRight")
    page.page.keyboard.press("ArrowDown")
    assert (page.readout()["y"], page.readout()["x"], page.readout()["row"]) == (15, 15, 0)
    page.page.keyboard.press("PageDown")
    assert page.page.evaluate("document.activeElement.dataset.ch") == "1"
    assert page.readout()["row"] == 1 and page.readout()["x"] == 15
    # The tab stop moved with the focus: still one per panel.
    assert page.page.locator('canvas.cell[data-col="conv_relu"][tabindex="0"]').count() == 1
    page.page.keyboard.press("Tab")
    assert page.page.evaluate("document.activeElement.dataset.col") != "conv_relu"
    page.page.focus('canvas.cell[data-col="conv_relu"][data-ch="1"]')
    page.page.keyboard.press("Enter")
    assert page.page.is_visible("#zoom")
    assert "channel 1" in page.text("#zoom-title")


def test_skip_link_and_drop_zone_work_from_the_keyboard(page: Page) -> None:
    page.open()
    page.page.keyboard.press("Tab")
    assert page.page.evaluate("document.activeElement.textContent") == "Skip to the results"
    page.page.keyboard.press("Enter")
    assert page.page.evaluate("document.activeElement.id") == "results"
    with page.page.expect_file_chooser() as chooser:
        page.page.locator("#drop").press("Enter")
    assert chooser.value.element.get_attribute("id") == "input-file"


def test_axe_finds_a_planted_violation(page: Page) -> None:
    """The check below can fail: axe runs under the page's CSP and sees the DOM."""
    page.open()
    page.page.evaluate(
        "document.body.append(Object.assign(document.createElement('img'), {src: '/static/favicon.svg'}))"
    )
    assert any(v.startswith("image-alt") for v in axe_violations(page))


@pytest.mark.parametrize("scenario", IDS)
def test_axe_reports_no_violations_in_any_scenario(page: Page, phone: Page, scenario: str) -> None:
    for p in (page, phone):
        p.open(f"?scenario={scenario}")
        assert axe_violations(p) == [], (scenario, p.page.viewport_size)


def test_axe_reports_no_violations_in_edited_failed_uploaded_and_zoomed_states(
    page: Page, tmp_path: Path
) -> None:
    page.open()
    page.after(lambda: page.page.fill("#w-0-1", "1"))
    page.page.hover('canvas.cell[data-col="conv_relu"][data-ch="0"]')
    assert axe_violations(page) == [], "changed, hovered"
    page.after(lambda: page.page.fill("#f-input-channels", "1"), want="error")
    assert axe_violations(page) == [], "refused"
    (tmp_path / "acts.npy").write_bytes(files.npy(np.ones((3, 8, 8), dtype=np.float32)))
    page.after(
        lambda: page.page.set_input_files("#input-file", str(tmp_path / "acts.npy")), want="error"
    )
    assert axe_violations(page) == [], "uploaded, matrix refused"
    page.after(lambda: page.page.locator("#err-weights-matrix button.fix").click())
    page.page.focus('canvas.cell[data-col="input"][data-ch="0"]')
    page.page.keyboard.press("Enter")
    assert axe_violations(page) == [], "zoomed"
    page.errors.clear()


@pytest.fixture(scope="module")
def net_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return network_files(tmp_path_factory.mktemp("network"))


def network_states(p: Page, net: dict[str, Any]) -> None:
    """Through every state of 'Your own network', with axe and the layout checked in each."""
    where = p.page.viewport_size
    p.open()
    if p.page.is_hidden("#net-drop"):
        p.page.click("#settings summary")
    p.after(lambda: p.page.set_input_files("#net-file", str(net["only3x3"])), "error")
    assert axe_violations(p) == [], ("checkpoint refused", where)
    p.after(lambda: p.page.set_input_files("#net-file", str(net["model"])), "waiting")
    assert axe_violations(p) == [], ("layers listed, waiting", where)
    p.page.select_option("#net-layer", "layer1.1.conv1")
    p.after(lambda: p.page.set_input_files("#net-acts-file", str(net["layer1.1.conv1"]["input"])))
    assert axe_violations(p) == [], ("layer shown", where)
    p.after(lambda: p.page.check("input[name=net-bn][value=none]"))
    p.after(lambda: p.page.fill("#net-eps", "0"), "error")
    assert axe_violations(p) == [], ("batch norm off, eps refused", where)
    assert overflow(p) == [], where
    # Leaving keeps the 24-channel activations, which the scenario's 4-column W refuses.
    p.after(lambda: p.page.click("#net-leave"), "error")
    p.after(lambda: p.page.set_input_files("#net-acts-file", str(net["captured"]["file"])))
    assert axe_violations(p) == [], ("captured file", where)
    assert overflow(p) == [], where
    p.errors.clear()  # the browser logs the refusals


def test_axe_reports_no_violations_in_the_network_states(
    page: Page, phone: Page, net_files: dict[str, Any]
) -> None:
    network_states(page, net_files)
    network_states(phone, net_files)


def test_the_network_drop_zones_work_from_the_keyboard(page: Page) -> None:
    page.open()
    for zone, chooser in (("#net-drop", "net-file"), ("#net-acts", "net-acts-file")):
        with page.page.expect_file_chooser() as opened:
            page.page.locator(zone).press("Enter")
        assert opened.value.element.get_attribute("id") == chooser


def test_the_enlarged_channel_downloads_as_its_own_png(page: Page, server: str) -> None:
    page.open("?scenario=relu-on-relu")
    page.page.focus('canvas.cell[data-col="conv_relu"][data-ch="2"]')
    page.page.keyboard.press("Enter")
    with page.page.expect_download() as info:
        page.page.click("#zoom-png")
    download = info.value
    assert download.suggested_filename == "onebyone-conv_relu-2.png"
    data = Path(download.path()).read_bytes()
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        single = img.size
    # The same request from a script gives the same picture.
    spec = {
        "input": {"generator": "nonnegative", "height": 28, "width": 28, "channels": 8},
        "weights": {"preset": "random", "out_channels": 8, "seed": 0},
    }
    r = httpx.post(
        f"{server}/api/v1/compare",
        params={"format": "png", "panel": "conv_relu", "channel": 2, "scale": "shared"},
        json=spec,
    )
    assert r.status_code == 200 and r.content == data
    with Image.open(io.BytesIO(r.content)) as img:
        assert img.size == single
