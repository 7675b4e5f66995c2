"""Build upload files in every supported format, in memory (no binary blobs in the repo)."""

from __future__ import annotations

import io
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
