"""The page in a real headless Chromium against the real server."""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests import files

pytestmark = pytest.mark.browser


class Page:
    """A Playwright page that records console errors, with helpers for this app."""

    def __init__(self, browser: Any, server: str) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str = "/") -> None:
        self.page.goto(self.server + path)
        self.page.wait_for_selector("body[data-status=ready]")

    def runs(self) -> int:
        return int(self.page.evaluate("document.body.dataset.runs || '0'"))

    def after(self, action: Any) -> None:
        """Do something that re-runs the comparison, and wait until the page shows the result."""
        before = self.runs()
        action()
        # Polled from here: wait_for_function would eval a string, which the page's CSP forbids.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = self.page.evaluate(
                "[Number(document.body.dataset.runs), document.body.dataset.status]"
            )
            if status[0] > before and status[1] == "ready":
                return
            self.page.wait_for_timeout(20)
        raise AssertionError(f"the page did not re-render; status {status}")

    def pixel(self, col: str, ch: int, y: int, x: int) -> list[int]:
        return list(
            self.page.evaluate(
                """([col, ch, y, x]) => {
                    const c = document.querySelector(`canvas.cell[data-col="${col}"][data-ch="${ch}"]`);
                    return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));
                }""",
                [col, ch, y, x],
            )
        )


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    p = Page(browser, server)
    yield p
    p.context.close()
    assert p.errors == [], p.errors


def npz_for(server: str, spec: dict[str, Any]) -> dict[str, np.ndarray]:
    r = httpx.post(f"{server}/api/v1/compare", params={"format": "npz"}, json=spec, timeout=60)
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def page_spec(page: Page) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(
        page.page.evaluate("new URLSearchParams(location.search).get('spec')")
    )
    return spec


