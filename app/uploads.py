"""Safe decoding of uploaded files: .npy, .npz, .pt, .safetensors and PNG/JPEG images.

Everything here returns numpy arrays; `to_chw` turns one into float32 (C, H, W).
Decoders read sizes from headers and refuse oversized or unsafe content before
allocating, and never unpickle anything.
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import threading
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from app import torchsave
from app.errors import Cancelled, InvalidContent, TooLarge, UnreadableFile, UnsupportedType, excerpt
from app.schemas.requests import Layout

if TYPE_CHECKING:
    from PIL import Image

_NPY_MAGIC = b"\x93NUMPY"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_ZIP_MEMBERS = 64
# Tensors in one file, zero-size ones included (a ResNet-50 state dict has 320; torch.save
# writes one zip member per storage). Counted before torch.load or safetensors builds any.
MAX_TENSORS = 4096
_MAX_PT_MEMBERS = MAX_TENSORS
# A torch.save pickle spends about 36 opcodes on each tensor of a state dict (measured on
# torchvision's MobileNetV2): 64 each leaves room for the containers around them.
_MAX_PICKLE_OPS = 64 * MAX_TENSORS
# Dict entries a .pt's walk visits (tensors, numbers, nested dicts), each container once.
_MAX_ENTRIES = 4 * MAX_TENSORS
# Characters in one array's name: a layer name as long as weights.layer takes (1000,
# schemas.WeightsSpec) and its longest leaf (".num_batches_tracked") fit.
MAX_NAME = 1024
# How deep a .pt's nested dicts are read ({"state_dict": {…}}, {"model": …, "optimizer": …}).
_MAX_PT_DEPTH = 8
# Bytes of .safetensors header read (the JSON before the data): 4096 entries with names of
# 1000 characters fit.
_MAX_SAFETENSORS_HEADER = 8 << 20
# How many names a refusal lists before it says how many more there are.
_LISTED = 10
# Where training checkpoints keep the model's state dict (checkpoints.WRAPPERS strips them).
_MODEL_KEYS = ("state_dict", "model_state_dict", "model")
# Bytes of zip directory read (an entry is 46 bytes plus its name): room for thousands of
# entries, as a torch.save checkpoint of a whole network has.
_MAX_ZIP_DIRECTORY = 1024 * 1024
# Dimensions of an array (numpy allows 64).
_MAX_DIMS = 32
# Bytes that hold any .npy header numpy reads (magic, length, at most 64 kB of text).
_NPY_HEAD = 12 + 65536
# Bytes copied at a time while the GIL is held.
_PIECE = 1024 * 1024
# What zipfile raises on damaged or hostile archives (found by fuzzing, tests/test_uploads.py).
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
_ACCEPTED = ".npy, .npz, .pt/.pth (torch.save), .safetensors, PNG or JPEG"
# The first torch releases whose torch.load(weights_only=True) has no known way around it:
# CVE-2025-32434 (code execution, fixed in 2.6) and CVE-2026-24747 (memory corruption
# through SETITEM on non-dicts and storages whose declared size differs from their bytes,
# fixed in 2.10).
_TORCH_FLOOR = (2, 10)


@dataclass(frozen=True)
class Decoded:
    """Named arrays read from one file; `layout` is set where the format fixes it (images)."""

    arrays: dict[str, np.ndarray]
    format: str
    layout: str | None = None


def _quote(value: object) -> str:
    """A header's value in a message: short, escaped, without the quotes of a string."""
    return excerpt(value, 80).strip("'")


def _check_values(shape: object, max_values: int, what: str, used: int = 0) -> int:
    """The number of values a header's shape declares, once it is known to be a real shape.

    A shape is a list of at most _MAX_DIMS non-negative whole numbers; their product is
    taken in Python integers (no int64 overflow) and must be within `max_values`. Nothing
    is allocated or converted before this check.
    """
    if (
        not isinstance(shape, tuple | list)
        or len(shape) > _MAX_DIMS
        or not all(type(d) is int for d in shape)
    ):
        raise UnreadableFile(
            f"{what} declares the shape {_quote(shape)}; a shape is a list of at most "
            f"{_MAX_DIMS} whole numbers.",
            code="bad_header",
        )
    if any(d < 0 for d in shape):
        raise UnreadableFile(
            f"{what} declares the shape {_quote(list(shape))}, with a negative size.",
            code="bad_header",
        )
    count = math.prod(shape)
    # The count must fit in what the file has left; with a 0 among the sizes the count is
    # 0, but the other sizes must still be real ones (each product within the limit).
    if count > max_values - used or math.prod(d for d in shape if d) > max_values:
        others = f", and the file's arrays before it hold {used}" if used else ""
        raise TooLarge(
            f"{what} declares shape {_quote(list(shape))} = {_quote(count)} values; "
            f"the limit is {max_values} for a whole file (ONEBYONE_MAX_VALUES){others}. "
            "Send a smaller array."
        )
    return count


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


