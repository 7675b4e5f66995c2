"""The experiments, each checked against an independent computation."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from scipy.optimize import isotonic_regression

from app import experiments, generators
from tests import files

# ---------------------------------------------------------------- fit


def scipy_floor(x: np.ndarray, t: np.ndarray) -> float:
    """Best monotone fit of t on each channel, either direction, by scipy (ties pooled)."""
    best = np.inf
    for c in range(x.shape[0]):
        for sign in (1, -1):
            v = sign * x[c]
            _, inv = np.unique(v, return_inverse=True)
            sums = np.bincount(inv, weights=t)
            counts = np.bincount(inv)
            fitted = isotonic_regression(sums / counts, weights=counts).x
            best = min(best, float(np.mean((fitted[inv] - t) ** 2)))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_mixing_floor_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 200))
    x[:, :50] = np.round(x[:, :50])  # ties
    t = np.maximum(x[0] - x[1], 0) + 0.1 * rng.standard_normal(200)
    floor, _ = experiments.no_mixing_floor(x, t)
    assert floor == pytest.approx(scipy_floor(x, t), rel=1e-9, abs=1e-12)


def test_fit_learns_cat_minus_dog_and_beats_the_floor(client: httpx.Client) -> None:
    body = {
        "input": {"generator": "catdog", "height": 32, "width": 32, "channels": 4},
        "steps": 300,
    }
    r = client.post("/api/v1/experiments/fit", json=body)
    assert r.status_code == 200, r.text
    j = r.json()
    g = generators.generate("catdog", 4, 32, 32, 0, {})
    t = np.maximum(g.maps[0] - g.maps[1], 0).reshape(-1).astype(np.float64)
    floor = scipy_floor(g.maps.reshape(4, -1).astype(np.float64), t)
    assert j["relu_only_floor"] == pytest.approx(floor, rel=1e-6)
    # The 1×1 conv gets far below what any per-channel model can reach.
    assert j["final"]["conv_relu"] < floor / 100
    assert j["final"]["relu_only"] >= floor * (1 - 1e-6)
    w = np.array(j["conv_weight"])[0]
    np.testing.assert_allclose(w / w[0], [1, -1, 0, 0], atol=0.05)
    assert len(j["conv_loss"]) == len(j["relu_only_loss"]) == 300
    assert "ReLU-only cannot do better than" in j["conclusion"]


def events(lines: Any) -> Any:
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])


@pytest.mark.slow
def test_fit_streams_progress_then_the_result(live: httpx.Client) -> None:
    """On a real server: the events arrive as they are sent, over the socket."""
    body = {"steps": 60, "every": 20}
    with live.stream("POST", "/api/v1/experiments/fit", params={"stream": "true"}, json=body) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        got = list(events(r.iter_lines()))
    assert [e for e, _ in got] == ["progress", "progress", "progress", "result"]
    assert [d["step"] for _, d in got[:3]] == [20, 40, 60]
    assert got[-1][1]["final"]["conv_relu"] == pytest.approx(got[-1][1]["conv_loss"][-1], rel=0.5)


@pytest.mark.slow
def test_closing_the_stream_cancels_the_training(live: httpx.Client, server_log: Path) -> None:
    """On a real server: the client closes its socket, and the server's log says it stopped."""
    body = {"steps": 5000, "every": 1, "input": {"generator": "catdog", "channels": 4}}
    with live.stream("POST", "/api/v1/experiments/fit", params={"stream": "true"}, json=body) as r:
        for i, (event, _) in enumerate(events(r.iter_lines())):
            assert event == "progress"
            if i == 5:
                break
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log = server_log.read_text().splitlines()
        lines = [json.loads(x.split(" onebyone ", 1)[1]) for x in log if '"fit_cancelled"' in x]
        if lines:
            assert lines[-1]["step"] < 5000
            return
        time.sleep(0.1)
    raise AssertionError("the training did not stop when the client went away")


def test_fit_with_an_uploaded_target(client: httpx.Client) -> None:
    x = np.random.default_rng(0).standard_normal((3, 12, 12)).astype(np.float32)
    t = np.maximum(0.5 * x[0] + x[2], 0)
    r = client.post(
        "/api/v1/experiments/fit",
        files={"input": ("x.npy", files.npy(x)), "target": ("t.npy", files.npy(t))},
        data={"spec": json.dumps({"target": "upload", "steps": 400})},
    )
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["final"]["conv_relu"] < 1e-3 < j["relu_only_floor"]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"input": {"generator": "smooth"}}, "needs the catdog generator"),
        ({"target": "upload"}, 'part named "target"'),
        ({"steps": 10**6}, "less than or equal"),
        (
            {"input": {"generator": "catdog", "channels": 32, "height": 200, "width": 200}},
            "at most",
        ),
    ],
)
def test_fit_refuses_impossible_requests(
    client: httpx.Client, body: dict[str, Any], match: str
) -> None:
    r = client.post("/api/v1/experiments/fit", json=body)
    assert r.status_code == 422 and match in r.json()["detail"], r.text


# ---------------------------------------------------------------- bottleneck


