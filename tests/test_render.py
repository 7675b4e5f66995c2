"""render's npz writer: the contract's arrays into any binary file object."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from app import render


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


def test_npz_bytes_holds_the_same_arrays() -> None:
    with np.load(io.BytesIO(render.npz_bytes(arrays())), allow_pickle=False) as z:
        for name, a in arrays().items():
            np.testing.assert_array_equal(z[name], a.astype(np.float32))
