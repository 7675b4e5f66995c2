"""The two paths the product compares: ReLU-only and 1×1 conv + ReLU.

Pure torch, no web imports. A 1×1 convolution over a (C, H, W) map is the
matrix product of a (K, C) weight with the (C, H·W) matrix of channel vectors,
so it mixes channels at each pixel and never looks at a neighbour.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Paths:
    relu_only: torch.Tensor  # (C, H, W)
    pre_activation: torch.Tensor  # (K, H, W)
    conv_relu: torch.Tensor  # (K, H, W)


def conv1x1(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """`W·x + b` at every pixel: x (C, H, W), weight (K, C), bias (K,) -> (K, H, W)."""
    c, h, w = x.shape
    k = weight.shape[0]
    # addmm does the product and the bias in one pass over (K, H·W).
    out = torch.addmm(bias.unsqueeze(1), weight, x.reshape(c, h * w))  # (K, H·W)
    return out.reshape(k, h, w)


def run_paths(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> Paths:
    pre = conv1x1(x, weight, bias)
    return Paths(relu_only=relu(x), pre_activation=pre, conv_relu=relu(pre))


# ATen spreads an elementwise op over its threads above this many values (its GRAIN_SIZE).
_GRAIN = 32768
_ONE_THREAD_UP_TO = 1 << 20


def relu(t: torch.Tensor) -> torch.Tensor:
    """torch.relu; small CPU tensors in pieces under ATen's grain, so in this thread alone.

    On a busy machine a pool thread that is not scheduled stalls the whole op for a time
    slice. Up to a million values one thread is as fast when the machine is idle and 3×
    faster at the median when another process holds a core (docs/BENCHMARKS.md).
    """
    if t.device.type != "cpu" or t.numel() > _ONE_THREAD_UP_TO:
        return torch.relu(t)
    out = torch.empty(t.shape, dtype=t.dtype, device=t.device)
    src, dst = t.reshape(-1), out.view(-1)
    for i in range(0, src.numel(), _GRAIN):
        torch.clamp_min(src[i : i + _GRAIN], 0, out=dst[i : i + _GRAIN])
    return out


# A (C, N) tensor is reduced in tiles of at most this many values (512 KiB of float32), so
# every statistic of a tile is taken while it is in cache (5× faster than one pass per
# statistic over a 50 MB array), and its temporaries are small blocks the allocator reuses
# (a block mapped on its own, gate.map_large_blocks, is page-faulted anew every time).
_TILE = 1 << 17


def _tiles(flat: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
    """(rows, tile) over a (C, N) tensor: whole rows while they fit in _TILE values, else
    pieces of one row."""
    c, n = flat.shape
    # On a GPU a tile is a handful of kernel launches: there, whole arrays of up to 16 Mi.
    tile = _TILE if flat.device.type == "cpu" else 1 << 24
    rows = max(1, tile // max(n, 1))
    cols = min(n, tile) or 1
    for r in range(0, c, rows):
        for j in range(0, n, cols):
            yield slice(r, r + rows), flat[r : r + rows, j : j + cols]


def channel_stats(t: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-channel statistics of a (C, H, W) tensor, each (C,).

    min, max, mean, and the counts of exact zeros and of values below zero (the
    values a ReLU changes).
    """
    flat = t.reshape(t.shape[0], -1)  # (C, H·W)
    c, n = flat.shape
    lo = flat.new_full((c,), float("inf"))
    hi = flat.new_full((c,), float("-inf"))
    total = flat.new_zeros((c,), dtype=torch.float64)
    # Counts in float64: exact up to 2**53 values a channel (float32 stops at 2**24).
    balance = flat.new_zeros((c,), dtype=torch.float64)
    nonzero = flat.new_zeros((c,), dtype=torch.float64)
    for rows, tile in _tiles(flat):
        # amin and amax apart: torch.aminmax along rows is 25× slower on CPU (measured, 2.13).
        lo[rows] = torch.minimum(lo[rows], tile.amin(dim=1))
        hi[rows] = torch.maximum(hi[rows], tile.amax(dim=1))
        total[rows] += tile.sum(dim=1, dtype=torch.float64)
        # One pass of sign() gives both counts: Σsign = pos − neg and Σ|sign| = pos + neg.
        sign = torch.sign(tile)
        balance[rows] += sign.sum(dim=1)  # exact in float32 within a tile, then float64
        nonzero[rows] += sign.abs_().sum(dim=1)
    return {
        "min": lo,
        "max": hi,
        "mean": total / max(n, 1),
        "zero_count": (n - nonzero).round().long(),
        "negative_count": ((nonzero - balance) / 2).round().long(),
    }


def _mean(t: torch.Tensor) -> torch.Tensor:
    """Per-channel mean of a (C, H, W) tensor in float64, tile by tile: (C,)."""
    flat = t.reshape(t.shape[0], -1)  # (C, H·W)
    total = flat.new_zeros((flat.shape[0],), dtype=torch.float64)
    for rows, tile in _tiles(flat):
        total[rows] += tile.sum(dim=1, dtype=torch.float64)
    return total / max(flat.shape[1], 1)


def relu_stats(before: dict[str, torch.Tensor], after: torch.Tensor) -> dict[str, torch.Tensor]:
    """channel_stats of `after = relu(before)`, from those of `before` and one pass for the mean."""
    return {
        "min": before["min"].clamp_min(0),
        "max": before["max"].clamp_min(0),
        "mean": _mean(after),
        "zero_count": before["zero_count"] + before["negative_count"],
        "negative_count": torch.zeros_like(before["negative_count"]),
    }


