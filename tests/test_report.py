"""The JSON report, built in-process from a real comparison, against numpy."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from app import compare, report
from app.config import Settings
from app.schemas.requests import CompareRequest
from app.schemas.responses import CompareReport, Values
from tests.reference import conv1x1_relu


def run(body: dict[str, object]) -> compare.Comparison:
    return compare.run(CompareRequest.model_validate(body), Settings())


def values(v: Values) -> np.ndarray:
    return np.frombuffer(base64.b64decode(v.data), "<f4").reshape(v.shape)


@pytest.mark.parametrize(("c", "k"), [(6, 6), (6, 2), (3, 5)])
def test_report_numbers_match_numpy(c: int, k: int) -> None:
    cmp = run(
        {
            "input": {"generator": "gaussian", "height": 9, "width": 11, "channels": c},
            "weights": {"preset": "random", "out_channels": k, "bias": 0.2},
        }
    )
    r = report.build(cmp, heatmap_budget=10**6, with_heatmaps=True, echo_weights=10**6)
    x = cmp.x.numpy()
    w, b = cmp.layer.weight.numpy(), cmp.layer.bias.numpy()
    pre, out = conv1x1_relu(x, w, b)
    np.testing.assert_allclose(r.stats.input.min, x.min(axis=(1, 2)))
    np.testing.assert_allclose(r.stats.pre_activation.mean, pre.mean(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(r.stats.conv_relu.zero_fraction, (out == 0).mean(axis=(1, 2)))
    np.testing.assert_allclose(r.stats.conv_relu.changed_fraction, (pre < 0).mean(axis=(1, 2)))
    assert r.summary.relu_only_changed == int((x < 0).sum())
    assert r.summary.conv_relu_changed == int((pre < 0).sum())
    assert r.summary.paths_identical is False
    if c == k:
        diff = np.abs(np.maximum(x, 0) - out).max()
        assert r.summary.paths_max_abs_difference == pytest.approx(diff, rel=1e-5)
    else:
        assert r.summary.paths_max_abs_difference is None
    assert (r.layer.variance_kept is not None) == (k < c)
    assert r.layer.weight == w.tolist()
    assert r.heatmaps is not None
    np.testing.assert_array_equal(values(r.heatmaps.input), x)
    np.testing.assert_allclose(values(r.heatmaps.pre_activation), pre, rtol=1e-5, atol=1e-5)
    assert r.cost.conv1x1.macs == k * c * 9 * 11 and r.cost.conv3x3.parameters == 9 * k * c + k
    CompareReport.model_validate_json(r.model_dump_json())  # round-trips through JSON


def test_truth_scores_against_a_direct_count() -> None:
    cmp = run(
        {
            "input": {"generator": "catdog", "height": 40, "width": 40, "channels": 3},
            "weights": {"preset": "difference"},
        }
    )
    r = report.build(cmp, heatmap_budget=10**6, with_heatmaps=False, echo_weights=0)
    x = cmp.x.numpy()
    truth = x[0] > x[1]
    score = r.truth["cat_over_dog"]
    assert score.fraction_true == pytest.approx(truth.mean())
    assert score.conv_relu.agreement == 1.0
    best = max(((x[i] > 0) == truth).mean() for i in range(3))
    assert score.relu_only.agreement == pytest.approx(best)
    assert r.heatmaps is None and r.layer.weight is None


@pytest.mark.parametrize(
    ("c", "k", "h", "w", "budget", "stride"),
    [
        (4, 4, 28, 28, 10**6, 1),
        (64, 8, 224, 224, 2**20, 2),
        (8, 64, 100, 100, 2**20, 1),
        (1, 1, 3, 3, 4, 2),
    ],
)
def test_heatmap_stride_keeps_each_array_within_the_budget(
    c: int, k: int, h: int, w: int, budget: int, stride: int
) -> None:
    s = report.heatmap_stride(c, k, h, w, budget)
    assert s == stride
    hh, ww = -(-h // s), -(-w // s)
    assert max(c, k) * hh * ww <= budget
