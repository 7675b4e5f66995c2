"""The PNG montage: input, ReLU-only and 1×1 conv + ReLU, channel by channel, in one image."""

from __future__ import annotations

import math
import struct
import zlib
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np

from app.render import DIVERGING, SEQUENTIAL, colormap

if TYPE_CHECKING:
    from app.compare import Comparison

ScaleMode = Literal["shared", "channel"]


def comparison_png(cmp: Comparison, scale: ScaleMode, max_channels: int) -> bytes:
    """The montage of one comparison: a column per path, the first `max_channels` rows."""
    p = cmp.paths
    c, h, w = cmp.x.shape
    k = cmp.layer.weight.shape[0]
    # Only the channels drawn leave the device.
    panels = [
        ("input", cmp.x[:max_channels].cpu().numpy(), c),
        ("ReLU-only", p.relu_only[:max_channels].cpu().numpy(), c),
        ("1x1 conv + ReLU", p.conv_relu[:max_channels].cpu().numpy(), k),
    ]
    title = f"{c}x{h}x{w} -> {k} filters, {cmp.layer.source}, {cmp.device}"
    return montage_png(panels, mode=scale, max_channels=max_channels, total=max(c, k), title=title)


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
