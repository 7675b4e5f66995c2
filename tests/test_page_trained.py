"""The trained network's scenarios in a real Chromium against the real server, with the real
MobileNetV2 weights and photos: the numbers on screen are the API's (and numpy's, counted from
the arrays), classes are picked by name as a person types them, layer and photo switch, a
photo is dropped, the link restores the view and the curl line gives the same numbers."""

from __future__ import annotations

import io
import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from app import photos
from app.scenarios import SCENARIOS
from bench.server import running
from tests.pages import (
    DESKTOP,
    PHONE,
    Page,
    axe_violations,
    npz_for,
    overflow,
    report_for,
    shown_number,
)

pytestmark = pytest.mark.browser

COMPARE = ["trained", "trained-reduce", "cat-minus-dog"]
BOTTLENECK = "/api/v1/experiments/bottleneck"
SIZES = {"desktop": DESKTOP, "phone": PHONE}


def opened(browser: Any, server: str, size: str) -> Page:
    if size == "phone":
        return Page(browser, server, viewport=PHONE, has_touch=True, is_mobile=True)
    return Page(browser, server)


def dd(page: Page, selector: str) -> str:
    """A number's text, also where it is folded away (the numbers start folded on a phone)."""
    return str(page.page.text_content(selector))


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def sent(page: Page) -> dict[str, Any]:
    """The request the page sends: the link's spec, without a photo file's stand-in name."""
    return page.request()


def assert_numbers_are_the_apis(page: Page, server: str) -> dict[str, Any]:
    """Every number the page shows for a network's layer, against the API's report and the
    arrays (counted with numpy, not with the page's code)."""
    spec = sent(page)
    rep = report_for(server, spec)
    z = npz_for(server, spec)
    s = rep["summary"]
    assert dd(page, "#n-relu-changed") == (
        f"{s['relu_only_changed']:,} of {s['relu_only_values']:,} values"
    )
    assert dd(page, "#n-conv-changed") == (
        f"{s['conv_relu_changed']:,} of {s['conv_relu_values']:,} values"
    )
    top = rep["network"]["top5"]
    assert dd(page, "#n-network") == f"{top[0]['name']} {pct(top[0]['probability'])}"
    shown = page.page.eval_on_selector_all("#net-top5 li", "ls => ls.map(l => l.firstChild.data)")
    assert shown == [f"{t['name']} {pct(t['probability'])}" for t in top]
    layer = rep["layer"]
    pre = z["pre_activation"]
    if layer["activation"] == "relu6":
        over = int((pre > 6).sum())
        assert dd(page, "#n-relu6") == f"{over:,} of {pre.size:,} values"
        assert "ReLU6" in page.text("#headline") or "ReLU6" in page.text("#point")
    else:
        assert page.page.is_hidden("#n-relu6-box")
    if layer["best_variance_kept"] is not None and not layer["classes"]:
        want = f"{pct(layer['variance_kept'])} / {pct(layer['best_variance_kept'])}"
        assert dd(page, "#n-variance") == want
    if layer["classes"]:
        positive = int((pre[0] > 0).sum())
        got = dd(page, "#n-classes")
        count, mean = got.split(" / ")
        assert count == f"{positive} of {pre[0].size}"
        assert shown_number(mean) == pytest.approx(float(pre[0].mean()), rel=1e-3)
    # Whose maps these are, first in the headline.
    net = rep["network"]
    assert page.text("#headline").startswith(
        f"A trained network's maps: MobileNetV2's own activations at ‘{net['layer']}’"
    )
    return {"report": rep, "npz": z}


