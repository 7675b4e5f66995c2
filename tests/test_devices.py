"""Device choice, and the same numbers on every device present (CUDA/MPS skip cleanly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app import compare, devices
from app.config import Settings
from app.errors import DeviceUnavailable
from app.schemas.requests import CompareRequest
from tests.reference import conv1x1_relu

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


def check_against_cpu(device: str) -> None:
    on_device, on_cpu = run_on(device), run_on("cpu")
    assert on_device.device == device
    x = on_device.x.cpu().numpy()
    w, b = on_device.layer.weight.cpu().numpy(), on_device.layer.bias.cpu().numpy()
    _, out = conv1x1_relu(x, w, b)
    np.testing.assert_allclose(on_device.paths.conv_relu.cpu().numpy(), out, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(x, on_cpu.x.numpy())
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
    check_against_cpu("cpu")