def _read_npy(data: bytes | bytearray, max_values: int, what: str, used: int = 0) -> np.ndarray:
    # The header from a copy of the first bytes only (numpy refuses headers over 10 kB).
    f = io.BytesIO(bytes(data[:_NPY_HEAD]))
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
        raise UnreadableFile(
            f"{what} is not a readable .npy file: {excerpt(exc, 200)}", code="bad_header"
        ) from None
    _check_dtype(dtype, what)
    count = _check_values(shape, max_values, what, used)
    offset = f.tell()
    if len(data) - offset < count * dtype.itemsize:
        raise UnreadableFile(
            f"{what} is truncated: its header declares shape {list(shape)} ({dtype}), "
            f"{count * dtype.itemsize} bytes, but only {len(data) - offset} follow.",
            code="truncated",
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytearray:
    """A member's bytes, at most limit + 1 of them (one more shows that it lies), read in
    pieces: zipfile reads a large member with big copies that hold the GIL, and the event
    loop (/healthz) would wait for them."""
    buf = bytearray()
    with zf.open(info) as member:
        while len(buf) <= limit and (piece := member.read(min(_PIECE, limit + 1 - len(buf)))):
            buf += piece
    return buf


def _read_zip_members(
    zf: zipfile.ZipFile,
    max_bytes: int,
    what: str,
    max_members: int = _MAX_ZIP_MEMBERS,
    keep: bool = True,
) -> dict[str, bytearray]:
    """Every member's bytes, each checked against its declared size and a total budget.

    With keep=False the members are only checked, one at a time, and nothing is kept.
    """
    # Not ZipInfo.is_dir(): it indexes the name, and a damaged entry's name can be empty.
    infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
    if len(infos) > max_members:
        raise UnreadableFile(f"{what} has {len(infos)} members; at most {max_members}.")
    declared = sum(i.file_size for i in infos)
    if declared > max_bytes:
        raise TooLarge(
            f"{what} expands to {declared} bytes; the limit is {max_bytes}. Send less data."
        )
    out: dict[str, bytearray] = {}
    budget = max_bytes
    for info in infos:
        # Read one byte past the declared size: a member that lies about it is caught here.
        try:
            blob = _read_member(zf, info, min(info.file_size, budget))
        except _ZIP_ERRORS as exc:
            # Damaged headers, bad CRCs, unknown compression, encryption: all unreadable.
            raise UnreadableFile(
                f"{what}: member {excerpt(info.filename)} cannot be read: {excerpt(exc, 200)}"
            ) from None
        if len(blob) > info.file_size or len(blob) > budget:
            raise TooLarge(
                f"{what}: member {excerpt(info.filename)} expands beyond its declared size."
            )
        budget -= len(blob)
        if keep:
            out[info.filename] = blob
    return out


def _read_npz(zf: zipfile.ZipFile, max_values: int, what: str) -> dict[str, np.ndarray]:
    # Expanded, an .npz holds at most what max_values float32 values take (plus headers):
    # a compressed file cannot cost more memory than the same data sent plainly.
    members = _read_zip_members(zf, max_values * 4 + 4096 * _MAX_ZIP_MEMBERS, what)
    arrays = {}
    total = 0
    for name, blob in members.items():
        key = name[:-4] if name.endswith(".npy") else name
        arrays[key] = _read_npy(blob, max_values, f"{what} member {excerpt(key)}", total)
        total += arrays[key].size
    return arrays


def _check_stop(stop: threading.Event | None) -> None:
    """Raise Cancelled once nobody wants the file read (its request timed out or left)."""
    if stop is not None and stop.is_set():
        raise Cancelled("stopped while reading an upload")


def listed(names: list[str], limit: int = _LISTED) -> str:
    """At most `limit` names from a file, each a short escaped excerpt, and how many more."""
    shown = ", ".join(excerpt(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def torch_reads_safely(version: str) -> bool:
    """Whether torch `version` ("2.10.0+cu128") is at or past _TORCH_FLOOR as released.

    A pre-release of the floor itself (2.10.0a0, .dev, rc) may predate the fix: not trusted;
    a post-release (2.10.0.post1) comes after it.
    """
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?([^+]*)", version)
    if m is None:
        return False
    release = (int(m.group(1)), int(m.group(2)))
    if release != _TORCH_FLOOR:
        return release > _TORCH_FLOOR
    return re.fullmatch(r"(\.post\d+)?", m.group(4)) is not None


def check_torch(version: str) -> None:
    """Refuse to read .pt/.pth files with a torch whose weights_only loader can be bypassed."""
    if not torch_reads_safely(version):
        floor = ".".join(map(str, _TORCH_FLOOR))
        raise UnsupportedType(
            f"This server runs torch {excerpt(version)}, whose torch.load(weights_only=True) "
            "has known ways around it (CVE-2025-32434, fixed in 2.6; CVE-2026-24747, fixed "
            f"in 2.10), so it reads no .pt/.pth files. Send the weights as .safetensors or "
            f".npy, or upgrade the server's torch to {floor} or later.",
            code="torch_too_old",
        )


# A weights_only refusal: torch's advice around it is for people who trust the file.
_TORCH_REASON = re.compile(r"WeightsUnpickler error: ([^\n]*)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _torch_reason(exc: BaseException) -> str:
    """What torch.load said was wrong, in one short line: no ANSI escapes, no advice."""
    text = _ANSI.sub("", str(exc))
    found = _TORCH_REASON.search(text)
    line = found.group(1) if found else next((x for x in text.splitlines() if x.strip()), "")
    # "Unsupported global: GLOBAL print was not an allowed global by default.
    # Please use …": the first sentence says it all.
    line = re.split(r"(?<=[.!?]) ", line.strip(), maxsplit=1)[0]
    if "weights_only=False" in line or not line:
        line = type(exc).__name__
    return excerpt(line.rstrip("."), 200).strip("'")


def _torch_load(data: bytes | bytearray, what: str) -> Any:
    import torch

    try:
        # weights_only: a restricted unpickler that builds tensors and containers, never code.
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad or hostile file
        raise UnreadableFile(
            f"{what} could not be read as a tensor file with torch.load(weights_only=True): "
            f"{_torch_reason(exc)}. Save a tensor or a state dict."
        ) from None


def _pt_members(zf: zipfile.ZipFile, what: str) -> tuple[str, dict[str, int]]:
    """The zip-format torch.save archive's data.pkl member, and each storage's member size."""
    pickles = [i.filename for i in zf.infolist() if i.filename.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise UnreadableFile(
            f"{what} is a zip archive with {len(pickles)} data.pkl members; torch.save writes one."
        )
    root = pickles[0][: -len("data.pkl")]
    data_dir = f"{root}data/"
    sizes = {
        i.filename[len(data_dir) :]: i.file_size
        for i in zf.infolist()
        if i.filename.startswith(data_dir)
    }
    return pickles[0], sizes


def _read_pt(
    data: bytes | bytearray,
    zf: zipfile.ZipFile,
    max_values: int,
    what: str,
    stop: threading.Event | None,
) -> dict[str, np.ndarray]:
    import torch

    check_torch(torch.__version__)
    # Checked member by member before torch reads the file: a member that lies about its
    # size is refused here, and at most one member is held at a time.
    _read_zip_members(zf, max_values * 8 + (1 << 20), what, _MAX_PT_MEMBERS, keep=False)
    pkl, sizes = _pt_members(zf, what)
    try:
        pickle = _read_member(zf, zf.getinfo(pkl), zf.getinfo(pkl).file_size)
    except _ZIP_ERRORS as exc:
        raise UnreadableFile(f"{what}: its data.pkl cannot be read: {excerpt(exc, 200)}") from None
    # Every storage's declared size against its member, and the pickle's size, before
    # torch.load builds anything.
    torchsave.zip_storages(
        pickle, sizes, what, max_ops=_MAX_PICKLE_OPS, max_tensors=MAX_TENSORS, stop=stop
    )
    del pickle
    tensors = _state_dict(_torch_load(data, what), what, stop)
    return _tensors_to_numpy(tensors, max_values, what, stop)


def _read_legacy(
    data: bytes | bytearray, max_values: int, what: str, stop: threading.Event | None
) -> dict[str, np.ndarray]:
    """A torch.save file in the legacy format (before PyTorch 1.6), as torchvision's own
    older weights are: its storages checked against their bytes, then torch.load."""
    import torch

    check_torch(torch.__version__)
    torchsave.legacy(
        data,
        what,
        max_ops=_MAX_PICKLE_OPS,
        max_tensors=MAX_TENSORS,
        max_storages=_MAX_PT_MEMBERS,
        max_bytes=max_values * 8 + (1 << 20),
        stop=stop,
    )
    tensors = _state_dict(_torch_load(data, what), what, stop)
    return _tensors_to_numpy(tensors, max_values, what, stop)


def _state_dict(obj: Any, what: str, stop: threading.Event | None) -> dict[str, Any]:
    """The tensors of what torch.load built, by dotted name as a state dict names them.

    Nested dicts are read as dotted names (as a state dict names submodules), each
    container once however often it is referred to (a dict may hold itself), at most
    _MAX_PT_DEPTH deep and _MAX_ENTRIES entries in all; a name is counted against MAX_NAME
    before it is built. Keys are strings or whole numbers (an optimizer's state); entries
    under other keys are skipped, as are values that are neither tensors nor dicts.
    """
    import torch

    tensors: dict[str, Any] = {}
    if isinstance(obj, torch.Tensor):
        return {"tensor": obj}
    if not isinstance(obj, dict):
        raise UnreadableFile(f"{what} holds a {type(obj).__name__}, not a tensor or a state dict.")
    # A training checkpoint ({"model": …, "optimizer": …, "epoch": 3}) holds the model
    # under one of the usual names: read only that, not the optimizer's state.
    for key in _MODEL_KEYS:
        if isinstance(obj.get(key), dict):
            obj = {key: obj[key]}
            break
    seen: set[int] = set()
    entries = skipped = 0
    todo: list[tuple[str, dict[Any, Any], int]] = [("", obj, 0)]
    while todo:
        prefix, d, depth = todo.pop(0)
        if id(d) in seen:
            continue
        seen.add(id(d))
        for k, v in d.items():
            entries += 1
            if entries > _MAX_ENTRIES:
                raise TooLarge(
                    f"{what} holds more than {_MAX_ENTRIES} entries in its dicts; a state "
                    f"dict of at most {MAX_TENSORS} tensors has fewer. Save only the model's "
                    "state dict."
                )
            if entries % 1024 == 0:
                _check_stop(stop)
            is_tensor = isinstance(v, torch.Tensor)
            if not is_tensor and not (isinstance(v, dict) and depth < _MAX_PT_DEPTH):
                continue
            if isinstance(k, str):
                key = k
            elif isinstance(k, int) and not isinstance(k, bool):
                key = str(k)
            else:
                skipped += 1  # a tensor or a tuple as a key names no module
                continue
            if len(prefix) + len(key) > MAX_NAME:
                raise _name_too_long(what, prefix, key)
            name = f"{prefix}{key}"
            if is_tensor:
                if name in tensors:
                    raise UnreadableFile(
                        f"{what} holds two tensors named {excerpt(name)}; names must be unique.",
                        code="duplicate_name",
                    )
                tensors[name] = v
            else:
                todo.append((name + ".", v, depth + 1))
    if not tensors:
        others = f" ({skipped} under keys that are not strings)" if skipped else ""
        raise UnreadableFile(f"{what} holds no tensors{others}; save a tensor or a state dict.")
    return tensors


def _name_too_long(what: str, prefix: str, key: str) -> InvalidContent:
    return InvalidContent(
        f"{what} holds a tensor named {excerpt(prefix + key[:80], 60)} of "
        f"{len(prefix) + len(key)} characters or more; names of at most {MAX_NAME} are read "
        "(a layer name of at most 1000 and its leaf). Rename it.",
        code="name_too_long",
    )


def _tensors_to_numpy(
    tensors: dict[str, Any], max_values: int, what: str, stop: threading.Event | None
) -> dict[str, np.ndarray]:
    for name, t in tensors.items():
        _check_plain(t, f"{what} tensor {excerpt(name)}")
    # Many views of one storage are cheap to store and costly to convert: bound the total.
    total = sum(int(t.numel()) for t in tensors.values())
    if total > 2 * max_values:
        raise TooLarge(
            f"{what} holds {len(tensors)} tensors with {total} values in all; the limit is "
            f"{2 * max_values} (2 × ONEBYONE_MAX_VALUES). Save only the model's state dict."
        )
    out = {}
    for i, (k, v) in enumerate(tensors.items()):
        if i % 64 == 0:
            _check_stop(stop)
        out[k] = _torch_to_numpy(v, max_values, f"{what} tensor {excerpt(k)}")
    return out


def _check_plain(t: Any, what: str) -> None:
    """A dense tensor in memory: nested, sparse, quantized and meta tensors have no plain
    shape or values to read (a nested tensor's .shape raises)."""
    import torch

    if t.is_nested:
        kind = "nested"
    elif t.layout != torch.strided:
        kind = "sparse"
    elif t.is_quantized:
        kind = "quantized"
    elif t.is_meta:
        kind = "meta (it has no values)"
    else:
        return
    raise UnsupportedType(
        f"{what} is a {kind} tensor; save plain dense tensors (tensor.to_dense(), "
        "tensor.dequantize()).",
        code="tensor_kind",
    )


def _torch_to_numpy(t: Any, max_values: int, what: str) -> np.ndarray:
    import torch

    _check_plain(t, what)
    _check_values(tuple(t.shape), max_values, what)
    if t.is_complex():
        raise UnsupportedType(f"{what} has dtype {t.dtype}; send a real numeric tensor.")
    try:
        return t.detach().to(torch.float32).numpy()  # type: ignore[no-any-return]
    except (RuntimeError, TypeError):
        raise UnsupportedType(f"{what} has dtype {t.dtype}; send a real numeric tensor.") from None


# Bytes per value of each dtype a .safetensors header may name.
_SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


def _check_safetensors_header(header: object, size: int, max_values: int, what: str) -> None:
    """Every entry of a .safetensors header: a known dtype, a real shape within the limit,
    offsets inside the data that hold exactly that many bytes; all entries together within
    max_values. `size` is the number of data bytes after the header."""
    if not isinstance(header, dict):
        raise UnreadableFile(f"{what} has a malformed .safetensors header.", code="bad_header")
    _check_tensor_count(len(header) - ("__metadata__" in header), what)
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{what} tensor {excerpt(name)}"
        if not isinstance(entry, dict):
            raise UnreadableFile(f"{where}: its header entry is not an object.", code="bad_header")
        dtype = entry.get("dtype")
        if not isinstance(dtype, str) or dtype not in _SAFETENSORS_DTYPES:
            raise UnsupportedType(
                f"{where} has dtype {excerpt(dtype)}; send one of {', '.join(_SAFETENSORS_DTYPES)}."
            )
        count = _check_values(entry.get("shape"), max_values, where, total)
        total += count
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= size
            or offsets[1] - offsets[0] != count * _SAFETENSORS_DTYPES[dtype]
        ):
            raise UnreadableFile(
                f"{where}: its data_offsets {excerpt(offsets)} do not hold {count} {dtype} "
                f"values inside the file's {size} data bytes.",
                code="bad_header",
            )


def _check_tensor_count(count: int, what: str) -> None:
    if count > MAX_TENSORS:
        raise TooLarge(
            f"{what} holds {count} tensors or more; the limit is {MAX_TENSORS} tensors "
            "(zero-size ones count too). Save only the model's state dict."
        )


def _counting_pairs(what: str) -> Any:
    """An object_pairs_hook for json.loads that refuses a header of too many objects while
    it is parsed: each tensor's entry is an object, handed over as soon as it ends."""
    count = 0

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal count
        count += 1
        _check_tensor_count(count - 2, what)  # the header itself and its __metadata__
        return dict(pairs)

    return hook


def _read_safetensors(
    data: bytes | bytearray, max_values: int, what: str, stop: threading.Event | None
) -> dict[str, np.ndarray]:
    from safetensors.torch import load as st_load

    if len(data) < 8:
        raise UnreadableFile(f"{what} is too short to be a .safetensors file.")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise UnreadableFile(f"{what} is truncated: its header is longer than the file.")
    if header_len > _MAX_SAFETENSORS_HEADER:
        raise TooLarge(
            f"{what} has a header of {header_len} bytes; at most {_MAX_SAFETENSORS_HEADER} "
            f"are read (room for {MAX_TENSORS} tensors). Save only the model's state dict."
        )
    try:
        header = json.loads(data[8 : 8 + header_len], object_pairs_hook=_counting_pairs(what))
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and an integer longer than
        # Python's digit limit (sys.get_int_max_str_digits).
        raise UnreadableFile(
            f"{what} has a malformed .safetensors header: {excerpt(exc, 200)}", code="bad_header"
        ) from None
    _check_safetensors_header(header, len(data) - 8 - header_len, max_values, what)
    _check_stop(stop)
    try:
        tensors = st_load(bytes(data))  # the library takes bytes only
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise UnreadableFile(
            f"{what} is not a readable .safetensors file: {excerpt(exc, 200)}"
        ) from None
    return _tensors_to_numpy(tensors, max_values, what, stop)


def _read_image(
    data: bytes | bytearray,
    max_pixels: int,
    max_values: int,
    max_side: tuple[int, int] | None,
    what: str,
) -> np.ndarray:
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
            if max_side is not None and (h > max_side[0] or w > max_side[1]):
                raise TooLarge(
                    f"{what} is {w}×{h} pixels; the largest map is {max_side[1]}×{max_side[0]} "
                    "(ONEBYONE_MAX_WIDTH × ONEBYONE_MAX_HEIGHT). Resize it."
                )
            # Its values once decoded (grey: 1 per pixel, else 3), before decoding.
            _check_values((h, w, 1 if img.mode in ("1", "L", "LA") else 3), max_values, what)
            img.load()
    except Image.DecompressionBombError:
        # Pillow's own guard, at twice its MAX_IMAGE_PIXELS: the header declares more.
        raise TooLarge(
            f"{what} declares more than {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels; the limit "
            f"is {max_pixels} (ONEBYONE_MAX_IMAGE_PIXELS). Resize it."
        ) from None
    except UnidentifiedImageError:
        # Its message names an in-memory file object, which means nothing to the client.
        raise UnreadableFile(
            f"{what} is not a readable image: its header is damaged (size, bit depth, colour "
            "type or checksum). Re-save it as PNG or JPEG."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnreadableFile(f"{what} is not a readable image: {excerpt(exc, 200)}") from None
    # Every bit depth is scaled the same way, to [0, 1] by its largest code.
    if img.mode.startswith("I;16") or (img.mode == "I" and _png_bit_depth(data) == 16):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
    elif img.mode in ("I", "F"):
        raise UnsupportedType(
            f"{what} has {img.mode} pixels (32-bit); send an 8- or 16-bit image, or the "
            "values as .npy.",
            code="image_mode",
        )
    else:
        mode = "L" if img.mode in ("1", "L", "LA") else "RGB"
        arr = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr  # (H, W, C)


def _png_bit_depth(data: bytes | bytearray) -> int:
    """The bit depth a PNG's IHDR declares (byte 24), or 0 for anything else."""
    return data[24] if data.startswith(_PNG_MAGIC) and len(data) > 24 else 0


# What each known extension promises, so a file that breaks the promise gets a 400 that
# says so rather than a 415 "unsupported type".
_EXTENSIONS = {
    ".npy": ".npy",
    ".npz": ".npz",
    ".pt": "torch.save",
    ".pth": "torch.save",
    ".safetensors": ".safetensors",
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
ARRAY_EXTENSIONS = tuple(e for e in _EXTENSIONS if e not in IMAGE_EXTENSIONS)


class _DirectoryReader(io.BytesIO):
    """The upload for zipfile, refusing any single read over `limit` while it is set.

    zipfile reads the central directory in one read of the size the archive declares, and
    makes an object of every entry in it: 128 MiB of directory would be millions of them.
    """

    limit: int | None = None

    def read(self, size: int | None = -1, /) -> bytes:
        wanted = size if size is not None and size >= 0 else len(self.getbuffer()) - self.tell()
        if self.limit is not None and wanted > self.limit:
            raise TooLarge(
                f"The archive's directory is over {self.limit} bytes; at most "
                f"{_MAX_ZIP_MEMBERS} members are read.",
                code="too_large",
            )
        return super().read(size)


def _open_zip(data: bytes | bytearray, what: str) -> zipfile.ZipFile:
    reader = _DirectoryReader(data)
    reader.limit = _MAX_ZIP_DIRECTORY
    zf = zipfile.ZipFile(reader)
    reader.limit = None
    return zf


def _kind(data: bytes | bytearray) -> str | None:
    """Which format the bytes start as (npy, image, zip, safetensors, pickle), or None.

    The one place a format is recognised: _sniff reads by it, and decode tells a damaged
    file with a known extension (no kind) from one whose inside is unsupported.
    """
    if data.startswith(_NPY_MAGIC):
        return "npy"
    if data.startswith((_PNG_MAGIC, _JPEG_MAGIC)):
        return "image"
    if data.startswith(_ZIP_MAGIC):
        return "zip"
    if len(data) >= 9 and data[8:9] == b"{":
        return "safetensors"
    if data[:1] == b"\x80":
        return "pickle"
    return None


def _sniff(
    data: bytes | bytearray,
    what: str,
    *,
    max_values: int,
    max_pixels: int,
    max_side: tuple[int, int] | None,
    stop: threading.Event | None,
) -> Decoded:
    kind = _kind(data)
    if kind == "npy":
        return Decoded({"array": _read_npy(data, max_values, what)}, "npy")
    if kind == "image":
        image = _read_image(data, max_pixels, max_values, max_side, what)
        return Decoded({"image": image}, "image", "hwc")
    if kind == "zip":
        try:
            zf = _open_zip(data, what)
            names = zf.namelist()
        except _ZIP_ERRORS as exc:
            raise UnreadableFile(f"{what} is a damaged zip archive: {excerpt(exc, 200)}") from None
        with zf:
            if any(n.endswith("data.pkl") for n in names):
                return Decoded(_read_pt(data, zf, max_values, what, stop), "pt")
            if names and all(n.endswith(".npy") for n in names):
                try:
                    return Decoded(_read_npz(zf, max_values, what), "npz")
                except _ZIP_ERRORS as exc:
                    raise UnreadableFile(f"{what} is a damaged .npz: {excerpt(exc, 200)}") from None
        raise UnsupportedType(
            f"{what} is a zip archive but neither an .npz nor a torch.save file; "
            f"send one of: {_ACCEPTED}."
        )
    if kind == "safetensors":
        return Decoded(_read_safetensors(data, max_values, what, stop), "safetensors")
    if kind == "pickle":
        # torch.save's legacy format starts with a pickle of its magic number; any other
        # pickle is refused there, unread.
        return Decoded(_read_legacy(data, max_values, what, stop), "pt")
    raise UnsupportedType(f"{what} is not a supported file type; send one of: {_ACCEPTED}.")


def _names(arrays: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """The arrays under names that are valid text, MAX_NAME characters at most.

    A lone surrogate ("\\ud800", which a pickle or a JSON header can hold) cannot be
    encoded as UTF-8, so no answer could carry it: it is written as its escape, and that
    written form is the name everywhere (listing, report, weights.layer).
    """
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        name = key.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(name) > MAX_NAME:
            raise _name_too_long(what, "", name)
        if name in out:
            raise UnreadableFile(
                f"{what} holds two arrays named {excerpt(name)} once written out; names must "
                "be unique.",
                code="duplicate_name",
            )
        out[name] = value
    return out


def decode(
    data: bytes | bytearray,
    part: str,
    filename: str | None,
    *,
    max_values: int,
    max_pixels: int,
    max_side: tuple[int, int] | None = None,
    stop: threading.Event | None = None,
) -> Decoded:
    """Named arrays from an uploaded file, recognised by its content, not its name.

    Sizes are checked from headers before anything is decoded: `max_values` per array,
    `max_pixels` per image, and `max_side` (height, width) when given; a file holds at
    most MAX_TENSORS arrays, each named with at most MAX_NAME characters.

    `part` is the multipart part it came in (input, weights, target): every error
    raised here names it as the field at fault. `stop` (the request's CancelToken) is
    looked at in long loops: once it is set, reading ends with gate.Cancelled.
    """
    name = excerpt(filename or "unnamed")
    what = f"The {part} file ({name})"
    try:
        if not data:
            raise UnreadableFile(f"{what} is empty; send one of: {_ACCEPTED}.", code="empty")
        _check_stop(stop)
        decoded = _sniff(
            data,
            what,
            max_values=max_values,
            max_pixels=max_pixels,
            max_side=max_side,
            stop=stop,
        )
        return Decoded(_names(decoded.arrays, what), decoded.format, decoded.layout)
    except UnsupportedType as exc:
        # A known extension on content we cannot read is a damaged file, not a new type.
        ext = "." + (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
        if ext in _EXTENSIONS and _kind(data) is None:
            raise UnreadableFile(
                f"{name} is not a valid {_EXTENSIONS[ext]} file: its first bytes "
                f"({bytes(data[:8])!r}) are not what that format starts with. Check that the "
                "file was written completely and by the right library.",
                field=part,
                code="bad_magic",
            ) from None
        exc.field = exc.field or part
        raise
    except (UnreadableFile, TooLarge, InvalidContent) as exc:
        exc.field = exc.field or part
        raise


def pick(decoded: Decoded, preferred: str, what: str) -> np.ndarray:
    """The one array a file holds, or the one named `preferred` among several: the file
    came in the multipart part of that name (input, target), the field at fault."""
    if preferred in decoded.arrays:
        return decoded.arrays[preferred]
    if len(decoded.arrays) == 1:
        return next(iter(decoded.arrays.values()))
    if not decoded.arrays:
        raise InvalidContent(f"{what} holds no arrays.", field=preferred, code="empty")
    raise InvalidContent(
        f"{what} holds several arrays ({listed(sorted(decoded.arrays))}); "
        f"name the one to use {preferred!r}.",
        field=preferred,
        code="ambiguous_array",
    )


# ---------------------------------------------------------------- photos


def read_photo(
    data: bytes | bytearray, what: str, *, max_pixels: int, field: str = "photo"
) -> Image.Image:
    """A photo for the network, decoded by Pillow within `max_pixels`: an RGB image.

    PNG or JPEG only, told by their first bytes; anything else is a 415, a damaged one a
    400. The size is read from the header and refused (413) before any pixel is decoded,
    and Pillow's own decompression-bomb guard is a 413 too. Grey, palette and alpha images
    become RGB (alpha dropped), 16-bit ones keep their top 8 bits; an EXIF orientation is
    applied, so the network sees the photo the way a browser shows it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise UnreadableFile(f"{what} is empty; send a PNG or JPEG.", field=field, code="empty")
    if not data.startswith((_PNG_MAGIC, _JPEG_MAGIC)):
        raise UnsupportedType(
            f"{what} is not a PNG or JPEG (its first bytes are {bytes(data[:8])!r}); "
            "send a photo as PNG or JPEG.",
            field=field,
            code="not_a_photo",
        )
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies below; Pillow's bomb warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG"))
            w, h = img.size
            if w * h > max_pixels:
                raise TooLarge(
                    f"{what} is {w}×{h} = {w * h} pixels; the limit is {max_pixels} "
                    "(ONEBYONE_MAX_IMAGE_PIXELS). Resize it.",
                    field=field,
                )
            img.load()
            if img.mode.startswith("I;16") or img.mode == "I":
                # (H, W) of 0 … 65535: the top 8 bits, as an 8-bit grey image.
                grey = (np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8)
                img = Image.fromarray(grey)
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except Image.DecompressionBombError:
        raise TooLarge(
            f"{what} declares more than {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels; the limit "
            f"is {max_pixels} (ONEBYONE_MAX_IMAGE_PIXELS). Resize it.",
            field=field,
        ) from None
    except UnidentifiedImageError:
        raise UnreadableFile(
            f"{what} is not a readable image: its header is damaged (size, bit depth, colour "
            "type or checksum). Re-save it as PNG or JPEG.",
            field=field,
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnreadableFile(
            f"{what} is not a readable image: {excerpt(exc, 200)}", field=field
        ) from None
    return rgb


# ---------------------------------------------------------------- layouts

LAYOUTS: tuple[str, ...] = get_args(Layout)
LAYOUT_LABELS = {
    "auto": "auto (by shape)",
    "chw": "C, H, W",
    "hwc": "H, W, C",
    "nchw": "1, C, H, W",
    "nhwc": "1, H, W, C",
}

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
        'Set "layout" to "chw" or "hwc" in the spec.',
        field="input.layout",
        code="ambiguous_layout",
    )


def to_chw(arr: np.ndarray, layout: str, what: str = "input") -> np.ndarray:
    """A decoded array as contiguous float32 (C, H, W), by `layout` or the documented auto rule.

    `what` names the request field the array came from (input, target): errors name it.
    """
    layout_field = f"{what}.layout"
    if layout not in LAYOUTS:
        raise InvalidContent(
            f"Unknown layout {excerpt(layout)}; use one of: {', '.join(LAYOUTS)}.",
            field=layout_field,
            code="unknown_name",
        )
    shape = arr.shape
    if 0 in shape:
        raise InvalidContent(
            f"The {what} array is empty (shape {list(shape)}).", field=what, code="empty"
        )
    if arr.ndim == 4:
        if shape[0] != 1:
            raise InvalidContent(
                f"The {what} is a batch of {shape[0]} (shape {list(shape)}); send one map (N = 1).",
                field=what,
                code="bad_shape",
            )
        arr = arr[0]
        layout = {"nchw": "chw", "nhwc": "hwc"}.get(layout, layout)
    elif layout in ("nchw", "nhwc"):
        raise InvalidContent(
            f"Layout {layout!r} needs a 4-D array; the {what} is {arr.ndim}-D.",
            field=layout_field,
            code="bad_shape",
        )
    if arr.ndim == 2:
        arr = arr[None]
        layout = "chw"
    if arr.ndim != 3:
        raise InvalidContent(
            f"The {what} has {arr.ndim} dimensions (shape {list(shape)}); send 2-D (H, W), "
            "3-D (C, H, W or H, W, C) or 4-D with N = 1.",
            field=what,
            code="bad_shape",
        )
    if layout == "auto":
        try:
            layout = _auto_layout(arr.shape)
        except InvalidContent as exc:
            exc.field = layout_field
            raise
    if layout == "hwc":
        arr = arr.transpose(2, 0, 1)
    out = np.ascontiguousarray(arr, dtype=np.float32)  # (C, H, W)
    check_finite(out, what, field=what)
    return out


def check_finite(arr: np.ndarray, what: str, *, field: str | None = None) -> None:
    if not np.isfinite(arr).all():
        bad = int(arr.size - np.isfinite(arr).sum())
        raise InvalidContent(
            f"The {what} holds {bad} NaN or infinite values (or values too large for float32); "
            "replace them with finite numbers.",
            field=field or what,
            code="not_finite",
        )
