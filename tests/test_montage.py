"""The PNG montage: its layout (no text on text or on a tile), its colours, its encoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from app import compare, montage
from app.config import Settings
from app.errors import InvalidContent
from app.render import DIVERGING, SEQUENTIAL, colormap
from app.schemas.requests import CompareRequest

TITLE = (
    "input (C, H, W) = (1024, 512, 512) · 1×1 conv 1024 → 1024 channels: weight (1024, 1024) "
    "+ bias (1024,) · weights: file:safetensors · device: cuda · scale: one colour range per panel"
)
CAP_NOTE = (
    "Channels 0–255 of 1024 drawn (cap 256). Draw all with ?channels=1024, or raise the "
    "default with ONEBYONE_MAX_PNG_CHANNELS=1024."
)
ALL_PANELS = tuple(montage.PANELS)


def worst_ticks() -> tuple[tuple[float, str], ...]:
    """Many long tick labels: the layout must drop those that would collide."""
    marks = montage.nice_ticks(-8.5e-5, 8.5e-5, most=9)
    return tuple(((i / (len(marks) - 1)), f"{v:.2e}") for i, v in enumerate(marks))


def specs(keys: tuple[str, ...], channels: range) -> list[montage.PanelSpec]:
    return [
        montage.PanelSpec(
            key, f"{montage.PANELS[key]} · 1024 ch", channels, worst_ticks(), montage.WIDEST_RANGE
        )
        for key in keys
    ]


def assert_nothing_overlaps(lay: montage.Sheet) -> None:
    """Paint every box into a count raster: text may not meet text, a tile, a bar or a tick."""
    text = np.zeros((lay.height, lay.width), dtype=np.int32)
    solid = np.zeros_like(text)
    for raster, boxes in ((text, [t.box for t in lay.texts()]), (solid, lay.solids())):
        for b in boxes:
            assert b.w >= 0 and b.h > 0
            assert b.x >= 0 and b.x + b.w <= lay.width, b
            assert b.y >= 0 and b.y + b.h <= lay.height, b
            raster[b.y : b.y + b.h, b.x : b.x + b.w] += 1
    assert text.max() <= 1, "two text boxes overlap"
    assert solid.max() <= 1, "two tiles (or a tile and a bar) overlap"
    assert not ((text > 0) & (solid > 0)).any(), "text lies on a tile, bar or tick"


@pytest.mark.parametrize("channels", [1, 4, 64, 192, 1024])
@pytest.mark.parametrize("side", [1, 28, 512])
@pytest.mark.parametrize("keys", [montage.DEFAULT_PANELS, ALL_PANELS, ("conv_relu",)])
def test_no_text_overlaps_text_or_tiles(channels: int, side: int, keys: tuple[str, ...]) -> None:
    notes = [CAP_NOTE] if channels == 1024 else []
    lay = montage.layout(TITLE, notes, specs(keys, range(channels)), side, side)
    assert_nothing_overlaps(lay)
    assert len(lay.panels) == len(keys)
    for p in lay.panels:
        assert [t.text for t in p.labels] == [str(i) for i in range(channels)]
        assert p.tick_labels[0].text == worst_ticks()[0][1]  # the ends are kept first
        assert p.tick_labels[-1].text == worst_ticks()[-1][1]
        assert len(p.ticks) == len(p.tick_labels) >= 2
    # No 1:6 strips: the arrangement keeps a sane aspect ratio.
    assert 1 / 3 <= lay.width / lay.height <= 3, (lay.width, lay.height)


def test_single_channel_picture_is_one_enlarged_tile() -> None:
    lay = montage.layout(TITLE, [], specs(("conv_relu",), range(3, 4)), 28, 28)
    assert_nothing_overlaps(lay)
    (tile,) = lay.solids()[:1]
    assert [t.text for t in lay.panels[0].labels] == ["3"]
    assert lay.zoom > 1 and tile.w == tile.h == 28 * lay.zoom >= 256


@pytest.mark.parametrize(
    ("side", "tiles", "step", "zoom"),
    [
        (1, 3, 1, montage.MAX_ZOOM),  # a 1×1 map still gets a readable square
        (1, 3072, 1, montage.MIN_TILE),
        (28, 576, 1, 1),  # the question's case is drawn 1:1
        (28, 3, 1, 16),
        (512, 3, 1, 1),
        (512, 576, 15, 1),
        (512, 3072, 21, 1),
    ],
)
def test_tile_scale_subsamples_large_and_enlarges_small_maps(
    side: int, tiles: int, step: int, zoom: int
) -> None:
    assert montage.tile_scale(side, side, tiles) == (step, zoom)
    drawn = -(-side // step) * zoom
    assert drawn >= montage.MIN_TILE or side * zoom >= montage.MIN_TILE


def test_subsampling_and_enlarging_are_stated_in_the_image() -> None:
    big = montage.layout(TITLE, [], specs(montage.DEFAULT_PANELS, range(192)), 512, 512)
    assert big.step == 15
    assert any("subsampled 15×" in t.text for t in big.notes)
    small = montage.layout(TITLE, [], specs(montage.DEFAULT_PANELS, range(4)), 1, 1)
    assert any(f"enlarged {small.zoom}×" in t.text for t in small.notes)


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (-9.74, 9.74, [-5.0, 0.0, 5.0]),
        (0.0, 9.17, [0.0, 2.5, 5.0, 7.5]),
        (0.0, 0.0, [0.0]),
    ],
)
def test_nice_ticks(lo: float, hi: float, expected: list[float]) -> None:
    assert montage.nice_ticks(lo, hi) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "step", "text"),
    [
        (-5.0, 5.0, "−5"),
        (2.5, 2.5, "2.5"),
        (5.0, 2.5, "5.0"),
        (0.0, 1.0, "0"),
        (-3.2e-7, None, "−3.2e−07"),
    ],
)
def test_format_value(value: float, step: float | None, text: str) -> None:
    assert montage.format_value(value, step) == text


def test_text_stamps_fill_exactly_their_boxes() -> None:
    lay = montage.layout(TITLE, [CAP_NOTE], specs(ALL_PANELS, range(12)), 28, 28)
    for t in lay.texts():
        stamp = montage._stamp(t.text, t.style)
        assert stamp.shape == (t.box.h, t.box.w)
        assert (stamp < montage.WHITE).any(), t.text  # some ink
        assert stamp.min() >= montage.INK


# ---------------------------------------------------------------- real comparisons


def comparison(c: int, h: int, w: int, k: int, gen: str = "gaussian") -> compare.Comparison:
    req = CompareRequest.model_validate({
        "input": {"generator": gen, "height": h, "width": w, "channels": c},
        "weights": {"preset": "random", "out_channels": k},
        "device": "cpu",
    })  # fmt: skip
    return compare.run(req, Settings())


def decode(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img


@pytest.mark.parametrize(
    ("c", "side", "k"),
    [(1, 1, 1), (4, 28, 4), (64, 28, 64), (192, 28, 192), (1024, 1, 1024), (4, 512, 4)],
)
def test_real_montages_decode_at_their_layout_size(c: int, side: int, k: int) -> None:
    cmp = comparison(c, side, side, k)
    p = montage.plan(cmp, panels=ALL_PANELS, cap=1024)
    assert_nothing_overlaps(p.sheet)
    png, stages = montage.comparison_png(cmp, panels=ALL_PANELS, cap=1024)
    img = decode(png)
    assert img.format == "PNG" and img.mode == "P"
    assert img.size == (p.sheet.width, p.sheet.height)
    assert set(stages) == {"png_colourmap", "png_layout", "png_tiles", "png_text", "png_encode"}
    # Every label is drawn where the layout put it: ink inside its box.
    idx = np.asarray(img)
    for t in p.sheet.texts():
        b = t.box
        assert (idx[b.y : b.y + b.h, b.x : b.x + b.w] != montage.WHITE).any(), t.text


def expected_rgb(values: np.ndarray, lo: float, hi: float, diverging: bool) -> np.ndarray:
    """An independent numpy reference of a tile's colours from the colour-map tables."""
    if diverging:
        levels = montage.DIV_LEVELS
        m = max(-lo, hi)
        idx = np.floor(values / m * (levels - 1) / 2 + (levels - 1) / 2 + 0.5)
        lut = colormap(DIVERGING, levels)
    else:
        levels = montage.SEQ_LEVELS
        idx = np.floor(values / hi * (levels - 1) + 0.5)
        lut = colormap(SEQUENTIAL, levels)
    return lut[np.clip(idx, 0, levels - 1).astype(int)]


