"""Device choice, and the same numbers on every device present (CUDA/MPS skip cleanly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app import compare, devices, generators
from app.config import Settings
from app.errors import DeviceUnavailable
from app.schemas.requests import CompareRequest
from tests.reference import conv1x1_relu, relu

HAS_MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def test_auto_picks_the_best_present() -> None:
    present = devices.available()
    assert present[-1] == "cpu"
    assert devices.resolve("auto").type == present[0]


@pytest.mark.parametrize("name", ["cuda", "mps"])
def test_absent_device_is_refused_not_replaced(name: str) -> None:
    if name in devices.available():
        pytest.skip(f"{name} is present here")
    with pytest.raises(DeviceUnavailable, match="not available on this server"):
        devices.resolve(name)


def run_on(device: str) -> compare.Comparison:
    req = CompareRequest.model_validate(
        {
            "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192},
            "weights": {"preset": "pca", "out_channels": 64},
            "device": device,
        }
    )
    return compare.run(req, Settings())


def check_against_numpy(c: compare.Comparison) -> None:
    """Every number of the comparison from numpy alone: both paths from its input, weight and
    bias (einsum), and the PCA layer's rows and variance kept from numpy's SVD of the input."""
    x = c.x.cpu().numpy()  # (C, H, W)
    w, b = c.layer.weight.cpu().numpy(), c.layer.bias.cpu().numpy()  # (K, C), (K,)
    pre, out = conv1x1_relu(x, w, b)
    np.testing.assert_allclose(c.paths.pre_activation.cpu().numpy(), pre, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(c.paths.conv_relu.cpu().numpy(), out, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(c.paths.relu_only.cpu().numpy(), relu(x))
    flat = x.reshape(x.shape[0], -1).astype(np.float64)  # (C, H·W)
    centred = flat - flat.mean(axis=1, keepdims=True)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)  # u: (C, C), the principal directions
    k = w.shape[0]
    assert c.layer.info["variance_kept"] == pytest.approx(
        (s[:k] ** 2).sum() / (s**2).sum(), rel=1e-4
    )
    # The rows span the top-k principal subspace: projected onto it, each keeps its length.
    rows = w.astype(np.float64) / np.linalg.norm(w, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(rows @ u[:, :k], axis=1), 1, atol=1e-3)


def check_against_cpu(device: str) -> None:
    on_device, on_cpu = run_on(device), run_on("cpu")
    assert on_device.device == device
    check_against_numpy(on_device)
    np.testing.assert_array_equal(on_device.x.cpu().numpy(), on_cpu.x.numpy())
    assert on_device.layer.info["variance_kept"] == pytest.approx(
        on_cpu.layer.info["variance_kept"], rel=1e-4
    )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_numpy_and_cpu() -> None:
    check_against_cpu("cuda")


@pytest.mark.mps
@pytest.mark.skipif(not HAS_MPS, reason="no Apple MPS device on this machine")
def test_mps_matches_numpy_and_cpu() -> None:
    check_against_cpu("mps")


def test_cpu_matches_numpy() -> None:
    """The CPU against numpy alone (a device other than the CPU is also checked against it)."""
    c = run_on("cpu")
    assert c.device == "cpu"
    check_against_numpy(c)
    # The input is the generator's maps as they are, float32 (C, H, W) = (192, 28, 28).
    maps = generators.generate("smooth", 192, 28, 28, 0, {}).maps
    assert c.x.dtype == torch.float32 and tuple(c.x.shape) == (192, 28, 28)
    np.testing.assert_array_equal(c.x.numpy(), maps)
