"""Every form ../shared/PRODUCT.md's core contract shows, sent exactly as written there."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from tests import files
from tests.reference import conv1x1_relu, relu

X_CHW = np.random.default_rng(11).standard_normal((5, 6, 7)).astype(np.float32)
W_KC = np.random.default_rng(12).standard_normal((3, 5)).astype(np.float32)
NPZ = {
    "input": (5, 6, 7),
    "weight": (3, 5),
    "bias": (3,),
    "pre_activation": (3, 6, 7),
    "relu_only": (5, 6, 7),
    "conv_relu": (3, 6, 7),
}


def arrays(r: httpx.Response) -> dict[str, np.ndarray]:
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def check_paths(z: dict[str, np.ndarray]) -> None:
    pre, out = conv1x1_relu(z["input"], z["weight"], z["bias"])
    np.testing.assert_allclose(z["pre_activation"], pre, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z["conv_relu"], out, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(z["relu_only"], relu(z["input"]))


def test_healthz_is_ok_with_devices(client: httpx.Client) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and "cpu" in body["devices"]


@pytest.mark.parametrize("device", ["auto", "cpu"])
@pytest.mark.parametrize(
    "weights",
    [
        {"preset": "random", "out_channels": 3, "seed": 4},
        {"matrix": W_KC.tolist(), "bias": [0.1, -0.2, 0.3]},
    ],
)
def test_json_body_with_a_generator_and_preset_or_explicit_weights(
    client: httpx.Client, device: str, weights: dict[str, Any]
) -> None:
    body = {
        "input": {"generator": "gaussian", "height": 6, "width": 7, "channels": 5, "seed": 3},
        "weights": weights,
        "device": device,
    }
    r = client.post("/api/v1/compare", params={"format": "npz"}, json=body)
    z = arrays(r)
    assert {k: v.shape for k, v in z.items()} == NPZ
    assert all(v.dtype == np.float32 for v in z.values())
    check_paths(z)
    j = client.post("/api/v1/compare", json=body).json()
    assert j["device"] == "cpu"  # auto picks the best present, and says which ran


@pytest.mark.parametrize(
    "spec",
    [
        {"layout": "hwc", "device": "cpu"},  # PRODUCT.md: layout at the top level of spec
        {"input": {"layout": "hwc"}, "device": "cpu"},  # or inside its input
        {"layout": "hwc", "input": {"layout": "hwc"}},  # both, agreeing
    ],
)
def test_multipart_with_layout_at_either_place(client: httpx.Client, spec: dict[str, Any]) -> None:
    hwc = X_CHW.transpose(1, 2, 0)
    r = client.post(
        "/api/v1/compare",
        params={"format": "npz"},
        files={"input": ("acts.npy", files.npy(hwc)), "weights": ("w.npy", files.npy(W_KC))},
        data={"spec": json.dumps(spec)},
    )
    z = arrays(r)
    np.testing.assert_array_equal(z["input"], X_CHW)
    check_paths(z)


def test_multipart_layouts_that_disagree_are_refused(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/compare",
        files={"input": ("acts.npy", files.npy(X_CHW))},
        data={"spec": json.dumps({"layout": "chw", "input": {"layout": "hwc"}})},
    )
    assert r.status_code == 422
    assert (r.json()["field"], r.json()["code"]) == ("layout", "conflict")


def test_multipart_spec_fills_what_the_files_do_not_give(client: httpx.Client) -> None:
    spec = {"layout": "chw", "weights": {"preset": "random", "out_channels": 3, "seed": 1}}
    r = client.post(
        "/api/v1/compare",
        params={"format": "npz"},
        files={"input": ("acts.pt", files.pt(torch.from_numpy(X_CHW)))},
        data={"spec": json.dumps(spec)},
    )
    z = arrays(r)
    assert z["weight"].shape == (3, 5)
    check_paths(z)


def test_multipart_image_input(client: httpx.Client) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    r = client.post(
        "/api/v1/compare",
        params={"format": "npz"},
        files={"input": ("photo.png", files.png(rgb))},
        data={"spec": json.dumps({"weights": {"preset": "identity"}})},
    )
    z = arrays(r)
    np.testing.assert_allclose(z["input"], rgb.transpose(2, 0, 1) / 255, atol=1e-6)


def test_png_format_is_one_image(client: httpx.Client) -> None:
    r = client.post("/api/v1/compare", params={"format": "png"}, json={})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("send", "status"),
    [
        ({"content": b"x" * 10, "headers": {"content-type": "application/pdf"}}, 415),
        ({"files": {"input": ("x.npy", b"definitely not numpy")}}, 400),
        ({"json": {"weights": {"preset": "no-such-preset"}}}, 422),
        ({"json": {"weights": {"matrix": [[1.0, 2.0]]}}}, 422),
    ],
)
def test_every_refusal_has_detail_field_and_code(
    client: httpx.Client, send: dict[str, Any], status: int
) -> None:
    r = client.post("/api/v1/compare", **send)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"detail", "field", "code"}
    assert body["detail"] and body["code"]


def test_absent_cuda_is_refused_with_a_4xx(client: httpx.Client) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = client.post("/api/v1/compare", json={"device": "cuda"})
    assert r.status_code == 422 and r.json()["field"] == "device"


# K each preset makes for an input of C = 5 channels.
PRESET_K = {"identity": 5, "random": 3, "difference": 1, "mean": 1, "pca": 3}


@pytest.mark.parametrize("preset", sorted(PRESET_K))
def test_every_preset_takes_the_documented_form(client: httpx.Client, preset: str) -> None:
    """PRODUCT.md: {"preset": NAME, "out_channels": K, "seed": S} for every preset."""
    assert set(PRESET_K) == set(client.get("/api/v1/catalogue").json()["weight_presets"])
    k = PRESET_K[preset]
    body = {
        "input": {"generator": "gaussian", "height": 6, "width": 7, "channels": 5, "seed": 3},
        "weights": {"preset": preset, "out_channels": k, "seed": 9},
    }
    z = arrays(client.post("/api/v1/compare", params={"format": "npz"}, json=body))
    assert z["weight"].shape == (k, 5)
    check_paths(z)


@pytest.mark.parametrize(("preset", "k"), [("identity", 5), ("difference", 1), ("mean", 1)])
def test_a_preset_that_fixes_k_refuses_another_naming_the_only_value(
    client: httpx.Client, preset: str, k: int
) -> None:
    body = {
        "input": {"generator": "gaussian", "height": 6, "width": 7, "channels": 5},
        "weights": {"preset": preset, "out_channels": k + 1},
    }
    r = client.post("/api/v1/compare", json=body)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["field"] == "weights.out_channels"
    assert f"out_channels = {k}" in err["detail"] and str(k + 1) in err["detail"]


@pytest.mark.parametrize("option", [{"layout": "hwc"}, {"features": "filterbank"}])
def test_file_options_with_a_generated_input_are_refused(
    client: httpx.Client, option: dict[str, str]
) -> None:
    """`layout` and `features` describe an uploaded file: with a generator they mean nothing."""
    r = client.post("/api/v1/compare", json={"input": {"generator": "gaussian", **option}})
    assert r.status_code == 422, r.text
    key = next(iter(option))
    assert (r.json()["field"], r.json()["code"]) == (f"input.{key}", "needs_file")
    r = client.post("/api/v1/compare", json={"input": {"generator": "gaussian"}, **option})
    if key == "layout":  # it may stand at the top level too
        assert (r.status_code, r.json()["field"]) == (422, "input.layout")
