"""Experiments that settle the question with measurements. Pure torch and numpy, no web.

- fit: learn a 1×1 conv + ReLU and the best no-mixing model (per-channel scale and
  bias + ReLU) towards a target; report both loss curves and a provable floor for
  every no-mixing model (isotonic regression).
- bottleneck: variance kept by the best reduction to K channels for every K, beside
  the cost of 1×1 reduce + k×k conv against the k×k conv alone.
- receptive field: which output pixels change when one input pixel changes, under
  a 1×1 and a 3×3 conv; and edges that a 3×3 layer finds and no 1×1 layer can.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app import mixing
from app.errors import InvalidContent

Progress = Callable[[dict[str, Any]], None]


class Cancelled(Exception):
    """The client went away; the training loop stopped early."""

    def __init__(self, step: int) -> None:
        super().__init__(f"cancelled at step {step}")
        self.step = step


# ---------------------------------------------------------------- fit


def isotonic_mse(x: np.ndarray, t: np.ndarray) -> float:
    """Smallest MSE of any non-decreasing function of x fitted to t (pool adjacent violators).

    Ties in x must map to one value, so they are pooled first.
    """
    order = np.argsort(x, kind="stable")
    xs, ts = x[order], t[order].astype(np.float64)
    # Pool equal x values: one block each, with their mean and weight.
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    sums = np.add.reduceat(ts, starts)
    counts = np.diff(np.r_[starts, len(xs)]).astype(np.float64)
    means: list[float] = []
    weights: list[float] = []
    for s, n in zip(sums / counts, counts, strict=True):
        m, w = float(s), float(n)
        while means and means[-1] > m:  # a violation: merge with the previous block
            pm, pw = means.pop(), weights.pop()
            m = (pm * pw + m * w) / (pw + w)
            w += pw
        means.append(m)
        weights.append(w)
    fitted = np.repeat(means, np.asarray(weights, dtype=np.int64))
    return float(np.mean((fitted - ts) ** 2))


def no_mixing_floor(
    x: np.ndarray, t: np.ndarray, stop: threading.Event | None = None
) -> tuple[float, int]:
    """A loss no per-channel model can beat, and the channel that comes closest.

    relu(a·x_c + b) is monotone in x_c (rising for a ≥ 0, falling for a < 0), so its
    MSE is at least that of the best monotone function of x_c: isotonic regression
    in either direction. x (C, N), t (N,). `stop` is checked between channels.
    """
    best, best_c = math.inf, 0
    for c in range(x.shape[0]):
        if stop is not None and stop.is_set():
            raise Cancelled(0)
        floor = min(isotonic_mse(x[c], t), isotonic_mse(-x[c], t))
        if floor < best:
            best, best_c = floor, c
    return best, best_c


# Up to this many target channels the (C, K, N) difference is at most a few times z.
_DIRECT_PAIRS = 4


def pair_losses(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """MSE of every channel of z (C, N) against every channel of t (K, N): (C, K), float32.

    For many targets, mean((z_c − t_k)²) = (|z_c|² − 2 z_c·t_k + |t_k|²) / N, from the
    (C, K) product z·tᵀ and never a (C, K, N) temporary; float64 keeps the difference exact
    where z_c ≈ t_k.
    """
    if t.shape[0] <= _DIRECT_PAIRS:
        return ((z[:, None, :] - t[None]) ** 2).mean(dim=2)  # (C, K, N) -> (C, K)
    zd, td = z.double(), t.double()
    sq = (zd * zd).sum(dim=1)[:, None] - 2.0 * (zd @ td.T) + (td * td).sum(dim=1)[None]
    return (sq.clamp_min(0.0) / z.shape[1]).float()  # (C, K)


def fit(
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    steps: int,
    lr: float,
    seed: int,
    every: int,
    progress: Progress,
    stop: threading.Event,
) -> dict[str, Any]:
    """Train both models on x (C, H, W) towards target (K, H, W) with Adam, full batch.

    The no-mixing model has a scale and a bias per input channel; each channel's
    ReLU output is compared with every target channel and the best pair reported.
    """
    c = x.shape[0]
    k = target.shape[0]
    flat = x.reshape(c, -1)  # (C, N)
    tgt = target.reshape(k, -1)  # (K, N)
    gen = torch.Generator().manual_seed(seed)
    w = (0.5 * torch.randn(k, c, generator=gen)).to(x.device).requires_grad_()
    b = torch.full((k,), 0.1, device=x.device, requires_grad=True)
    scale = torch.ones(c, device=x.device, requires_grad=True)
    shift = torch.zeros(c, device=x.device, requires_grad=True)
    opt_conv = torch.optim.Adam([w, b], lr=lr)
    opt_relu = torch.optim.Adam([scale, shift], lr=lr)
    conv_curve: list[float] = []
    relu_curve: list[float] = []
    for step in range(1, steps + 1):
        if stop.is_set():
            raise Cancelled(step)
        conv_loss = ((torch.relu(w @ flat + b[:, None]) - tgt) ** 2).mean()
        z = torch.relu(scale[:, None] * flat + shift[:, None])  # (C, N)
        per_pair = pair_losses(z, tgt)  # (C, K)
        opt_conv.zero_grad()
        opt_relu.zero_grad()
        conv_loss.backward()  # type: ignore[no-untyped-call]
        per_pair.sum().backward()  # type: ignore[no-untyped-call]
        opt_conv.step()
        opt_relu.step()
        conv_curve.append(float(conv_loss.detach()))
        relu_curve.append(float(per_pair.detach().min()))
        if not (math.isfinite(conv_curve[-1]) and math.isfinite(relu_curve[-1])):
            raise InvalidContent(
                f"The training diverged at step {step}: its loss is no longer finite. Use a "
                "smaller lr, or smaller values in the input and the target.",
                field="lr",
                code="diverged",
            )
        if step % every == 0 or step == steps:
            progress(
                {
                    "step": step,
                    "steps": steps,
                    "conv_loss": conv_curve[-1],
                    "relu_only_loss": relu_curve[-1],
                }
            )
    with torch.no_grad():
        z = torch.relu(scale[:, None] * flat + shift[:, None])
        per_pair = pair_losses(z, tgt)
        best = int(per_pair.argmin())
        final_conv = float(((torch.relu(w @ flat + b[:, None]) - tgt) ** 2).mean())
    return {
        "conv_loss": conv_curve,
        "relu_only_loss": relu_curve,
        "final": {"conv_relu": final_conv, "relu_only": float(per_pair.min())},
        "conv_weight": w.detach().cpu().tolist(),
        "conv_bias": b.detach().cpu().tolist(),
        "relu_only_channel": best // k,
        "relu_only_scale": float(scale[best // k].detach()),
        "relu_only_shift": float(shift[best // k].detach()),
    }


def warm_up() -> None:
    """Build an optimizer once: the first one imports half of torch (a second or more),
    work that no cancellation token can interrupt. Called at startup."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.1)
    with torch.enable_grad():
        (p * p).sum().backward()  # type: ignore[no-untyped-call]
    opt.step()


