"""The page in a real headless Chromium against the real server: scenarios, exact values, share."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from app import imagenet
from app.scenarios import SCENARIOS, find
from tests import files
from tests.pages import Page, npz_for, report_for, shown_number

pytestmark = pytest.mark.browser

COMPARE = [s.id for s in SCENARIOS if s.endpoint == "/api/v1/compare"]


@pytest.mark.parametrize("scenario", COMPARE)
def test_every_scenario_renders_nonblank_with_its_numbers(page: Page, scenario: str) -> None:
    page.open(f"?scenario={scenario}")
    assert page.page.get_attribute(f"button[data-scenario={scenario}]", "aria-pressed") == "true"
    assert page.page.is_hidden("#story-badge")
    headline = page.text("#headline")
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
        assert spread > 3, f"{col} canvas of {scenario} is blank"


def test_headlines_state_what_the_response_measures(page: Page, server: str) -> None:
    page.open()
    truth = report_for(server, page.request())["truth"]["cat_over_dog"]
    headline = page.text("#headline")
    assert f"1×1 conv + ReLU {100 * truth['conv_relu']['agreement']:.1f}% agreement" in headline
    assert (
        f"({truth['relu_only']['best_channel']}) {100 * truth['relu_only']['agreement']:.1f}%"
        in headline
    )
    # The trivial baseline stands beside the scores: an all-zero map scores 1 − fraction_true.
    assert f"an all-zero map {100 * (1 - truth['fraction_true']):.1f}%" in headline
    assert " only " not in headline
    page.scenario("relu-on-relu")
    assert "ReLU-only changed nothing: 0 of 6,272 values" in page.text("#headline")
    page.scenario("identity")
    assert "exactly the same 8×28×28 output" in page.text("#headline")
    page.scenario("reduce64")
    kept = report_for(server, page.request())["layer"]["variance_kept"]
    assert f"keep {100 * kept:.1f}% of the input's variance" in page.text("#headline")


def test_the_photo_scenario_shows_the_picture(page: Page) -> None:
    page.open("?scenario=photo")
    assert page.page.is_visible("#story-picture")
    assert "luminance" in page.text("#story-caption")


def test_cat_over_dog_pixel_lit_in_conv_and_dark_where_dog_wins(page: Page, server: str) -> None:
    page.open()
    z = npz_for(server, page.request())
    cat, dog = z["input"][0], z["input"][1]
    dark = page.pixel("conv_relu", 0, 0, 0)  # a corner far from every blob: 0
    ys, xs = np.nonzero(cat > dog + 0.2)
    assert page.pixel("conv_relu", 0, int(ys[0]), int(xs[0])) != dark
    # Where both animals are present but the dog wins, ReLU-only still shows the cat;
    # the 1×1 output is dark, as the truth says.
    ys, xs = np.nonzero((cat > 0.2) & (dog > cat + 0.1))
    y, x = int(ys[0]), int(xs[0])
    assert page.pixel("relu_only", 0, y, x) != dark
    assert page.pixel("conv_relu", 0, y, x) == dark


def _hover(page: Page, col: str, ch: int, y: int, x: int, size: int) -> None:
    cell = page.page.locator(f'canvas.cell[data-col="{col}"][data-ch="{ch}"]')
    cell.evaluate("(c) => c.scrollIntoView({block: 'center'})")
    box = cell.bounding_box()
    assert box is not None
    page.page.mouse.move(
        box["x"] + (x + 0.5) * box["width"] / size, box["y"] + (y + 0.5) * box["height"] / size
    )


def _digits(v: float) -> float:
    """What the readout shows of a value: 4 significant digits."""
    return float(f"{v:.4g}")


@pytest.mark.parametrize(("scenario", "size"), [("relu-enough", 64), ("relu-on-relu", 28)])
def test_hover_shows_exact_values_the_channel_vector_and_the_sum(
    page: Page, server: str, scenario: str, size: int
) -> None:
    page.open(f"?scenario={scenario}")
    z = npz_for(server, page.request())
    k = z["weight"].shape[0] - 1
    # A pixel where the output is positive and one where it is cut, if both exist.
    pre = z["pre_activation"][k]
    for y, x in (np.argwhere(pre > 0.05)[0], np.argwhere(pre < -0.05)[0]):
        _hover(page, "conv_relu", k, int(y), int(x), size)
        v = page.readout()
        assert (v["y"], v["x"], v["k"]) == (y, x, k)
        # Exact float32 values, equal to the .npz, not colour codes.
        assert v["x_vector"] == z["input"][:, y, x].tolist()
        assert v["pre_activation"] == float(z["pre_activation"][k, y, x])
        assert v["conv_relu"] == float(z["conv_relu"][k, y, x])
        assert v["conv_relu"] == max(0.0, v["pre_activation"])  # the ReLU identity, exactly
        text = page.text("#readout")
        # Every channel of x is listed, to the digits shown.
        listed = re.search(r"x \(input, (\d+) channels\): (.*)", text)
        assert listed and int(listed.group(1)) == z["input"].shape[0]
        shown = [shown_number(s.split(" ")[-1]) for s in listed.group(2).split(" · ")]
        assert shown == [_digits(float(a)) for a in z["input"][:, y, x]]
        # W·x + b written out: its terms add up to the pre-activation, and the ReLU of that.
        line = re.search(r"W·x \+ b = (.*) = (\S+); relu → (\S+)", text)
        assert line, text
        assert shown_number(line.group(2)) == _digits(float(z["pre_activation"][k, y, x]))
        assert shown_number(line.group(3)) == _digits(max(0.0, float(z["pre_activation"][k, y, x])))
        terms = re.findall(r"([+−]?) ?(\S+) × \(?(\S+?)\)?(?= [+−]|$)", line.group(1))
        total = sum(
            (-1 if s == "−" else 1) * shown_number(w) * shown_number(xv) for s, w, xv in terms
        )
        assert abs(total - float(z["pre_activation"][k, y, x])) < 1e-2


def test_upload_through_the_file_chooser_renders_and_shares_honestly(
    page: Page, tmp_path: Path
) -> None:
    x = np.random.default_rng(0).standard_normal((5, 12, 12)).astype(np.float32)
    w = np.eye(5, dtype=np.float32)[:3]
    (tmp_path / "acts.npy").write_bytes(files.npy(x))
    (tmp_path / "w.npy").write_bytes(files.npy(w))
    page.open("?scenario=relu-on-relu")
    page.after(lambda: page.page.set_input_files("#input-file", str(tmp_path / "acts.npy")))
    page.after(lambda: page.page.set_input_files("#weights-file", str(tmp_path / "w.npy")))
    assert page.page.locator('canvas.cell[data-col="input"]').count() == 5
    assert page.page.locator('canvas.cell[data-col="conv_relu"]').count() == 3
    curl = page.text("#curl")
    assert "input=@acts.npy" in curl and "weights=@w.npy" in curl
    # A link cannot carry files, and the page says so beside the button.
    note = page.text("#link-note")
    assert "cannot travel in a link" in note and "acts.npy" in note and "w.npy" in note
    assert page.page.is_visible("#story-badge")
    assert "your file acts.npy" in page.text("#point")
    # The curl command, run where the files are, returns what the page shows.
    done = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "onebyone.json").read_text())
    assert result["shapes"]["conv_relu"] == [3, 12, 12] and result["heatmaps"] is None


def test_copied_url_restores_the_view(page: Page, browser: Any, server: str) -> None:
    page.open()
    page.scenario("reduce64")
    page.page.check("input[name=scale][value=channel]")
    page.page.check("#extra")
    url = page.page.url
    headline = page.text("#headline")
    other = Page(browser, server)
    try:
        other.page.goto(url)
        other.page.wait_for_selector("body[data-status=ready]")
        assert other.text("#headline") == headline
        assert other.page.is_checked("input[name=scale][value=channel]")
        assert other.page.locator('canvas.cell[data-col="pre_activation"]').count() == 64
        assert other.page.get_attribute("button[data-scenario=reduce64]", "aria-pressed") == "true"
    finally:
        other.close()
    assert other.errors == []


@pytest.mark.parametrize("format", ["json", "npz"])
def test_copied_curl_command_writes_the_same_numbers_to_a_file(
    page: Page, tmp_path: Path, format: str
) -> None:
    page.open()
    page.scenario("keep192")
    page.page.select_option("#curl-format", format)
    command = page.text("#curl")
    assert f"-o onebyone.{format}" in command
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # nothing printed to the terminal: the answer is in the file
    if format == "json":
        result = json.loads((tmp_path / "onebyone.json").read_text())
        assert result["heatmaps"] is None  # heatmaps=false: statistics, not base64
        s = result["summary"]
        assert (
            page.text("#n-relu-changed")
            == f"{s['relu_only_changed']:,} of {s['relu_only_values']:,} values"
        )
    else:
        with np.load(tmp_path / "onebyone.npz") as z:
            assert z["conv_relu"].shape == (192, 28, 28)


def test_devices_come_from_the_catalogue_and_absent_ones_are_disabled(page: Page) -> None:
    page.open()
    cat = httpx.get(page.server + "/api/v1/catalogue").json()["devices"]
    options = page.page.locator("#device option")
    assert options.count() == len(cat["choices"])
    for device in cat["choices"]:
        option = page.page.locator(f"#device option[value={device}]")
        if device in cat["available"] or device == cat["default"]:
            assert option.is_enabled()
        else:
            assert option.is_disabled() and "not available" in option.inner_text()


def test_page_is_served_with_a_strict_csp(server: str) -> None:
    r = httpx.get(server + "/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in r.text and "style=" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"


# The page's pure functions, each called in the browser on its own and checked against numpy
# (or the text it must write), so that one failing function hides no other. In PURE_SETUP `hm`
# is one channel holding VALUES as (1, 2, 2), `lut` maps entry i to (i, 255 − i, 7), and `cat`
# is the catalogue.
VALUES = np.array([-2, 0.5, 6, -0.25], dtype=np.float32)
PURE_SETUP = """
    const h = await import('/static/js/heatmap.js');
    const s = await import('/static/js/state.js');
    const p = await import('/static/js/plot.js');
    const c = await import('/static/js/controls.js');
    const e = await import('/static/js/errors.js');
    const st = await import('/static/js/story.js');
    const cat = await (await fetch('/api/v1/catalogue')).json();
    const enc = (xs) => btoa(String.fromCharCode(...new Uint8Array(new Float32Array(xs).buffer)));
    const hm = h.fromValues({shape: [1, 2, 2], data: enc(values)});
    const lut = new Uint8Array(768);
    for (let i = 0; i < 256; i++) lut.set([i, 255 - i, 7], 3 * i);
    const first = cat.scenarios[0];
