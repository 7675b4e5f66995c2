"""Build upload files in every supported format, in memory (no binary blobs in the repo),
and files that lie in their headers."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save as st_save


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def npz(*arrays: np.ndarray, **named: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, *arrays, **named)
    return buf.getvalue()


def npy_raw(descr: str, shape: tuple[int, ...], payload: bytes) -> bytes:
    """A .npy with any header we like: hostile dtypes, shapes that lie about the data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + payload


def safetensors_raw(entries: object, payload: bytes = b"\0" * 64) -> bytes:
    """A .safetensors with any JSON header we like (entries: name -> dtype, shape, offsets)."""
    header = json.dumps(entries).encode()
    return struct.pack("<Q", len(header)) + header + payload


def pt(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def pt_legacy(obj: Any) -> bytes:
    """torch.save's legacy format (before PyTorch 1.6), as torchvision's older weights are."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def safetensors(**arrays: np.ndarray) -> bytes:
    return st_save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


# Issue 9, findings 5 and 6: headers that lie (shapes past any limit, negative or not
# numbers, offsets past the data, unknown dtypes). Every one a 4xx before anything of the
# declared size is allocated or converted, by the decoder and over HTTP.
LYING = [
    npy_raw("<f4", (3, 0xAAAAAAAAAAAAAAAB), b"\0" * 64),
    npy_raw("<f4", (2**32, 2**32), b"\0" * 64),
    npy_raw("<f4", (-1, -1), b"\0" * 64),
    npy_raw("<f4", (2**63 - 1, 2), b"\0" * 64),
    npy_raw("<f4", (-1, 4), b"\0" * 64),
    npy_raw("|b1", (-1, 1024, 1024), b"\0" * (1 << 20)),
    safetensors_raw({"x": {"dtype": "F32", "shape": "abc", "data_offsets": [0, 16]}}),
    safetensors_raw({"x": {"dtype": "F32", "shape": [None], "data_offsets": [0, 16]}}),
    safetensors_raw({"x": {"dtype": "F32", "shape": 5, "data_offsets": [0, 16]}}),
    safetensors_raw({"x": {"dtype": "F32", "shape": [2**64], "data_offsets": [0, 16]}}),
    safetensors_raw({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 10**12]}}),
    safetensors_raw({"x": {"dtype": "F32", "shape": [4], "data_offsets": [8, 4]}}),
    safetensors_raw({"x": {"dtype": "Q99", "shape": [4], "data_offsets": [0, 16]}}),
]