SCENARIOS = ["relu-enough", "relu-on-relu", "keep192", "reduce64", "identity", "photo"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_renders_nonblank_with_its_number(page: Page, scenario: str) -> None:
    page.open()
    if scenario != "relu-enough":
        page.after(lambda: page.page.click(f"button[data-scenario={scenario}]"))
    assert page.page.get_attribute(f"button[data-scenario={scenario}]", "aria-pressed") == "true"
    headline = page.page.inner_text("#headline")
    assert any(ch.isdigit() for ch in headline), headline
    for col in ("input", "relu_only", "conv_relu"):
        spread = page.page.evaluate(
            """(col) => {
                const c = document.querySelector(`canvas.cell[data-col="${col}"]`);
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const seen = new Set();
                for (let i = 0; i < d.length; i += 4) seen.add(d[i] * 65536 + d[i+1] * 256 + d[i+2]);
                return seen.size;
            }""",
            col,
        )
        if not (scenario == "relu-enough" and col == "conv_relu"):
            assert spread > 3, f"{col} canvas of {scenario} is blank"


def test_scenario_numbers_state_the_point(page: Page) -> None:
    page.open()
    assert "100.0% agreement" in page.page.inner_text("#headline")
    page.after(lambda: page.page.click("button[data-scenario=relu-on-relu]"))
    assert "ReLU-only changed 0 of 6272 values" in page.page.inner_text("#headline")
    page.after(lambda: page.page.click("button[data-scenario=identity]"))
    assert "match exactly" in page.page.inner_text("#headline")
    page.after(lambda: page.page.click("button[data-scenario=reduce64]"))
    assert "of the variance" in page.page.inner_text("#headline")


def test_cat_over_dog_pixel_lit_in_conv_and_dark_where_dog_wins(page: Page, server: str) -> None:
    page.open()
    z = npz_for(server, page_spec(page))
    cat, dog = z["input"][0], z["input"][1]
    dark = page.pixel("conv_relu", 0, 0, 0)  # a corner far from every blob: 0
    ys, xs = np.nonzero(cat > dog + 0.2)
    y, x = int(ys[0]), int(xs[0])
    assert page.pixel("conv_relu", 0, y, x) != dark
    # Where both animals are present but the dog wins, ReLU-only still shows the cat;
    # the 1×1 output is dark, as the truth says.
    ys, xs = np.nonzero((cat > 0.2) & (dog > cat + 0.1))
    y, x = int(ys[0]), int(xs[0])
    assert page.pixel("relu_only", 0, y, x) != dark
    assert page.pixel("conv_relu", 0, y, x) == dark


def test_hover_readout_equals_npz_values(page: Page, server: str) -> None:
    page.open()
    page.after(lambda: page.page.click("button[data-scenario=relu-on-relu]"))
    z = npz_for(server, page_spec(page))
    canvas = page.page.locator('canvas.cell[data-col="conv_relu"][data-ch="2"]')
    box = canvas.bounding_box()
    assert box is not None
    y, x = 9, 17
    page.page.mouse.move(
        box["x"] + (x + 0.5) * box["width"] / 28, box["y"] + (y + 0.5) * box["height"] / 28
    )
    values = json.loads(page.page.get_attribute("#readout", "data-values") or "{}")
    assert (values["y"], values["x"], values["row"]) == (y, x, 2)
    for name in ("input", "relu_only", "conv_relu", "pre_activation"):
        assert values[name] == float(z[name][2, y, x]), name  # exact, not a colour code
    assert "output 2 = relu(" in page.page.inner_text("#readout")


def test_editing_a_weight_changes_the_output(page: Page) -> None:
    page.open()
    before = page.page.inner_text("#n-conv-changed")
    cell = page.page.locator('#matrix-grid input[data-k="0"][data-c="1"]')
    page.after(lambda: cell.fill("0.5"))
    assert page_spec(page)["weights"]["matrix"][0][:2] == [1, 0.5]
    assert page.page.inner_text("#n-conv-changed") != before


def test_upload_through_the_file_chooser_renders(page: Page, tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((5, 12, 12)).astype(np.float32)
    w = np.eye(5, dtype=np.float32)[:3]
    (tmp_path / "acts.npy").write_bytes(files.npy(x))
    (tmp_path / "w.npy").write_bytes(files.npy(w))
    page.open()
    page.after(lambda: page.page.set_input_files("#input-file", str(tmp_path / "acts.npy")))
    page.after(lambda: page.page.set_input_files("#weights-file", str(tmp_path / "w.npy")))
    assert page.page.locator('canvas.cell[data-col="input"]').count() == 5
    assert page.page.locator('canvas.cell[data-col="conv_relu"]').count() == 3
    assert "input=@acts.npy" in page.page.inner_text("#curl")


def test_unreadable_upload_shows_the_error_beside_the_control(page: Page, tmp_path: Path) -> None:
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    page.open()
    page.page.set_input_files("#input-file", str(tmp_path / "bad.npy"))
    page.page.wait_for_selector("#input-error:not([hidden])")
    assert "400" in page.page.inner_text("#input-error")
    assert "'bad.npy' is not a valid .npy file" in page.page.inner_text("#input-error")
    page.errors.clear()  # the browser logs the failed request itself


def test_copied_url_restores_the_view(page: Page, browser: Any, server: str) -> None:
    page.open()
    page.after(lambda: page.page.click("button[data-scenario=reduce64]"))
    page.page.check("input[name=scale][value=channel]")
    page.page.check("#extra")
    url = page.page.url
    headline = page.page.inner_text("#headline")
    other = Page(browser, server)
    try:
        other.page.goto(url)
        other.page.wait_for_selector("body[data-status=ready]")
        assert other.page.inner_text("#headline") == headline
        assert other.page.is_checked("input[name=scale][value=channel]")
        assert other.page.locator('canvas.cell[data-col="pre_activation"]').count() == 64
        pressed = other.page.get_attribute("button[data-scenario=reduce64]", "aria-pressed")
        assert pressed == "true"
    finally:
        other.context.close()
    assert other.errors == []


def test_copied_curl_command_returns_the_same_numbers(page: Page, tmp_path: Path) -> None:
    page.open()
    page.after(lambda: page.page.click("button[data-scenario=keep192]"))
    command = page.page.inner_text("#curl")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    s = result["summary"]
    shown = page.page.inner_text("#n-relu-changed")
    assert shown == f"{s['relu_only_changed']:,} of {s['relu_only_values']:,} values"
    assert page.page.inner_text("#n-conv-changed").startswith(f"{s['conv_relu_changed']:,} of")


def test_absent_devices_are_disabled_with_a_reason(page: Page) -> None:
    page.open()
    health = httpx.get(page.server + "/healthz").json()
    for device in ("cuda", "mps"):
        option = page.page.locator(f"#device option[value={device}]")
        if device in health["devices"]:
            assert option.is_enabled()
        else:
            assert option.is_disabled() and "not available" in option.inner_text()


def test_keyboard_opens_an_enlarged_channel(page: Page) -> None:
    page.open()
    page.page.focus('canvas.cell[data-col="conv_relu"][data-ch="0"]')
    page.page.keyboard.press("ArrowRight")
    assert json.loads(page.page.get_attribute("#readout", "data-values") or "{}")["x"] == 33
    page.page.keyboard.press("Enter")
    assert page.page.is_visible("#zoom")
    assert "1×1 conv + ReLU · channel 0" in page.page.inner_text("#zoom-title")


def test_many_channels_draw_visible_cells_first(page: Page) -> None:
    page.open()
    page.after(lambda: page.page.click("button[data-scenario=keep192]"))
    total = page.page.locator("canvas.cell").count()
    drawn = page.page.locator("canvas.cell[data-drawn]").count()
    assert total == 3 * 192 and 0 < drawn < total
    page.page.locator('canvas.cell[data-ch="191"]').first.scroll_into_view_if_needed()
    page.page.wait_for_selector('canvas.cell[data-ch="191"][data-drawn]')
    assert float(page.page.evaluate("document.body.dataset.renderMs")) > 0


def test_page_is_served_with_a_strict_csp(server: str) -> None:
    r = httpx.get(server + "/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in r.text and "style=" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"


def test_pure_js_functions_match_numpy(page: Page) -> None:
    page.open()
    got = page.page.evaluate(
        """async () => {
            const h = await import('/static/js/heatmap.js');
            const s = await import('/static/js/state.js');
            const f32 = new Float32Array([-2, 0.5, 6, -0.25]);
            const b64 = btoa(String.fromCharCode(...new Uint8Array(f32.buffer)));
            const hm = h.fromValues({shape: [1, 2, 2], data: b64});
            const lut = new Uint8Array(768); for (let i = 0; i < 256; i++) lut.set([i, 255 - i, 7], 3 * i);
            const rgba = new Uint8ClampedArray(16);
            const scale = h.scaleFor(hm.lo, hm.hi, 'shared', 0);
            h.paintChannel(rgba, hm, 0, scale, lut);
            const view = s.viewFor('identity'); view.scale = 'channel';
            return {
                values: [0, 1, 2, 3].map((i) => h.valueAt(hm, 0, i >> 1, i & 1)),
                relu: Array.from(h.relu(hm).values),
                lohi: [hm.lo, hm.hi],
                scale, seq: h.scaleFor([0, 0], [1, 3], 'channel', 0),
                idx: [h.colourIndex(-6, -6, 6), h.colourIndex(0, -6, 6), h.colourIndex(9, -6, 6)],
                rgba: Array.from(rgba),
                roundtrip: s.fromQuery(s.toQuery(view)),
                view,
                quote: s.shellQuote("it's"),
                b64: Array.from(h.decodeBase64('AAEC/w==')),
            };
        }"""
    )
    values = np.array([-2, 0.5, 6, -0.25], dtype=np.float32)
    assert got["values"] == values.tolist()
    assert got["relu"] == np.maximum(values, 0).tolist()
    assert got["lohi"] == [[-2], [6]]
    assert got["scale"] == {"min": -6, "max": 6, "diverging": True}
    assert got["seq"] == {"min": 0, "max": 1, "diverging": False}
    assert got["idx"] == [0, 128, 255]
    idx = np.rint((values.astype(np.float64) + 6) / 12 * 255).astype(int)
    np.testing.assert_array_equal(np.array(got["rgba"]).reshape(4, 4)[:, 0], idx)
    assert got["roundtrip"] == got["view"]
    assert got["quote"] == "'it'\\''s'"
    assert got["b64"] == [0, 1, 2, 255]


@pytest.mark.parametrize(
    ("scenario", "expect"),
    [
        ("neighbours", "the 1×1 output changed at 1 pixel, the 3×3 output at 9"),
        ("bottleneck", "of the variance and costs"),
        ("fit", "ReLU-only cannot do better than"),
    ],
)
def test_experiment_scenarios_state_their_conclusion(
    page: Page, scenario: str, expect: str
) -> None:
    page.open()
    page.after(lambda: page.page.click(f"button[data-scenario={scenario}]"))
    if scenario == "fit":
        page.page.wait_for_selector("#exp-headline[data-result]", timeout=60_000)
    assert expect in page.page.inner_text("#exp-headline")
    assert page.page.is_hidden("#panels") and page.page.is_visible("#experiment")
    assert f"scenario={scenario}" in page.page.url


def test_fit_streams_progress_and_cancels(page: Page) -> None:
    page.open()
    page.page.click("button[data-scenario=fit]")
    page.page.wait_for_selector("#fit-progress")
    deadline = time.monotonic() + 30
    while float(page.page.evaluate("document.getElementById('fit-progress').value")) < 5:
        assert time.monotonic() < deadline
        page.page.wait_for_timeout(10)
    page.page.click("#fit-cancel")
    page.page.wait_for_selector("#fit-status[data-cancelled]")
    status = page.page.inner_text("#fit-status")
    step = int(status.split("step ")[1].rstrip("."))
    assert 5 <= step < 500, status
