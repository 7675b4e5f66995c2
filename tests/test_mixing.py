from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app import mixing
from tests.reference import conv1x1_relu, relu

SHAPES = [
    (3, 5, 7, 2),  # K < C, non-square
    (4, 6, 6, 4),  # K = C
    (2, 4, 3, 5),  # K > C
    (5, 1, 1, 3),  # 1×1 maps
    (1, 9, 2, 1),  # one channel in and out
    (192, 28, 28, 64),  # the bottleneck case
]


@pytest.mark.parametrize(("c", "h", "w", "k"), SHAPES)
def test_paths_match_numpy_reference(c: int, h: int, w: int, k: int) -> None:
    rng = np.random.default_rng(c * 1000 + k)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    paths = mixing.run_paths(torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(b))
    pre, out = conv1x1_relu(x, wt, b)
    np.testing.assert_allclose(paths.pre_activation.numpy(), pre, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(paths.conv_relu.numpy(), out, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(paths.relu_only.numpy(), relu(x))


finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)
maps_strategy = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)).flatmap(
    lambda s: arrays(np.float32, s, elements=finite)
)


@settings(max_examples=60, deadline=None)
@given(maps_strategy)
def test_identity_weights_equal_relu_only(x: np.ndarray) -> None:
    c = x.shape[0]
    t = torch.from_numpy(x)
    paths = mixing.run_paths(t, torch.eye(c), torch.zeros(c))
    assert torch.equal(paths.conv_relu, paths.relu_only)


@settings(max_examples=60, deadline=None)
@given(maps_strategy)
def test_relu_only_changes_nothing_on_nonnegative_input(x: np.ndarray) -> None:
    t = torch.from_numpy(np.abs(x))
    assert torch.equal(torch.relu(t), t)
    assert int(mixing.channel_stats(t)["negative_count"].sum()) == 0


@settings(max_examples=40, deadline=None)
@given(maps_strategy, st.integers(0, 2**31), st.floats(-3, 3))
def test_pre_activation_is_linear_in_input(x: np.ndarray, seed: int, a: float) -> None:
    c = x.shape[0]
    rng = np.random.default_rng(seed)
    w = torch.from_numpy(rng.standard_normal((3, c)).astype(np.float32))
    zero = torch.zeros(3)
    y = torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))
    t = torch.from_numpy(x)
    lhs = mixing.conv1x1(a * t + y, w, zero)
    rhs = a * mixing.conv1x1(t, w, zero) + mixing.conv1x1(y, w, zero)
    scale = 1 + float(t.abs().max()) * (1 + abs(a)) * float(w.abs().sum())
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-5 * scale)


def test_channel_stats_against_numpy() -> None:
    x = np.array([[[0.0, -1.0], [2.0, 0.0]], [[1.0, 1.0], [1.0, 3.0]]], dtype=np.float32)
    s = mixing.channel_stats(torch.from_numpy(x))
    np.testing.assert_allclose(s["min"].numpy(), [-1.0, 1.0])
    np.testing.assert_allclose(s["max"].numpy(), [2.0, 3.0])
    np.testing.assert_allclose(s["mean"].numpy(), x.reshape(2, -1).mean(axis=1))
    np.testing.assert_array_equal(s["zero_count"].numpy(), [2, 0])
    np.testing.assert_array_equal(s["negative_count"].numpy(), [1, 0])


@pytest.mark.parametrize("shape", [(40, 250, 200), (3, 1100, 1000)])
def test_channel_stats_in_tiles_against_numpy(shape: tuple[int, int, int]) -> None:
    # Reduced in tiles: several rows at a time, or pieces of one row (the last one short).
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    x[x > 1.5] = 0.0
    s = mixing.channel_stats(torch.from_numpy(x))
    flat = x.reshape(shape[0], -1)
    np.testing.assert_array_equal(s["min"].numpy(), flat.min(1))
    np.testing.assert_array_equal(s["max"].numpy(), flat.max(1))
    np.testing.assert_allclose(s["mean"].numpy(), flat.mean(1, dtype=np.float64), atol=1e-5)
    np.testing.assert_array_equal(s["zero_count"].numpy(), (flat == 0).sum(1))
    np.testing.assert_array_equal(s["negative_count"].numpy(), (flat < 0).sum(1))
    y = torch.from_numpy(np.roll(x, 1, axis=0))
    expected = float(np.abs(x - y.numpy()).max())
    assert mixing.max_abs_difference(torch.from_numpy(x), y) == expected


@settings(max_examples=60, deadline=None)
@given(maps_strategy)
def test_relu_stats_equal_stats_of_the_relu(x: np.ndarray) -> None:
    t = torch.from_numpy(x)
    derived = mixing.relu_stats(mixing.channel_stats(t), torch.relu(t))
    direct = mixing.channel_stats(torch.relu(t))
    for key in ("min", "max", "zero_count", "negative_count"):
        torch.testing.assert_close(derived[key], direct[key], rtol=0, atol=0)
    np.testing.assert_allclose(
        direct["mean"].numpy(),
        np.maximum(x, 0).reshape(x.shape[0], -1).mean(1),
        rtol=1e-5,
        atol=1e-3,
    )