# ---------------------------------------------------------------- bottleneck


def bottleneck(x: torch.Tensor, kernel: int, out_channels: int) -> dict[str, Any]:
    """For every K: variance kept by the best reduction to K, and the layers' costs.

    The cost compares a 1×1 reduce C→K followed by a kernel×kernel conv K→out with the
    kernel×kernel conv C→out alone, as in GoogLeNet's inception block.
    """
    c, h, w = x.shape
    cov = mixing.channel_covariance(x)
    evals = torch.linalg.eigvalsh(cov).clamp_min(0).flip(0)  # descending
    total = float(evals.sum())
    kept = (torch.cumsum(evals, 0) / total).tolist() if total > 0 else [1.0] * c
    direct = mixing.layer_cost(c, out_channels, h, w, kernel)
    rows = []
    for k in range(1, c + 1):
        reduce = mixing.layer_cost(c, k, h, w, 1)
        after = mixing.layer_cost(k, out_channels, h, w, kernel)
        rows.append(
            {
                "k": k,
                "variance_kept": round(kept[k - 1], 6),
                "parameters": reduce["parameters"] + after["parameters"],
                "macs": reduce["macs"] + after["macs"],
            }
        )
    return {
        "channels": c,
        "kernel": kernel,
        "out_channels": out_channels,
        "direct": direct,
        "rows": rows,
    }