def test_bottleneck_curve_matches_svd_and_costs(client: httpx.Client) -> None:
    j = client.post("/api/v1/experiments/bottleneck", json={}).json()
    g = generators.generate("smooth", 192, 28, 28, 0, {})
    x = g.maps.reshape(192, -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    s = np.linalg.svd(x, compute_uv=False) ** 2
    kept = np.cumsum(s) / s.sum()
    got = np.array([r["variance_kept"] for r in j["rows"]])
    assert len(got) == 192
    np.testing.assert_allclose(got, kept, atol=1e-5)
    row16 = j["rows"][15]  # GoogLeNet's 5×5 branch: 192 → 16 → 32
    assert row16["parameters"] == (192 * 16 + 16) + (16 * 32 * 25 + 32)
    assert row16["macs"] == (192 * 16 + 16 * 32 * 25) * 28 * 28
    assert j["direct"] == {"parameters": 192 * 32 * 25 + 32, "macs": 192 * 32 * 25 * 28 * 28}


# ---------------------------------------------------------------- receptive field


@pytest.mark.parametrize("pixel", [(16, 16), (0, 0), (31, 5)])
def test_one_pixel_moves_one_output_pixel_under_1x1_and_a_patch_under_3x3(
    client: httpx.Client, pixel: tuple[int, int]
) -> None:
    j = client.post("/api/v1/experiments/receptive-field", json={"pixel": list(pixel)}).json()
    y, x = pixel
    patch = {
        (a, b)
        for a in range(y - 1, y + 2)
        for b in range(x - 1, x + 2)
        if 0 <= a < 32 and 0 <= b < 32
    }
    assert {tuple(p) for p in j["changed"]["conv1x1"]} == {pixel}
    assert {tuple(p) for p in j["changed"]["conv3x3"]} == patch
    assert j["cost"]["conv3x3"]["macs"] == 9 * j["cost"]["conv1x1"]["macs"]


def test_3x3_finds_the_edges_that_no_1x1_can(client: httpx.Client) -> None:
    j = client.post("/api/v1/experiments/receptive-field", json={}).json()
    g = generators.generate("edges", 3, 32, 32, 0, {"rectangles": 2})
    truth = g.truth["edge"]
    assert j["edges"]["conv3x3_agreement"] == 1.0
    assert j["edges"]["fraction"] == pytest.approx(truth.mean())
    # Independent bound: group pixels by channel vector with a dict, take the majority.
    groups: dict[tuple[float, ...], list[bool]] = {}
    for vec, lab in zip(g.maps.reshape(3, -1).T, truth.reshape(-1), strict=True):
        groups.setdefault(tuple(vec), []).append(bool(lab))
    best = sum(max(sum(v), len(v) - sum(v)) for v in groups.values()) / truth.size
    assert j["edges"]["best_1x1_agreement"] == pytest.approx(best)
    assert best < 0.9


# ---------------------------------------------------------------- photos


def test_photo_generator_gives_named_filter_bank_maps(client: httpx.Client) -> None:
    body = {
        "input": {"generator": "photo", "height": 48, "width": 64},
        "weights": {"preset": "pca", "out_channels": 3},
    }
    j = client.post("/api/v1/compare", json=body).json()
    assert j["shapes"]["input"] == [9, 48, 64]
    assert j["channel_names"] == generators.FILTER_BANK


def test_filter_bank_edges_respond_to_a_vertical_edge() -> None:
    rgb = torch.zeros(3, 20, 20)
    rgb[:, :, 10:] = 1.0  # dark left, bright right
    out = generators.filter_bank(rgb)
    edges0 = out[generators.FILTER_BANK.index("edges 0°")]
    edges90 = out[generators.FILTER_BANK.index("edges 90°")]
    assert int(edges0[10].argmax()) in (9, 10)
    assert float(edges90.abs().max()) < 1e-3 * float(edges0.abs().max()) + 1e-4
    lum = out[0].numpy()
    assert lum[:, :10].max() < lum[:, 10:].min()


def test_uploaded_photo_as_filter_bank(client: httpx.Client) -> None:
    img = (generators.sample_photo(40, 60, 1).transpose(1, 2, 0) * 255).astype(np.uint8)
    r = client.post(
        "/api/v1/compare",
        params={"format": "npz"},
        files={"input": ("photo.png", files.png(img))},
        data={"spec": json.dumps({"input": {"features": "filterbank"}})},
    )
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        assert z["input"].shape == (9, 40, 60)
        np.testing.assert_allclose(z["input"].std(axis=(1, 2)), 1, rtol=1e-3)


def test_fit_on_an_uploaded_input_needs_an_uploaded_target(client: httpx.Client) -> None:
    img = np.zeros((1, 1, 3), np.uint8)
    r = client.post("/api/v1/experiments/fit", files={"input": ("x.png", files.png(img))})
    assert r.status_code == 422 and "upload a target" in r.json()["detail"]


@pytest.mark.parametrize("delta", [1e39, -1e308, 1e7])
def test_receptive_field_refuses_a_delta_float32_cannot_hold(
    client: httpx.Client, delta: float
) -> None:
    r = client.post("/api/v1/experiments/receptive-field", json={"delta": delta})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "delta"
