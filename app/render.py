"""Arrays to pixels and bytes: colour maps, compact heatmaps, the npz.

One colour-map source for everything: matplotlib's data for viridis (sequential,
for non-negative values) and RdBu reversed (diverging, centred at 0, for signed
values), both readable with the common colour-vision deficiencies. The page
gets the same tables from GET /api/v1/colormaps.
"""

from __future__ import annotations

import base64
import io
import math
from functools import lru_cache
from typing import Any, BinaryIO

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


def colormaps_payload() -> dict[str, Any]:
    return {
        "sequential": {"name": SEQUENTIAL, "rgb": _b64(colormap(SEQUENTIAL))},
        "diverging": {"name": DIVERGING, "rgb": _b64(colormap(DIVERGING))},
    }


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode()


def quantise(t: torch.Tensor) -> tuple[bytes, list[float], list[float]]:
    """(C, H, W) float -> uint8 codes, with per-channel lo and hi to undo them.

    value ≈ lo + code · (hi − lo) / 255, exact at lo and hi (so zeros of a ReLU
    output, its minimum, stay exactly zero). Runs on the tensor's device, so a GPU
    hands back a quarter of the bytes.
    """
    flat = t.reshape(t.shape[0], -1)  # (C, H·W)
    lo = flat.amin(dim=1)
    hi = flat.amax(dim=1)
    span = hi - lo
    scale = torch.where(span > 0, 255.0 / span, torch.zeros_like(span))
    codes = ((flat - lo[:, None]) * scale[:, None]).round_().clamp_(0, 255).to(torch.uint8)
    return codes.cpu().numpy().tobytes(), lo.cpu().tolist(), hi.cpu().tolist()


def heatmap(t: torch.Tensor, stride: int) -> dict[str, Any]:
    sub = t[:, ::stride, ::stride] if stride > 1 else t  # (C, H', W')
    data, lo, hi = quantise(sub.contiguous())
    return {"data": base64.b64encode(data).decode(), "lo": lo, "hi": hi}


def heatmap_stride(arrays: list[torch.Tensor], budget: int) -> int:
    """Smallest spatial stride that keeps each array within `budget` values."""
    most = max(a.numel() for a in arrays)
    return 1 if most <= budget else math.ceil(math.sqrt(most / budget))


def write_npz(arrays: dict[str, np.ndarray], file: BinaryIO) -> None:
    """The arrays as an uncompressed .npz (float32) into any writable binary file object.

    numpy writes each array from its own memory into the zip in bounded chunks, so no
    copy of the whole archive is ever made: stream it from a temporary file.
    """
    named = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}
    np.savez(file, **named)  # type: ignore[arg-type]


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """write_npz into memory, for callers that want the bytes."""
    buf = io.BytesIO()
    write_npz(arrays, buf)
    return buf.getvalue()


def comparison_json(
    cmp: Any, *, heatmap_budget: int, heatmaps: bool, echo_weights: int
) -> dict[str, Any]:
    """The `format=json` body: shapes, statistics, costs, summary and compact heatmaps."""
    from app import compare, mixing

    x, p, layer = cmp.x, cmp.paths, cmp.layer
    c, h, w = x.shape
    stats = compare.statistics(cmp)
    k = layer.weight.shape[0]
    body: dict[str, Any] = {
        "device": cmp.device,
        "input_source": cmp.input_source,
        "weights_source": layer.source,
        "shapes": {
            "input": [c, h, w],
            "weight": [k, c],
            "bias": [k],
            "pre_activation": [k, h, w],
            "relu_only": [c, h, w],
            "conv_relu": [k, h, w],
        },
        "channel_names": cmp.channel_names,
        "summary": compare.summary(cmp, stats),
        "stats": compare.stats_json(cmp, stats),
        "cost": {
            "conv1x1": mixing.layer_cost(c, k, h, w, 1),
            "conv3x3": mixing.layer_cost(c, k, h, w, 3),
        },
        "layer": compare.layer_report(cmp),
        "truth": compare.truth_scores(cmp),
    }
    if k * c <= echo_weights:
        body["layer"]["weight"] = [
            [round(v, 6) for v in row] for row in layer.weight.cpu().tolist()
        ]
        body["layer"]["bias"] = [round(v, 6) for v in layer.bias.cpu().tolist()]
    if heatmaps:
        arrays = [x, p.relu_only, p.pre_activation, p.conv_relu]
        stride = heatmap_stride(arrays, heatmap_budget)
        hm: dict[str, Any] = {
            "encoding": "uint8, base64; value = lo[c] + code * (hi[c] - lo[c]) / 255",
            "stride": stride,
            "height": math.ceil(h / stride),
            "width": math.ceil(w / stride),
            "arrays": {
                "input": heatmap(x, stride),
                "relu_only": heatmap(p.relu_only, stride),
                "pre_activation": heatmap(p.pre_activation, stride),
                "conv_relu": heatmap(p.conv_relu, stride),
            },
            "weight": heatmap(layer.weight.reshape(1, k, c), 1),
        }
        for name, mask in cmp.truth.items():
            m = torch.from_numpy(mask.astype(np.float32))[None]
            hm["arrays"][f"truth:{name}"] = heatmap(m, stride)
        body["heatmaps"] = hm
    return body
