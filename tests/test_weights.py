"""The 1×1 layer's weights from presets, explicit matrices and files, in-process (and through
the API, in-process too, where a refusal must reach the client as such)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import torch

from app import uploads, weights
from app.errors import InvalidContent
from app.schemas.requests import WeightsSpec
from tests import files

X = torch.from_numpy(np.random.default_rng(0).standard_normal((5, 8, 9)).astype(np.float32))


def spec(**kw: object) -> WeightsSpec:
    return WeightsSpec.model_validate(kw)


def test_identity_is_the_identity() -> None:
    layer = weights.build(spec(preset="identity"), X, None)
    np.testing.assert_array_equal(layer.weight.numpy(), np.eye(5))
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(5))


def test_random_is_seeded_he_normal() -> None:
    a = weights.build(spec(preset="random", out_channels=400, seed=3), X, None).weight.numpy()
    b = weights.build(spec(preset="random", out_channels=400, seed=3), X, None).weight.numpy()
    np.testing.assert_array_equal(a, b)
    assert a.std() == pytest.approx(np.sqrt(2 / 5), rel=0.05)


def test_difference_and_mean() -> None:
    d = weights.build(spec(preset="difference", positive=2, negative=4), X, None).weight.numpy()
    np.testing.assert_array_equal(d, [[0, 0, 1, 0, -1]])
    m = weights.build(spec(preset="mean"), X, None).weight.numpy()
    np.testing.assert_allclose(m, np.full((1, 5), 0.2))


def test_pca_rows_are_the_top_principal_directions_and_centre_the_output() -> None:
    layer = weights.build(spec(preset="pca", out_channels=2), X, None)
    flat = X.numpy().reshape(5, -1).astype(np.float64)
    centred = flat - flat.mean(axis=1, keepdims=True)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    w = layer.weight.numpy().astype(np.float64)
    for i in range(2):
        assert abs(abs(w[i] @ u[:, i]) - 1) < 1e-4
    out = w @ flat + layer.bias.numpy()[:, None]
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-4)
    assert layer.info["variance_kept"] == pytest.approx((s[:2] ** 2).sum() / (s**2).sum())


def test_planned_k_knows_k_before_any_tensor() -> None:
    assert weights.planned_k(spec(preset="pca"), 192, None) == 64
    assert weights.planned_k(spec(preset="random"), 7, None) == 7
    assert weights.planned_k(spec(matrix=[[1.0, 2.0]] * 3), 2, None) == 3
    decoded = uploads.decode(files.npy(np.ones((4, 5), np.float32)), "weights", "w.npy",
                             max_values=10**6, max_pixels=10**6)  # fmt: skip
    assert weights.planned_k(spec(), 5, decoded) == 4


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        (files.npy(np.ones((0, 5), np.float32)), "weights", "empty"),
        (files.npy(np.ones((0, 5, 1, 1), np.float32)), "weights", "empty"),
        (files.npy(np.ones((3, 5, 3, 3), np.float32)), "weights", "not_1x1"),
        (files.npy(np.ones((3, 4), np.float32)), "weights", "shape_mismatch"),
        (files.npz(a=np.ones((3, 5)), b=np.ones(3)), "weights", "ambiguous_array"),
    ],
)
def test_bad_weight_files_name_their_field_and_code(data: bytes, field: str, code: str) -> None:
    decoded = uploads.decode(data, "weights", "w", max_values=10**6, max_pixels=10**6)
    with pytest.raises(InvalidContent) as info:
        weights.build(spec(), X, decoded)
    assert (info.value.field, info.value.code) == (field, code)


@pytest.mark.parametrize(
    ("kw", "data", "field"),
    [
        ({"preset": "random", "bias": 1e300}, None, "weights.bias"),
        ({"preset": "random", "bias": [1.0] * 4 + [-1e39]}, None, "weights.bias"),
        ({"matrix": [[1e300] * 5]}, None, "weights.matrix"),
        ({}, files.npy(np.full((2, 5), 1e300)), "weights"),  # float64 in the file
        ({}, files.npz(weight=np.ones((2, 5)), bias=np.array([0.0, -1e300])), "weights"),
    ],
)
def test_numbers_beyond_float32_are_refused_as_not_finite(
    kw: dict[str, object], data: bytes | None, field: str
) -> None:
    """Finite JSON or float64 numbers, but no float32: refused by name, with no warning on the
    way (pytest runs with warnings as errors; a server would log the cast's RuntimeWarning)."""
    decoded = (
        None
        if data is None
        else uploads.decode(data, "weights", "w", max_values=10**6, max_pixels=10**6)
    )
    with pytest.raises(InvalidContent) as info:
        weights.build(spec(**kw), X, decoded)
    assert (info.value.field, info.value.code) == (field, "not_finite")


@pytest.mark.parametrize("shape", [(0, 4), (0, 4, 1, 1)])
def test_weights_without_filters_are_refused(client: httpx.Client, shape: tuple[int, ...]) -> None:
    r = client.post(
        "/api/v1/compare",
        files={
            "input": ("x.npy", files.npy(np.ones((4, 3, 3), np.float32))),
            "weights": ("w.npy", files.npy(np.ones(shape, np.float32))),
        },
    )
    assert r.status_code == 422, r.text
    assert r.headers["x-content-type-options"] == "nosniff"
