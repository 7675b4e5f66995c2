"""Pixels and bytes: the colour maps, the exact-value encoding, the npz writer."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps

from app import render


def test_colour_maps_are_matplotlibs() -> None:
    for name in (render.SEQUENTIAL, render.DIVERGING):
        lut = render.colormap(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        ref = np.asarray(colormaps[name](np.linspace(0, 1, 256)))[:, :3] * 255
        assert np.abs(lut.astype(float) - ref).max() <= 0.5


def test_float32_b64_round_trips_exactly() -> None:
    t = torch.randn(3, 5, 7)[:, ::2, 1:]  # a strided view
    got = np.frombuffer(base64.b64decode(render.float32_b64(t)), "<f4").reshape(3, 3, 6)
    np.testing.assert_array_equal(got, t.numpy())


def test_subsample_takes_every_stride_th_row_and_column() -> None:
    t = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 5, 6)
    np.testing.assert_array_equal(render.subsample(t, 2).numpy(), t.numpy()[:, ::2, ::2])
    assert render.subsample(t, 1) is t


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "input": rng.standard_normal((3, 4, 5)).astype(np.float32),
        "weight": rng.standard_normal((2, 3)),  # float64: written as float32
        "bias": np.arange(2, dtype=np.float32),
    }


def test_write_npz_streams_into_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "out.npz"
    with path.open("wb") as f:
        render.write_npz(arrays(), f)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["bias", "input", "weight"]
        for name, a in arrays().items():
            assert z[name].dtype == np.float32
            np.testing.assert_array_equal(z[name], a.astype(np.float32))