def all_finite(t: torch.Tensor) -> bool:
    """Whether every value of a tensor is finite, tile by tile (no full-size temporary).

    A tile whose sum is finite holds no NaN or infinity (either would make the sum NaN or
    infinite), and a sum is 8× faster than torch.isfinite on this CPU build; only a tile
    whose sum overflows (huge finite values can) is checked value by value.
    """
    return all(
        math.isfinite(float(tile.sum())) or bool(torch.isfinite(tile).all())
        for _, tile in _tiles(t.reshape(t.shape[0], -1))
    )


def max_abs_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| over two tensors of one shape, tile by tile (no full-size temporary)."""
    pairs = zip(_tiles(a.reshape(a.shape[0], -1)), _tiles(b.reshape(b.shape[0], -1)), strict=True)
    return max((float((ta - tb).abs_().max()) for (_, ta), (_, tb) in pairs), default=0.0)


def _centred(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The centred channel vectors of a (C, H, W) map, each channel divided by its own
    largest |value| first: (C, N) float32 in [-2, 2], and the (C,) float64 scales.

    Any finite input then gives finite products (activations of 1e30, or spanning ±3e38,
    included), and a channel of ones next to one of 1e30 keeps its own variance.
    """
    c = x.shape[0]
    flat = x.reshape(c, -1)  # (C, N)
    scale = flat.abs().amax(dim=1) if flat.numel() else flat.new_zeros(c)  # (C,)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    centred = flat / scale[:, None]  # (C, N), |values| ≤ 1
    centred -= centred.mean(dim=1, keepdim=True, dtype=torch.float64).to(flat.dtype)  # ≤ 2
    return centred, scale.double()


def channel_covariance(x: torch.Tensor) -> torch.Tensor:
    """Scatter matrix of the centred channel vectors of a (C, H, W) map: (C, C), float64.

    The product runs in float32 on values in [-2, 2] and the scales come back in float64
    (`_centred`).
    """
    centred, s = _centred(x)
    return (centred @ centred.T).double() * (s[:, None] * s[None, :])


def channel_spectrum(x: torch.Tensor) -> torch.Tensor:
    """The eigenvalues of `channel_covariance(x)`, largest first, clamped at 0: (C,) float64.

    With fewer pixels N than channels C (the classifier's 7×7×1280 input) the non-zero
    ones come from the N×N Gram matrix of the same vectors: an eigendecomposition of
    size N, not C (milliseconds, not half a second).
    """
    c = x.shape[0]
    centred, s = _centred(x)
    n = centred.shape[1]
    if n >= c:
        cov = (centred @ centred.T).double() * (s[:, None] * s[None, :])  # (C, C)
        evals: torch.Tensor = torch.linalg.eigvalsh(cov)
        return evals.clamp_min(0).flip(0)
    m = centred.double() * s[:, None]  # (C, N)
    small = torch.linalg.eigvalsh(m.T @ m).clamp_min(0).flip(0)  # (N,)
    return torch.cat([small, small.new_zeros(c - n)])


def best_variance_kept(spectrum: torch.Tensor, k: int) -> float:
    """The share of the variance the best linear reduction to k channels keeps (PCA)."""
    total = float(spectrum.sum())
    return float(spectrum[:k].sum()) / total if total > 0 else 1.0


def variance_kept(x: torch.Tensor, weight: torch.Tensor) -> float:
    """Fraction of the channel variance of x (C, H, W) inside the span of the rows of `weight`.

    That is what the best linear reconstruction of the (centred) input from the K
    outputs of `W·x` would keep; for PCA rows it is the top-K eigenvalue share. With N
    pixels and C channels it costs C²·N through the covariance, or, with fewer pixels than
    channels (the classifier's 7×7×1280 input), rank·C·N from the centred values.
    """
    # An orthonormal basis of W's row space from its SVD, keeping only the directions W
    # really spans: zero or repeated rows add nothing (a QR would add spurious ones).
    _, sv, vh = torch.linalg.svd(weight.double(), full_matrices=False)  # vh (r, C)
    tol = float(sv.max()) * max(weight.shape) * torch.finfo(torch.float32).eps if sv.numel() else 0
    q = vh[sv > tol].T.to(x.device)  # (C, rank)
    c = x.shape[0]
    if x.numel() >= c * c:
        cov = channel_covariance(x)  # (C, C)
        total = float(torch.trace(cov))
        kept = float(torch.trace(q.T @ cov @ q)) if total > 0 else 0.0
    else:
        centred, scale = _centred(x)
        m = centred.double() * scale[:, None]  # (C, N), N < C
        total = float((m * m).sum())
        kept = float(((q.T @ m) ** 2).sum())  # (rank, N)
    return kept / total if total > 0.0 else 1.0


def principal_directions(cov: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k principal directions from a channel covariance, and the variance share of each.

    Returns (k, C) orthonormal rows, largest variance first, and (k,) shares, float64.
    """
    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals = evals.clamp_min(0)
    order = torch.argsort(evals, descending=True)[:k]
    total = float(evals.sum())
    shares = evals[order] / total if total > 0 else torch.zeros(k, dtype=cov.dtype)
    rows = evecs[:, order].T  # (k, C)
    # Fix each direction's sign so its largest component is positive: reproducible output.
    signs = torch.sign(rows.gather(1, rows.abs().argmax(dim=1, keepdim=True)))
    return rows * signs, shares


def layer_cost(c: int, k: int, h: int, w: int, kernel: int = 1) -> dict[str, int]:
    """Parameters and multiply-adds of a `kernel`×`kernel` conv from C to K channels, stride 1."""
    weights = k * c * kernel * kernel
    return {"parameters": weights + k, "macs": weights * h * w}
