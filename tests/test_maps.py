from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
import torch

from app import maps
from app.errors import InvalidContent, TooLarge, UnreadableFile, UnsupportedType
from tests import files

LIMITS = {"max_values": 1_000_000, "max_pixels": 1_000_000}


def gen(
    name: str, c: int = 6, h: int = 20, w: int = 24, seed: int = 0, **p: float
) -> maps.Generated:
    return maps.generate(name, c, h, w, seed, p)


@pytest.mark.parametrize("name", list(maps.GENERATORS))
def test_generators_are_seeded_and_shaped(name: str) -> None:
    a, b, c = gen(name, seed=5), gen(name, seed=5), gen(name, seed=6)
    channels = maps.GENERATORS[name].fixed_channels or 6
    assert a.maps.shape == (channels, 20, 24) and a.maps.dtype == np.float32
    np.testing.assert_array_equal(a.maps, b.maps)
    assert not np.array_equal(a.maps, c.maps)
    assert np.isfinite(a.maps).all()
    assert len(a.channel_names) == channels


def test_gaussian_is_signed_with_about_half_negative() -> None:
    x = gen("gaussian", c=8, h=64, w=64).maps
    assert 0.45 < (x < 0).mean() < 0.55


def test_nonnegative_maps_have_no_negatives_but_have_zeros() -> None:
    x = gen("nonnegative").maps
    assert x.min() == 0.0 and (x == 0).mean() > 0.2


def test_smooth_maps_have_low_effective_rank() -> None:
    x = gen("smooth", c=64, h=28, w=28, rank=8).maps.reshape(64, -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    s = np.linalg.svd(x, compute_uv=False) ** 2
    assert s[:8].sum() / s.sum() > 0.95
    assert s[:2].sum() / s.sum() < 0.95


def test_catdog_truth_is_where_cat_beats_dog() -> None:
    g = gen("catdog", c=4, h=48, w=48)
    truth = g.truth["cat_over_dog"]
    np.testing.assert_array_equal(truth, g.maps[0] > g.maps[1])
    assert g.maps[:2].min() >= 0 and 0.1 < truth.mean() < 0.9
    assert g.channel_names[:2] == ["cat evidence", "dog evidence"]


def test_catdog_needs_two_channels() -> None:
    with pytest.raises(InvalidContent, match="channels >= 2"):
        gen("catdog", c=1)


def test_edges_are_piecewise_constant_and_marked() -> None:
    g = gen("edges", c=3, h=32, w=32)
    edge = g.truth["edge"]
    flat = ~edge
    # Away from the marked edges every pixel equals its right neighbour in every channel.
    same = np.all(g.maps[:, :, 1:] == g.maps[:, :, :-1], axis=0)
    assert same[flat[:, :-1] & flat[:, 1:]].all()
    assert edge.any()


def test_unknown_generator_lists_the_valid_names() -> None:
    with pytest.raises(InvalidContent, match="catdog"):
        gen("nope")


def test_generator_param_out_of_range_is_refused() -> None:
    with pytest.raises(InvalidContent, match="rank must be between"):
        gen("smooth", rank=0)


# ---------------------------------------------------------------- decoding

X = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5) - 20


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (files.npy(X), "npy"),
        (files.npy(X.astype(np.float64)), "npy"),
        (files.npy(np.asfortranarray(X)), "npy"),
        (files.npz(input=X, other=X[:1]), "npz"),
        (files.npz(X), "npz"),
        (files.pt(torch.from_numpy(X)), "pt"),
        (files.pt({"input": torch.from_numpy(X), "y": torch.zeros(2)}), "pt"),
        (files.safetensors(input=X), "safetensors"),
    ],
)
def test_every_array_format_decodes_exactly(data: bytes, fmt: str) -> None:
    decoded = maps.decode(data, "test", **LIMITS)
    assert decoded.format == fmt
    np.testing.assert_array_equal(maps.to_chw(maps.pick(decoded, "input", "f"), "chw"), X)


def test_bfloat16_safetensors_decode() -> None:
    data = files.safetensors(input=X)
    t = torch.from_numpy(X).to(torch.bfloat16)
    from safetensors.torch import save

    data = save({"input": t})
    out = maps.decode(data, "t", **LIMITS).arrays["input"]
    np.testing.assert_array_equal(out, t.float().numpy())


def test_png_and_jpeg_decode_to_hwc_in_unit_range() -> None:
    rgb = np.zeros((6, 8, 3), dtype=np.uint8)
    rgb[:, :4, 0] = 255
    d = maps.decode(files.png(rgb), "img", **LIMITS)
    assert d.layout == "hwc"
    chw = maps.to_chw(d.arrays["image"], d.layout)
    assert chw.shape == (3, 6, 8)
    assert chw[0, 0, 0] == 1.0 and chw[0, 0, 7] == 0.0
    gray = maps.decode(files.jpeg(np.full((5, 5), 128, np.uint8)), "img", **LIMITS)
    assert gray.arrays["image"].shape == (5, 5, 1)
    assert abs(float(gray.arrays["image"].mean()) - 128 / 255) < 0.02


