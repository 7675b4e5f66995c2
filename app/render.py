"""Arrays to pixels and bytes: colour maps, exact values as base64, the npz.

One colour-map source for everything: matplotlib's data for viridis (sequential,
for non-negative values) and RdBu reversed (diverging, centred at 0, for signed
values), both readable with the common colour-vision deficiencies. The page
gets the same tables from GET /api/v1/colormaps.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import BinaryIO

import numpy as np
import torch

SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"


@lru_cache(maxsize=8)
def colormap(name: str, levels: int = 256) -> np.ndarray:
    """An RGB lookup table of `levels` entries evenly spaced over the map, uint8 (levels, 3)."""
    from matplotlib import colormaps

    rgba = np.asarray(colormaps[name](np.linspace(0.0, 1.0, levels)))
    lut: np.ndarray = np.rint(rgba[:, :3] * 255).astype(np.uint8)
    return lut


def b64(data: bytes | np.ndarray) -> str:
    """base64 text of raw bytes, or of an array's buffer (C-order, read in place)."""
    # An array's own bytes, read in place (a memoryview), not a copy.
    raw = np.ascontiguousarray(data).view(np.uint8).data if isinstance(data, np.ndarray) else data
    return base64.b64encode(raw).decode("ascii")


def float32_b64(t: torch.Tensor) -> str:
    """A tensor's exact values as little-endian float32, C-order, base64."""
    a = t.detach().to("cpu", torch.float32).contiguous().numpy()
    return b64(a.astype("<f4", copy=False))


def subsample(t: torch.Tensor, stride: int) -> torch.Tensor:
    """Every stride-th row and column of a (C, H, W) tensor: (C, H', W')."""
    return t[:, ::stride, ::stride] if stride > 1 else t


def write_npz(arrays: dict[str, np.ndarray], file: BinaryIO) -> None:
    """The arrays as an uncompressed .npz (float32) into any writable binary file object.

    numpy writes each array from its own memory into the zip in bounded chunks, so no
    copy of the whole archive is ever made: stream it from a temporary file.
    """
    named = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
    np.savez(file, **named)  # type: ignore[arg-type]
