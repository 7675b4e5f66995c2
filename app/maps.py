"""Where feature maps come from: seeded generators and decoded uploads.

Everything here returns numpy float32 arrays of shape (C, H, W); torch and the
web layer come later. Decoders read sizes from headers and refuse oversized or
unsafe content before allocating, and never unpickle anything.
"""

from __future__ import annotations

import io
import json
import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.errors import InvalidContent, TooLarge, UnreadableFile, UnsupportedType

# ---------------------------------------------------------------- generators


@dataclass(frozen=True)
class Generated:
    maps: np.ndarray  # (C, H, W) float32
    channel_names: list[str]
    # Ground truth some generators know, e.g. the cat/dog scene's "more cat than dog" mask.
    truth: dict[str, np.ndarray] = field(default_factory=dict)


def _smooth_fields(rng: np.random.Generator, n: int, h: int, w: int, scale: float) -> np.ndarray:
    """n spatially smooth random fields with unit standard deviation: (n, H, W).

    White noise low-passed with a Gaussian in the Fourier domain; `scale` is the
    blur radius in pixels, so features are about that wide at any map size.
    """
    noise = rng.standard_normal((n, h, w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    gain = np.exp(-2.0 * (np.pi * scale) ** 2 * (fy**2 + fx**2))  # (H, W//2+1)
    fields = np.fft.irfft2(np.fft.rfft2(noise) * gain, s=(h, w))
    std = fields.reshape(n, -1).std(axis=1)
    return (fields / np.where(std > 0, std, 1.0)[:, None, None]).astype(np.float32)


def _bump(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    """(1 − d²/r²)² inside radius r and exactly 0 outside: evidence with a clear edge."""
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    out: np.ndarray = np.clip(1.0 - d2 / (r * r), 0.0, None) ** 2
    return out


def _cats_and_dogs(rng: np.random.Generator, count: int, h: int, w: int) -> tuple[np.ndarray, ...]:
    """Two non-negative (H, W) maps of `count` bumps each, every dog overlapping a cat.

    Where they overlap both channels are positive, so which animal is stronger
    is a comparison across channels, not something either channel shows alone.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    radius = max(1.5, 0.25 * min(h, w))
    cat, dog = np.zeros((h, w)), np.zeros((h, w))
    for _ in range(count):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        cat += rng.uniform(0.6, 1.0) * _bump(yy, xx, cy, cx, radius * rng.uniform(0.8, 1.2))
        angle = rng.uniform(0, 2 * np.pi)
        dy, dx = 0.8 * radius * np.sin(angle), 0.8 * radius * np.cos(angle)
        r = radius * rng.uniform(0.8, 1.2)
        dog += rng.uniform(0.6, 1.0) * _bump(yy, xx, cy + dy, cx + dx, r)
    return cat, dog


def gaussian(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    maps = rng.standard_normal((c, h, w), dtype=np.float32)
    return Generated(maps, [f"noise {i}" for i in range(c)])


def smooth(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    rank = min(int(p["rank"]), c)
    latent = _smooth_fields(rng, rank, h, w, float(p["scale"]))  # (R, H, W)
    # Pattern j has weight (j+1)^-0.75: a decaying spectrum, as in real activations, so
    # a few directions carry most of the variance and each further one carries less.
    strength = np.arange(1, rank + 1) ** -0.75
    mix = (rng.standard_normal((c, rank)) * strength).astype(np.float32)  # (C, R)
    maps = np.einsum("cr,rhw->chw", mix, latent)  # (C, H, W)
    maps += float(p["noise"]) * rng.standard_normal((c, h, w)).astype(np.float32)
    return Generated(maps.astype(np.float32), [f"smooth {i}" for i in range(c)])


def nonnegative(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    # What an earlier layer's ReLU hands on: smooth activations with the negatives cut.
    g = smooth(rng, c, h, w, p)
    return Generated(np.maximum(g.maps, 0.0), [f"post-ReLU {i}" for i in range(c)])


def catdog(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    if c < 2:
        raise InvalidContent("The catdog generator needs channels >= 2 (0: cat, 1: dog).")
    blobs = int(p["blobs"])
    cat, dog = _cats_and_dogs(rng, blobs, h, w)
    maps = np.empty((c, h, w), dtype=np.float32)
    maps[0], maps[1] = cat, dog
    if c > 2:
        maps[2:] = 0.5 * _smooth_fields(rng, c - 2, h, w, 0.08 * min(h, w))
    names = ["cat evidence", "dog evidence"] + [f"distractor {i}" for i in range(2, c)]
    # Compared in float32, as the 1×1 conv sees them.
    return Generated(maps, names, {"cat_over_dog": maps[0] > maps[1]})


def edges(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    """Piecewise-constant maps: each channel a few axis-aligned rectangles on a flat level.

    Inside a flat region every pixel has the same channel vector, so any 1×1 conv
    is flat there too: only a layer that sees neighbours can find the edges.
    """
    maps = np.empty((c, h, w), dtype=np.float32)
    for i in range(c):
        maps[i] = rng.uniform(-0.5, 0.5)
        for _ in range(int(p["rectangles"])):
            y0, y1 = sorted(rng.integers(0, h + 1, size=2))
            x0, x1 = sorted(rng.integers(0, w + 1, size=2))
            maps[i, y0:y1, x0:x1] = rng.uniform(-1.0, 1.0)
    return Generated(maps, [f"shapes {i}" for i in range(c)], {"edge": edge_mask(maps)})


def edge_mask(maps: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that differ from a 4-neighbour in some channel of (C, H, W)."""
    h, w = maps.shape[1:]
    diff = np.zeros((h, w), dtype=bool)
    vertical = np.any(maps[:, 1:, :] != maps[:, :-1, :], axis=0)
    horizontal = np.any(maps[:, :, 1:] != maps[:, :, :-1], axis=0)
    diff[1:, :] |= vertical
    diff[:-1, :] |= vertical
    diff[:, 1:] |= horizontal
    diff[:, :-1] |= horizontal
    return diff


def photo(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    import torch

    from app.experiments import FILTER_BANK, filter_bank, sample_photo

    rgb = sample_photo(h, w, int(rng.integers(2**31)))
    maps = filter_bank(torch.from_numpy(rgb)).numpy()
    return Generated(np.ascontiguousarray(maps), list(FILTER_BANK))


@dataclass(frozen=True)
class GeneratorInfo:
    make: Callable[[np.random.Generator, int, int, int, dict[str, Any]], Generated]
    description: str
    # Extra parameters: name -> (default, minimum, maximum, what it does).
    params: dict[str, tuple[float, float, float, str]] = field(default_factory=dict)
    min_channels: int = 1
    # Set where the generator decides the channel count itself.
    fixed_channels: int | None = None


_SMOOTH_PARAMS = {
    "rank": (128, 1, 1024, "independent spatial patterns mixed; pattern j has weight (j+1)^-0.75"),
    "scale": (2.0, 0.0, 64.0, "blur radius of the patterns, in pixels"),
    "noise": (0.02, 0.0, 10.0, "standard deviation of independent per-channel noise"),
}

GENERATORS: dict[str, GeneratorInfo] = {
    "gaussian": GeneratorInfo(gaussian, "Signed Gaussian noise, N(0, 1): ReLU zeroes about half."),
    "catdog": GeneratorInfo(
        catdog,
        "Channel 0 is cat evidence, channel 1 dog evidence, as overlapping blobs; further "
        "channels are distractors. Knows where cat > dog.",
        {"blobs": (2, 1, 32, "blobs of each animal; each dog overlaps a cat")},
        min_channels=2,
    ),
    "smooth": GeneratorInfo(
        smooth,
        "Smooth, correlated signed maps of low effective rank across channels, like real "
        "activations: a few channels' worth of variance spread over all of them.",
        _SMOOTH_PARAMS,
    ),
    "nonnegative": GeneratorInfo(
        nonnegative,
        "The smooth maps after a ReLU, as an earlier layer would hand them on: ReLU-only "
        "changes nothing here.",
        _SMOOTH_PARAMS,
    ),
    "edges": GeneratorInfo(
        edges,
        "Piecewise-constant rectangles: a spatial pattern whose edges only a layer that "
        "sees neighbours (3×3) can find.",
        {"rectangles": (3, 0, 64, "rectangles per channel")},
    ),
    "photo": GeneratorInfo(
        photo,
        "A small outdoor scene drawn at run time (sky, sun, hills, a house), turned into 9 "
        "signed early-vision feature maps by a fixed filter bank: luminance, two colour-"
        "opponent channels, edges at 0/45/90/135°, centre-surround at two scales. "
        "channels is fixed at 9.",
        fixed_channels=9,
    ),
}


def generate(name: str, c: int, h: int, w: int, seed: int, params: dict[str, Any]) -> Generated:
    info = GENERATORS.get(name)
    if info is None:
        raise InvalidContent(f"Unknown generator {name!r}; use one of: {', '.join(GENERATORS)}.")
    resolved: dict[str, Any] = {}
    for key, (default, lo, hi, _) in info.params.items():
        value = params.get(key)
        value = default if value is None else value
        if not lo <= value <= hi:
            raise InvalidContent(
                f"Generator {name!r}: {key} must be between {lo} and {hi}; got {value}."
            )
        resolved[key] = value
    rng = np.random.default_rng(seed)
    return info.make(rng, c, h, w, resolved)


# ---------------------------------------------------------------- decoding

_NPY_MAGIC = b"\x93NUMPY"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_ZIP_MEMBERS = 64
# What zipfile raises on damaged or hostile archives (found by fuzzing, tests/test_hardening.py).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    EOFError,
    ValueError,
    OSError,
    OverflowError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)
_ACCEPTED = ".npy, .npz, .pt (zip format, as torch.save writes), .safetensors, PNG or JPEG"


@dataclass(frozen=True)
class Decoded:
    """Named arrays read from one file; `layout` is set where the format fixes it (images)."""

    arrays: dict[str, np.ndarray]
    format: str
    layout: str | None = None


def _check_values(shape: tuple[int, ...], max_values: int, what: str) -> None:
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count > max_values:
        raise TooLarge(
            f"{what} declares shape {list(shape)} = {count} values; the limit is {max_values} "
            "(ONEBYONE_MAX_VALUES). Send a smaller array."
        )


def _check_dtype(dtype: np.dtype[Any], what: str) -> None:
    if dtype.hasobject:
        raise UnsupportedType(
            f"{what} holds Python objects, which can only be read by unpickling, and uploads "
            "are never unpickled. Save a numeric array (e.g. float32)."
        )
    if dtype.kind not in "biuf":
        raise UnsupportedType(
            f"{what} has dtype {dtype}; send a real numeric array (bool, int or float)."
        )


def _read_npy(data: bytes, max_values: int, what: str) -> np.ndarray:
    f = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise UnreadableFile(f"{what}: .npy format version {version} is not supported.")
    except (ValueError, EOFError, SyntaxError, TypeError, KeyError, tokenize.TokenError) as exc:
        # numpy parses the header with tokenize and ast: a damaged one raises any of these.
        raise UnreadableFile(f"{what} is not a readable .npy file: {exc}") from None
    _check_dtype(dtype, what)
    _check_values(shape, max_values, what)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    offset = f.tell()
    if len(data) - offset < count * dtype.itemsize:
        raise UnreadableFile(
            f"{what} is truncated: its header declares shape {list(shape)} ({dtype}), "
            f"{count * dtype.itemsize} bytes, but only {len(data) - offset} follow."
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_zip_members(zf: zipfile.ZipFile, max_bytes: int, what: str) -> dict[str, bytes]:
    # Not ZipInfo.is_dir(): it indexes the name, and a damaged entry's name can be empty.
    infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
    if len(infos) > _MAX_ZIP_MEMBERS:
        raise UnreadableFile(f"{what} has {len(infos)} members; at most {_MAX_ZIP_MEMBERS}.")
    declared = sum(i.file_size for i in infos)
    if declared > max_bytes:
        raise TooLarge(
            f"{what} expands to {declared} bytes; the limit is {max_bytes}. Send less data."
        )
    out: dict[str, bytes] = {}
    budget = max_bytes
    for info in infos:
        # Read one byte past the declared size: a member that lies about it is caught here.
        try:
            with zf.open(info) as member:
                blob = member.read(min(info.file_size, budget) + 1)
        except _ZIP_ERRORS as exc:
            # Damaged headers, bad CRCs, unknown compression, encryption: all unreadable.
            raise UnreadableFile(
                f"{what}: member {info.filename!r} cannot be read: {exc}"
            ) from None
        if len(blob) > info.file_size or len(blob) > budget:
            raise TooLarge(f"{what}: member {info.filename!r} expands beyond its declared size.")
        budget -= len(blob)
        out[info.filename] = blob
    return out


def _read_npz(zf: zipfile.ZipFile, max_values: int, what: str) -> dict[str, np.ndarray]:
    members = _read_zip_members(zf, max_values * 8 + 4096 * _MAX_ZIP_MEMBERS, what)
    arrays = {}
    for name, blob in members.items():
        key = name[:-4] if name.endswith(".npy") else name
        arrays[key] = _read_npy(blob, max_values, f"{what} member {key!r}")
    return arrays


def _read_pt(data: bytes, zf: zipfile.ZipFile, max_values: int, what: str) -> dict[str, np.ndarray]:
    import torch

    _read_zip_members(zf, max_values * 8 + (1 << 20), what)  # size check only
    try:
        # weights_only: a restricted unpickler that builds tensors and containers, never code.
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad or hostile file
        raise UnreadableFile(
            f"{what} could not be read as a tensor file with torch.load(weights_only=True): "
            f"{str(exc).splitlines()[0][:300]}. Save a tensor or a state dict."
        ) from None
    tensors: dict[str, Any] = {}
    if isinstance(obj, torch.Tensor):
        tensors["tensor"] = obj
    elif isinstance(obj, dict):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UnreadableFile(f"{what} holds no tensors; save a tensor or a state dict.")
    return {k: _torch_to_numpy(v, max_values, f"{what} {k!r}") for k, v in tensors.items()}


def _torch_to_numpy(t: Any, max_values: int, what: str) -> np.ndarray:
    import torch

    _check_values(tuple(t.shape), max_values, what)
    if t.is_complex():
        raise UnsupportedType(f"{what} has dtype {t.dtype}; send a real numeric tensor.")
    try:
        return t.detach().to(torch.float32).numpy()  # type: ignore[no-any-return]
    except (RuntimeError, TypeError):
        raise UnsupportedType(f"{what} has dtype {t.dtype}; send a real numeric tensor.") from None


def _read_safetensors(data: bytes, max_values: int, what: str) -> dict[str, np.ndarray]:
    from safetensors.torch import load as st_load

    if len(data) < 8:
        raise UnreadableFile(f"{what} is too short to be a .safetensors file.")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise UnreadableFile(f"{what} is truncated: its header is longer than the file.")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableFile(f"{what} has a malformed .safetensors header: {exc}") from None
    if not isinstance(header, dict):
        raise UnreadableFile(f"{what} has a malformed .safetensors header.")
    for name, entry in header.items():
        if name != "__metadata__" and isinstance(entry, dict):
            _check_values(tuple(entry.get("shape", ())), max_values, f"{what} {name!r}")
    try:
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise UnreadableFile(f"{what} is not a readable .safetensors file: {exc}") from None
    return {k: _torch_to_numpy(v, max_values, f"{what} {k!r}") for k, v in tensors.items()}


def _read_image(data: bytes, max_pixels: int, what: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies below; Pillow's bomb warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise TooLarge(
                    f"{what} is {w}×{h} = {w * h} pixels; the limit is {max_pixels} "
                    "(ONEBYONE_MAX_IMAGE_PIXELS). Resize it."
                )
            img.load()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise UnreadableFile(f"{what} is not a readable image: {exc}") from None
    if img.mode in ("I", "I;16", "F"):
        arr = np.asarray(img, dtype=np.float32)[:, :, None]
    else:
        mode = "L" if img.mode in ("1", "L", "LA") else "RGB"
        arr = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
        if arr.ndim == 2:
            arr = arr[:, :, None]
    return arr  # (H, W, C)


def decode(data: bytes, what: str, *, max_values: int, max_pixels: int) -> Decoded:
    """Named arrays from an uploaded file, recognised by its content, not its name."""
    if not data:
        raise UnreadableFile(f"{what} is empty; send one of: {_ACCEPTED}.")
    if data.startswith(_NPY_MAGIC):
        return Decoded({"array": _read_npy(data, max_values, what)}, "npy")
    if data.startswith(_PNG_MAGIC) or data.startswith(_JPEG_MAGIC):
        return Decoded({"image": _read_image(data, max_pixels, what)}, "image", "hwc")
    if data.startswith(_ZIP_MAGIC):
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            names = zf.namelist()
        except _ZIP_ERRORS as exc:
            raise UnreadableFile(f"{what} is a damaged zip archive: {exc}") from None
        with zf:
            if any(n.endswith("data.pkl") for n in names):
                return Decoded(_read_pt(data, zf, max_values, what), "pt")
            if names and all(n.endswith(".npy") for n in names):
                try:
                    return Decoded(_read_npz(zf, max_values, what), "npz")
                except _ZIP_ERRORS as exc:
                    raise UnreadableFile(f"{what} is a damaged .npz: {exc}") from None
        raise UnsupportedType(
            f"{what} is a zip archive but neither an .npz nor a torch.save file; "
            f"send one of: {_ACCEPTED}."
        )
    if len(data) >= 9 and data[8:9] == b"{":
        return Decoded(_read_safetensors(data, max_values, what), "safetensors")
    if data[:1] == b"\x80":
        raise UnsupportedType(
            f"{what} looks like a raw pickle (or a legacy torch.save file); uploads are never "
            "unpickled. Save with torch.save (zip format, the default) or as .npy/.safetensors."
        )
    raise UnsupportedType(f"{what} is not a supported file type; send one of: {_ACCEPTED}.")


def pick(decoded: Decoded, preferred: str, what: str) -> np.ndarray:
    """The one array a file holds, or the one named `preferred` among several."""
    if preferred in decoded.arrays:
        return decoded.arrays[preferred]
    if len(decoded.arrays) == 1:
        return next(iter(decoded.arrays.values()))
    raise InvalidContent(
        f"{what} holds several arrays ({', '.join(sorted(decoded.arrays))}); "
        f"name the one to use {preferred!r}."
    )


# ---------------------------------------------------------------- layouts

LAYOUTS = ("auto", "chw", "hwc", "nchw", "nhwc")

AUTO_RULE = (
    "2-D arrays are one channel (H, W). 4-D arrays need N = 1 and are read as 3-D. For a 3-D "
    "shape (a, b, c): if b == c and a != b it is CHW; if a == b and c != a it is HWC; "
    "otherwise if exactly one of a and c is 1, 3 or 4 that axis holds the channels; anything "
    "else is ambiguous and refused: set layout to chw or hwc."
)


def _auto_layout(shape: tuple[int, ...]) -> str:
    a, b, c = shape
    if b == c and a != b:
        return "chw"
    if a == b and c != a:
        return "hwc"
    small_first, small_last = a in (1, 3, 4), c in (1, 3, 4)
    if small_first != small_last:
        return "chw" if small_first else "hwc"
    raise InvalidContent(
        f"The array's shape {list(shape)} is ambiguous: it could be CHW or HWC. "
        'Set "layout" to "chw" or "hwc" in the spec.'
    )


def to_chw(arr: np.ndarray, layout: str, what: str = "input") -> np.ndarray:
    """A decoded array as contiguous float32 (C, H, W), by `layout` or the documented auto rule."""
    if layout not in LAYOUTS:
        raise InvalidContent(f"Unknown layout {layout!r}; use one of: {', '.join(LAYOUTS)}.")
    shape = arr.shape
    if 0 in shape:
        raise InvalidContent(f"The {what} array is empty (shape {list(shape)}).")
    if arr.ndim == 4:
        if shape[0] != 1:
            raise InvalidContent(
                f"The {what} is a batch of {shape[0]} (shape {list(shape)}); send one map (N = 1)."
            )
        arr = arr[0]
        layout = {"nchw": "chw", "nhwc": "hwc"}.get(layout, layout)
    elif layout in ("nchw", "nhwc"):
        raise InvalidContent(f"Layout {layout!r} needs a 4-D array; the {what} is {arr.ndim}-D.")
    if arr.ndim == 2:
        arr = arr[None]
        layout = "chw"
    if arr.ndim != 3:
        raise InvalidContent(
            f"The {what} has {arr.ndim} dimensions (shape {list(shape)}); send 2-D (H, W), "
            "3-D (C, H, W or H, W, C) or 4-D with N = 1."
        )
    if layout == "auto":
        layout = _auto_layout(arr.shape)
    if layout == "hwc":
        arr = arr.transpose(2, 0, 1)
    out = np.ascontiguousarray(arr, dtype=np.float32)  # (C, H, W)
    check_finite(out, what)
    return out


def check_finite(arr: np.ndarray, what: str) -> None:
    if not np.isfinite(arr).all():
        bad = int(arr.size - np.isfinite(arr).sum())
        raise InvalidContent(
            f"The {what} holds {bad} NaN or infinite values (or values too large for float32); "
            "replace them with finite numbers."
        )