def run_curl(page: Page, folder: Path) -> dict[str, Any]:
    """The page's curl line, run by bash in `folder`: the JSON it writes."""
    command = page.text("#curl")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=folder)
    assert done.returncode == 0, done.stderr
    name = "onebyone.json" if "compare" in command else "onebyone-bottleneck.json"
    result: dict[str, Any] = json.loads((folder / name).read_text())
    return result


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("scenario", COMPARE)
def test_each_network_scenario_shows_the_apis_numbers_and_fits(
    browser: Any, server: str, scenario: str, size: str
) -> None:
    p = opened(browser, server, size)
    try:
        p.open(f"?scenario={scenario}")
        assert overflow(p) == []
        got = assert_numbers_are_the_apis(p, server)
        rep = got["report"]
        # The photo the network saw: the server's crop, its words and licence.
        assert p.page.get_attribute("#net-photo-img", "src") == "/api/v1/photos/chelsea?view=crop"
        assert p.page.evaluate("document.getElementById('net-photo-img').naturalWidth") == 224
        assert "CC0" in p.text("#net-photo-text") and "Chelsea the cat" in p.text("#net-photo-text")
        # The right-hand column is named after the trained layer, and says whose ReLU it is.
        title = p.text(".colhead[data-col=conv_relu] strong")
        if rep["layer"]["activation"] == "none":
            assert "not in the network" in title
        else:
            assert "ReLU6" in title
        if size == "phone":
            p.page.click("#settings summary")
            assert overflow(p) == []
    finally:
        p.close()
    assert p.errors == []


def shown_weight(w: float) -> str:
    """A weight as the page writes it: 3 significant digits, a true minus sign."""
    text = f"{float(f'{abs(w):.3g}'):g}"
    return f"−{text}" if w < 0 else text


def test_a_trained_layer_says_what_each_output_mixes(page: Page, server: str) -> None:
    page.open("?scenario=trained")
    w = npz_for(server, sent(page))["weight"]  # (192, 32), batch norm folded
    top = np.argsort(-np.abs(w), axis=1, kind="stable")[:, :3]  # (192, 3)
    headline = page.text("#headline")
    assert "Each of the 192 outputs mixes all 32 input channels" in headline
    a, b, c = (int(i) for i in top[0])
    sign = lambda v: "−" if v < 0 else "+"  # noqa: E731
    first = (
        f"output 0: {shown_weight(w[0, a])}·c{a} {sign(w[0, b])} {shown_weight(abs(w[0, b]))}·c{b} "
        f"{sign(w[0, c])} {shown_weight(abs(w[0, c]))}·c{c} + …"
    )
    assert first in headline, headline
    share = np.mean(np.abs(np.take_along_axis(w, top, 1)).sum(1) / np.abs(w).sum(1))
    assert f"carry {pct(float(share))} of its total |w|" in headline
    # The whole list, built when it is opened.
    assert page.page.locator("#mixes li").count() == 0
    page.page.click("#mixes-box summary")
    page.page.locator("#mixes li").nth(191).wait_for()
    items = page.page.eval_on_selector_all("#mixes li", "ls => ls.map(l => l.textContent)")
    assert len(items) == 192
    for k in (0, 77, 191):
        channels = [int(t.split("·c")[1]) for t in items[k].split(": ")[1].split() if "·c" in t]
        assert channels == list(top[k]), (k, items[k])


def test_192_to_64_as_trained_against_pca_and_a_relu_that_would_zero(
    page: Page, server: str
) -> None:
    page.open("?scenario=trained-reduce")
    got = assert_numbers_are_the_apis(page, server)
    layer, s = got["report"]["layer"], got["report"]["summary"]
    headline = page.text("#headline")
    assert f"keep {pct(layer['variance_kept'])} of its input's variance" in headline
    assert f"(PCA) is {pct(layer['best_variance_kept'])}" in headline
    negative = int((got["npz"]["pre_activation"] < 0).sum())
    assert s["conv_relu_changed"] == negative
    assert f"it would zero {negative:,} of the {s['conv_relu_values']:,} outputs" in headline
    assert "linear bottleneck" in headline


def type_class(page: Page, field: str, text: str) -> None:
    """Type a class name as a person does: cleared, then a key at a time."""
    page.page.fill(field, "")
    page.page.locator(field).press_sequentially(text, delay=90)


