"""The experiment scenarios in Chromium: their conclusions, readable charts, fit's stream and cancel."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from app.scenarios import find
from tests.pages import Page

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("scenario", "expect"),
    [
        ("neighbours", "moved the 1×1 output at 1 pixel and the 3×3 output at 9 pixels"),
        ("bottleneck", "of these maps' variance and costs"),
        ("fit", "no per-channel model relu(a·x_c + b) can go below"),
    ],
)
def test_experiment_scenarios_state_their_conclusion_beside_their_settings(
    page: Page, scenario: str, expect: str
) -> None:
    page.open()
    page.scenario(scenario)
    assert expect in page.text("#headline")
    assert page.page.is_hidden("#compare-view") and page.page.is_visible("#experiment")
    # The settings stay: the input, the experiment's own parameters, link, curl and export.
    assert page.page.is_visible("#experiment-box") and page.page.is_visible("#input-box")
    assert page.page.is_hidden("#weights-box")
    own = page.page.locator("#experiment-params input").count()
    assert own >= 2
    assert f"scenario={scenario}" in page.page.url
    assert find(scenario).endpoint in page.text("#curl")
    assert page.page.is_visible("#download-json")


def test_fit_chart_has_decades_a_legend_and_no_rounding_noise_in_words(page: Page) -> None:
    page.open("?scenario=fit")
    headline = page.text("#headline")
    assert "e-1" not in headline  # no 2.4e-15: rounding noise reads "0 (float precision)"
    assert "-0.00" not in headline and "−0.00" not in headline
    legend = page.page.locator("#experiment .legend li").all_inner_texts()
    assert legend == [
        "1×1 conv + ReLU",
        "best ReLU-only model (scale and bias per channel)",
        "floor no per-channel model can beat",
    ]
    # The y axis is labelled in whole decades: the chart's ticks come from logTicks.
    ticks = page.page.evaluate(
        "import('/static/js/plot.js').then((p) => p.logTicks(1e-12, 0.4).map(p.decadeLabel))"
    )
    assert ticks == ["10⁻¹²", "10⁻⁹", "10⁻⁶", "10⁻³", "1"]


def _fit_url(steps: int) -> str:
    request = dict(find("fit").request) | {"steps": steps}
    return "?" + urllib.parse.urlencode({"scenario": "fit", "spec": json.dumps(request)})


def test_fit_streams_progress_and_cancels(page: Page, server_log: Path) -> None:
    # 5000 steps (the most a request may ask): many seconds of training, so Cancel lands
    # while it runs however fast this machine is; a click after step 5 cannot lose the race.
    page.page.goto(f"{page.server}/{_fit_url(5000)}")
    # The progress shows while it trains (from the first load on, not only after a result).
    page.page.wait_for_selector("#fit-progress[max='5000']", state="visible")
    assert page.page.input_value("#f-steps") == "5000"
    deadline = time.monotonic() + 60
    while float(page.page.evaluate("document.getElementById('fit-progress').value")) < 5:
        assert time.monotonic() < deadline
        page.page.wait_for_timeout(10)
    page.page.click("#fit-cancel")
    page.page.wait_for_selector("#fit-status[data-cancelled]")
    step = int(page.page.evaluate("document.getElementById('fit-progress').value"))
    assert 5 <= step < 5000
    assert f"Cancelled at step {step:,}" in page.text("#headline")
    # Closing the stream stopped the training on the server, too.
    deadline = time.monotonic() + 20
    while (
        '"fit_cancelled"' not in server_log.read_text()
        or '"steps": 5000' not in server_log.read_text()
    ):
        assert time.monotonic() < deadline, "the server did not stop the fit"
        time.sleep(0.1)


def test_bottleneck_table_fits_a_phone(browser: Any, server: str) -> None:
    p = Page(browser, server, viewport={"width": 390, "height": 844})
    try:
        p.open("?scenario=bottleneck")
        right = p.page.evaluate(
            "document.getElementById('bottleneck-table').getBoundingClientRect().right"
        )
        assert right <= 390
        size = p.page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('.legend')).fontSize)"
        )
        assert size >= 12
    finally:
        p.close()
    assert p.errors == []
