"""The checkpoint reader, attacked (issue 17): each finding of the tester, in a few lines.

In-process through app.uploads and app.checkpoints where the point is what the reader
builds; on the real test server where the point is the answer (never a 500, a short
detail). `python -m bench.reader` measures the expensive ones at full size.
"""

from __future__ import annotations

import io
import json
import struct
import time
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from app import checkpoints, uploads, weights
from app.errors import InvalidContent, OneByOneError, TooLarge, UnreadableFile, UnsupportedType
from app.schemas.requests import WeightsSpec
from tests import files

LIMITS = {"max_values": 10**6, "max_pixels": 10**6}
W = torch.arange(12, dtype=torch.float32).reshape(3, 4, 1, 1) / 10


def compare(
    client: httpx.Client,
    weights_file: bytes,
    spec_weights: dict[str, Any] | None = None,
    fmt: str = "json",
    x: np.ndarray | None = None,
) -> httpx.Response:
    x = np.ones((4, 3, 5), np.float32) if x is None else x
    spec = {"input": {"layout": "chw"}, "device": "cpu", "weights": spec_weights or {}}
    return client.post(
        "/api/v1/compare",
        params={"format": fmt, "heatmaps": "false"} if fmt == "json" else {"format": fmt},
        files={"input": ("x.npy", files.npy(x)), "weights": ("model.pt", weights_file)},
        data={"spec": json.dumps(spec)},
    )


def listing(client: httpx.Client, data: bytes, name: str = "model.pt") -> httpx.Response:
    return client.post("/api/v1/checkpoints/layers", files={"weights": (name, data)})


def safetensors_of(entries: dict[str, Any], payload: bytes = b"") -> bytes:
    header = json.dumps(entries, separators=(",", ":")).encode()
    return struct.pack("<Q", len(header)) + header + payload


# ---------------------------------------------------------------- 1. a lone surrogate


def test_a_key_with_a_lone_surrogate_is_listed_and_compared_escaped(client: httpx.Client) -> None:
    data = files.pt({"a\ud800.weight": W, "b.weight": W})
    r = listing(client, data)
    assert r.status_code == 200, r.text
    names = [layer["name"] for layer in r.json()["layers"]]
    assert names == ["a\\ud800", "b"]
    # The listed name picks the layer; the report carries it as listed.
    r = compare(client, data, {"layer": names[0]})
    assert r.status_code == 200, r.text
    assert r.json()["layer"]["checkpoint_layer"] == "a\\ud800"
    # A name sent with the surrogate itself (JSON allows "\ud800") is refused, not a 500.
    r = compare(client, data, {"layer": "a\ud800"})
    assert r.status_code == 422 and r.json()["field"] == "weights.layer", r.text


def test_a_safetensors_key_with_a_lone_surrogate_is_a_400() -> None:
    # The safetensors library reads no such header: a file it cannot read, not a 500.
    entry = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}
    header = json.dumps({"w\ud800": entry}).encode()  # ensure_ascii: "\\ud800" in the JSON
    data = struct.pack("<Q", len(header)) + header + b"\0\0\x80\x3f"
    with pytest.raises(UnreadableFile) as err:
        uploads.decode(data, "weights", "s.safetensors", **LIMITS)
    err.value.detail.encode("utf-8")  # the refusal itself is valid text


# ---------------------------------------------------------------- 2. control characters


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "tab\there", "nul\x00", "rtl\u202eoverride"])
def test_control_characters_in_a_layer_name_draw_a_png(client: httpx.Client, name: str) -> None:
    data = files.pt({f"{name}.weight": W})
    r = compare(client, data, fmt="png")
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(r.content)).format == "PNG"
    r = compare(client, data)
    assert r.status_code == 200 and r.json()["layer"]["checkpoint_layer"] == name


# ---------------------------------------------------------------- 3. a nested tensor


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype")
@pytest.mark.parametrize("layout", [torch.strided, torch.jagged])
def test_a_nested_tensor_is_refused_not_a_500(client: httpx.Client, layout: torch.layout) -> None:
    nested = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)], layout=layout)
    data = files.pt({"conv.weight": W, "odd": nested})
    with pytest.raises(UnsupportedType, match="nested") as err:
        uploads.decode(data, "weights", "n.pt", **LIMITS)
    assert err.value.field == "weights"
    r = listing(client, data)
    assert r.status_code == 415 and "nested" in r.json()["detail"], r.text


