"""Pixels and bytes: the colour maps and the exact-value encoding."""

from __future__ import annotations

import base64

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
