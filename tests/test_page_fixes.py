"""What a learner hit while exploring: words from the values actually used, values that cannot
be sent refused out loud, a phone that shows the result of an edit, and the small things."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import files
from tests.pages import PHONE, Page, report_for

pytestmark = pytest.mark.browser


def opacity(page: Page) -> float:
    return float(
        page.page.evaluate("getComputedStyle(document.querySelector('canvas.cell')).opacity")
    )


def test_a_blank_field_shows_its_default_and_the_words_use_the_size_used(page: Page) -> None:
    page.open()
    height = page.page.locator("#f-input-height")
    assert height.get_attribute("placeholder") == "28"
    page.after(lambda: height.fill("16"))  # leave the scenario, so the words describe the input
    page.after(lambda: height.fill(""))
    assert "height" not in page.request()["input"]
    point = page.text("#point")
    assert "undefined" not in point
    assert "Input: 4×28×64 maps" in point  # the server's H = 28; W = 64 is the scenario's


def test_the_default_weights_fix_names_the_preset_used(
    page: Page, server: str, tmp_path: Path
) -> None:
    x = np.random.default_rng(2).standard_normal((32, 12, 12)).astype(np.float32)
    (tmp_path / "acts32.npy").write_bytes(files.npy(x))
    page.open()
    page.after(
        lambda: page.page.set_input_files("#input-file", str(tmp_path / "acts32.npy")),
        want="error",
    )
    page.after(lambda: page.page.click("#err-weights-matrix button.fix"))
    point = page.text("#point")
    assert "undefined" not in point
    # The preset the server reports it used, named in the words.
    used = page.page.evaluate("document.getElementById('preset').value")
    assert used and f"Weights: the {used} preset with K = 32" in point
    page.errors.clear()


def test_a_non_integer_in_an_integer_field_is_refused_not_truncated(page: Page) -> None:
    page.open()
    height = page.page.locator("#f-input-height")
    height.click()
    page.page.keyboard.press("Control+a")
    height.press_sequentially("3.5", delay=400)
    page.settle(0, want="error")
    page.page.wait_for_timeout(800)  # any run still scheduled would have come back by now
    runs = page.runs()
    assert height.input_value() == "3.5"
    assert height.get_attribute("aria-invalid") == "true"
    slot = page.page.locator("#err-input-height")
    assert slot.is_visible() and "3.5 is not a whole number" in slot.inner_text()
    assert page.status() == "error" and "Not updated" in page.text("#status")
    assert opacity(page) < 0.6
    page.page.wait_for_timeout(800)
    assert page.runs() == runs  # nothing ran with a truncated H
    page.after(lambda: height.fill("20"))
    assert page.page.is_hidden("#err-input-height")
    assert page.page.locator("canvas.cell").first.get_attribute("height") == "20"


def test_a_weight_cell_that_is_not_a_number_says_so_and_dims(page: Page, server: str) -> None:
    page.open()
    page.page.fill("#w-0-1", "abc")
    page.settle(0, want="error")
    slot = page.page.locator("#err-weights-matrix")
    assert slot.is_visible() and "c1: not a number" in slot.inner_text()
    assert page.page.get_attribute("#w-0-1", "aria-invalid") == "true"
    assert opacity(page) < 0.6 and "Not updated" in page.text("#status")
    page.page.fill("#w-0-1", "")
    assert "c1: empty" in slot.inner_text()
    page.after(lambda: page.page.fill("#w-0-1", "0.5"))
    assert page.page.is_hidden("#err-weights-matrix") and opacity(page) == 1
    assert page.request()["weights"]["matrix"] == [[1, 0.5, 0, 0]]


def test_on_a_phone_an_edit_links_to_its_result(browser: Any, server: str) -> None:
    phone = Page(browser, server, viewport=PHONE, has_touch=True, is_mobile=True)
    try:
        phone.open()
        phone.page.click("#settings summary")
        assert phone.page.is_hidden("#see-result")
        phone.after(lambda: phone.page.fill("#w-0-1", "1"))
        link = phone.page.locator("#see-result")
        assert link.is_visible()
        r = report_for(server, phone.request())["truth"]["cat_over_dog"]
        assert f"{100 * r['conv_relu']['agreement']:.1f}%" in link.inner_text()
        # Close to the edit, and it takes the learner to the result.
        cell = phone.page.locator("#w-0-1").bounding_box()
        box = link.bounding_box()
        assert cell and box and box["y"] - cell["y"] < 300
        link.click()
        phone.page.wait_for_timeout(300)
        top = phone.page.evaluate("document.getElementById('results').getBoundingClientRect().top")
        assert abs(top) < 50
        # Values like -0.07963 fit their cell.
        phone.page.fill("#w-0-2", "-0.07963")
        assert phone.page.evaluate(
            "(() => { const c = document.getElementById('w-0-2'); return c.scrollWidth <= c.clientWidth; })()"
        )
        assert phone.errors == []
    finally:
        phone.close()


def test_above_16_channels_the_page_says_why_there_is_no_grid_and_keeps_names(
    page: Page,
) -> None:
    page.open()
    page.after(lambda: page.page.fill("#f-input-channels", "20"))
    assert page.page.is_hidden("#matrix-grid")
    note = page.text("#matrix-note")
    assert "16 × 16" in note and "upload a weights file" in note and "API" in note
    labels = page.page.locator(".prow[data-row] .rowlabel").all_inner_texts()
    assert labels[0] == "0 cat evidence" and labels[1] == "1 dog evidence"
    assert labels[17] == "17 distractor 17"


def test_typing_c_64_pads_from_the_matrix_as_it_was(page: Page) -> None:
    page.open()
    channels = page.page.locator("#f-input-channels")
    channels.click()
    page.page.keyboard.press("Control+a")
    channels.press_sequentially("16", delay=400)  # passes through C = 1 on the way
    page.settle(0)
    page.page.wait_for_timeout(600)
    assert page.request()["weights"]["matrix"][0][:2] == [1, -1]
    channels.press("End")
    channels.press("Backspace")
    channels.press("Backspace")
    channels.press_sequentially("64", delay=400)
    before = page.runs()
    page.settle(before - 1)
    assert "columns 4…63 are 0" in page.text("#matrix-note")
    page.errors.clear()  # the browser logs the refusal while the field was empty


def test_sequential_layer_names_are_quoted(page: Page, tmp_path: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU())
    torch.save(net.state_dict(), tmp_path / "tiny.pt")
    x = np.random.default_rng(3).standard_normal((4, 10, 10)).astype(np.float32)
    (tmp_path / "acts.npy").write_bytes(files.npy(x))
    page.open()
    page.page.set_input_files("#net-file", str(tmp_path / "tiny.pt"))
    page.page.wait_for_selector("body[data-status=waiting]")
    page.after(lambda: page.page.set_input_files("#net-acts-file", str(tmp_path / "acts.npy")))
    assert "layer ‘0’ of your checkpoint tiny.pt" in page.text("#n-layer")
    assert page.text(".colhead[data-col=conv_relu] strong").startswith("layer ‘0’ → ReLU")
    assert "0 of your" not in page.text("#point")


def test_the_two_activation_drop_zones_are_independent(page: Page, tmp_path: Path) -> None:
    x = np.random.default_rng(4).standard_normal((4, 10, 10)).astype(np.float32)
    (tmp_path / "four.npy").write_bytes(files.npy(x))
    page.open()
    page.after(lambda: page.page.set_input_files("#input-file", str(tmp_path / "four.npy")))
    assert "four.npy" in page.text("#drop-label")
    assert page.text("#net-acts-label") == "Choose or drop the activations…"
    # The copied curl sends the file, not the generator's settings next to it.
    curl = page.text("#curl")
    assert "input=@four.npy" in curl and "generator" not in curl and "height" not in curl


def test_the_zoom_reads_values_and_the_backdrop_closes_it(page: Page) -> None:
    page.open()
    page.page.hover('canvas.cell[data-col="input"][data-ch="1"]')
    page.page.click("#enlarge")
    assert page.page.is_visible("#zoom")
    big = page.page.locator("#zoom-canvas")
    box = big.bounding_box()
    assert box
    page.page.mouse.move(box["x"] + 2, box["y"] + 2)
    text = page.text("#zoom-value")
    assert re.search(r"Pixel \(0, 0\), channel 1 \(dog evidence\): −?[\d.]", text), text
    values = page.readout()
    assert (values["y"], values["x"], values["row"]) == (0, 0, 1)
    page.page.mouse.click(3, 3)  # the backdrop
    assert page.page.is_hidden("#zoom")


def test_the_written_sum_adds_up_to_the_result_shown(page: Page) -> None:
    page.open()
    got = page.page.evaluate(
        """async () => {
            const h = await import('/static/js/heatmap.js');
            const f32 = (v) => Math.fround(v);
            let seed = 7;
            const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
            const out = [];
            for (let n = 0; n < 400; n++) {
                const c = 1 + (n % 5);
                const w = Array.from({length: c}, () => f32(rnd()));
                const x = Array.from({length: c}, () => f32(rnd()));
                const b = f32(rnd() / 3);
                const pre = f32(w.reduce((s, wi, i) => s + wi * x[i], b));
                out.push([h.writtenSum(w, x, b, 8, pre), h.fmt(pre)]);
            }
            return {out};
        }"""
    )
    num = r"−?[\d.]+(?:e[+-]\d+)?"

    def value(t: str) -> float:
        return float(t.replace("−", "-"))

    for text, shown in got["out"]:
        if "(terms rounded)" in text:
            continue
        total = 0.0
        for sign, w, x in re.findall(rf"(^|[+−] )?({num}) × \(?({num})\)?", text):
            total += (
                (-1 if sign.startswith("−") or w.startswith("−") else 1)
                * value(w.lstrip("−"))
                * value(x)
            )
        bias = re.search(rf"([+−]) ({num})$", text)
        assert bias
        total += (-1 if bias.group(1) == "−" else 1) * value(bias.group(2))
        assert f"{total:.4g}" == f"{value(shown):.4g}", (text, shown)


def test_wording(page: Page) -> None:
    page.open()
    page.after(lambda: page.page.fill("#w-0-1", "1"))
    assert "1 filter turns 4 channels into 1" in page.text("#headline")
    assert "Knows where" not in page.text("#point")
    got = page.page.evaluate(
        """async () => {
            const st = await import('/static/js/story.js');
            return [1, -1, 0.0001, 0.98765, -0.5].map(st.weightText);
        }"""
    )
    assert got == ["1.000", "−1.000", "0.000", "0.988", "−0.500"]