# ---------------------------------------------------------------- 4. long names


def test_a_layer_name_of_the_longest_allowed_length_draws_a_png_of_ordinary_width(
    client: httpx.Client,
) -> None:
    x = np.random.default_rng(0).standard_normal((4, 12, 12)).astype(np.float32)
    widths = {}
    for name in ("short", "n" * 1000):
        r = compare(client, files.pt({f"{name}.weight": W}), fmt="png", x=x)
        assert r.status_code == 200, r.text
        widths[name] = Image.open(io.BytesIO(r.content)).size[0]
    # The long name is shown cut, so the canvas is no wider than with a short one's title.
    assert widths["n" * 1000] <= max(widths["short"], 1400), widths


def test_a_key_longer_than_a_layer_name_may_be_is_refused_at_once(client: httpx.Client) -> None:
    data = files.pt({"n" * 60_000 + ".weight": W})
    t0 = time.monotonic()
    r = compare(client, data, fmt="png")
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["field"], body["code"]) == ("weights", "name_too_long")
    assert len(r.content) < 2048 and time.monotonic() - t0 < 5


# ---------------------------------------------------------------- 5. bounded before expanding


def test_a_dict_that_holds_itself_is_read_once() -> None:
    d: dict[str, Any] = {"w": torch.ones(2)}
    d["k0"] = d["k1"] = d
    decoded = uploads.decode(files.pt({"model": d}), "weights", "loop.pt", **LIMITS)
    assert list(decoded.arrays) == ["model.w"]


def test_a_self_referencing_checkpoint_is_answered_at_once(client: httpx.Client) -> None:
    d: dict[str, Any] = {"w": torch.zeros(0)}
    for i in range(6):
        d[f"k{i}"] = d
    data = files.pt(d)
    assert len(data) < 2000
    t0 = time.monotonic()
    r = listing(client, data)
    assert r.status_code == 422 and len(r.content) < 2048, r.text[:300]
    assert time.monotonic() - t0 < 5


def test_zero_size_tensors_count_against_the_tensor_limit() -> None:
    entry = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    data = safetensors_of({f"t{i}": entry for i in range(100_000)})
    t0 = time.monotonic()
    with pytest.raises(TooLarge, match="4096 tensors") as err:
        uploads.decode(data, "weights", "zero.safetensors", **LIMITS)
    assert time.monotonic() - t0 < 2 and len(err.value.detail) < 400


def test_a_pt_of_thousands_of_zero_size_views_is_refused_before_torch_load() -> None:
    base = torch.zeros(0)
    data = files.pt({f"t{i}": base.view(0) for i in range(5000)})
    with pytest.raises(TooLarge, match="tensors"):
        uploads.decode(data, "weights", "zero.pt", **LIMITS)


def test_name_suggestions_stay_quick_and_short_among_thousands_of_long_names() -> None:
    names = [f"{i:06d}" + "c" * 994 for i in range(4000)]
    arrays = {f"{n}.weight": np.ones((1, 1, 1, 1), np.float32) for n in names}
    ckpt = checkpoints.Checkpoint(arrays)
    near = "000001" + "c" * 993 + "x"
    t0 = time.monotonic()
    with pytest.raises(InvalidContent) as err:
        ckpt.layer(near)
    assert time.monotonic() - t0 < 2
    assert err.value.code == "unknown_name" and "Did you mean" in err.value.detail
    assert len(err.value.detail) < 4096


def test_a_stop_event_reaches_inside_the_reader() -> None:
    import threading

    from app.errors import Cancelled

    stop = threading.Event()
    stop.set()
    data = files.pt({f"layer{i}.weight": W for i in range(300)})
    with pytest.raises(Cancelled):
        uploads.decode(data, "weights", "m.pt", stop=stop, **LIMITS)


# ---------------------------------------------------------------- 6. short refusals


