"""Experiments that settle the question with measurements. Pure torch and numpy, no web.

Each experiment is a function of its request and its input maps that returns its typed
result (the response model), as compare does with `report.build`:

- fit: learn a 1×1 conv + ReLU and the best no-mixing model (per-channel scale and
  bias + ReLU) towards a target; report both loss curves and a provable floor for
  every no-mixing model (isotonic regression).
- bottleneck: variance kept by the best reduction to K channels for every K, beside
  the cost of 1×1 reduce + k×k conv against the k×k conv alone.
- receptive field: which output pixels change when one input pixel changes, under
  a 1×1 and a 3×3 conv; and edges that a 3×3 layer finds and no 1×1 layer can.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app import devices, generators, inputs, mixing, render, uploads
from app.config import Settings
from app.errors import Cancelled, InvalidContent
from app.schemas.requests import BottleneckRequest, FitRequest, ReceptiveFieldRequest
from app.schemas.responses import (
    BottleneckResult,
    FitProgress,
    FitResult,
    ReceptiveFieldResult,
)

# Called between steps: raises errors.Cancelled when nobody wants the result any more.
Check = Callable[[], None]
Progress = Callable[[FitProgress], None]
log = logging.getLogger("onebyone")


def _never() -> None:
    """A Check for work nobody cancels (tests, the benchmark)."""


def on_device(maps: inputs.Maps, device: str) -> torch.Tensor:
    """The maps (C, H, W) on the requested device (`auto`: the best present)."""
    return torch.from_numpy(maps.arr).to(devices.resolve(device))


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


def no_mixing_floor(x: np.ndarray, t: np.ndarray, check: Check = _never) -> tuple[float, int]:
    """A loss no per-channel model can beat, and the channel that comes closest.

    relu(a·x_c + b) is monotone in x_c (rising for a ≥ 0, falling for a < 0), so its
    MSE is at least that of the best monotone function of x_c: isotonic regression
    in either direction. x (C, N), t (N,). `check` runs between channels.
    """
    best, best_c = math.inf, 0
    for c in range(x.shape[0]):
        check()
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
    check: Check,
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
        try:
            check()
        except Cancelled as exc:
            raise Cancelled(exc.reason, step) from None
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
                FitProgress(
                    step=step,
                    steps=steps,
                    conv_loss=conv_curve[-1],
                    relu_only_loss=relu_curve[-1],
                )
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


@dataclass(frozen=True)
class FitJob:
    """A fit ready to train: its request, input maps (numpy and on the device) and target."""

    req: FitRequest
    maps: inputs.Maps
    x: torch.Tensor  # (C, H, W) on the device
    target: np.ndarray  # (K, H, W) float32


def prepare_fit(
    req: FitRequest,
    input_file: uploads.Decoded | None,
    target_file: uploads.Decoded | None,
    s: Settings,
    sources: inputs.Sources | None = None,
) -> FitJob:
    """Everything a fit needs, checked before it starts (so a stream starts only once the
    request is known to be possible)."""
    maps = inputs.load(req.input, input_file, s, sources, s.max_experiment_values)
    target = _target(req, maps, target_file, input_file is not None, s)
    return FitJob(req, maps, on_device(maps, req.device), target)


def _target(
    req: FitRequest,
    maps: inputs.Maps,
    upload: uploads.Decoded | None,
    input_uploaded: bool,
    s: Settings,
) -> np.ndarray:
    """The map to learn, (K, H, W): K·H·W and K within the limits before it is converted."""
    h, w = maps.arr.shape[1:]
    if req.target == "upload":
        if upload is None:
            raise InvalidContent(
                'target "upload" needs a multipart file part named "target".',
                field="target",
                code="missing",
            )
        raw = uploads.pick(upload, "target", "The target file")
        if raw.size > s.max_experiment_values:
            raise inputs.over_experiment_limit(
                "target (K·H·W)", raw.size, s.max_experiment_values, "target"
            )
        k = raw.shape[0] if raw.ndim >= 3 else 1
        if k > s.max_out_channels:
            raise InvalidContent(
                f"The target has K = {k} channels; the limit is {s.max_out_channels} "
                "(ONEBYONE_MAX_OUT_CHANNELS).",
                field="target",
                code="over_limit",
            )
        t = uploads.to_chw(raw, "chw", "target")
        if t.shape[1:] != (h, w):
            raise InvalidContent(
                f"The target is {t.shape[1]}×{t.shape[2]} but the input is {h}×{w}; "
                "they must have the same height and width.",
                field="target",
                code="shape_mismatch",
            )
        return t
    if req.input.generator != "catdog" or input_uploaded:
        raise InvalidContent(
            'target "cat_over_dog" needs the catdog generator; for other inputs, upload a '
            'target and set "target": "upload".',
            field="target",
            code="needs_catdog",
        )
    target: np.ndarray = np.maximum(maps.arr[0] - maps.arr[1], 0.0)[None]  # (1, H, W)
    return target


def run_fit(job: FitJob, progress: Progress, check: Check) -> FitResult:
    """Train both models towards the job's target: their curves, weights, the floor no
    per-channel model can beat (one target channel), and the conclusion in words."""
    req, arr, x, target = job.req, job.maps.arr, job.x, job.target
    t = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32)).to(x.device)
    # The floor is for one target map; several targets report the trained loss instead.
    floor, floor_channel = (
        no_mixing_floor(arr.reshape(arr.shape[0], -1), target.reshape(-1), check)
        if target.shape[0] == 1
        else (None, None)
    )
    try:
        with torch.enable_grad():
            result = fit(
                x,
                t,
                steps=req.steps,
                lr=req.lr,
                seed=req.seed,
                every=req.every,
                progress=progress,
                check=check,
            )
    except Cancelled as exc:
        # Logged here, in the worker: the request that started it may be gone already.
        log.info(json.dumps({"event": "fit_cancelled", "step": exc.step, "steps": req.steps}))
        raise
    final = result["final"]
    bound = f"{floor:.4g}" if floor is not None else f"{final['relu_only']:.4g}"
    return FitResult(
        **result,
        device=x.device.type,
        relu_only_floor=floor,
        relu_only_floor_channel=floor_channel,
        conclusion=f"ReLU-only cannot do better than {bound} (mean squared error); "
        f"the 1×1 conv + ReLU reaches {final['conv_relu']:.4g}.",
    )


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
    evals = mixing.channel_spectrum(x)  # descending
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


def run_bottleneck(
    req: BottleneckRequest, maps: inputs.Maps, sources: inputs.Sources | None = None
) -> BottleneckResult:
    """The bottleneck curve of the request's maps, on its device; for a network's maps, with
    the trained layer that reads them placed on it."""
    trained = None if maps.network is None or sources is None else sources.trained
    x = on_device(maps, req.device)
    with torch.inference_mode():
        out = bottleneck(x, req.kernel, req.out_channels)
    return BottleneckResult(
        **out,
        input_source=maps.source,
        device=x.device.type,
        network=maps.network,
        trained=None if trained is None else trained.reduction(maps),
    )


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


def run_receptive_field(
    req: ReceptiveFieldRequest, maps: inputs.Maps, s: Settings, check: Check = _never
) -> ReceptiveFieldResult:
    """One pixel changed under a 1×1 and a 3×3 conv, and the edges only the 3×3 finds."""
    limit = s.max_experiment_values
    arr = maps.arr
    c, h, w = arr.shape
    k = req.out_channels
    if k * h * w > limit:
        # Its outputs are (K, H, W), four of them.
        raise inputs.over_experiment_limit("output (K·H·W)", k * h * w, limit, "out_channels")
    y, x0 = req.pixel if req.pixel is not None else (h // 2, w // 2)
    if not (0 <= y < h and 0 <= x0 < w):
        raise InvalidContent(
            f"pixel ({y}, {x0}) is outside the {h}×{w} map.", field="pixel", code="out_of_range"
        )
    t = on_device(maps, req.device)
    with torch.inference_mode():
        changed = receptive_field(t, k, req.seed, (y, x0), req.delta)
        check()
        edges = edge_detector(t)  # (H, W)
        truth = generators.edge_mask(arr)
        found = (edges > 0).cpu().numpy()
        best_1x1 = best_pointwise_agreement(t, torch.from_numpy(truth))
        shown = torch.stack([t[0], edges, torch.from_numpy(truth.astype(np.float32)).to(t.device)])
    return ReceptiveFieldResult.model_validate(
        {
            "input_source": maps.source,
            "channel_names": maps.names,
            "device": t.device.type,
            "pixel": [y, x0],
            "changed": changed,
            "expected": {
                "conv1x1": [[y, x0]],
                "conv3x3": [
                    [yy, xx]
                    for yy in range(y - 1, y + 2)
                    for xx in range(x0 - 1, x0 + 2)
                    if 0 <= yy < h and 0 <= xx < w
                ],
            },
            "cost": {
                "conv1x1": mixing.layer_cost(c, k, h, w, 1),
                "conv3x3": mixing.layer_cost(c, k, h, w, 3),
            },
            "edges": {
                "fraction": float(truth.mean()),
                "conv3x3_agreement": float((found == truth).mean()),
                "best_1x1_agreement": best_1x1,
                "conv3x3_filters": 8 * c,
            },
            "heatmaps": {
                "height": h,
                "width": w,
                "names": ["input channel 0", "3×3 edge layer", "true edges"],
                "maps": {"shape": [3, h, w], "data": render.float32_b64(shown)},
            },
        }
    )