"""


def _colour_index(v: Any, lo: float, hi: float) -> np.ndarray:
    """The colour map entry of each value on [lo, hi]: 256 steps, clipped."""
    t = (np.asarray(v, dtype=np.float64) - lo) / (hi - lo) * 255
    return np.clip(np.rint(t), 0, 255).astype(int)


def _painted(values: np.ndarray) -> list[int]:
    """RGBA bytes of a signed channel through `lut`: diverging, symmetric about 0."""
    m = float(np.abs(values).max())
    i = _colour_index(values, -m, m)
    rgba = np.stack([i, 255 - i, np.full_like(i, 7), np.full_like(i, 255)], axis=1)  # (4, 4)
    return [int(v) for v in rgba.ravel()]


PURE = [
    pytest.param(
        "[0, 1, 2, 3].map((i) => h.valueAt(hm, 0, i >> 1, i & 1))",
        VALUES.tolist(),
        id="fromValues-and-valueAt",
    ),
    pytest.param("Array.from(h.relu(hm).values)", np.maximum(VALUES, 0).tolist(), id="relu"),
    pytest.param(
        "[hm.lo, hm.hi]", [[float(VALUES.min())], [float(VALUES.max())]], id="channel-range"
    ),
    pytest.param(
        "h.scaleFor(hm.lo, hm.hi, 'shared', 0)",
        {
            "min": -float(np.abs(VALUES).max()),
            "max": float(np.abs(VALUES).max()),
            "diverging": True,
        },
        id="scaleFor",
    ),
    # Both ReLU outputs from the two arrays sent, and their difference where K = C.
    pytest.param(
        """(() => {
            const m = h.panelMaps({input: {shape: [1, 2, 2], data: enc(values)}, masks: {},
                                   pre_activation: {shape: [1, 2, 2], data: enc(values.map((v) => 1 - v))}, height: 2, width: 2});
            return [Object.keys(m), Array.from(m.conv_relu.values), Array.from(m.difference.values)];
        })()""",
        [
            ["input", "pre_activation", "relu_only", "conv_relu", "difference"],
            np.maximum(1 - VALUES, 0).tolist(),
            (np.maximum(1 - VALUES, 0) - np.maximum(VALUES, 0)).tolist(),
        ],
        id="panelMaps",
    ),
    pytest.param(
        """h.weightsOf({shapes: {weight: [2, 2]},
                     heatmaps: {weight: {shape: [2, 2], data: enc(values)}, bias: {shape: [2], data: enc([0.5, -3])}}})""",
        {"matrix": VALUES.reshape(2, 2).tolist(), "bias": [0.5, -3.0]},
        id="weightsOf",
    ),
    pytest.param(
        "[-6, 0, 9].map((v) => h.colourIndex(v, -6, 6))",
        _colour_index([-6, 0, 9], -6, 6).tolist(),
        id="colourIndex",
    ),
    pytest.param(
        """(() => {
            const rgba = new Uint8ClampedArray(16);
            h.paintChannel(rgba, hm, 0, h.scaleFor(hm.lo, hm.hi, 'shared', 0), lut);
            return Array.from(rgba);
        })()""",
        _painted(VALUES),
        id="paintChannel",
    ),
    pytest.param(
        """(() => {
            const view = {scenario: first.id, request: first.request, view: {scale: 'channel', extra: true}};
            return [s.fromQuery(s.toQuery(view), cat), view];
        })()""",
        "roundtrip",
        id="toQuery-fromQuery",
    ),
    pytest.param("s.shellQuote(`it's`)", "'it'\\''s'", id="shellQuote"),
    pytest.param(
        "[h.fmt(-0.5), h.fmt(0), h.fmt(-0.0000123), h.fmt(1234567)]",
        ["−0.5", "0", "−1.230e-5", "1.235e+6"],
        id="fmt",
    ),
    pytest.param(
        "h.writtenSum([1, -1, 0], [0.5, -0.25, 3], 0.1)",
        "1 × 0.5 − 1 × (−0.25) + 0.1",
        id="writtenSum",
    ),
    # The device does not change the premise; a size or an uploaded file does.
    pytest.param(
        """(() => {
            const edited = structuredClone(first.request); edited.device = 'x';
            const moved = structuredClone(first.request); moved.input.height += 1;
            return [s.premiseHolds(first, first.request, {}, cat), s.premiseHolds(first, edited, {}, cat),
                    s.premiseHolds(first, moved, {}, cat), s.premiseHolds(first, first.request, {input: {}}, cat)];
        })()""",
        [True, True, False, False],
        id="premiseHolds",
    ),
    pytest.param(
        "s.adaptMatrix({matrix: [[1, 2, 3]], bias: [0]}, 5).matrix.concat(s.adaptMatrix({matrix: [[1, 2, 3]]}, 2).matrix)",
        np.pad([[1, 2, 3]], ((0, 0), (0, 2))).tolist() + np.array([[1, 2, 3]])[:, :2].tolist(),
        id="adaptMatrix",
    ),
    pytest.param("p.logTicks(3e-15, 0.4)", (10.0 ** np.arange(-15, 1, 3)).tolist(), id="logTicks"),
    pytest.param(
        "[p.decadeLabel(1e-12), p.decadeLabel(0.1), p.decadeLabel(1e5)]",
        ["10⁻¹²", "0.1", "10⁵"],
        id="decadeLabel",
    ),
    pytest.param("p.niceTicks(1, 500)", np.arange(100, 501, 100).tolist(), id="niceTicks"),
    pytest.param(
        "['-0.5', '-', '-0.', '.5', '2e-3', '1,5', '−1'].map((t) => c.parseNumber(t, 'float'))",
        [-0.5, None, 0, 0.5, 0.002, None, -1],
        id="parseNumber",
    ),
    pytest.param(
        """['weights.matrix.0.1', 'input.height', 'pixel', 'format', null, 'input.layout'].map(
            (f) => e.errorTarget(f, ['input', 'input.height', 'weights', 'weights.matrix', 'pixel']))""",
        ["weights.matrix", "input.height", "pixel", None, None, "input"],
        id="errorTarget",
    ),
    pytest.param(
        "[st.tiny(2.4e-15, 0.39), st.tiny(0.0042, 0.39), st.weightText(-0.0001), st.weightText(0.98765)]",
        ["0 (float precision)", "0.0042", "0.000", "0.988"],
        id="tiny-and-weightText",
    ),
    # What the page counts in a trained network's maps.
    pytest.param(
        "[h.countAbove(hm, 0), h.channelMeans(hm)]",
        [
            {"above": int((VALUES > 0).sum()), "total": 4, "max": float(VALUES.max())},
            [float(VALUES.astype(np.float64).mean())],
        ],
        id="countAbove-and-channelMeans",
    ),
    pytest.param(
        "[h.largestWeights(values, 2), st.mixText(h.largestWeights(values, 3))]",
        [
            {
                "top": [
                    {"c": int(c), "w": float(VALUES[c])} for c in np.argsort(-np.abs(VALUES))[:2]
                ],
                "share": float(
                    np.sort(np.abs(VALUES.astype(np.float64)))[-2:].sum()
                    / np.abs(VALUES.astype(np.float64)).sum()
                ),
                "nonzero": 4,
            },
            "6·c2 − 2·c0 + 0.5·c1 + …",
        ],
        id="largestWeights-and-mixText",
    ),
    pytest.param(
        """(() => {
            const names = cat.networks.mobilenet_v2.classes;
            return [[' egyptian  CAT', 'egyp', ''].map((t) => s.findClass(names, t)), s.classMatches(names, 'RETRIEVER')];
        })()""",
        [
            ["Egyptian cat", None, ""],
            [n for n in imagenet.classes().names if "retriever" in n.lower()],
        ],
        id="findClass-and-classMatches",
    ),
    # A photo sent stands in for the built-in one: the spec loses its name, curl sends the file.
    pytest.param(
        """(() => {
            const request = {input: {generator: 'network', photo: 'chelsea', layer: 'classifier.1'}, weights: {network: 'mobilenet_v2'}};
            const files = {photo: new File(['x'], 'my cat.jpg')};
            const sent = s.requestToSend(request, files);
            return [sent, s.fileNames(files), s.fileNames({...files, input: new File(['y'], 'acts.npy')}),
                    s.curlCommand('http://h', '/api/v1/compare', sent, s.fileNames(files))];
        })()""",
        [
            {
                "input": {"generator": "network", "layer": "classifier.1"},
                "weights": {"network": "mobilenet_v2"},
            },
            {"input": None, "weights": None, "photo": "my cat.jpg"},
            {"input": "acts.npy", "weights": None, "photo": None},  # activations: no photo sent
            "curl -sS -X POST 'http://h/api/v1/compare?format=json&heatmaps=false' -F 'photo=@my cat.jpg' "
            '--form-string \'spec={"input":{"generator":"network","layer":"classifier.1"},"weights":{"network":"mobilenet_v2"}}\' '
            "-o onebyone.json",
        ],
        id="photo-sent",
    ),
    pytest.param(
        """(() => {
            const sc = cat.scenarios.find((x) => x.id === 'trained-bottleneck');
            return [s.generatedTwin(sc.request, sc.endpoint, cat), s.generatedTwin(first.request, first.endpoint, cat)];
        })()""",
        [
            {
                "request": {
                    **find("bottleneck").request,
                    "input": {
                        **find("bottleneck").request["input"],
                        "channels": 192,
                        "height": 14,
                        "width": 14,
                    },
                    "kernel": find("trained-bottleneck").request["kernel"],
                    "out_channels": find("trained-bottleneck").request["out_channels"],
                },
                "channels": 192,
                "capped": False,
            },
            None,
        ],
        id="generatedTwin",
    ),
]


@pytest.fixture(scope="module")
def pure_page(browser: Any, server: str) -> Iterator[Page]:
    """One page for the pure-function tests, which read nothing it shows."""
    p = Page(browser, server)
    p.open()
    yield p
    p.close()
    assert p.errors == [], p.errors


@pytest.mark.parametrize(("expression", "expected"), PURE)
def test_pure_js_function_matches_numpy(pure_page: Page, expression: str, expected: Any) -> None:
    got = pure_page.page.evaluate(
        f"async (values) => {{ {PURE_SETUP} return {expression}; }}", VALUES.tolist()
    )
    if expected == "roundtrip":
        restored, view = got
        assert restored == view
    else:
        assert got == expected