def test_refusals_name_a_few_keys_of_thousands() -> None:
    arrays = {f"key{i}": np.ones(2, np.float32) for i in range(4000)}
    data = files.safetensors(**arrays)
    decoded = uploads.decode(data, "weights", "many.safetensors", **LIMITS)
    x = torch.ones(2, 3, 3)
    with pytest.raises(OneByOneError) as err:
        weights.from_file(decoded, WeightsSpec(), x)
    assert len(err.value.detail) < 2048 and "more" in err.value.detail
    with pytest.raises(OneByOneError) as err:
        uploads.pick(decoded, "input", "The input file")
    assert len(err.value.detail) < 2048 and "more" in err.value.detail


def test_listing_refusals_stay_short_for_thousands_of_long_layer_names() -> None:
    arrays = {f"{i:04d}{'c' * 990}.weight": np.ones((1, 1, 1, 1), np.float32) for i in range(4000)}
    with pytest.raises(InvalidContent) as err:
        checkpoints.Checkpoint(arrays).layer(None)
    assert err.value.code == "layer_required" and len(err.value.detail) < 4096


# ---------------------------------------------------------------- the minor ones


def test_a_k_by_1_gamma_is_folded_not_dropped() -> None:
    k = 3
    arrays = {
        "conv.weight": W.numpy(),
        "bn.running_mean": np.zeros(k, np.float32),
        "bn.running_var": np.ones(k, np.float32),
        "bn.weight": np.full((k, 1), 2.0, np.float32),
        "bn.bias": np.zeros(k, np.float32),
    }
    ckpt = checkpoints.Checkpoint(arrays)
    bn = ckpt.batchnorm(ckpt.layer("conv"), "auto")
    assert bn is not None and bn.affine
    w, _ = checkpoints.fold(W.numpy()[:, :, 0, 0], None, bn)
    np.testing.assert_allclose(w, 2 * W.numpy()[:, :, 0, 0] / np.sqrt(1 + 1e-5), rtol=1e-6)


def test_a_gamma_of_another_size_is_refused_not_dropped() -> None:
    arrays = {
        "conv.weight": W.numpy(),
        "bn.running_mean": np.zeros(3, np.float32),
        "bn.running_var": np.ones(3, np.float32),
        "bn.weight": np.ones((3, 2), np.float32),
    }
    ckpt = checkpoints.Checkpoint(arrays)
    with pytest.raises(InvalidContent) as err:
        ckpt.batchnorm(ckpt.layer("conv"), "auto")
    assert err.value.code == "shape_mismatch" and "weight 6" in err.value.detail


def test_a_bias_too_large_for_float32_is_reported_under_weights_bias() -> None:
    arrays = {
        "conv.weight": W.numpy(),
        "bn.running_mean": np.zeros(3, np.float32),
        "bn.running_var": np.ones(3, np.float32),
    }
    decoded = uploads.Decoded(arrays, "pt")
    with pytest.raises(InvalidContent) as err:
        weights.build(WeightsSpec(bias=1e300), torch.ones(4, 2, 2), decoded)
    assert (err.value.field, err.value.code) == ("weights.bias", "not_finite")


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pwned",))


def test_torch_refusals_are_short_plain_and_give_no_unsafe_advice() -> None:
    data = files.pt({"conv.weight": W, "evil": Evil()})
    with pytest.raises(UnreadableFile) as err:
        uploads.decode(data, "weights", "evil.pt", **LIMITS)
    detail = err.value.detail
    assert "\x1b" not in detail and "weights_only=False" not in detail
    assert "Unsupported global: GLOBAL print" in detail and len(detail) < 600, detail
    assert ".." not in detail


def test_a_bad_magic_message_shows_the_bytes_not_a_python_type() -> None:
    with pytest.raises(UnreadableFile) as err:
        uploads.decode(bytearray(b"garbage bytes here"), "weights", "model.pt", **LIMITS)
    assert err.value.code == "bad_magic"
    assert "bytearray" not in err.value.detail and "b'garbage '" in err.value.detail


def test_keys_that_are_not_strings_are_never_shown_as_tensors() -> None:
    data = files.pt({torch.tensor([1, 2]): W, 0: W, "conv.weight": W})
    decoded = uploads.decode(data, "weights", "odd.pt", **LIMITS)
    assert set(decoded.arrays) == {"0", "conv.weight"}
    assert not any("tensor(" in k for k in decoded.arrays)
