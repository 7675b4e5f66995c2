"""The PNG montage: each panel a grid of channel tiles, laid out by a pure function, drawn as
palette indices and written as an indexed PNG.

`layout` decides every box (title, notes, panel headings, tiles, channel labels, colour
bars, ticks and their labels) from sizes and strings alone, so a test can check that no
text touches other text or a tile without drawing anything; `draw` only fills those boxes.

The image is an indexed (palette) PNG. The two colour maps sampled to 120 and 119 levels,
17 greys for anti-aliased text and white fit in 256 entries, so one byte per pixel holds
the montage exactly: a third of the bytes of RGB to deflate, and no row filter is needed
(measured in `python -m bench`).
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from zlib_ng import zlib_ng

from app.errors import InvalidContent
from app.render import DIVERGING, SEQUENTIAL, colormap

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont

    from app.compare import Comparison

ScaleMode = Literal["shared", "channel"]
PanelName = Literal["input", "relu_only", "pre_activation", "conv_relu", "difference"]

# The one definition of each panel's title: the PNG heads its panels with it, and the page its
# columns (routes/pages.py hands both dicts to the page). PANEL_SHORT captions a tile where the
# page is too narrow for the column heads (a phone).
PANELS: dict[str, str] = {
    "input": "Input x",
    "relu_only": "ReLU-only: relu(x)",
    "pre_activation": "Pre-activation: W·x + b",
    "conv_relu": "1×1 conv + ReLU: relu(W·x + b)",
    "difference": "Difference: relu(W·x + b) − relu(x)",
}
PANEL_SHORT: dict[str, str] = {
    "input": "x",
    "relu_only": "relu(x)",
    "pre_activation": "Wx+b",
    "conv_relu": "relu(Wx+b)",
    "difference": "relu(Wx+b) − relu(x)",
}
DEFAULT_PANELS: tuple[PanelName, ...] = ("input", "relu_only", "conv_relu")

# ---------------------------------------------------------------- palette

SEQ_LEVELS = 120  # palette entries 0 … 119: viridis, for values >= 0
DIV_LEVELS = 119  # entries 120 … 238: RdBu reversed; odd, so 0 is its middle entry exactly
SEQ_OFFSET, DIV_OFFSET = 0, SEQ_LEVELS
GREYS = 17  # entries 239 … 255: text ink (dark) to white, for anti-aliased glyphs
INK = SEQ_LEVELS + DIV_LEVELS
WHITE = 255
INK_GREY = 25


@lru_cache(maxsize=1)
def palette() -> bytes:
    """The 256 RGB entries of every montage, as Pillow's putpalette wants them."""
    pal = np.empty((256, 3), dtype=np.uint8)
    pal[:DIV_OFFSET] = colormap(SEQUENTIAL, SEQ_LEVELS)
    pal[DIV_OFFSET:INK] = colormap(DIVERGING, DIV_LEVELS)
    pal[INK:] = np.rint(np.linspace(INK_GREY, 255, GREYS))[:, None].astype(np.uint8)
    return pal.tobytes()


# ---------------------------------------------------------------- text

