"""Editing on the page: no lost keystrokes, words that follow every edit, the latest edit wins,
pending and failed states, and errors placed by their `field`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import files
from tests.pages import Page, npz_for, report_for

pytestmark = pytest.mark.browser


def conv_changed(report: dict[str, Any]) -> str:
    s = report["summary"]
    return f"{s['conv_relu_changed']:,} of {s['conv_relu_values']:,} values"


def test_typing_at_400_ms_a_key_keeps_every_character_and_focus(page: Page, server: str) -> None:
    page.open()
    cell = page.page.locator("#w-0-1")
    cell.click()
    page.page.keyboard.press("Control+a")
    before = page.runs()
    # Ordinary typing speed: each key lands after the previous edit's run has come back.
    cell.press_sequentially("-0.5", delay=400)
    page.settle(before)
    assert page.runs() >= before + 2  # "-0", "-0." and "-0.5" ran on the way
    assert cell.input_value() == "-0.5"
    assert page.page.evaluate("document.activeElement.id") == "w-0-1"
    assert page.request()["weights"]["matrix"] == [[1, -0.5, 0, 0]]
    assert page.text("#n-conv-changed") == conv_changed(report_for(server, page.request()))
    # Tab goes on from where the learner is, not from the first control.
    page.page.keyboard.press("Tab")
    assert page.page.evaluate("document.activeElement.id") == "w-0-2"


def test_the_latest_edit_wins_over_slower_earlier_ones(page: Page, server: str) -> None:
    page.open()
    height = page.page.locator("#f-input-height")
    height.fill("512")  # a bigger, slower request …
    page.page.wait_for_timeout(350)
    before = page.runs()
    height.fill("16")  # … overtaken by a small one
    page.settle(before)
    page.page.wait_for_timeout(1500)  # long enough for the first one to have come back
    assert page.request()["input"]["height"] == 16
    assert page.page.locator("canvas.cell").first.get_attribute("height") == "16"
    assert page.text("#n-conv-changed") == conv_changed(report_for(server, page.request()))


def test_editing_scenario_1_to_cat_plus_dog_drops_the_claim(page: Page, server: str) -> None:
    page.open()
    assert "cat − dog" in page.text("#point")
    page.after(lambda: page.page.fill("#w-0-1", "1"))
    assert page.request()["weights"]["matrix"] == [[1, 1, 0, 0]]
    point = page.text("#point")
    assert "cat − dog" not in point and "Changed from the scenario" in point
    assert "output 0 = relu(cat evidence + dog evidence)" in point
    assert page.page.is_visible("#story-badge") and page.page.is_visible("#reset")
    assert "changed" in page.text("button[data-scenario=relu-enough]")
    # The headline follows the numbers measured now, and says "only" nowhere.
    t = report_for(server, page.request())["truth"]["cat_over_dog"]
    headline = page.text("#headline")
    conv, relu = t["conv_relu"]["agreement"], t["relu_only"]["agreement"]
    assert f"1×1 conv + ReLU {100 * conv:.1f}% agreement" in headline
    assert f"{100 * relu:.1f}%" in headline and " only " not in headline
    leader = "The 1×1 conv + ReLU is ahead" if conv > relu else "ReLU-only is ahead"
    assert leader in headline
    # The hover formula uses the weights on screen.
    page.page.hover('canvas.cell[data-col="conv_relu"][data-ch="0"]')
    assert page.readout()["w"] == [1, 1, 0, 0]
    # Back to the scenario: its words return.
    page.after(lambda: page.page.click("#reset"))
    assert "cat − dog" in page.text("#point") and page.page.is_hidden("#story-badge")


def test_identity_with_one_weight_changed_no_longer_claims_equality(
    page: Page, server: str
) -> None:
    page.open("?scenario=identity")
    assert "W = I" in page.text("#point")
    page.after(lambda: page.page.fill("#w-0-0", "0.5"))
    assert "W = I" not in page.text("#point")
    assert page.request()["weights"]["matrix"][0][0] == 0.5
    z = npz_for(server, page.request())
    diff = float(np.abs(z["conv_relu"] - z["relu_only"]).max())
    assert f"differ by up to {float(f'{diff:.4g}'):g}" in page.text("#headline")
    assert "exactly the same" not in page.text("#headline")


def test_changing_c_adapts_an_explicit_matrix_and_says_so(page: Page) -> None:
    page.open()
    page.after(lambda: page.page.fill("#f-input-channels", "6"))
    assert page.request()["weights"]["matrix"] == [[1, -1, 0, 0, 0, 0]]
    assert "columns 4…5 are 0" in page.text("#matrix-note")
    assert page.page.locator("#matrix-grid input").count() == 7  # 6 weights and the bias
    assert page.page.locator('canvas.cell[data-col="input"]').count() == 6


def test_a_failed_request_dims_the_panels_and_places_the_error_by_field(page: Page) -> None:
    page.open()
    assert (
        page.page.evaluate("getComputedStyle(document.querySelector('canvas.cell')).opacity") == "1"
    )
    page.after(lambda: page.page.fill("#f-input-channels", "1"), want="error")
    # catdog needs two channels: the server's field is input.channels.
    error = page.page.locator("#err-input-channels")
    assert error.is_visible() and "422" in error.inner_text()
    assert error.get_attribute("data-field") == "input.channels"
    assert page.page.get_attribute("#f-input-channels", "aria-invalid") == "true"
    assert (
        float(page.page.evaluate("getComputedStyle(document.querySelector('canvas.cell')).opacity"))
        < 0.6
    )
    assert "refused" in page.text("#status")
    # The previous maps stay, dimmed, until a request works again.
    assert page.page.locator('canvas.cell[data-col="input"]').count() == 4
    page.after(lambda: page.page.fill("#f-input-channels", "3"))
    assert page.page.is_hidden("#err-input-channels")
    assert (
        page.page.evaluate("getComputedStyle(document.querySelector('canvas.cell')).opacity") == "1"
    )
    page.errors.clear()  # the browser logs the refused request itself


def test_a_pending_request_dims_the_panels(page: Page) -> None:
    page.open("?scenario=keep192")
    before = page.runs()
    page.page.fill("#f-input-height", "40")
    page.page.wait_for_timeout(200)  # the edit waits for the next keystroke, then runs
    state, opacity = page.page.evaluate(
        "[document.getElementById('results').dataset.state, getComputedStyle(document.querySelector('canvas.cell')).opacity]"
    )
    assert state == "pending" and float(opacity) < 0.6
    assert "Computing" in page.text("#status")
    page.settle(before)
    assert (
        page.page.evaluate("getComputedStyle(document.querySelector('canvas.cell')).opacity") == "1"
    )


def test_preset_parameter_errors_land_beside_their_control(page: Page) -> None:
    page.open("?scenario=relu-on-relu")
    page.after(lambda: page.page.select_option("#preset", "difference"))
    page.after(lambda: page.page.fill("#f-weights-positive", "9"), want="error")
    slot = page.page.locator("#err-weights-positive")
    assert slot.is_visible() and slot.get_attribute("data-field") == "weights.positive"
    page.errors.clear()


def test_an_upload_that_breaks_the_matrix_offers_the_fix(page: Page, tmp_path: Path) -> None:
    x = np.random.default_rng(1).standard_normal((5, 10, 10)).astype(np.float32)
    (tmp_path / "five.npy").write_bytes(files.npy(x))
    page.open()
    page.after(
        lambda: page.page.set_input_files("#input-file", str(tmp_path / "five.npy")), want="error"
    )
    slot = page.page.locator("#err-weights-matrix")
    assert slot.is_visible() and "C = 5" in slot.inner_text()
    assert slot.get_attribute("data-field").startswith("weights.matrix")
    page.after(lambda: slot.locator("button.fix").click())
    assert page.page.locator('canvas.cell[data-col="conv_relu"]').count() == 5
    page.errors.clear()


def test_unreadable_upload_shows_the_error_beside_the_drop_zone(page: Page, tmp_path: Path) -> None:
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    page.open()
    page.after(
        lambda: page.page.set_input_files("#input-file", str(tmp_path / "bad.npy")), want="error"
    )
    text = page.text("#err-input")
    assert "400" in text and "'bad.npy' is not a valid .npy file" in text
    page.errors.clear()


def test_experiment_parameters_errors_and_share(page: Page, tmp_path: Path) -> None:
    page.open("?scenario=neighbours")
    page.after(lambda: page.page.fill("#f-pixel", "5"))
    page.after(lambda: page.page.fill("#f-pixel-x", "7"))
    assert "pixel (5, 7)" in page.text("#headline")
    assert page.request()["pixel"] == [5, 7]
    assert page.page.is_visible("#story-badge")
    # The curl line sends the same request and writes the same answer to a file.
    import subprocess

    done = subprocess.run(
        ["bash", "-c", page.text("#curl")], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert '"pixel":[5,7]' in (tmp_path / "onebyone-receptive-field.json").read_text().replace(
        " ", ""
    )
    with page.page.expect_download() as download:
        page.page.click("#download-json")
    assert download.value.suggested_filename == "onebyone-receptive-field.json"
    # Out of the map: the refusal's field is pixel, and it lands by the pixel control.
    page.after(lambda: page.page.fill("#f-pixel", "99"), want="error")
    assert page.page.locator("#err-pixel").is_visible()
    assert re.search(r"outside the \d+×\d+ map", page.text("#err-pixel"))
    page.errors.clear()