def test_classes_are_picked_by_name_as_typed(page: Page, server: str) -> None:
    page.open("?scenario=cat-minus-dog")
    before = page.runs()
    # Emptied while b stays, a waits; part of a name waits too, saying which names contain it.
    page.page.fill("#class-a", "")
    page.page.locator("#class-a").press_sequentially("lyn", delay=90)
    page.page.wait_for_timeout(500)
    assert "lynx" in page.text("#class-a-note")
    assert page.runs() == before and page.status() == "ready"
    assert sent(page)["weights"]["classes"] == ["Egyptian cat"]
    # The whole name is sent.
    page.after(lambda: page.page.locator("#class-a").press_sequentially("x", delay=90))
    assert sent(page)["weights"]["classes"] == ["lynx"]
    assert page.page.is_hidden("#class-a-note")
    # b: the whole name typed in another case is the class.
    page.after(lambda: type_class(page, "#class-b", "TABBY"))
    assert sent(page)["weights"]["minus"] == "tabby"
    got = assert_numbers_are_the_apis(page, server)
    # Independent of the page and of the API's code: both classes are in the top 5, and the
    # mean over the pixels of W[a] − W[b] · x + b is log(p_a / p_b).
    probs = {t["name"]: t["probability"] for t in got["report"]["network"]["top5"]}
    mean = float(got["npz"]["pre_activation"][0].mean())
    assert mean == pytest.approx(math.log(probs["lynx"] / probs["tabby"]), abs=1e-4)
    headline = page.text("#headline")
    assert "W[lynx] − W[tabby] · x + b is positive" in headline
    assert "is the logit of lynx minus that of tabby" in headline
    # A name that no class contains is marked, and nothing is sent.
    runs = page.runs()
    page.page.locator("#class-b").press_sequentially("zq", delay=90)
    page.settle(runs, "error")
    assert "No ImageNet class name contains" in page.text("#err-weights-minus")
    assert page.page.get_attribute("#class-b", "aria-invalid") == "true"
    assert sent(page)["weights"]["minus"] == "tabby"
    # Emptied, b goes: W[a] alone, whose mean is the logit of a.
    page.after(lambda: page.page.fill("#class-b", ""))
    assert "minus" not in sent(page)["weights"]
    assert page.page.get_attribute("#class-b", "aria-invalid") is None
    assert "is the network's logit for lynx" in page.text("#headline")
    # A class of the top 5, one click.
    page.after(lambda: page.page.click('#net-top5 button[data-name="tiger cat"]'))
    assert sent(page)["weights"]["classes"] == ["tiger cat"]
    assert page.page.input_value("#class-a") == "tiger cat"
    assert_numbers_are_the_apis(page, server)


def test_the_1280_channel_panels_draw_lazily(page: Page) -> None:
    page.open("?scenario=cat-minus-dog")
    cells = page.page.locator("canvas.cell")
    assert cells.count() == 2 * 1280 + 1
    drawn = page.page.evaluate("document.querySelectorAll('canvas.cell[data-drawn]').length")
    assert drawn < 200, drawn
    last = page.page.locator('canvas.cell[data-col="relu_only"][data-ch="1279"]')
    last.scroll_into_view_if_needed()
    page.page.wait_for_timeout(200)
    assert last.get_attribute("data-drawn") == "1"
    last.click()
    assert page.readout()["row"] == 1279


def test_switching_layer_and_photo(page: Page, server: str) -> None:
    page.open("?scenario=trained")
    page.after(lambda: page.page.select_option("#f-input-layer", "features.18.0"))
    assert sent(page)["input"]["layer"] == "features.18.0"
    assert page.page.get_attribute("button[data-scenario=trained]", "aria-pressed") == "true"
    assert page.page.is_visible("button[data-scenario=trained] .badge")
    got = assert_numbers_are_the_apis(page, server)
    over = int((got["npz"]["pre_activation"] > 6).sum())
    assert over > 0  # this layer's W·x + b does pass 6 on this photo: ReLU6 and ReLU differ
    assert f"{over:,} of the 62,720 values of W·x + b" in page.text("#headline")
    assert "‘features.18.0’" in page.text("#point")  # what the changed settings are
    page.after(lambda: page.page.select_option("#f-input-photo", "coffee"))
    assert sent(page)["input"]["photo"] == "coffee"
    assert "coffee" in page.text("#net-photo-text")
    assert page.page.get_attribute("#net-photo-img", "src") == "/api/v1/photos/coffee?view=crop"
    assert_numbers_are_the_apis(page, server)
    # The classifier's classes belong to classifier.1 only: leaving it drops them.
    page.scenario("cat-minus-dog")
    page.after(lambda: page.page.select_option("#f-input-layer", "features.17.conv.2"))
    weights = sent(page)["weights"]
    assert "classes" not in weights and "minus" not in weights
    assert page.page.is_hidden("#classes-box")
    assert_numbers_are_the_apis(page, server)


