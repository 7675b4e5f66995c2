"""Decoding uploaded files: every format exactly, every layout, and refusals; hostile
headers and fuzzing (issue 9, findings 5 and 6), each bounded in memory."""

from __future__ import annotations

import io
import pickle
import struct
import tracemalloc
import zipfile
import zlib
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app import uploads
from app.errors import InvalidContent, OneByOneError, TooLarge, UnreadableFile, UnsupportedType
from tests import files
from tests.conftest import assert_short_refusal

LIMITS = {"max_values": 1_000_000, "max_pixels": 1_000_000}


def decode(data: bytes, filename: str | None = None, **limits: int) -> uploads.Decoded:
    return uploads.decode(data, "input", filename, **(limits or LIMITS))


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
    decoded = decode(data)
    assert decoded.format == fmt
    np.testing.assert_array_equal(uploads.to_chw(uploads.pick(decoded, "input", "f"), "chw"), X)


def test_bfloat16_safetensors_decode() -> None:
    data = files.safetensors(input=X)
    t = torch.from_numpy(X).to(torch.bfloat16)
    from safetensors.torch import save

    data = save({"input": t})
    out = decode(data).arrays["input"]
    np.testing.assert_array_equal(out, t.float().numpy())


def test_png_and_jpeg_decode_to_hwc_in_unit_range() -> None:
    rgb = np.zeros((6, 8, 3), dtype=np.uint8)
    rgb[:, :4, 0] = 255
    d = decode(files.png(rgb))
    assert d.layout == "hwc"
    chw = uploads.to_chw(d.arrays["image"], d.layout)
    assert chw.shape == (3, 6, 8)
    assert chw[0, 0, 0] == 1.0 and chw[0, 0, 7] == 0.0
    gray = decode(files.jpeg(np.full((5, 5), 128, np.uint8)))
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
    out = uploads.to_chw(a, layout)
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
        uploads.to_chw(np.ones(shape, np.float32), layout)


def test_nan_and_inf_are_refused() -> None:
    a = np.ones((2, 3, 3), np.float32)
    a[0, 1, 1] = np.nan
    a[1, 0, 0] = np.inf
    with pytest.raises(InvalidContent, match="2 NaN or infinite"):
        uploads.to_chw(a, "chw")


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
        decode(data)


def test_huge_declared_npy_shape_is_refused_before_allocating() -> None:
    data = files.npy_raw("<f4", (100000, 100000, 100), b"\x00" * 16)
    with pytest.raises(TooLarge, match="limit"):
        decode(data)


def test_npz_zip_bomb_is_refused_by_declared_size() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("input.npy", files.npy(np.zeros(3_000_000, np.float32)))
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(TooLarge):
        decode(buf.getvalue())


def test_pickled_pt_payload_never_runs(capsys: pytest.CaptureFixture[str]) -> None:
    data = files.pt({"weight": torch.ones(2, 2), "evil": Evil()})
    with pytest.raises(UnreadableFile, match="weights_only"):
        decode(data)
    assert "pwned" not in capsys.readouterr().out


def test_image_over_pixel_limit_is_refused() -> None:
    with pytest.raises(TooLarge, match="pixels"):
        decode(files.png(np.zeros((40, 50), np.uint8)), max_values=10**6, max_pixels=1000)


def test_pick_names_the_choices_when_several_arrays() -> None:
    d = decode(files.npz(a=X, b=X))
    with pytest.raises(InvalidContent, match="'a', 'b'"):
        uploads.pick(d, "input", "The input file")