def tile_pixels(img: Image.Image, tile: montage.Box) -> np.ndarray:
    rgb = np.asarray(img.convert("RGB"))
    return rgb[tile.y : tile.y + tile.h, tile.x : tile.x + tile.w]


def test_tiles_show_the_values_through_the_colour_maps() -> None:
    cmp = comparison(3, 6, 5, 2)
    p = montage.plan(cmp, cap=256)
    img = decode(montage.comparison_png(cmp, cap=256)[0])
    z = p.sheet.zoom
    arrays = {
        "input": cmp.x.numpy(),
        "relu_only": cmp.paths.relu_only.numpy(),
        "conv_relu": cmp.paths.conv_relu.numpy(),
    }
    for pl in p.sheet.panels:
        a = arrays[pl.key].astype(np.float64)
        for ch, tile in enumerate(pl.grid.tiles()):
            want = expected_rgb(a[ch], a.min(), a.max(), pl.key == "input")
            want = want.repeat(z, axis=0).repeat(z, axis=1)
            np.testing.assert_array_equal(tile_pixels(img, tile), want)


def test_zero_is_the_middle_of_the_diverging_map() -> None:
    t = torch.tensor([[[-2.0, 0.0, 1.0]]])
    col = montage.colour_panel(t, "shared", 1)
    assert col.diverging
    middle = montage.DIV_OFFSET + (montage.DIV_LEVELS - 1) // 2
    assert col.codes.tolist() == [[[montage.DIV_OFFSET, middle, middle + 30]]]