# Matplotlib (a dependency for its colour maps) ships DejaVu Sans, which has ×, − and →.
_FONT = Path(__import__("matplotlib").get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"

Style = Literal["small", "text", "title"]
# Size in px, and the glyphs whose ink every box of that style must hold.
_STYLES: dict[str, tuple[int, str]] = {
    "small": (11, "0123456789−+.e%ax"),
    "text": (12, "Ag|(×−→·…_[]"),
    "title": (13, "Ag|(×−→·…_[]"),
}


@lru_cache(maxsize=8)
def _font(size: int) -> FreeTypeFont:
    from PIL import ImageFont

    return ImageFont.truetype(str(_FONT), size)


@lru_cache(maxsize=4)
def _extent(style: str) -> tuple[int, int]:
    """Top and bottom of the style's ink below the text origin: its line box."""
    size, reference = _STYLES[style]
    _, top, _, bottom = _font(size).getbbox(reference)
    return int(top), int(bottom)


@lru_cache(maxsize=16384)
def text_size(text: str, style: str) -> tuple[int, int]:
    """The (width, height) of the box `text` is drawn in; its ink never leaves it."""
    left, _, right, _ = _font(_STYLES[style][0]).getbbox(text)
    top, bottom = _extent(style)
    return math.ceil(right) - min(0, int(left)), bottom - top


# Names from uploaded files (a checkpoint's layer) in a title: at most this many characters.
# One 60,000-character name would otherwise set the canvas's width, and Pillow's text
# layout fails on a newline.
NAME_CHARS = 80


def shown(text: str, limit: int = NAME_CHARS) -> str:
    """`text` as a montage draws it: unprintable characters escaped (\\n, \\x00, \\u202e),
    cut to `limit` characters with an ellipsis."""
    out: list[str] = []
    used = 0
    for c in text:
        piece = c if c.isprintable() else ascii(c)[1:-1]
        if used + len(piece) > limit:
            return "".join(out) + "…"
        out.append(piece)
        used += len(piece)
    return "".join(out)


# Labels and ticks repeat across requests; range lines and titles vary, so the cache is
# bounded (a stamp is at most a line of text: a few KiB).
@lru_cache(maxsize=4096)
def _stamp(text: str, style: str) -> np.ndarray:
    """`text` as palette indices (h, w), exactly its text_size box: grey ink on white."""
    from PIL import Image, ImageDraw

    w, h = text_size(text, style)
    font = _font(_STYLES[style][0])
    left = min(0, int(font.getbbox(text)[0]))
    img = Image.new("L", (max(1, w), h), 0)
    ImageDraw.Draw(img).text((-left, -_extent(style)[0]), text, fill=255, font=font)
    cover = np.asarray(img).astype(np.uint16)
    stamp: np.ndarray = (WHITE - (cover * (GREYS - 1) + 127) // 255).astype(np.uint8)
    return stamp[:, :w]


# ---------------------------------------------------------------- layout

MARGIN = 14
PANEL_GAP_X, PANEL_GAP_Y = 28, 22
TILE_GAP, ROW_GAP, LABEL_GAP = 3, 3, 1
HEADING_GAP, BAR_GAP, BAR_H, TICK_H, TEXT_GAP = 6, 8, 10, 3, 3
MIN_PANEL_W = 200
# The widest range line a panel can get (3 significant digits of float32), so it always fits.
WIDEST_RANGE = "values −8.88e+38 … −8.88e+38"
# Tiles share about this many pixels, each side between MIN_TILE and MAX_TILE: large maps
# are subsampled and small ones enlarged (whole factors) to get there.
TILE_AREA, MIN_TILE, MAX_TILE = 640_000, 24, 512
MAX_ZOOM = 32  # a 1×1 map is one colour: a 32 px square shows it as well as a larger one
ASPECT = 1.5  # width / height the arrangement aims for


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    def overlaps(self, other: Box) -> bool:
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and other.y < self.y + self.h
        )


@dataclass(frozen=True)
class Text:
    box: Box
    text: str
    style: str


@dataclass(frozen=True)
class Grid:
    """One panel's tiles: `count` cells in rows of `cols`, each a label above a tile."""

    x: int
    y: int
    cols: int
    count: int
    cell_w: int
    cell_h: int
    tile_w: int
    tile_h: int
    tile_dy: int  # from a cell's top to its tile's top: the label and a gap

    @property
    def rows(self) -> int:
        return -(-self.count // self.cols)

    def cell(self, i: int) -> tuple[int, int]:
        r, c = divmod(i, self.cols)
        return self.x + c * self.cell_w, self.y + r * self.cell_h

    def tiles(self) -> list[Box]:
        return [
            Box(x, y + self.tile_dy, self.tile_w, self.tile_h)
            for x, y in map(self.cell, range(self.count))
        ]


@dataclass(frozen=True)
class PanelSpec:
    """What a panel shows: the layout needs its strings, never its values."""

    key: str
    heading: str
    channels: range  # the channel indices drawn, one tile each
    ticks: tuple[tuple[float, str], ...] = ()  # (position along the bar in [0, 1], label)
    range_text: str = ""


@dataclass(frozen=True)
class PanelBoxes:
    key: str
    heading: Text
    grid: Grid
    labels: tuple[Text, ...]  # one per tile: its channel index
    bar: Box
    ticks: tuple[Box, ...]
    tick_labels: tuple[Text, ...]
    range_label: Text | None


@dataclass(frozen=True)
class Sheet:
    """Where everything of one montage goes: its size, scale, title, notes and panels' boxes
    (the array axes' order is `schemas.requests.Layout`, another thing)."""

    width: int
    height: int
    step: int  # every step-th value of the map is drawn …
    zoom: int  # … as zoom × zoom pixels
    title: tuple[Text, ...]
    notes: tuple[Text, ...]
    panels: tuple[PanelBoxes, ...]

    def texts(self) -> list[Text]:
        out = [*self.title, *self.notes]
        for p in self.panels:
            out += [p.heading, *p.labels, *p.tick_labels]
            out += [p.range_label] if p.range_label else []
        return out

    def solids(self) -> list[Box]:
        """Everything drawn in colour: tiles, colour bars and tick marks."""
        out: list[Box] = []
        for p in self.panels:
            out += [*p.grid.tiles(), p.bar, *p.ticks]
        return out


def tile_scale(height: int, width: int, tiles: int) -> tuple[int, int]:
    """(step, zoom): draw every step-th value as zoom × zoom px so tiles share TILE_AREA."""
    side = max(height, width)
    target = int(min(MAX_TILE, max(MIN_TILE, math.sqrt(TILE_AREA / max(1, tiles)))))
    if side > target:
        return side // target, 1
    return 1, max(1, min(target // side, MAX_ZOOM))


def _wrap(pieces: Sequence[str], sep: str, style: str, width: int) -> list[str]:
    """Greedy lines of `pieces` joined by `sep`, each within `width` where a piece allows."""
    lines: list[str] = []
    for piece in pieces:
        joined = f"{lines[-1]}{sep}{piece}" if lines else piece
        if lines and text_size(joined, style)[0] <= width:
            lines[-1] = joined
        else:
            lines.append(piece)
    return lines


def _note_lines(notes: Sequence[str], width: int) -> list[str]:
    out: list[str] = []
    for note in notes:
        out += _wrap(note.split(" "), " ", "text", width)
    return out


def layout(
    title: str,
    notes: Sequence[str],
    panels: Sequence[PanelSpec],
    height: int,
    width: int,
) -> Sheet:
    """Every box of the montage of (H, W) = (`height`, `width`) maps, from strings and sizes.

    Pure and deterministic. Text boxes are pairwise disjoint and disjoint from tiles, bars
    and ticks; tick labels that would collide are left out (the ends are kept first).
    """
    frame = _frame(
        title, tuple(notes), tuple((p.key, p.heading, p.channels) for p in panels), height, width
    )
    return replace(
        frame,
        panels=tuple(_annotate(pl, p) for pl, p in zip(frame.panels, panels, strict=True)),
    )


def _annotate(pl: PanelBoxes, spec: PanelSpec) -> PanelBoxes:
    """Add the data-dependent part under a panel's colour bar: tick marks, their labels, range."""
    bar = pl.bar
    label_y = bar.y + bar.h + TICK_H + 1
    small_h = text_size("0", "small")[1]
    order = [0, len(spec.ticks) - 1, *range(1, len(spec.ticks) - 1)] if spec.ticks else []
    kept: dict[int, Text] = {}
    for i in dict.fromkeys(order):
        pos, label = spec.ticks[i]
        w = text_size(label, "small")[0]
        cx = bar.x + round(pos * (bar.w - 1))
        x = min(max(bar.x, cx - w // 2), bar.x + bar.w - w)
        box = Box(x, label_y, w, small_h)
        # 6 px of air between neighbouring labels, so "−2" and "0" never read as "−20".
        air = Box(x - 6, label_y, w + 12, small_h)
        if all(not air.overlaps(t.box) for t in kept.values()):
            kept[i] = Text(box, label, "small")
    ticks = tuple(
        Box(bar.x + round(spec.ticks[i][0] * (bar.w - 1)), bar.y + bar.h, 1, TICK_H)
        for i in sorted(kept)
    )
    range_label = None
    if spec.range_text:
        w, h = text_size(spec.range_text, "text")
        range_label = Text(Box(bar.x, label_y + small_h + TEXT_GAP, w, h), spec.range_text, "text")
    return replace(
        pl,
        ticks=ticks,
        tick_labels=tuple(kept[i] for i in sorted(kept)),
        range_label=range_label,
    )


@lru_cache(maxsize=16)
def _frame(
    title: str,
    notes: tuple[str, ...],
    panels: tuple[tuple[str, str, range], ...],
    height: int,
    width: int,
) -> Sheet:
    """The layout without the colour bars' annotations: depends on shapes and names only."""
    n_panels = len(panels)
    most = max(len(ch) for _, _, ch in panels)
    step, zoom = tile_scale(height, width, sum(len(ch) for _, _, ch in panels))
    tile_h, tile_w = -(-height // step) * zoom, -(-width // step) * zoom
    notes = notes + _scale_notes(height, width, step, zoom)

    small_h = text_size("0", "small")[1]
    text_h = text_size("A", "text")[1]
    title_h = text_size("A", "title")[1]
    label_w = max(text_size(str(i), "small")[0] for _, _, ch in panels for i in ch)
    cell_w = max(tile_w, label_w) + TILE_GAP
    tile_dy = small_h + LABEL_GAP
    cell_h = tile_dy + tile_h + ROW_GAP
    under = BAR_GAP + BAR_H + TICK_H + 1 + small_h + TEXT_GAP + text_h  # bar, ticks, range
    top_w = max(text_size(t, "text")[0] for t in (WIDEST_RANGE, *(h for _, h, _ in panels)))
    title_pieces = title.split(" · ")
    widest_piece = max(text_size(p, "title")[0] for p in title_pieces)
    title_w = text_size(title, "title")[0]

    def size(pc: int, cols: int) -> tuple[int, int, int, int]:
        """Width, height, panel width and tile columns with `pc` panels side by side."""
        pw = max(cols * cell_w - TILE_GAP, top_w, MIN_PANEL_W)
        cols = min(most, max(cols, (pw + TILE_GAP) // cell_w))  # fill a panel text widened
        rows = -(-most // cols)
        pr = -(-n_panels // pc)
        w = max(2 * MARGIN + pc * pw + (pc - 1) * PANEL_GAP_X, widest_piece + 2 * MARGIN)
        title_lines = -(-title_w // (w - 2 * MARGIN))
        ph = text_h + HEADING_GAP + rows * cell_h - ROW_GAP + under
        h = 2 * MARGIN + title_lines * title_h + (len(notes) + 1) * text_h
        return w, h + pr * ph + (pr - 1) * PANEL_GAP_Y, pw, cols

    # Panels per row, and tile columns (only counts that change the number of rows).
    candidates = [
        (pc, cols)
        for pc in range(1, n_panels + 1)
        for cols in sorted({-(-most // rows) for rows in range(1, most + 1)})
    ]

    def score(candidate: tuple[int, int]) -> tuple[float, int]:
        # Side by side compares best: a further row of panels must buy a much saner aspect.
        w, h, _, _ = size(*candidate)
        rows_of_panels = -(-n_panels // candidate[0])
        return abs(math.log(w / h / ASPECT)) + 0.3 * (rows_of_panels - 1), w * h

    pc, cols = min(candidates, key=score)
    total_w, _, pw, cols = size(pc, cols)

    inner = total_w - 2 * MARGIN
    y = MARGIN
    title_texts = []
    for line in _wrap(title_pieces, " · ", "title", inner):
        w, h = text_size(line, "title")
        title_texts.append(Text(Box(MARGIN, y, w, h), line, "title"))
        y += h
    y += 2
    note_texts = []
    for line in _note_lines(notes, inner):
        w, h = text_size(line, "text")
        note_texts.append(Text(Box(MARGIN, y, w, h), line, "text"))
        y += h
    y += PANEL_GAP_Y // 2

    rows = -(-most // cols)
    grid_h = rows * cell_h - ROW_GAP
    panel_h = text_h + HEADING_GAP + grid_h + under
    out = []
    for i, (key, heading, channels) in enumerate(panels):
        r, c = divmod(i, pc)
        x0 = MARGIN + c * (pw + PANEL_GAP_X)
        y0 = y + r * (panel_h + PANEL_GAP_Y)
        hw, hh = text_size(heading, "text")
        grid = Grid(
            x0,
            y0 + text_h + HEADING_GAP,
            cols,
            len(channels),
            cell_w,
            cell_h,
            tile_w,
            tile_h,
            tile_dy,
        )
        labels = []
        for j, ch in enumerate(channels):
            lx, ly = grid.cell(j)
            lw, lh = text_size(str(ch), "small")
            labels.append(Text(Box(lx, ly, lw, lh), str(ch), "small"))
        # Bars line up across a row of panels, under the tallest grid.
        bar = Box(x0, grid.y + grid_h + BAR_GAP, pw, BAR_H)
        out.append(
            PanelBoxes(
                key,
                Text(Box(x0, y0, hw, hh), heading, "text"),
                grid,
                tuple(labels),
                bar,
                (),
                (),
                None,
            )
        )
    pr = -(-n_panels // pc)
    total_h = y + pr * panel_h + (pr - 1) * PANEL_GAP_Y + MARGIN
    return Sheet(total_w, total_h, step, zoom, tuple(title_texts), tuple(note_texts), tuple(out))


def _scale_notes(height: int, width: int, step: int, zoom: int) -> tuple[str, ...]:
    if step > 1:
        return (
            f"Maps are {height}×{width}: every {_ordinal(step)} value in each direction is "
            f"drawn (subsampled {step}×).",
        )
    if zoom > 1:
        return (f"Each value is drawn as {zoom}×{zoom} pixels (enlarged {zoom}×).",)
    return ()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---------------------------------------------------------------- values to colours


def nice_ticks(lo: float, hi: float, most: int = 5) -> list[float]:
    """Round values (1, 2, 2.5 or 5 × 10^n apart) between lo and hi, at most `most` of them."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / (most - 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [k * step for k in range(first, last + 1)]


def format_value(v: float, step: float | None = None) -> str:
    """A value for a label: as many decimals as `step` needs where given, else 3 digits."""
    if v == 0:
        return "0"
    if step is not None and 1e-4 <= step < 1e5:
        decimals = 0
        while abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6 * 10**decimals:
            decimals += 1
        text = f"{v:.{decimals}f}"
    else:
        text = f"{v:.3g}"
    return text.replace("-", "−")


@dataclass(frozen=True)
class Coloured:
    """One panel's tiles as palette indices, and what its colour bar says."""

    codes: np.ndarray  # (N, H', W') uint8, subsampled, not yet enlarged
    diverging: bool
    ticks: tuple[tuple[float, str], ...]
    range_text: str


def colour_panel(t: torch.Tensor, mode: ScaleMode, step: int) -> Coloured:
    """(N, H, W) values on any device -> palette indices of every step-th value, (N, H', W').

    The ranges come from all values of the channels drawn, not only the subsampled ones.
    Signed panels use the diverging map with 0 at its middle entry; others start at 0.
    """
    n = t.shape[0]
    if t.device.type == "cpu":
        # numpy, one thread: tiles are small, and torch's thread pool waits on a busy core.
        full = t.numpy()
        lo, hi = full.reshape(n, -1).min(axis=1), full.reshape(n, -1).max(axis=1)  # (N,), (N,)
        sub = full[:, ::step, ::step]  # (N, H', W'), a view
    else:
        # Only the ranges and the subsampled values leave the device.
        lo_t, hi_t = torch.aminmax(t.reshape(n, -1), dim=1)
        lo, hi = lo_t.cpu().numpy(), hi_t.cpu().numpy()
        sub = t[:, ::step, ::step].cpu().numpy()
    vmin, vmax = float(lo.min()), float(hi.max())
    diverging = vmin < 0
    if mode == "shared":
        top = np.full(n, max(-vmin, vmax) if diverging else vmax, dtype=np.float32)
    else:
        top = np.maximum(-lo, hi) if diverging else hi
    levels, offset = (DIV_LEVELS, DIV_OFFSET) if diverging else (SEQ_LEVELS, SEQ_OFFSET)
    # value -> offset + base + value · gain, rounded: 0 is entry `base` (the middle if signed).
    base = (levels - 1) / 2 if diverging else 0.0
    gain = ((levels - 1 - base) / np.where(top > 0, top, np.inf)).astype(np.float32)
    scaled = np.multiply(sub, gain[:, None, None], dtype=np.float32)  # (N, H', W')
    scaled += np.float32(offset + base + 0.5)
    np.clip(scaled, offset, offset + levels - 1, out=scaled)
    codes = scaled.astype(np.uint8)

    values = f"values {format_value(vmin)} … {format_value(vmax)}"
    if mode == "channel":
        ends = ("−max", "0", "+max") if diverging else ("0", "max")
        ticks = tuple(zip((0.0, 0.5, 1.0) if diverging else (0.0, 1.0), ends, strict=True))
        return Coloured(codes, diverging, ticks, values)
    m = float(top[0])
    lo_bar = -m if diverging else 0.0
    span = m - lo_bar
    marks = nice_ticks(lo_bar, m) if span > 0 else [0.0]
    step_v = marks[1] - marks[0] if len(marks) > 1 else None
    ticks = tuple(
        ((v - lo_bar) / span if span > 0 else 0.5 * diverging, format_value(v, step_v))
        for v in marks
    )
    return Coloured(codes, diverging, ticks, values)


def _cells(canvas: np.ndarray, grid: Grid) -> np.ndarray:
    """A writable (rows, cell_h, cols, cell_w) view of the canvas under a panel's grid."""
    s0, s1 = canvas.strides
    return np.lib.stride_tricks.as_strided(
        canvas[grid.y :, grid.x :],
        shape=(grid.rows, grid.cell_h, grid.cols, grid.cell_w),
        strides=(grid.cell_h * s0, s0, grid.cell_w * s1, s1),
        writeable=True,
    )


def _paste_tiles(canvas: np.ndarray, grid: Grid, tiles: np.ndarray) -> None:
    """Write (N, tile_h, tile_w) tiles into their cells, whole rows of tiles at once."""
    cells = _cells(canvas, grid)[:, grid.tile_dy : grid.tile_dy + grid.tile_h, :, : grid.tile_w]
    full, rest = divmod(grid.count, grid.cols)
    n = full * grid.cols
    if full:
        # (rows, cols, h, w) -> (rows, h, cols, w): the cells' own order of axes.
        cells[:full] = (
            tiles[:n].reshape(full, grid.cols, grid.tile_h, grid.tile_w).transpose(0, 2, 1, 3)
        )
    if rest:
        cells[full, :, :rest] = tiles[n:].transpose(1, 0, 2)


def _put_text(canvas: np.ndarray, t: Text) -> None:
    b = t.box
    canvas[b.y : b.y + b.h, b.x : b.x + b.w] = _stamp(t.text, t.style)


def draw(lay: Sheet, coloured: Sequence[Coloured]) -> tuple[np.ndarray, float]:
    """The montage as palette indices (H, W) uint8, and the ms spent on text."""
    canvas = np.full((lay.height, lay.width), WHITE, dtype=np.uint8)
    for pl, col in zip(lay.panels, coloured, strict=True):
        tiles = col.codes
        if lay.zoom > 1:
            tiles = tiles.repeat(lay.zoom, axis=1).repeat(lay.zoom, axis=2)
        _paste_tiles(canvas, pl.grid, tiles)
        levels, offset = (DIV_LEVELS, DIV_OFFSET) if col.diverging else (SEQ_LEVELS, SEQ_OFFSET)
        b = pl.bar
        ramp = offset + np.rint(np.linspace(0, levels - 1, b.w)).astype(np.uint8)
        canvas[b.y : b.y + b.h, b.x : b.x + b.w] = ramp
        for tick in pl.ticks:
            canvas[tick.y : tick.y + tick.h, tick.x : tick.x + tick.w] = INK
    t0 = time.perf_counter()
    for t in lay.texts():
        _put_text(canvas, t)
    return canvas, (time.perf_counter() - t0) * 1e3


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, and the CRC-32 of type and data."""
    crc = zlib_ng.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode(canvas: np.ndarray) -> bytes:
    """Palette indices (H, W) uint8 -> an indexed PNG (8-bit, filter 0 on every row).

    Deflated by zlib-ng at level 1 (its default strategy): 2.4× faster than Pillow's writer
    at level 1 with zlib's RLE strategy on the question's montage, and a few per cent
    smaller (docs/BENCHMARKS.md, 1b). The container around it is four chunks.
    """
    h, w = canvas.shape
    rows = np.zeros((h, w + 1), dtype=np.uint8)  # a filter-type byte (0: none) before each row
    rows[:, 1:] = canvas
    header = struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)  # 8-bit, palette, no interlace
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", palette()),
            _chunk(b"IDAT", zlib_ng.compress(rows.data, 1)),
            _chunk(b"IEND", b""),
        ]
    )


# ---------------------------------------------------------------- one comparison


def _panel_tensor(cmp: Comparison, key: str, drawn: range) -> torch.Tensor:
    """The drawn channels of one panel, (N, H, W), where the comparison's tensors live."""
    p = cmp.paths
    s = slice(drawn.start, drawn.stop)
    if key == "difference":
        return p.conv_relu[s] - p.relu_only[s]
    source = {
        "input": cmp.x,
        "relu_only": p.relu_only,
        "pre_activation": p.pre_activation,
        "conv_relu": p.conv_relu,
    }[key]
    return source[s]


@dataclass(frozen=True)
class Plan:
    sheet: Sheet
    coloured: list[Coloured]
    colourmap_ms: float
    layout_ms: float


def plan(
    cmp: Comparison,
    *,
    panels: Sequence[str] = DEFAULT_PANELS,
    channel: int | None = None,
    cap: int,
    scale: ScaleMode = "shared",
) -> Plan:
    """What the montage of one comparison shows and where: its layout and coloured tiles.

    `panels` in order (PANELS' keys); every channel up to `cap` per panel, or only `channel`.
    """
    c, h, w = cmp.x.shape
    k = cmp.layer.weight.shape[0]
    counts = {"input": c, "relu_only": c, "pre_activation": k, "conv_relu": k, "difference": k}
    keys = list(dict.fromkeys(panels))
    if "difference" in keys and k != c:
        raise InvalidContent(
            f"The difference panel subtracts ReLU-only from 1×1 conv + ReLU channel by channel, "
            f"so it needs K = C; here K = {k} and C = {c}. Leave it out of `panel`.",
            field="panel",
            code="shape_mismatch",
        )
    notes: list[str] = []
    if channel is not None:
        for key in keys:
            if channel >= counts[key]:
                raise InvalidContent(
                    f"channel = {channel}, but the {key} panel has {counts[key]} channels "
                    f"(0 … {counts[key] - 1}).",
                    field="channel",
                    code="out_of_range",
                )
        drawn = {key: range(channel, channel + 1) for key in keys}
    else:
        drawn = {key: range(min(counts[key], cap)) for key in keys}
        most = max(counts[key] for key in keys)
        if most > cap:
            notes.append(
                f"Channels 0–{cap - 1} of {most} drawn (cap {cap}). Draw all with "
                f"?channels={most}, or raise the default with ONEBYONE_MAX_PNG_CHANNELS={most}."
            )
    if scale == "channel":
        notes.append("Each tile is scaled to its own largest |value| (max on the colour bar).")
    step, _ = tile_scale(h, w, sum(len(r) for r in drawn.values()))
    t0 = time.perf_counter()
    coloured = [colour_panel(_panel_tensor(cmp, key, drawn[key]), scale, step) for key in keys]
    t1 = time.perf_counter()
    scale_text = "one colour range per panel" if scale == "shared" else "one per channel"
    title = (
        f"input (C, H, W) = ({c}, {h}, {w}) · 1×1 conv {c} → {k} channel{'s' * (k > 1)}: "
        f"weight ({k}, {c}) "
        f"+ bias ({k},) · weights: {shown(cmp.layer.source)} · device: {cmp.device} · "
        f"scale: {scale_text}"
    )
    specs = [
        PanelSpec(key, f"{PANELS[key]} · {counts[key]} ch", drawn[key], col.ticks, col.range_text)
        for key, col in zip(keys, coloured, strict=True)
    ]
    lay = layout(title, notes, specs, h, w)
    return Plan(lay, coloured, (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3)


def check_picture(channel: int | None, channels: int | None) -> None:
    """Refuse options that contradict each other, before the request's body is read."""
    if channel is not None and channels is not None:
        raise InvalidContent(
            "Give channel (one channel, enlarged) or channels (how many to draw), not both.",
            field="channel",
            code="conflict",
        )


def comparison_png(
    cmp: Comparison,
    *,
    panels: Sequence[str] = DEFAULT_PANELS,
    channel: int | None = None,
    cap: int,
    scale: ScaleMode = "shared",
) -> tuple[bytes, dict[str, float]]:
    """The montage of one comparison as PNG bytes, and the ms of each stage (see `plan`)."""
    p = plan(cmp, panels=panels, channel=channel, cap=cap, scale=scale)
    t0 = time.perf_counter()
    canvas, text_ms = draw(p.sheet, p.coloured)
    t1 = time.perf_counter()
    png = encode(canvas)
    t2 = time.perf_counter()
    return png, {
        "png_colourmap": p.colourmap_ms,
        "png_layout": p.layout_ms,
        "png_tiles": (t1 - t0) * 1e3 - text_ms,
        "png_text": text_ms,
        "png_encode": (t2 - t1) * 1e3,
    }