def test_every_image_bit_depth_is_scaled_to_the_unit_range() -> None:
    from PIL import Image

    levels = np.array([[0, 1000, 65535]], dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(levels).save(buf, format="PNG")
    sixteen = uploads.to_chw(decode(buf.getvalue()).arrays["image"], "hwc")
    np.testing.assert_allclose(sixteen[0, 0], levels[0] / 65535, rtol=1e-6)
    eight = uploads.to_chw(
        decode(files.png(np.array([[0, 51, 255]], np.uint8))).arrays["image"], "hwc"
    )
    np.testing.assert_allclose(eight[0, 0], [0, 0.2, 1], rtol=1e-6)


def test_a_known_extension_on_foreign_bytes_is_a_400_that_says_so() -> None:
    with pytest.raises(UnreadableFile, match=r"'x\.npy' is not a valid \.npy file") as info:
        decode(b"PK\x05\x06 random bytes", "x.npy")
    assert (info.value.field, info.value.code) == ("input", "bad_magic")
    with pytest.raises(UnsupportedType):
        decode(b"PK\x05\x06 random bytes", "x.bin")


def test_a_safetensors_shape_past_pythons_digit_limit_is_refused() -> None:
    header = b'{"x": {"dtype": "F32", "shape": [' + b"1" * 5000 + b'], "data_offsets": [0, 4]}}'
    data = len(header).to_bytes(8, "little") + header + b"\x00" * 4
    with pytest.raises(UnreadableFile, match="malformed"):
        decode(data, "x.safetensors")


def test_an_npy_read_from_a_mutable_buffer_decodes_to_a_writable_array() -> None:
    # Uploaded parts are read into a bytearray: the float32 array used in place is writable,
    # so torch.from_numpy takes it without a copy and without a warning.
    arr = decode(bytearray(files.npy(X))).arrays["array"]
    assert arr.flags.writeable
    np.testing.assert_array_equal(uploads.to_chw(arr, "chw"), X)


@pytest.mark.parametrize(
    ("data", "name", "match"),
    [
        (files.npy_raw("|O", (1,), pickle.dumps(1)), "x.npy", "unpickl"),
        (files.npy_raw("<c8", (2,), b"\x00" * 16), "x.npy", "complex"),
    ],
)
def test_a_right_format_with_an_unsupported_inside_keeps_its_own_reason(
    data: bytes, name: str, match: str
) -> None:
    # The magic bytes are right: the reason is what is inside, not "not a valid .npy".
    with pytest.raises(UnsupportedType, match=match) as info:
        decode(data, name)
    assert info.value.code != "bad_magic"


def _png_declaring(width: int, height: int, *, crc_ok: bool = True) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + ihdr) ^ (0 if crc_ok else 1)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", crc)
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def test_an_image_declaring_billions_of_pixels_is_a_413() -> None:
    # Past Pillow's own bomb guard (about 179 M pixels) as well as ours.
    with pytest.raises(TooLarge, match="ONEBYONE_MAX_IMAGE_PIXELS"):
        decode(_png_declaring(100_000, 100_000), "x.png")


def test_a_damaged_image_header_is_a_400_without_python_internals() -> None:
    with pytest.raises(UnreadableFile) as info:
        decode(_png_declaring(0, 0), "x.png")
    assert "object at 0x" not in info.value.detail and "header is damaged" in info.value.detail


def test_picking_from_a_file_names_the_part_at_fault() -> None:
    several = uploads.Decoded({"a": X, "b": X}, "npz")
    with pytest.raises(InvalidContent, match="several arrays") as info:
        uploads.pick(several, "input", "The input file")
    assert (info.value.field, info.value.code) == ("input", "ambiguous_array")
    with pytest.raises(InvalidContent, match="no arrays") as info:
        uploads.pick(uploads.Decoded({}, "safetensors"), "target", "The target file")
    assert (info.value.field, info.value.code) == ("target", "empty")


def test_an_npz_over_the_limit_in_total_says_the_limit_not_what_is_left() -> None:
    part = np.zeros(600_000, np.bool_)  # small on disk: the value count is what is over
    with pytest.raises(TooLarge, match=r"the limit is 1000000 for a whole file") as info:
        decode(files.npz(a=part, b=part), "x.npz")
    assert "before it hold 600000" in info.value.detail