def test_principal_directions_keep_svd_variance() -> None:
    rng = np.random.default_rng(3)
    latent = rng.standard_normal((4, 20 * 20))
    x = rng.standard_normal((12, 4)) @ latent + 0.1 * rng.standard_normal((12, 400))
    x = x.astype(np.float32).reshape(12, 20, 20)
    cov = mixing.channel_covariance(torch.from_numpy(x))
    rows, shares = mixing.principal_directions(cov, 4)
    centred = x.reshape(12, -1).astype(np.float64)
    centred -= centred.mean(axis=1, keepdims=True)
    s = np.linalg.svd(centred, compute_uv=False) ** 2
    np.testing.assert_allclose(shares.numpy(), s[:4] / s.sum(), rtol=1e-4)
    kept = mixing.variance_kept(torch.from_numpy(x), rows.float())
    assert kept == pytest.approx(s[:4].sum() / s.sum(), rel=1e-4)
    np.testing.assert_allclose(rows.numpy() @ rows.numpy().T, np.eye(4), atol=1e-6)


def test_layer_cost_counts_parameters_and_macs() -> None:
    assert mixing.layer_cost(192, 64, 28, 28, 1) == {
        "parameters": 192 * 64 + 64,
        "macs": 192 * 64 * 28 * 28,
    }
    assert mixing.layer_cost(192, 64, 28, 28, 3)["macs"] == 9 * 192 * 64 * 28 * 28


@pytest.mark.parametrize("shape", [(3, 5, 7), (5, 200, 200), (2, 1024, 520)])
def test_relu_matches_numpy_at_every_size(shape: tuple[int, int, int]) -> None:
    # Small maps go through the one-thread pieces, the largest through torch.relu.
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(mixing.relu(torch.from_numpy(x)).numpy(), relu(x))
    t = torch.from_numpy(x).transpose(1, 2)  # not contiguous
    np.testing.assert_array_equal(mixing.relu(t).numpy(), relu(x.transpose(0, 2, 1)))


@pytest.mark.parametrize("side", [30, 2], ids=["more pixels than channels", "fewer"])
@pytest.mark.parametrize(
    "weight",
    [
        np.zeros((2, 8)),  # spans nothing
        np.eye(8)[[0, 0]],  # two equal rows span one direction
        np.eye(8)[[0, 1]],
        np.random.default_rng(3).standard_normal((3, 8)),
    ],
)
def test_variance_kept_is_the_share_in_the_row_space(weight: np.ndarray, side: int) -> None:
    x = np.random.default_rng(4).standard_normal((8, side, side)).astype(np.float32)
    flat = x.reshape(8, -1).astype(np.float64)
    centred = flat - flat.mean(axis=1, keepdims=True)
    _, s, vh = np.linalg.svd(weight, full_matrices=False)
    basis = vh[s > 1e-9].T  # (C, rank)
    expected = np.sum((basis.T @ centred) ** 2) / np.sum(centred**2)
    got = mixing.variance_kept(torch.from_numpy(x), torch.from_numpy(weight.astype(np.float32)))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-9)


def _huge_and_mixed() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    same = (rng.standard_normal((4, 16, 16)) * 1e30).astype(np.float32)
    # One channel spans ±3e38 (its centred values pass float32's range), and channels of
    # 1e30 sit next to channels of about 1 (one shared scale would flush them to 0).
    spans = np.array([[[3e38, -3e38], [-3e38, -3e38]], [[1, 2], [3, 5]]], dtype=np.float32)
    mixed = rng.standard_normal((3, 8, 8)).astype(np.float32) * np.array(
        [1e30, 1.0, 1e-3], dtype=np.float32
    ).reshape(3, 1, 1)
    return [same, spans, mixed]


@pytest.mark.parametrize("x", _huge_and_mixed(), ids=["1e30", "spans-3e38", "mixed-scales"])
def test_covariance_of_huge_but_finite_activations_is_finite_and_right(x: np.ndarray) -> None:
    cov = mixing.channel_covariance(torch.from_numpy(x)).numpy()
    flat = x.reshape(x.shape[0], -1).astype(np.float64)
    centred = flat - flat.mean(axis=1, keepdims=True)
    expected = centred @ centred.T
    assert np.isfinite(cov).all()
    # Each entry within a relative tolerance of its own size (no entry drowned by a larger).
    np.testing.assert_allclose(cov, expected, rtol=1e-4, atol=0)


def test_channel_counts_stay_exact_past_two_to_the_24_values_a_channel() -> None:
    # float32 running counts stop being exact at 2**24 = 16.8 M; a channel may hold 32 Mi.
    x = np.random.default_rng(3).standard_normal((1, 5792, 5792)).astype(np.float32)
    x[np.abs(x) < 0.3] = 0.0
    s = mixing.channel_stats(torch.from_numpy(x))
    assert int(s["zero_count"][0]) == int((x == 0).sum())
    assert int(s["negative_count"][0]) == int((x < 0).sum())


def _with(value: float, at: tuple[int, int, int], base: float = 0.5) -> np.ndarray:
    x = np.full((3, 300, 500), base, dtype=np.float32)  # several tiles
    x[at] = value
    return x


@pytest.mark.parametrize(
    "x",
    [
        _with(0.0, (0, 0, 0)),
        _with(np.nan, (2, 299, 499)),
        _with(np.inf, (1, 150, 7)),
        _with(-np.inf, (0, 0, 0)),
        # Finite values whose sum overflows float32: all finite all the same.
        _with(3e38, (1, 1, 1), base=3e38),
        _with(np.nan, (1, 1, 1), base=3e38),
        _with(-np.inf, (2, 5, 5), base=-3e38),
    ],
    ids=["finite", "nan", "inf", "-inf", "huge", "huge+nan", "huge+-inf"],
)
def test_all_finite_agrees_with_numpy(x: np.ndarray) -> None:
    assert mixing.all_finite(torch.from_numpy(x)) == bool(np.isfinite(x).all())
