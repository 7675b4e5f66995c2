"""Arrays to pictures and files: colour maps, compact heatmaps, the PNG montage, the npz.

One colour-map source for everything: matplotlib's data for viridis (sequential,
for non-negative values) and RdBu reversed (diverging, centred at 0, for signed
values), both readable with the common colour-vision deficiencies. The page
gets the same tables from GET /api/v1/colormaps.
"""

from __future__ import annotations

import base64
import io
import math
import struct
import zlib
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch

ScaleMode = Literal["shared", "channel"]
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"


@lru_cache(maxsize=4)
def colormap(name: str) -> np.ndarray:
    """A 256-entry RGB lookup table, uint8 (256, 3)."""
    from matplotlib import colormaps

    rgba = np.asarray(colormaps[name](np.linspace(0.0, 1.0, 256)))
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


# ---------------------------------------------------------------- PNG montage


def _panel_range(a: np.ndarray, mode: ScaleMode) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per-channel (lo, hi) of the colour scale and whether it is diverging: (C,), (C,)."""
    signed = bool((a < 0).any())
    if mode == "channel":
        amin, amax = a.min(axis=(1, 2)), a.max(axis=(1, 2))
    else:
        amin = np.full(a.shape[0], a.min())
        amax = np.full(a.shape[0], a.max())
    if signed:
        m = np.maximum(np.abs(amin), np.abs(amax))
        return -m, m, True
    return np.zeros_like(amax), amax, False


def colourise(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, diverging: bool) -> np.ndarray:
    """(C, H, W) values -> (C, H, W, 3) uint8 through the colour map, per-channel range."""
    span = np.where(hi > lo, hi - lo, 1.0)
    idx = np.clip((a - lo[:, None, None]) * (255.0 / span)[:, None, None], 0, 255)
    lut = colormap(DIVERGING if diverging else SEQUENTIAL)
    rgb: np.ndarray = lut[np.rint(idx).astype(np.uint8)]
    return rgb


@lru_cache(maxsize=4096)
def _stamp(text: str) -> np.ndarray:
    """Dark text on white as (h, w, 3) uint8, rendered once per distinct string."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(12)
    right = int(font.getbbox(text)[2])
    img = Image.new("RGB", (max(1, right), 16), (255, 255, 255))
    ImageDraw.Draw(img).text((0, 0), text, fill=(20, 20, 20), font=font)
    stamp: np.ndarray = np.asarray(img)
    return stamp


def _put_text(canvas: np.ndarray, x: int, y: int, text: str) -> None:
    """Draw text into the canvas by darkening (min), clipped at its edges."""
    stamp = _stamp(text)
    h = min(stamp.shape[0], canvas.shape[0] - y)
    w = min(stamp.shape[1], canvas.shape[1] - x)
    if h > 0 and w > 0:
        region = canvas[y : y + h, x : x + w]
        np.minimum(region, stamp[:h, :w], out=region)


def montage_png(
    panels: list[tuple[str, np.ndarray, int]],
    *,
    mode: ScaleMode,
    max_channels: int,
    total: int,
    title: str,
) -> bytes:
    """One PNG: a column per panel (input, ReLU-only, 1×1 conv + ReLU), a row per channel.

    `panels` holds (title, the channels to draw (R, H, W), how many the array has).
    """
    h, w = panels[0][1].shape[1:]
    rows = min(max(a.shape[0] for _, a, _ in panels), max_channels)
    # Large maps are subsampled to at most 192 px; small maps are enlarged to about 48 px
    # when there are few rows (with many, the PNG's encoding time grows with the area).
    zoom = max(1, 48 // max(h, w)) if rows <= 16 else 1
    step = max(1, math.ceil(max(h, w) / 192))
    th, tw = math.ceil(h / step) * zoom, math.ceil(w / step) * zoom
    gap, left, top, bar_h, foot = 4, 40, 44, 12, 40
    col_w = max(tw, 150 if rows <= 16 else 110)
    width = left + len(panels) * (col_w + gap)
    height = top + rows * (th + gap) + bar_h + foot
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    for col, (name, a, count) in enumerate(panels):
        shown = a[:rows, ::step, ::step]  # (R, H', W')
        lo, hi, div = _panel_range(shown, mode)
        rgb = colourise(shown, lo, hi, div)
        if zoom > 1:
            rgb = rgb.repeat(zoom, axis=1).repeat(zoom, axis=2)
        x0 = left + col * (col_w + gap)
        for r in range(shown.shape[0]):
            y0 = top + r * (th + gap)
            canvas[y0 : y0 + th, x0 : x0 + tw] = rgb[r]
        bar_y = top + rows * (th + gap)
        lut = colormap(DIVERGING if div else SEQUENTIAL)
        canvas[bar_y : bar_y + bar_h, x0 : x0 + col_w] = lut[
            np.linspace(0, 255, col_w).astype(np.uint8)
        ][None]
        _put_text(canvas, x0, 4, f"{name}  {count} ch")
        _put_text(canvas, x0, 20, "diverging, 0 at centre" if div else "sequential from 0")
        if mode == "shared":
            _put_text(canvas, x0, bar_y + bar_h + 2, f"{lo[0]:.3g}")
            _put_text(canvas, x0 + col_w - 44, bar_y + bar_h + 2, f"{hi[0]:.3g}")
        else:
            _put_text(canvas, x0, bar_y + bar_h + 2, "per-channel scale")
    for r in range(rows):
        _put_text(canvas, 4, top + r * (th + gap) + th // 2 - 6, str(r))
    note = f"channels 0-{rows - 1} of {total}" + (
        f" (capped at {max_channels})" if rows < total else ""
    )
    _put_text(canvas, 4, height - 16, f"{title} | {note} | scale: {mode}")
    return encode_png(canvas)


def encode_png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes, with no row filter and fast zlib.

    Pillow tries every row filter on every row, which costs 3× more here than
    the compression itself; colour-mapped tiles compress well without filters.
    """
    h, w, _ = rgb.shape
    raw = np.empty((h, 1 + 3 * w), dtype=np.uint8)  # each row: filter byte 0, then RGB
    raw[:, 0] = 0
    raw[:, 1:] = rgb.reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 3))
        + chunk(b"IEND", b"")
    )


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    named: dict[str, Any] = {
        k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()
    }
    np.savez(buf, **named)
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