def test_an_empty_member_after_a_large_one_is_not_refused() -> None:
    # (0, 10) holds no values: it fits whatever the members before it hold.
    z = decode(files.npz(a=np.zeros(999_999, np.bool_), b=np.zeros((0, 10), np.float32)), "x.npz")
    assert z.arrays["b"].shape == (0, 10)


# ---------------------------------------------------------------- read_photo


def _image_bytes(img: object, fmt: str, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)  # type: ignore[attr-defined]
    return buf.getvalue()


def test_a_photo_decodes_to_rgb_exactly() -> None:
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    img = uploads.read_photo(files.png(rgb), "The photo", max_pixels=10_000)
    assert img.mode == "RGB" and img.size == (40, 30)
    np.testing.assert_array_equal(np.asarray(img), rgb)
    jpeg = uploads.read_photo(files.jpeg(rgb), "The photo", max_pixels=10_000)
    assert jpeg.mode == "RGB" and jpeg.size == (40, 30)
    reference = np.asarray(Image.open(io.BytesIO(files.jpeg(rgb))).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(jpeg), reference)


def test_a_photo_of_any_png_mode_becomes_rgb() -> None:
    from PIL import Image

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    for img, expected in (
        (Image.fromarray(grey), np.repeat(grey[:, :, None], 3, axis=2)),
        (Image.fromarray(grey).convert("P"), np.repeat(grey[:, :, None], 3, axis=2)),
        (Image.fromarray(np.dstack([grey] * 4)), np.dstack([grey] * 3)),  # RGBA: alpha dropped
        # 16 bits: the top 8 are the colour (65535 is white, not 255).
        (Image.fromarray(grey.astype(np.uint16) * 257), np.repeat(grey[:, :, None], 3, axis=2)),
    ):
        got = uploads.read_photo(_image_bytes(img, "PNG"), "The photo", max_pixels=100)
        assert got.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(got), expected)


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (files.npy(X), UnsupportedType, "not_a_photo"),
        (b"hello, this is text", UnsupportedType, "not_a_photo"),
        (b"", UnreadableFile, "empty"),
        (b"GIF89a" + b"\0" * 40, UnsupportedType, "not_a_photo"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, UnreadableFile, "unreadable"),
        (files.jpeg(np.zeros((64, 64, 3), np.uint8))[:300], UnreadableFile, "unreadable"),
    ],
)
def test_what_is_not_a_photo_is_refused(data: bytes, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as err:
        uploads.read_photo(data, "The photo", max_pixels=100_000)
    assert err.value.code == code and err.value.field == "photo"  # type: ignore[attr-defined]


def test_a_photo_over_the_pixel_limit_is_a_413_before_decoding() -> None:
    import tracemalloc

    from PIL import Image

    # A decompression bomb: 8000×8000 of one colour is some 60 kB of PNG.
    bomb = _image_bytes(Image.new("L", (8000, 8000)), "PNG")
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        for data in (bomb, _png_declaring(100_000, 100_000)):
            with pytest.raises(TooLarge, match="ONEBYONE_MAX_IMAGE_PIXELS") as err:
                uploads.read_photo(data, "The photo", max_pixels=1_000_000)
            assert err.value.field == "photo"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


# Fuzzing: any bytes, and valid files damaged anywhere, are decoded or refused with a domain
# error; and every valid file, damaged nowhere, decodes to its array.

FUZZ_LIMITS = {"max_values": 100_000, "max_pixels": 100_000}
FUZZ_X = np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32)
ARRAY_FILES = {
    "npy": files.npy(FUZZ_X),
    "npz": files.npz(input=FUZZ_X),
    "pt": files.pt({"weight": torch.from_numpy(FUZZ_X)}),
    "pt_legacy": files.pt_legacy(
        {"weight": torch.from_numpy(FUZZ_X), "b": {"bias": torch.ones(3)}}
    ),
    "safetensors": files.safetensors(input=FUZZ_X),
}
IMAGE_FILES = {
    "png": files.png((np.abs(FUZZ_X[0]) * 60).astype(np.uint8)),
    "jpeg": files.jpeg((np.abs(FUZZ_X[0]) * 60).astype(np.uint8)),
}
VALID = [*ARRAY_FILES.values(), *IMAGE_FILES.values()]