# ---------------------------------------------------------------- receptive field


def changed_pixels(a: torch.Tensor, b: torch.Tensor) -> list[list[int]]:
    """Pixels (y, x) where any channel of two (K, H, W) outputs differs."""
    mask = (a != b).any(dim=0)
    return [[int(y), int(x)] for y, x in torch.nonzero(mask).tolist()]


def receptive_field(
    x: torch.Tensor, k: int, seed: int, pixel: tuple[int, int], delta: float
) -> dict[str, Any]:
    """Perturb one pixel of x (C, H, W) in every channel; which outputs move under 1×1 and 3×3?"""
    c = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.randn(k, c, 1, 1, generator=gen).to(x.device)
    w3 = torch.randn(k, c, 3, 3, generator=gen).to(x.device)
    y0, x0 = pixel
    moved = x.clone()
    moved[:, y0, x0] += delta
    # No ReLU here: a ReLU could hide a change that the layer did make.
    out = {}
    for name, wt in (("conv1x1", w1), ("conv3x3", w3)):
        before = F.conv2d(x[None], wt, padding=wt.shape[-1] // 2)[0]
        after = F.conv2d(moved[None], wt, padding=wt.shape[-1] // 2)[0]
        out[name] = changed_pixels(before, after)
    return out


def edge_detector(x: torch.Tensor) -> torch.Tensor:
    """A 3×3 conv + ReLU layer that finds edges: (H, W), > 0 exactly where a pixel differs
    from a 4-neighbour in some channel.

    Per channel, four filters take (pixel − neighbour) and four (neighbour − pixel);
    after the ReLU their sum is positive iff some difference is non-zero. The border is
    replicated, so it is not an edge.
    """
    c = x.shape[0]
    kernels = []
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        kern = torch.zeros(3, 3, dtype=x.dtype)
        kern[1, 1], kern[1 + dy, 1 + dx] = 1.0, -1.0
        kernels += [kern, -kern]
    bank = torch.stack(kernels).to(x.device)  # (8, 3, 3)
    # Filters 8i … 8i+7 see channel i only: a grouped conv, so the weight is (8C, 1, 3, 3)
    # and not the (8C, C, 3, 3) of zeros that a dense layer would need.
    weight = bank.repeat(c, 1, 1)[:, None]  # (8C, 1, 3, 3)
    padded = F.pad(x[None], (1, 1, 1, 1), mode="replicate")
    return torch.relu(F.conv2d(padded, weight, groups=c))[0].sum(dim=0)  # (H, W)


def best_pointwise_agreement(x: torch.Tensor, mask: torch.Tensor) -> float:
    """The best agreement with `mask` that ANY function of a pixel's channel vector reaches.

    A 1×1 layer (any depth of them) sees only the channel vector, so pixels with the
    same vector get the same answer: per distinct vector the best is the majority.
    """
    c = x.shape[0]
    vectors = x.reshape(c, -1).T.cpu().numpy()  # (N, C)
    labels = mask.reshape(-1).cpu().numpy().astype(np.int64)
    _, group = np.unique(vectors, axis=0, return_inverse=True)
    group = group.reshape(-1)
    ones = np.bincount(group, weights=labels)
    sizes = np.bincount(group)
    return float(np.maximum(ones, sizes - ones).sum() / len(labels))