def chelsea_jpeg(folder: Path) -> Path:
    """A built-in photo re-encoded as a JPEG a person might have."""
    with Image.open(io.BytesIO(photos.read(photos.PHOTOS["chelsea"]))) as img:
        path = folder / "my cat.jpg"
        img.convert("RGB").save(path, "JPEG", quality=90)
    return path


def drop(page: Page, zone: str, path: Path) -> None:
    data = path.read_bytes()
    handle = page.page.evaluate_handle(
        """([name, bytes]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, {type: 'image/jpeg'}));
            return dt;
        }""",
        [path.name, list(data)],
    )
    page.page.dispatch_event(zone, "drop", {"dataTransfer": handle})


def test_a_dropped_photo_is_sent_shown_and_in_the_curl_line(
    page: Page, server: str, tmp_path: Path
) -> None:
    photo = chelsea_jpeg(tmp_path)
    page.open("?scenario=trained")
    page.after(lambda: drop(page, "#photo-drop", photo))
    assert page.text("#photo-label").startswith("Your photo: my cat.jpg")
    assert page.page.is_visible("#net-photo-canvas") and page.page.is_hidden("#net-photo-img")
    assert "your photo my cat.jpg" in page.text("#headline")
    # The same request from a script: the photo as the part `photo`, the spec without a name.
    spec = sent(page)
    del spec["input"]["photo"]
    r = httpx.post(
        f"{server}/api/v1/compare",
        params={"heatmaps": "false"},
        files={"photo": (photo.name, photo.read_bytes())},
        data={"spec": json.dumps(spec)},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["network"]["photo"] == "upload:my cat.jpg"
    s = rep["summary"]
    assert dd(page, "#n-relu-changed") == (
        f"{s['relu_only_changed']:,} of {s['relu_only_values']:,} values"
    )
    top = rep["network"]["top5"]
    assert dd(page, "#n-network") == f"{top[0]['name']} {pct(top[0]['probability'])}"
    # A JPEG is not the PNG: the numbers are this photo's, not the built-in one's.
    assert rep["network"]["top5"] != report_for(server, sent(page))["network"]["top5"]
    # The link cannot carry it, and says so; the curl line sends it.
    assert "A photo cannot travel in a link" in page.text("#link-note")
    curl = page.text("#curl")
    assert "-F 'photo=@my cat.jpg'" in curl and "--form-string 'spec=" in curl
    assert '"photo"' not in curl.split("spec=")[1]
    result = run_curl(page, tmp_path)
    assert result["summary"] == rep["summary"] and result["network"] == rep["network"]
    # The built-in photo again, one click.
    page.after(lambda: page.page.click("#clear-photo"))
    assert page.page.is_visible("#net-photo-img") and page.text("#link-note") == ""


def test_a_dropped_photo_draws_the_bottleneck_curve_too(
    page: Page, server: str, tmp_path: Path
) -> None:
    photo = chelsea_jpeg(tmp_path)
    page.open("?scenario=trained-bottleneck")
    page.after(lambda: page.page.set_input_files("#photo-file", str(photo)))
    result = run_curl(page, tmp_path)
    assert result["network"]["photo"] == "upload:my cat.jpg"
    rows = table_rows(page)
    assert rows["64"][1] == pct(result["rows"][63]["variance_kept"])


def table_rows(page: Page) -> dict[str, list[str]]:
    rows = page.page.eval_on_selector_all(
        "#bottleneck-table tbody tr",
        "rs => rs.map(r => [...r.querySelectorAll('td')].map(d => d.textContent))",
    )
    return {r[0]: r for r in rows}


@pytest.mark.parametrize("size", list(SIZES))
def test_the_bottleneck_curve_of_real_activations_beside_the_generated_one(
    browser: Any, server: str, size: str
) -> None:
    p = opened(browser, server, size)
    try:
        p.open("?scenario=trained-bottleneck")
        assert overflow(p) == []
        spec = p.request()
        real = httpx.post(f"{server}{BOTTLENECK}", json=spec, timeout=60).json()
        twin = json.loads(p.text("#bottleneck-twin code"))
        assert twin["input"]["generator"] == "smooth" and twin["input"]["channels"] == 192
        assert [twin["input"]["height"], twin["input"]["width"]] == [14, 14]
        generated = httpx.post(f"{server}{BOTTLENECK}", json=twin, timeout=60).json()
        rows = table_rows(p)
        for k in ("1", "16", "64", "192"):
            want_real = pct(real["rows"][int(k) - 1]["variance_kept"])
            want_generated = pct(generated["rows"][int(k) - 1]["variance_kept"])
            assert rows[k][1:3] == [want_real, want_generated], k
        trained = real["trained"]
        assert trained["k"] == 64
        caption = p.text("#bottleneck-table caption")
        assert f"the trained layer's K = 64, which keeps {pct(trained['variance_kept'])}" in caption
        headline = p.text("#headline")
        assert headline.startswith("A trained network's maps: MobileNetV2's own activations")
        k90 = next(r["k"] for r in real["rows"] if r["variance_kept"] >= 0.9)
        g90 = next(r["k"] for r in generated["rows"] if r["variance_kept"] >= 0.9)
        assert f"{k90} filters keep 90% of the variance" in headline
        assert f"reach 90% with {g90} filter" in headline
        assert f"keeps {pct(trained['variance_kept'])} through its own weights" in headline
        # Another layer: its own C, and the twin follows.
        if size == "desktop":
            p.after(lambda: p.page.select_option("#f-input-layer", "features.16.conv.2"))
            twin = json.loads(p.text("#bottleneck-twin code"))
            assert twin["input"]["channels"] == 960
            assert "K = 160" in p.text("#bottleneck-table caption")
    finally:
        p.close()
    assert p.errors == []


@pytest.mark.parametrize("scenario", [*COMPARE, "trained-bottleneck"])
def test_the_curl_line_gives_the_numbers_on_screen(
    page: Page, server: str, tmp_path: Path, scenario: str
) -> None:
    page.open(f"?scenario={scenario}")
    if scenario == "cat-minus-dog":
        page.after(lambda: type_class(page, "#class-b", "tabby"))
    result = run_curl(page, tmp_path)
    top = result["network"]["top5"]
    assert page.page.eval_on_selector_all(
        "#net-top5 li", "ls => ls.map(l => l.firstChild.data)"
    ) == [f"{t['name']} {pct(t['probability'])}" for t in top]
    if scenario == "trained-bottleneck":
        assert table_rows(page)["64"][1] == pct(result["rows"][63]["variance_kept"])
        return
    s = result["summary"]
    assert dd(page, "#n-conv-changed") == (
        f"{s['conv_relu_changed']:,} of {s['conv_relu_values']:,} values"
    )
    assert result["layer"]["classes"] == sent(page)["weights"].get("classes")


def shown_numbers(page: Page) -> list[str]:
    """The numbers behind the headline, but the time they took."""
    return list(
        page.page.eval_on_selector_all(
            "#numbers dd:not(#n-device)", "ds => ds.map(d => d.textContent)"
        )
    )


def test_the_share_url_restores_a_network_view(page: Page, browser: Any, server: str) -> None:
    page.open("?scenario=cat-minus-dog")
    page.after(lambda: page.page.select_option("#f-input-photo", "astronaut"))
    page.after(lambda: type_class(page, "#class-a", "space shuttle"))
    url = page.page.url
    headline = page.text("#headline")
    numbers = shown_numbers(page)
    other = Page(browser, server)
    try:
        other.page.goto(url)
        other.page.wait_for_selector("body[data-status=ready]")
        assert other.text("#headline") == headline and shown_numbers(other) == numbers
        assert other.page.input_value("#f-input-photo") == "astronaut"
        assert other.page.input_value("#class-a") == "space shuttle"
        assert other.page.input_value("#class-b") == "golden retriever"
        assert other.page.is_visible("button[data-scenario=cat-minus-dog] .badge")
    finally:
        other.close()
    assert other.errors == []


def test_axe_finds_nothing_in_the_network_states(page: Page, phone: Page, tmp_path: Path) -> None:
    photo = chelsea_jpeg(tmp_path)
    for p in (page, phone):
        for scenario in [*COMPARE, "trained-bottleneck"]:
            p.open(f"?scenario={scenario}")
            assert axe_violations(p) == [], (scenario, p.page.viewport_size)
        if p.page.is_hidden("#class-a"):
            p.page.click("#settings summary")
        p.page.locator("#class-a").press_sequentially("retr", delay=50)
        assert axe_violations(p) == [], ("part of a class name", p.page.viewport_size)
        p.after(lambda p=p: p.page.set_input_files("#photo-file", str(photo)))
        assert axe_violations(p) == [], ("photo sent", p.page.viewport_size)
        assert overflow(p) == []


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose network weights are not where its setting says."""
    missing = tmp_path_factory.mktemp("none") / "mobilenet_v2-b0353104.pth"
    with running(env={"ONEBYONE_MOBILENET_V2_WEIGHTS": str(missing)}) as (url, _):
        yield url


def test_without_the_network_its_scenarios_say_how_to_install_it(
    browser: Any, bare_server: str
) -> None:
    catalogue = httpx.get(f"{bare_server}/api/v1/catalogue").json()
    net = catalogue["networks"]["mobilenet_v2"]
    assert not net["available"] and net["detail"]
    p = Page(browser, bare_server)
    requests: list[str] = []
    p.page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
    try:
        for scenario in [*COMPARE, "trained-bottleneck"]:
            p.page.goto(f"{bare_server}/?scenario={scenario}")
            p.page.wait_for_selector("body[data-status=unavailable]")
            assert net["detail"] in p.text("#status")
            title = next(s.title for s in SCENARIOS if s.id == scenario)
            assert p.text("#story-name") == title and p.text("#headline") == ""
            assert p.page.is_hidden("#compare-view") and p.page.is_hidden("#experiment")
            assert p.page.is_visible("#net-missing") and net["detail"] in p.text("#net-missing")
            assert axe_violations(p) == [], scenario
        assert requests == []  # nothing was sent that could only fail
        # The generated scenarios still work.
        p.page.click("button[data-scenario=relu-enough]")
        p.page.wait_for_selector("body[data-status=ready]")
        assert p.page.is_hidden("#net-missing")
        # And from there, a network scenario leaves no other scenario's answer on screen.
        p.page.click("button[data-scenario=trained]")
        p.page.wait_for_selector("body[data-status=unavailable]")
        assert p.page.is_hidden("#compare-view") and p.text("#story-name") == "A trained 1×1 layer"
        assert requests[-1].endswith("/api/v1/compare?format=json")  # relu-enough's only
    finally:
        p.close()
    assert p.errors == []


def test_the_network_generator_picked_in_any_scenario(page: Page, server: str) -> None:
    # From a generated comparison, whose numbers say nothing of a trained layer ...
    page.open("?scenario=relu-enough")
    assert page.text("#n-variance-label") == "Input variance the K outputs keep"
    assert dd(page, "#n-variance").endswith("(what a best linear read-out from W·x recovers)")
    # ... the network's maps bring its layer's own weights.
    page.after(lambda: page.page.select_option("#generator", "network"))
    assert sent(page)["input"] == {"generator": "network"}
    assert sent(page)["weights"] == {"network": "mobilenet_v2"}
    assert page.page.input_value("#preset") == "__trained"
    assert_numbers_are_the_apis(page, server)
    point = page.text("#point")
    assert "‘features.7.conv.0.0’ (block 7's expand, 32 → 192)" in point
    assert "Weights: MobileNetV2's trained layer ‘features.7.conv.0.0’" in point
    assert "undefined" not in point
    # Back to a generator: its sizes, and weights the server picks (the network's need its maps).
    page.after(lambda: page.page.select_option("#generator", "smooth"))
    assert sent(page)["weights"] == {}
    assert page.text("#headline").startswith("Generated maps (the smooth generator).")
    # An experiment takes no weights: the bottleneck curve of the network's maps.
    page.scenario("bottleneck")
    page.after(lambda: page.page.select_option("#generator", "network"))
    assert "weights" not in sent(page)
    assert page.page.is_visible("#bottleneck-twin")
    assert page.text("#headline").startswith("A trained network's maps")


def test_the_photo_drop_zone_works_from_the_keyboard(page: Page) -> None:
    page.open("?scenario=trained")
    with page.page.expect_file_chooser() as chosen:
        page.page.locator("#photo-drop").press("Enter")
    assert chosen.value.element.get_attribute("id") == "photo-file"
    assert chosen.value.element.get_attribute("accept") == "image/png,image/jpeg,.png,.jpg,.jpeg"