def decode_or_refuse(data: bytes) -> None:
    """Any bytes: a decoded array in (C, H, W), or a domain error; never anything else."""
    try:
        decoded = uploads.decode(data, "input", "fuzz", **FUZZ_LIMITS)
        for arr in decoded.arrays.values():
            uploads.to_chw(arr, decoded.layout or "chw")
    except OneByOneError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_decoders_refuse_random_bytes_cleanly(data: bytes) -> None:
    decode_or_refuse(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.integers(0, 10**6), st.integers(0, 255), st.booleans())
def test_decoders_refuse_damaged_files_cleanly(data: bytes, pos: int, byte: int, cut: bool) -> None:
    i = pos % len(data)
    damaged = data[:i] if cut else data[:i] + bytes([byte]) + data[i + 1 :]
    decode_or_refuse(damaged)


@pytest.mark.parametrize("data", ARRAY_FILES.values(), ids=ARRAY_FILES.keys())
def test_the_fuzzers_array_files_decode_to_their_array_before_damage(data: bytes) -> None:
    decoded = uploads.decode(data, "input", "valid", **FUZZ_LIMITS)
    np.testing.assert_array_equal(
        uploads.to_chw(uploads.pick(decoded, "weight", "f"), "chw"), FUZZ_X
    )


@pytest.mark.parametrize(
    ("data", "atol"),
    [(IMAGE_FILES["png"], 0), (IMAGE_FILES["jpeg"], 8 / 255)],
    ids=IMAGE_FILES.keys(),
)
def test_the_fuzzers_images_decode_to_their_pixels_before_damage(data: bytes, atol: float) -> None:
    decoded = uploads.decode(data, "input", "valid", **FUZZ_LIMITS)
    assert decoded.layout == "hwc"
    pixels = (np.abs(FUZZ_X[0]) * 60).astype(np.uint8)
    got = uploads.to_chw(decoded.arrays["image"], "hwc")  # (1, H, W)
    np.testing.assert_allclose(got[0], pixels / 255, rtol=0, atol=atol + 1e-7)


_WRITERS = {
    "npy": files.npy,
    "npz": lambda a: files.npz(input=a),
    "pt": lambda a: files.pt(torch.from_numpy(a)),
    "safetensors": lambda a: files.safetensors(input=a),
}
_FINITE32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=200, deadline=None)
@given(
    x=hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=3, max_dims=3, max_side=12), elements=_FINITE32
    ),
    fmt=st.sampled_from(sorted(_WRITERS)),
)
def test_a_valid_array_file_damaged_nowhere_decodes_to_its_array(x: np.ndarray, fmt: str) -> None:
    decoded = uploads.decode(_WRITERS[fmt](x), "input", "valid", **FUZZ_LIMITS)
    assert decoded.format == fmt
    np.testing.assert_array_equal(uploads.to_chw(uploads.pick(decoded, "input", "f"), "chw"), x)


_SIDES = st.tuples(st.integers(1, 16), st.integers(1, 16))


@settings(max_examples=200, deadline=None)
@given(
    img=st.one_of(
        _SIDES.flatmap(lambda hw: hnp.arrays(np.uint8, hw)),  # grey
        _SIDES.flatmap(lambda hw: hnp.arrays(np.uint8, (*hw, 3))),  # RGB
        _SIDES.flatmap(lambda hw: hnp.arrays(np.uint16, hw)),  # 16-bit grey
    )
)
def test_a_valid_png_damaged_nowhere_decodes_to_its_pixels(img: np.ndarray) -> None:
    decoded = uploads.decode(files.png(img), "input", "valid.png", **FUZZ_LIMITS)
    assert decoded.format == "image"
    hwc = img if img.ndim == 3 else img[:, :, None]
    expected = hwc.transpose(2, 0, 1).astype(np.float32) / np.iinfo(img.dtype).max  # (C, H, W)
    got = uploads.to_chw(decoded.arrays["image"], decoded.layout or "hwc")
    np.testing.assert_array_equal(got, expected)


