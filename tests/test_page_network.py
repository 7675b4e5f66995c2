"""'Your own network' in a real Chromium against the real server: a checkpoint of the test
network, its 1×1 layers in the dropdown, the activations that feed one, and the page's values
equal to what the network computes after that layer's batch norm and ReLU."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import nets
from tests.pages import PHONE, Page, network_files

pytestmark = pytest.mark.browser

ONES = list(nets.BN_AFTER)  # every 1×1 conv of the test network, in its order


@pytest.fixture(scope="module")
def net_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return network_files(tmp_path_factory.mktemp("network"))


def curl_npz(page: Page, folder: Path) -> dict[str, np.ndarray]:
    """Run the page's curl command where the files are, for the arrays it writes."""
    page.page.select_option("#curl-format", "npz")
    done = subprocess.run(
        ["bash", "-c", page.text("#curl")], capture_output=True, text=True, cwd=folder
    )
    assert done.returncode == 0, done.stderr
    with np.load(folder / "onebyone.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def hovered(page: Page, col: str, ch: int, points: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The readout's exact values at pixels of one map, reached from the keyboard."""
    page.page.focus(f'canvas.cell[data-col="{col}"][data-ch="{ch}"]')
    out = []
    for y, x in points:
        at = page.readout()
        for _ in range(abs(y - at["y"])):
            page.page.keyboard.press("ArrowDown" if y > at["y"] else "ArrowUp")
        for _ in range(abs(x - at["x"])):
            page.page.keyboard.press("ArrowRight" if x > at["x"] else "ArrowLeft")
        out.append(page.readout())
    return out


def drop(page: Page, zone: str, path: Path) -> None:
    """Drop a file on a zone as a browser does: a DataTransfer holding it."""
    data = path.read_bytes()
    handle = page.page.evaluate_handle(
        """([name, bytes]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name));
            return dt;
        }""",
        [path.name, list(data)],
    )
    page.page.dispatch_event(zone, "drop", {"dataTransfer": handle})


def test_a_dropped_checkpoint_offers_every_1x1_layer_and_shows_what_the_network_computes(
    page: Page, net_files: dict[str, Any]
) -> None:
    page.open()
    before = page.runs()
    drop(page, "#net-drop", net_files["model"])
    page.settle(before, "waiting")
    # Every 1×1 conv in the checkpoint's order, no 3×3 one; the page waits for activations.
    options = page.page.eval_on_selector_all("#net-layer option", "os => os.map(o => o.value)")
    assert options == ONES
    assert "4 larger convs are not offered" in page.text("#net-listing")
    assert "Waiting for the activations" in page.text("#status")
    assert page.runs() == before

    page.page.select_option("#net-layer", "layer1.1.conv1")
    assert "then ‘layer1.1.bn1’" in page.page.inner_text("#net-layer option:checked")
    assert "24 channels" in page.text("#net-layer-note")
    want = net_files["layer1.1.conv1"]
    page.after(lambda: page.page.set_input_files("#net-acts-file", str(want["input"])))

    # The panels and the numbers, named after the layer and the batch norm folded into it.
    assert page.page.locator('canvas.cell[data-col="conv_relu"]').count() == 8
    assert page.page.locator('canvas.cell[data-col="input"]').count() == 24
    assert "layer ‘layer1.1.conv1’ + BN → ReLU" in page.text(".colhead[data-col=conv_relu]")
    assert "batch norm ‘layer1.1.bn1’ folded in" in page.text("#n-layer")
    assert "what your network computes" in page.text("#net-result")
    assert any(ch.isdigit() for ch in page.text("#headline"))
    # The hover values and the curl's arrays equal the network's own activation after its ReLU.
    for v in hovered(page, "conv_relu", 3, [(0, 0), (5, 9), (15, 15)]):
        assert abs(v["conv_relu"] - want["relu"][v["k"], v["y"], v["x"]]) < 1e-5, v
    z = curl_npz(page, net_files["folder"])
    np.testing.assert_allclose(z["conv_relu"], want["relu"], rtol=1e-5, atol=1e-5)

    # Batch norm off: the raw conv, relu(conv(x)), and the page says it is not the network's.
    page.after(lambda: page.page.check("input[name=net-bn][value=none]"))
    assert "not what your network computes" in page.text("#net-result")
    assert page.text(".colhead[data-col=conv_relu] strong").startswith(
        "layer ‘layer1.1.conv1’ → ReLU"
    )
    (v,) = hovered(page, "conv_relu", 3, [(5, 9)])
    assert abs(v["conv_relu"] - want["raw"][v["k"], v["y"], v["x"]]) < 1e-5, v
    z = curl_npz(page, net_files["folder"])
    np.testing.assert_allclose(z["conv_relu"], want["raw"], rtol=1e-5, atol=1e-5)
    assert np.abs(want["raw"] - want["relu"]).max() > 0.1  # the two really differ


def test_googlenet_style_batch_norms_need_their_eps_and_the_page_says_why(
    page: Page, net_files: dict[str, Any]
) -> None:
    layer = "inception3a.branch1.conv"
    want = net_files[layer]
    page.open()
    page.after(lambda: page.page.set_input_files("#net-file", str(net_files["model"])), "waiting")
    page.after(lambda: page.page.set_input_files("#input-file", str(want["input"])), "error")
    # The first layer mixes 16 channels, not these 24: the refusal stands by the checkpoint.
    assert "16" in page.text("#err-net-weights") and "24" in page.text("#err-net-weights")
    assert page.page.get_attribute("#net-drop", "aria-invalid") == "true"
    page.errors.clear()  # the browser logs the 422
    page.after(lambda: page.page.select_option("#net-layer", layer))
    assert "1e-3" in page.text("#net-eps-hint")
    assert page.page.input_value("#net-eps") == "0.00001"
    z = curl_npz(page, net_files["folder"])
    assert np.abs(z["conv_relu"] - want["relu"]).max() > 1e-5  # eps matters here
    page.after(lambda: page.page.fill("#net-eps", "0.001"))
    assert "ε 0.001" in page.text("#n-layer")
    z = curl_npz(page, net_files["folder"])
    np.testing.assert_allclose(z["conv_relu"], want["relu"], rtol=1e-5, atol=1e-5)
    # An ε the API refuses: its message stands under the ε field.
    page.after(lambda: page.page.fill("#net-eps", "0"), "error")
    assert page.page.is_visible("#err-weights-eps") and "eps" in page.text("#err-weights-eps")
    assert page.page.get_attribute("#net-eps", "aria-invalid") == "true"
    page.errors.clear()  # the browser logs the 422


def test_a_checkpoint_without_a_1x1_layer_is_refused_next_to_the_checkpoint(
    page: Page, net_files: dict[str, Any]
) -> None:
    page.open()
    page.after(lambda: page.page.set_input_files("#net-file", str(net_files["only3x3"])), "error")
    slot = page.text("#err-net-weights")
    assert slot.startswith("422: ") and "1×1" in slot, slot
    assert page.page.get_attribute("#err-net-weights", "data-field") == "weights"
    assert page.page.get_attribute("#net-drop", "aria-invalid") == "true"
    assert page.page.is_hidden("#net-layer-box") and page.page.is_hidden("#error")
    assert "refused" in page.text("#status")
    assert page.page.get_attribute("#results", "data-state") == "error"
    page.errors.clear()  # the browser logs the 422
    # A good checkpoint after it clears the refusal.
    page.after(lambda: page.page.set_input_files("#net-file", str(net_files["model"])), "waiting")
    assert page.page.is_hidden("#err-net-weights")
    assert page.page.get_attribute("#net-drop", "aria-invalid") is None


def test_the_latest_checkpoint_wins(page: Page, net_files: dict[str, Any]) -> None:
    page.open()
    before = page.runs()
    page.page.set_input_files("#net-file", str(net_files["only3x3"]))
    page.page.set_input_files("#net-file", str(net_files["model"]))
    page.settle(before, "waiting")
    page.page.wait_for_timeout(500)  # a late answer for the first file would land by now
    assert page.status() == "waiting"
    assert page.page.is_hidden("#err-net-weights")
    assert page.text("#net-listing").startswith("model.pt")
    # The first file's 422 may have come back before it was aborted; it is logged, not shown.
    assert all("422" in e for e in page.errors), page.errors
    page.errors.clear()


@pytest.mark.parametrize("zone", ["#net-acts", "#net-drop"])
def test_a_captured_file_is_activations_and_layer_in_one(
    page: Page, net_files: dict[str, Any], zone: str
) -> None:
    captured = net_files["captured"]
    page.open("?scenario=identity")
    page.after(lambda: drop(page, zone, captured["file"]))
    assert "came with captured.safetensors" in page.text("#net-result")
    assert "from onebyone capture" in page.text("#point")
    if zone == "#net-drop":
        assert "it is the input" in page.text("#net-listing")
    assert page.text("#net-acts-label").startswith("Activations: captured.safetensors")
    curl = page.text("#curl")
    assert "input=@captured.safetensors" in curl and "weights=@" not in curl
    for v in hovered(page, "conv_relu", 2, [(0, 0), (11, 17)]):
        assert abs(v["conv_relu"] - captured["relu"][v["k"], v["y"], v["x"]]) < 1e-5, v
    z = curl_npz(page, net_files["folder"])
    np.testing.assert_allclose(z["conv_relu"], captured["relu"], rtol=1e-5, atol=1e-5)
    # Leaving the network: the same file is activations only, under the preset again.
    page.after(lambda: page.page.click("#net-leave"))
    assert page.page.is_visible("#preset-field") and page.text("#net-result") == ""
    assert curl_npz(page, net_files["folder"])["weight"].shape == (16, 16)  # identity, K = C


def test_the_network_section_fits_a_phone(
    browser: Any, server: str, net_files: dict[str, Any]
) -> None:
    phone = Page(browser, server, viewport=PHONE, has_touch=True, is_mobile=True)
    try:
        phone.open()
        phone.page.click("#settings summary")
        phone.after(
            lambda: phone.page.set_input_files("#net-file", str(net_files["model"])), "waiting"
        )
        phone.page.select_option("#net-layer", "inception3a.branch2.0.conv")
        want = net_files["inception3a.branch1.conv"]["input"]
        phone.after(lambda: phone.page.set_input_files("#net-acts-file", str(want)))
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
        box = phone.page.locator("#net-layer").bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    finally:
        phone.close()
    assert phone.errors == []


def test_the_weights_the_network_section_sends(page: Page, net_files: dict[str, Any]) -> None:
    """The pure helpers, fed the server's own listing and catalogue."""
    page.open()
    data = list(net_files["model"].read_bytes())
    got = page.page.evaluate(
        """async (bytes) => {
            const s = await import('/static/js/state.js');
            const cat = await (await fetch('/api/v1/catalogue')).json();
            const form = new FormData();
            form.append('weights', new File([new Uint8Array(bytes)], 'model.pt'));
            const listing = await (await fetch(cat.checkpoint.layers_endpoint, {method: 'POST', body: form})).json();
            const cp = cat.checkpoint;
            const net = (layer, more = {}) => ({listing, layer, batchnorm: null, eps: undefined, ...more});
            const one = {layers: [{name: '', out_channels: 3, in_channels: 5, bias: false, batchnorm: null}]};
            const request = {input: {generator: 'g', channels: 4, layout: 'chw'}, weights: {preset: 'p'}};
            const mine = s.networkWeights(net('layer1.1.conv1', {eps: 0.001}), cp);
            return {
                defaults: s.networkWeights(net('layer1.1.conv1'), cp),
                raw: s.networkWeights(net('layer1.1.conv1', {batchnorm: cp.batchnorm[1].id}), cp),
                eps: mine,
                one: s.networkWeights({listing: one, layer: '', batchnorm: null}, cp),
                captured: s.networkWeights({listing: null, layer: null}, cp),
                sent: s.requestToSend(request, {weights: {}}, mine),
                preset: s.requestToSend(request, {}, null),
                curl: s.curlCommand('http://h', '/api/v1/compare', {weights: mine}, {weights: 'model.pt'}),
                choices: cp.batchnorm.map((c) => c.id),
            };
        }""",
        data,
    )
    fold, raw = got["choices"]
    assert got["defaults"] == {"layer": "layer1.1.conv1", "batchnorm": fold, "eps": 1e-5}
    assert got["raw"] == {"layer": "layer1.1.conv1", "batchnorm": raw, "eps": 1e-5}
    assert got["eps"]["eps"] == 0.001
    assert got["one"] == {} and got["captured"] == {}
    assert got["sent"] == {"input": {"generator": "g", "channels": 4}, "weights": got["eps"]}
    assert got["preset"]["weights"] == {"preset": "p"}
    # A checkpoint alone still goes as multipart, so the command says what the page sends.
    assert "-F 'weights=@model.pt'" in got["curl"] and "Content-Type" not in got["curl"]