@pytest.mark.parametrize(
    ("shape", "layout", "expected"),
    [
        ((4, 5), "auto", (1, 4, 5)),
        ((192, 28, 28), "auto", (192, 28, 28)),
        ((28, 28, 192), "auto", (192, 28, 28)),
        ((3, 10, 20), "auto", (3, 10, 20)),
        ((10, 20, 3), "auto", (3, 10, 20)),
        ((1, 6, 7, 5), "nchw", (6, 7, 5)),
        ((1, 6, 7, 5), "nhwc", (5, 6, 7)),
        ((7, 5, 6), "chw", (7, 5, 6)),
        ((7, 5, 6), "hwc", (6, 7, 5)),
    ],
)
def test_layouts(shape: tuple[int, ...], layout: str, expected: tuple[int, ...]) -> None:
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = maps.to_chw(a, layout)
    assert out.shape == expected
    if layout in ("hwc", "nhwc") or (layout == "auto" and shape[-1] in (3, 192)):
        np.testing.assert_array_equal(
            out, np.moveaxis(a.reshape(out.shape[1:] + out.shape[:1]), -1, 0)
        )


@pytest.mark.parametrize(
    ("shape", "layout", "match"),
    [
        ((28, 28, 28), "auto", "ambiguous"),
        ((7, 5, 6), "auto", "ambiguous"),
        ((2, 3, 4, 5), "nchw", "batch of 2"),
        ((1, 2, 3, 4, 5), "auto", "5 dimensions"),
        ((0, 4, 4), "chw", "empty"),
        ((3, 4), "nchw", "needs a 4-D"),
        ((3, 4, 4), "xyz", "Unknown layout"),
    ],
)
def test_bad_layouts_are_refused(shape: tuple[int, ...], layout: str, match: str) -> None:
    with pytest.raises(InvalidContent, match=match):
        maps.to_chw(np.ones(shape, np.float32), layout)


def test_nan_and_inf_are_refused() -> None:
    a = np.ones((2, 3, 3), np.float32)
    a[0, 1, 1] = np.nan
    a[1, 0, 0] = np.inf
    with pytest.raises(InvalidContent, match="2 NaN or infinite"):
        maps.to_chw(a, "chw")


class Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"", UnreadableFile, "empty"),
        (b"hello world", UnsupportedType, "not a supported file type"),
        (pickle.dumps(Evil()), UnsupportedType, "never unpickled"),
        (files.npy_raw("|O", (1,), pickle.dumps(Evil())), UnsupportedType, "unpickl"),
        (files.npy(X)[:-10], UnreadableFile, "truncated"),
        (files.npy(np.ones(3, dtype=np.complex64)), UnsupportedType, "complex"),
        (files.npy(X)[:12], UnreadableFile, "not a readable .npy"),
        (files.npz(input=X)[:50], UnreadableFile, "damaged"),
        (files.png(np.zeros((4, 4, 3), np.uint8))[:30], UnreadableFile, "not a readable image"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ", UnreadableFile, "malformed"),
    ],
)
def test_bad_files_are_refused(data: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        maps.decode(data, "file", **LIMITS)


def test_huge_declared_npy_shape_is_refused_before_allocating() -> None:
    data = files.npy_raw("<f4", (100000, 100000, 100), b"\x00" * 16)
    with pytest.raises(TooLarge, match="limit"):
        maps.decode(data, "f", **LIMITS)


def test_npz_zip_bomb_is_refused_by_declared_size() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("input.npy", files.npy(np.zeros(3_000_000, np.float32)))
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(TooLarge):
        maps.decode(buf.getvalue(), "f", **LIMITS)


def test_pickled_pt_payload_never_runs(capsys: pytest.CaptureFixture[str]) -> None:
    data = files.pt({"weight": torch.ones(2, 2), "evil": Evil()})
    with pytest.raises(UnreadableFile, match="weights_only"):
        maps.decode(data, "f", **LIMITS)
    assert "pwned" not in capsys.readouterr().out


def test_image_over_pixel_limit_is_refused() -> None:
    with pytest.raises(TooLarge, match="pixels"):
        maps.decode(
            files.png(np.zeros((40, 50), np.uint8)), "img", max_values=10**6, max_pixels=1000
        )


def test_pick_names_the_choices_when_several_arrays() -> None:
    d = maps.decode(files.npz(a=X, b=X), "f", **LIMITS)
    with pytest.raises(InvalidContent, match="a, b"):
        maps.pick(d, "input", "The input file")