def test_zip_member_with_an_empty_name_is_refused() -> None:
    # Found by hypothesis: zipfile's is_dir() indexes the name and raised IndexError.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", b"x")
        zf.writestr(zipfile.ZipInfo(""), b"y")
    with pytest.raises(OneByOneError):
        uploads.decode(buf.getvalue(), "input", "damaged", **FUZZ_LIMITS)


def test_npz_member_lying_about_its_size_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("input.npy", files.npy(np.zeros(50_000, np.float32)))
    data = bytearray(buf.getvalue())
    # Patch the central directory's uncompressed size down to 100 bytes.
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    with pytest.raises(OneByOneError):
        uploads.decode(bytes(data), "input", "bomb", max_values=10**6, max_pixels=10**6)


@pytest.mark.parametrize("data", files.LYING)
def test_lying_headers_are_refused_before_allocating(data: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(OneByOneError) as err:
            uploads.decode(data, "input", "liar", max_values=10**9, max_pixels=10**9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 400 <= err.value.status_code < 500
    assert peak < 4 * len(data) + (1 << 20), peak  # no conversion, no array of the lie's size


_DIMS = st.one_of(
    st.integers(-3, 6),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, 2**64, 0xAAAAAAAAAAAAAAAB]),
    st.booleans(),
)
_SHAPES = st.one_of(
    st.lists(_DIMS, max_size=5).map(tuple),
    st.lists(_DIMS, max_size=40).map(tuple),
    st.none(),
    st.integers(-5, 5),
    st.text(max_size=4),
    st.floats(allow_nan=False),
)
_NPY_DESCR = st.one_of(
    st.sampled_from(["<f4", "<f8", "|b1", "<i8", "|u1", "<f2", ">f4", "|O", "<U4", "|V8", "<c8"]),
    st.text(max_size=6),
)


def _npy_with_header(header: str, payload: bytes) -> bytes:
    text = header.encode("utf-8", "replace")
    pad = -(10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


def _refused_or_small(data: bytes) -> None:
    """Decoded (and converted) or refused with a 4xx, with little memory either way."""
    tracemalloc.start()
    try:
        try:
            decoded = uploads.decode(data, "input", "fuzz", max_values=10**9, max_pixels=10**9)
            for arr in decoded.arrays.values():
                if arr.ndim in (2, 3):
                    uploads.to_chw(arr, "chw")
        except OneByOneError as exc:
            assert 400 <= exc.status_code < 500
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(data) + (2 << 20), peak


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    descr=_NPY_DESCR,
    fortran=st.one_of(st.booleans(), st.integers(-1, 2), st.none()),
    shape=_SHAPES,
    extra=st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    payload=st.binary(max_size=512),
)
def test_fuzzed_npy_header_dicts_are_refused_cleanly(
    descr: str, fortran: object, shape: object, extra: dict[str, int], payload: bytes
) -> None:
    header = {"descr": descr, "fortran_order": fortran, "shape": shape, **extra}
    _refused_or_small(_npy_with_header(repr(header), payload))


_ST_DTYPES = st.one_of(
    st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F64"]), st.text(max_size=4)
)
_JSON_DIMS = st.one_of(st.integers(-3, 6), st.integers(-(2**66), 2**66), st.booleans(), st.none())
_OFFSETS = st.one_of(
    st.lists(st.integers(-(2**65), 2**65), max_size=3),
    st.lists(st.integers(0, 300), min_size=2, max_size=2),
    st.none(),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.dictionaries(
        st.text(max_size=6),
        st.one_of(
            st.fixed_dictionaries(
                {
                    "dtype": _ST_DTYPES,
                    "shape": st.one_of(
                        st.lists(_JSON_DIMS, max_size=4), st.integers(), st.text(max_size=3)
                    ),
                    "data_offsets": _OFFSETS,
                }
            ),
            st.integers(),
            st.text(max_size=3),
        ),
        max_size=4,
    ),
    payload=st.binary(max_size=300),
)
def test_fuzzed_safetensors_headers_are_refused_cleanly(
    entries: dict[str, object], payload: bytes
) -> None:
    _refused_or_small(files.safetensors_raw(entries, payload))