def test_per_channel_scale_uses_each_channels_own_max() -> None:
    t = torch.tensor([[[0.0, 1.0]], [[0.0, 100.0]]])
    col = montage.colour_panel(t, "channel", 1)
    top = montage.SEQ_LEVELS - 1
    assert not col.diverging and col.codes.tolist() == [[[0, top]], [[0, top]]]
    assert [label for _, label in col.ticks] == ["0", "max"]


def test_large_maps_are_subsampled_by_the_stated_step() -> None:
    cmp = comparison(48, 512, 512, 4)
    p = montage.plan(cmp, panels=("input",), cap=256)
    assert p.sheet.step == 4 and p.coloured[0].codes.shape == (48, 128, 128)
    assert any("every 4th value" in t.text for t in p.sheet.notes)


def test_cap_is_stated_with_how_to_raise_it() -> None:
    cmp = comparison(300, 4, 4, 300)
    p = montage.plan(cmp, cap=256)
    notes = " ".join(t.text for t in p.sheet.notes)
    assert "0–255 of 300" in notes
    assert "?channels=300" in notes and "ONEBYONE_MAX_PNG_CHANNELS=300" in notes
    assert [len(pl.labels) for pl in p.sheet.panels] == [256, 256, 256]
    everything = montage.plan(cmp, cap=300)
    assert not any("cap" in t.text for t in everything.sheet.notes)


def test_one_channel_of_one_panel() -> None:
    cmp = comparison(8, 28, 28, 8)
    p = montage.plan(cmp, panels=("conv_relu",), channel=3, cap=256)
    (pl,) = p.sheet.panels
    assert [t.text for t in pl.labels] == ["3"]
    want = cmp.paths.conv_relu[3].numpy().astype(np.float64)
    img = decode(montage.comparison_png(cmp, panels=("conv_relu",), channel=3, cap=256)[0])
    expected = expected_rgb(want, want.min(), want.max(), False)
    z = p.sheet.zoom
    got = tile_pixels(img, pl.grid.tiles()[0])
    np.testing.assert_array_equal(got, expected.repeat(z, axis=0).repeat(z, axis=1))


def test_difference_panel_is_conv_relu_minus_relu_only() -> None:
    cmp = comparison(4, 8, 8, 4)
    p = montage.plan(cmp, panels=("difference",), cap=256)
    diff = (cmp.paths.conv_relu - cmp.paths.relu_only).numpy().astype(np.float64)
    m = np.abs(diff).max()
    codes = np.floor(diff / m * 59 + 59 + 0.5) + montage.DIV_OFFSET
    np.testing.assert_array_equal(p.coloured[0].codes, codes)


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"panels": ("difference",)}, "panel", "shape_mismatch"),
        ({"channel": 4}, "channel", "out_of_range"),
        ({"panels": ("conv_relu",), "channel": 2}, "channel", "out_of_range"),
    ],
)
def test_impossible_pictures_are_refused(kwargs: dict[str, object], field: str, code: str) -> None:
    cmp = comparison(6, 4, 4, 2)
    with pytest.raises(InvalidContent) as err:
        montage.plan(cmp, cap=256, **kwargs)  # type: ignore[arg-type]
    assert (err.value.field, err.value.code) == (field, code)


def test_palette_holds_both_maps_and_greys() -> None:
    pal = np.frombuffer(montage.palette(), np.uint8).reshape(256, 3)
    np.testing.assert_array_equal(pal[: montage.SEQ_LEVELS], colormap(SEQUENTIAL, 120))
    np.testing.assert_array_equal(pal[montage.DIV_OFFSET : montage.INK], colormap(DIVERGING, 119))
    assert pal[montage.WHITE].tolist() == [255, 255, 255]
    assert (pal[montage.INK :, 0] == pal[montage.INK :, 2]).all()  # greys


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_tiles_equal_cpu_tiles() -> None:
    t = torch.randn(5, 40, 30, generator=torch.Generator().manual_seed(0))
    for mode in ("shared", "channel"):
        cpu = montage.colour_panel(t, mode, 2)
        gpu = montage.colour_panel(t.cuda(), mode, 2)
        # Ranges may differ in the last bit between devices: allow one palette step.
        assert np.abs(cpu.codes.astype(int) - gpu.codes.astype(int)).max() <= 1
        assert cpu.ticks == gpu.ticks and cpu.range_text == gpu.range_text


@pytest.mark.parametrize("shape", [(1, 1), (3, 1000), (757, 1191), (2049, 7)])
def test_encode_writes_a_png_that_decodes_to_the_same_indices_and_palette(
    shape: tuple[int, int],
) -> None:
    """Read back by Pillow (an independent decoder): every index, the palette, the size."""
    rng = np.random.default_rng(shape[0])
    canvas = rng.integers(0, 256, shape, dtype=np.uint8)
    canvas[:, : shape[1] // 2] = 255  # long runs, as the montage's background has
    data = montage.encode(canvas)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.format == "PNG" and img.mode == "P" and img.size == shape[::-1]
        np.testing.assert_array_equal(np.asarray(img), canvas)
        assert bytes(img.getpalette() or []) == montage.palette()