def _npz_fields() -> tuple[bytes, dict[str, tuple[int, str]]]:
    """A valid two-member .npz, and where each field of its zip directory lies: name ->
    (offset, struct format)."""
    data = files.npz(
        a=np.arange(12, dtype=np.float32).reshape(3, 2, 2), b=np.ones((2, 2), np.float32)
    )
    eocd = data.rfind(b"PK\x05\x06")
    cd = data.find(b"PK\x01\x02")
    local = data.find(b"PK\x03\x04")
    fields = {
        "eocd.disk": (eocd + 4, "<H"),
        "eocd.entries_here": (eocd + 8, "<H"),
        "eocd.entries": (eocd + 10, "<H"),
        "eocd.cd_size": (eocd + 12, "<I"),
        "eocd.cd_offset": (eocd + 16, "<I"),
        "eocd.comment_len": (eocd + 20, "<H"),
        "cd.flags": (cd + 8, "<H"),
        "cd.method": (cd + 10, "<H"),
        "cd.csize": (cd + 20, "<I"),
        "cd.usize": (cd + 24, "<I"),
        "cd.name_len": (cd + 28, "<H"),
        "cd.extra_len": (cd + 30, "<H"),
        "cd.comment_len": (cd + 32, "<H"),
        "cd.local_offset": (cd + 42, "<I"),
        "local.method": (local + 8, "<H"),
        "local.csize": (local + 18, "<I"),
        "local.usize": (local + 22, "<I"),
        "local.name_len": (local + 26, "<H"),
        "local.extra_len": (local + 28, "<H"),
    }
    return data, fields


_NPZ, _ZIP_FIELDS = _npz_fields()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    patches=st.lists(
        st.tuples(st.sampled_from(sorted(_ZIP_FIELDS)), st.integers(0, 2**32 - 1)),
        min_size=1,
        max_size=4,
    )
)
def test_fuzzed_zip_directories_are_refused_cleanly(patches: list[tuple[str, int]]) -> None:
    data = bytearray(_NPZ)
    for name, value in patches:
        offset, fmt = _ZIP_FIELDS[name]
        data[offset : offset + struct.calcsize(fmt)] = struct.pack(
            fmt, value % (1 << (8 * struct.calcsize(fmt)))
        )
    _refused_or_small(bytes(data))


def test_a_zip_directory_of_millions_of_entries_is_refused_before_it_is_read() -> None:
    # 30,000 empty entries (1.7 MB of directory): zipfile would build an object for each.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(30_000):
            zf.writestr(f"{i}.npy", b"")
    tracemalloc.start()
    try:
        with pytest.raises(OneByOneError) as err:
            uploads.decode(buf.getvalue(), "input", "many.npz", max_values=10**9, max_pixels=10**9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.status_code == 413
    assert peak < 8 << 20, peak


@pytest.mark.parametrize(
    "send",
    [
        {"files": {"input": ("x" * (1 << 16) + ".npy", b"\x93NUMPY junk")}},
        {"files": {"input": ("x.npy", files.npy_raw("<f4", (2,) * 32, b""))}},
    ],
)
def test_errors_quote_at_most_a_short_excerpt(client: httpx.Client, send: dict[str, Any]) -> None:
    # Issue 9, finding 8, through the API: a 64 KiB file name and a 32-dimensional shape.
    assert_short_refusal(client.post("/api/v1/compare", **send))
