"""The REST contract, in-process (httpx's ASGI transport; tests/conftest.py)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from tests import files
from tests.reference import conv1x1_relu, relu

NPZ_NAMES = {"input", "weight", "bias", "pre_activation", "relu_only", "conv_relu"}


def post(
    client: httpx.Client, body: dict[str, Any], fmt: str = "json", **params: Any
) -> httpx.Response:
    return client.post("/api/v1/compare", json=body, params={"format": fmt, **params})


def npz_of(r: httpx.Response) -> dict[str, np.ndarray]:
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def values(v: dict[str, Any]) -> np.ndarray:
    """A report's exact values: float32 little-endian, base64, with its shape."""
    return np.frombuffer(base64.b64decode(v["data"]), "<f4").reshape(v["shape"])


def test_healthz_names_devices(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and "cpu" in body["devices"]


def test_presets_list_generators_presets_and_limits(client: httpx.Client) -> None:
    body = client.get("/api/v1/presets").json()
    assert set(body["generators"]) >= {"gaussian", "catdog", "smooth", "nonnegative", "edges"}
    assert set(body["weight_presets"]) >= {"identity", "random", "difference", "mean", "pca"}
    assert body["generators"]["smooth"]["params"]["rank"]["default"] == 128
    assert body["generators"]["gaussian"]["params"]["channels"]["max"] == 1024
    assert "ambiguous" in body["layouts"]["auto_rule"]


def test_openapi_has_examples_for_compare(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/api/v1/compare"]["post"]["requestBody"]["content"]
    assert "catdog" in content["application/json"]["examples"]
    assert "multipart/form-data" in content


@pytest.mark.parametrize(("c", "k"), [(192, 192), (192, 64), (3, 5)])
def test_npz_holds_the_contract_arrays_and_matches_numpy(
    client: httpx.Client, c: int, k: int
) -> None:
    body = {
        "input": {"generator": "smooth", "height": 28, "width": 28, "channels": c, "seed": 2},
        "weights": {"preset": "random", "out_channels": k, "seed": 3, "bias": 0.1},
        "device": "cpu",
    }
    z = npz_of(post(client, body, "npz"))
    assert set(z) == NPZ_NAMES and all(a.dtype == np.float32 for a in z.values())
    assert z["input"].shape == (c, 28, 28) and z["weight"].shape == (k, c)
    assert z["bias"].shape == (k,) and z["conv_relu"].shape == (k, 28, 28)
    pre, out = conv1x1_relu(z["input"], z["weight"], z["bias"])
    np.testing.assert_allclose(z["pre_activation"], pre, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(z["conv_relu"], out, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(z["relu_only"], relu(z["input"]))


def test_json_stats_heatmaps_and_costs(client: httpx.Client) -> None:
    body = {"input": {"generator": "gaussian", "height": 9, "width": 7, "channels": 3}}
    r = post(client, body)
    assert r.status_code == 200
    j = r.json()
    z = npz_of(post(client, body, "npz"))
    assert j["device"] == "cpu" and j["shapes"]["pre_activation"] == [3, 9, 7]
    np.testing.assert_allclose(j["stats"]["input"]["min"], z["input"].min(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(
        j["stats"]["relu_only"]["changed_fraction"], (z["input"] < 0).mean(axis=(1, 2)), atol=1e-6
    )
    np.testing.assert_allclose(
        j["stats"]["conv_relu"]["zero_fraction"], (z["conv_relu"] == 0).mean(axis=(1, 2)), atol=1e-6
    )
    assert j["summary"]["relu_only_changed"] == int((z["input"] < 0).sum())
    assert j["cost"]["conv1x1"] == {"parameters": 12, "macs": 9 * 9 * 7}
    assert j["cost"]["conv3x3"]["macs"] == 9 * 9 * 9 * 7
    hm = j["heatmaps"]
    assert (hm["stride"], hm["height"], hm["width"]) == (1, 9, 7)
    # Exact: the values the page draws and reads under the cursor are the npz's, bit for bit,
    # and the ReLU outputs it derives from them are the server's too.
    for name in ("input", "pre_activation", "weight", "bias"):
        np.testing.assert_array_equal(values(hm[name]), z[name])
    np.testing.assert_array_equal(np.maximum(values(hm["input"]), 0), z["relu_only"])
    np.testing.assert_array_equal(np.maximum(values(hm["pre_activation"]), 0), z["conv_relu"])
    assert set(j["timings_ms"]) >= {"decode", "compute", "encode"}


def test_large_maps_are_subsampled_within_the_heatmap_budget(client: httpx.Client) -> None:
    body = {"input": {"generator": "gaussian", "height": 250, "width": 200, "channels": 32}}
    j = post(client, body).json()
    z = npz_of(post(client, body, "npz"))
    hm = j["heatmaps"]
    s = hm["stride"]
    assert s > 1 and 32 * hm["height"] * hm["width"] <= 1024 * 1024
    np.testing.assert_array_equal(values(hm["input"]), z["input"][:, ::s, ::s])


def test_catdog_difference_marks_exactly_where_cat_beats_dog(client: httpx.Client) -> None:
    body = {
        "input": {"generator": "catdog", "height": 48, "width": 48, "channels": 4, "seed": 1},
        "weights": {"preset": "difference", "positive": 0, "negative": 1},
    }
    j = post(client, body).json()
    z = npz_of(post(client, body, "npz"))
    truth = j["truth"]["cat_over_dog"]
    mask = np.frombuffer(base64.b64decode(j["heatmaps"]["masks"]["cat_over_dog"]), np.uint8)
    np.testing.assert_array_equal(mask.reshape(48, 48), z["input"][0] > z["input"][1])
    assert truth["conv_relu"]["agreement"] == 1.0
    assert truth["relu_only"]["agreement"] < 0.95
    np.testing.assert_array_equal(z["conv_relu"][0] > 0, z["input"][0] > z["input"][1])


def test_identity_weights_make_paths_identical(client: httpx.Client) -> None:
    body = {"input": {"generator": "gaussian", "channels": 5}, "weights": {"preset": "identity"}}
    s = post(client, body).json()["summary"]
    assert s["paths_identical"] is True and s["paths_max_abs_difference"] == 0.0


def test_nonnegative_input_relu_only_changes_nothing(client: httpx.Client) -> None:
    s = post(client, {"input": {"generator": "nonnegative", "channels": 8}}).json()["summary"]
    assert s["relu_only_changed"] == 0 and s["relu_only_values"] == 8 * 28 * 28


def test_pca_reports_variance_kept_like_svd(client: httpx.Client) -> None:
    body = {
        "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192},
        "weights": {"preset": "pca", "out_channels": 64},
    }
    j = post(client, body).json()
    z = npz_of(post(client, body, "npz"))
    x = z["input"].reshape(192, -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    s = np.linalg.svd(x, compute_uv=False) ** 2
    assert j["layer"]["variance_kept"] == pytest.approx(s[:64].sum() / s.sum(), rel=1e-3)
    assert j["layer"]["variance_kept"] > 0.95


def test_explicit_matrix_and_bias(client: httpx.Client) -> None:
    body = {
        "input": {"generator": "gaussian", "height": 4, "width": 4, "channels": 2},
        "weights": {"matrix": [[1, -1], [0.5, 0.5]], "bias": [0, -0.1]},
    }
    z = npz_of(post(client, body, "npz"))
    np.testing.assert_array_equal(z["weight"], [[1, -1], [0.5, 0.5]])
    np.testing.assert_allclose(z["bias"], [0, -0.1])
    assert post(client, body).json()["layer"]["weight"] == [[1.0, -1.0], [0.5, 0.5]]


def png_of(r: httpx.Response) -> Image.Image:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    img.load()
    return img


def test_png_montage_draws_every_channel_in_a_grid(client: httpx.Client) -> None:
    body = {"input": {"generator": "smooth", "channels": 192}, "weights": {"out_channels": 192}}
    r = post(client, body, "png")
    img = png_of(r)
    assert img.mode == "P"  # a palette PNG: one byte a pixel
    # 3 × 192 tiles of 28×28 in grids side by side, not a 1:6 column.
    assert img.size[0] * img.size[1] > 3 * 192 * 28 * 28
    assert 1 / 3 < img.size[0] / img.size[1] < 3
    stages = {part.split(";")[0] for part in r.headers["server-timing"].split(", ")}
    assert {"prepare", "compute", "png_colourmap", "png_text", "png_encode"} <= stages


def test_png_channels_caps_the_tiles_and_scale_is_accepted(client: httpx.Client) -> None:
    body = {"input": {"generator": "smooth", "channels": 100}}
    few = png_of(post(client, body, "png", channels=10))
    every = png_of(post(client, body, "png", scale="channel"))
    # Ten tiles a panel are enlarged (5×) rather than laid out like a hundred.
    assert few.size != every.size


def test_png_single_picture_is_one_enlarged_channel(client: httpx.Client) -> None:
    body = {"input": {"generator": "smooth", "channels": 8}}
    one = png_of(post(client, body, "png", panel="conv_relu", channel=3))
    assert one.size[0] < 700 and one.size[1] > 28 * 8
    r = client.post(
        "/api/v1/compare",
        json=body,
        params=[("format", "png"), ("panel", "pre_activation"), ("panel", "difference")],
    )
    both = png_of(r)
    assert both.size[0] > one.size[0]


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"channel": 8}, "channel", "out_of_range"),
        ({"channel": 1, "channels": 4}, "channel", "conflict"),
        ({"panel": "bogus"}, "panel.0", "invalid"),
        ({"channel": -1}, "channel", "invalid"),
        ({"panel": "difference", "channel": 0}, "panel", "shape_mismatch"),
    ],
)
def test_png_bad_picture_parameters_are_422(
    client: httpx.Client, params: dict[str, Any], field: str, code: str
) -> None:
    body = {"input": {"generator": "smooth", "channels": 8}, "weights": {"out_channels": 4}}
    r = post(client, body, "png", **params)
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["code"]) == (field, code)
    assert r.json()["detail"]


def test_openapi_documents_the_png_parameters(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/v1/compare"]["post"]["parameters"]}
    assert "panel=conv_relu&channel=3" in params["channel"]["description"]
    names = params["panel"]["schema"]["anyOf"][0]["items"]["enum"]
    assert names == ["input", "relu_only", "pre_activation", "conv_relu", "difference"]
    assert "ONEBYONE_MAX_PNG_CHANNELS" in params["channels"]["description"]


# ---------------------------------------------------------------- uploads

X = np.random.default_rng(7).standard_normal((6, 10, 10)).astype(np.float32)
W = np.random.default_rng(8).standard_normal((3, 6)).astype(np.float32)
B = np.array([0.1, -0.2, 0.3], np.float32)


def upload(
    client: httpx.Client,
    input_bytes: bytes,
    weights_bytes: bytes | None = None,
    spec: dict[str, Any] | None = None,
    fmt: str = "npz",
) -> httpx.Response:
    parts: dict[str, Any] = {"input": ("x.bin", input_bytes)}
    if weights_bytes is not None:
        parts["weights"] = ("w.bin", weights_bytes)
    data = {"spec": json.dumps(spec)} if spec is not None else None
    return client.post("/api/v1/compare", params={"format": fmt}, files=parts, data=data)


@pytest.mark.parametrize(
    ("input_bytes", "spec"),
    [
        (files.npy(X), None),
        (files.npy(X.transpose(1, 2, 0)), {"input": {"layout": "hwc"}}),
        (files.npy(X[None]), {"input": {"layout": "nchw"}}),
        (files.npz(input=X), None),
        (files.pt(torch.from_numpy(X)), None),
        (files.safetensors(input=X), None),
    ],
)
@pytest.mark.parametrize(
    "weights_bytes",
    [
        files.npy(W),
        files.npy(W[:, :, None, None]),
        files.pt({"weight": torch.from_numpy(W[:, :, None, None]), "bias": torch.from_numpy(B)}),
        files.safetensors(weight=W, bias=B),
    ],
)
def test_uploads_in_every_format_match_numpy(
    client: httpx.Client, input_bytes: bytes, spec: dict[str, Any] | None, weights_bytes: bytes
) -> None:
    z = npz_of(upload(client, input_bytes, weights_bytes, spec))
    np.testing.assert_array_equal(z["input"], X)
    np.testing.assert_array_equal(z["weight"], W)
    _, out = conv1x1_relu(X, W, z["bias"])
    np.testing.assert_allclose(z["conv_relu"], out, rtol=1e-5, atol=1e-5)


def test_real_conv2d_state_dict_upload(client: httpx.Client) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 4, 1)
    z = npz_of(upload(client, files.npy(X), files.pt(conv.state_dict())))
    with torch.no_grad():
        expected = torch.relu(conv(torch.from_numpy(X)[None]))[0].numpy()
    np.testing.assert_allclose(z["conv_relu"], expected, rtol=1e-5, atol=1e-5)


def test_image_upload_uses_colour_channels(client: httpx.Client) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (16, 20, 3), dtype=np.uint8)
    j = upload(client, files.png(rgb), None, {"weights": {"preset": "mean"}}, fmt="json").json()
    assert j["shapes"]["input"] == [3, 16, 20] and j["input_source"] == "file:image"


# ---------------------------------------------------------------- errors

BAD_JSON: list[tuple[dict[str, Any], int, str, str, str]] = [
    # body, status, field, code, words the detail must contain
    ({"input": {"generator": "nope"}}, 422, "input.generator", "unknown_name", "catdog"),
    ({"weights": {"preset": "nope"}}, 422, "weights.preset", "unknown_name", "pca"),
    ({"input": {"height": 5000}}, 422, "input.height", "over_limit", "limit is 1024"),
    ({"input": {"height": 10**9}}, 422, "input.height", "invalid", "less than or equal"),
    ({"input": {"channels": 0}}, 422, "input.channels", "invalid", "greater than or equal"),
    (
        {"input": {"channels": 1000, "height": 1000, "width": 1000}},
        422,
        "input",
        "over_limit",
        "ONEBYONE_MAX_VALUES",
    ),
    (
        {"input": {"channels": 3}, "weights": {"matrix": [[1, 2]]}},
        422,
        "weights.matrix",
        "shape_mismatch",
        "C = 2",
    ),
    (
        {"input": {"channels": 2}, "weights": {"matrix": [[1, 2], [3]]}},
        422,
        "weights.matrix",
        "bad_shape",
        "same length",
    ),
    (
        {"input": {"channels": 4}, "weights": {"preset": "identity", "out_channels": 3}},
        422,
        "weights.out_channels",
        "fixed_by_preset",
        "Send out_channels = 4",
    ),
    (
        {"weights": {"preset": "random", "positive": 2}},
        422,
        "weights.positive",
        "not_for_preset",
        "it takes bias, out_channels, seed",
    ),
    (
        {"input": {"channels": 2}, "weights": {"matrix": [[1, 2]], "seed": 3}},
        422,
        "weights.seed",
        "not_for_preset",
        "explicit matrix",
    ),
    (
        {"weights": {"preset": "random", "bias": 1e300}},
        422,
        "weights.bias",
        "not_finite",
        "float32",
    ),
    (
        {"input": {"channels": 2}, "weights": {"matrix": [[1e300, 1.0]]}},
        422,
        "weights.matrix",
        "not_finite",
        "float32",
    ),
    (
        {"input": {"channels": 4}, "weights": {"preset": "pca", "out_channels": 9}},
        422,
        "weights.out_channels",
        "out_of_range",
        "at most C",
    ),
    (
        {"input": {"channels": 4}, "weights": {"preset": "difference", "negative": 7}},
        422,
        "weights.negative",
        "out_of_range",
        "0 … 3",
    ),
    (
        {"device": "cuda"} if not torch.cuda.is_available() else {"device": "mps"},
        422,
        "device",
        "device_unavailable",
        "not available",
    ),
    ({"device": "tpu"}, 422, "device", "invalid", "Input should be"),
    (
        {"input": {"colour": 1}},
        422,
        "input.colour",
        "unknown_field",
        "the fields here are: generator, height, width, channels, seed",
    ),
    ({"shape": [1]}, 422, "shape", "unknown_field", "the fields here are: input, layout"),
    (
        {"input": {"generator": "catdog", "channels": 1}},
        422,
        "input.channels",
        "out_of_range",
        "channels >= 2",
    ),
    # Strict types: booleans and strings are not numbers.
    ({"input": {"height": True}}, 422, "input.height", "invalid", "valid integer"),
    ({"input": {"height": "28"}}, 422, "input.height", "invalid", "valid integer"),
    ({"input": {"height": 28.0}}, 422, "input.height", "invalid", "valid integer"),
    ({"weights": {"bias": True}}, 422, "weights.bias", "invalid", "valid number"),
    ({"input": {"layout": "chw"}, "layout": "hwc"}, 422, "layout", "conflict", "give one"),
]


@pytest.mark.parametrize(("body", "status", "field", "code", "match"), BAD_JSON)
def test_bad_json_requests_get_a_clear_4xx(
    client: httpx.Client, body: dict[str, Any], status: int, field: str, code: str, match: str
) -> None:
    r = post(client, body)
    assert r.status_code == status, r.text
    err = r.json()
    assert (err["field"], err["code"]) == (field, code), err
    assert match in err["detail"]


def test_nan_in_json_weights_is_refused(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/compare",
        content=b'{"input": {"channels": 1}, "weights": {"matrix": [[NaN]]}}',
        headers={"content-type": "application/json"},
    )
    err = r.json()
    assert r.status_code == 422 and "finite" in err["detail"]
    assert (err["field"], err["code"]) == ("weights.matrix.0.0", "not_finite")


@pytest.mark.parametrize(
    ("content", "ctype", "status", "code", "match"),
    [
        (b"{not json", "application/json", 400, "bad_json", "not valid JSON"),
        (b"[1, 2]", "application/json", 422, "not_an_object", "JSON object"),
        (
            b'{"input": {"height": 8, "height": 9}}',
            "application/json",
            400,
            "duplicate_key",
            "appears twice",
        ),
        (b"hello", "text/plain", 415, "unsupported_content_type", "application/json or multipart"),
        (b'{"input": {}}', "", 415, "missing_content_type", "no Content-Type"),
        (b"--x\r\nbroken", "multipart/form-data; boundary=x", 400, "bad_multipart", "cut short"),
        (b"--x\r\nbroken", "multipart/form-data", 400, "bad_multipart", "boundary"),
    ],
)
def test_malformed_bodies(
    client: httpx.Client, content: bytes, ctype: str, status: int, code: str, match: str
) -> None:
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/api/v1/compare", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and match in r.json()["detail"]


def test_an_empty_post_without_content_type_takes_every_default(client: httpx.Client) -> None:
    r = client.post("/api/v1/compare", params={"heatmaps": "false"})
    assert r.status_code == 200, r.text
    assert r.json()["shapes"]["input"] == [4, 28, 28]


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("format=json&format=npz", "format", "repeated_parameter"),
        ("fromat=png", "fromat", "unknown_parameter"),
        ("format=gif", "format", "invalid"),
    ],
)
def test_query_parameters_are_strict(
    client: httpx.Client, query: str, field: str, code: str
) -> None:
    r = client.post(f"/api/v1/compare?{query}", json={})
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["code"]) == (field, code)


def test_a_list_parameter_may_repeat(client: httpx.Client) -> None:
    r = client.post("/api/v1/compare?format=png&panel=input&panel=conv_relu", json={})
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")


def test_a_repeated_multipart_part_is_refused(client: httpx.Client) -> None:
    parts = [("input", ("a.npy", files.npy(X))), ("input", ("b.npy", files.npy(X)))]
    r = client.post("/api/v1/compare", files=parts)
    assert r.status_code == 422 and r.json()["code"] == "repeated_part"
    assert r.json()["field"] == "input"


def test_head_is_answered_like_get(client: httpx.Client) -> None:
    for path in ("/", "/healthz", "/api/v1/presets"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b"", path
        assert int(r.headers["content-length"]) > 0


@pytest.mark.parametrize(
    ("input_bytes", "weights_bytes", "status", "match"),
    [
        (b"garbage!", None, 415, "not a supported file type"),
        (files.npy(X)[:-7], None, 400, "truncated"),
        (files.npy(np.full((2, 3, 3), np.nan, np.float32)), None, 422, "NaN"),
        (files.npy(X), files.npy(np.ones((3, 5), np.float32)), 422, "C = 5"),
        (files.npy(X), files.npy(np.ones((3, 6, 3, 3), np.float32)), 422, "3×3 kernel"),
        (files.npy(np.ones((28, 28, 28), np.float32)), None, 422, "ambiguous"),
        (files.npy_raw("<f4", (10**6, 10**6), b"\x00" * 8), None, 413, "limit"),
        (files.png(np.zeros((1100, 1000), np.uint8)), None, 413, "pixels"),
    ],
)
def test_bad_uploads_get_a_clear_4xx(
    client: httpx.Client, input_bytes: bytes, weights_bytes: bytes | None, status: int, match: str
) -> None:
    r = upload(client, input_bytes, weights_bytes)
    assert r.status_code == status, r.text
    assert match in r.json()["detail"]


def test_multipart_without_input_part(client: httpx.Client) -> None:
    r = client.post("/api/v1/compare", files={"weights": ("w.npy", files.npy(W))})
    assert r.status_code == 422 and "'input'" in r.json()["detail"]


def test_body_over_upload_limit_is_413(client: httpx.Client) -> None:
    big = files.npy(np.zeros(2 * 1024 * 1024, np.float32))  # 8 MiB > the 4 MiB test limit
    r = client.post("/api/v1/compare", files={"input": ("x.npy", big)})
    assert r.status_code == 413 and "ONEBYONE_MAX_UPLOAD_BYTES" in r.json()["detail"]


def test_chunked_body_over_limit_is_413_while_streaming(client: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 100_000

    r = client.post(
        "/api/v1/compare", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


def test_every_endpoint_has_an_openapi_example(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method == "post" and "application/json" in op["requestBody"]["content"]:
                content = op["requestBody"]["content"]["application/json"]
                assert content.get("examples"), path
            else:
                # GETs, and POSTs that take only uploads, show an example answer; the
                # photos are files.
                content = op["responses"]["200"]["content"]
                if path == "/api/v1/photos/{name}":
                    assert set(content) == {"image/png", "image/jpeg"}
                    continue
                ok = content["application/json"]
                assert "example" in ok or "examples" in ok, path


HUGE = (np.random.default_rng(9).standard_normal((4, 16, 16)) * 1e30).astype(np.float32)


@pytest.mark.parametrize(
    ("path", "spec", "status"),
    [
        # Finite float32 input whose W·x overflows: refused, in every format.
        ("/api/v1/compare?format=json", {"weights": {"preset": "random"}}, 200),
        ("/api/v1/compare?format=png", {"weights": {"preset": "pca"}}, 200),
        ("/api/v1/compare?format=npz", {"weights": {"matrix": [[1e10] * 4]}}, 422),
        ("/api/v1/experiments/bottleneck", {}, 200),
    ],
)
def test_huge_finite_activations_never_500(
    client: httpx.Client, path: str, spec: dict[str, Any], status: int
) -> None:
    r = client.post(
        path,
        files={"input": ("huge.npy", files.npy(HUGE))},
        data={"spec": json.dumps({"layout": "chw", **spec})},
    )
    assert r.status_code == status, r.text[:300]
    if status == 422:
        assert r.json()["code"] == "overflow"
    elif "json" in path or "bottleneck" in path:

        def refuse(constant: str) -> None:
            raise AssertionError(f"{constant} in the answer")

        body = json.loads(r.text, parse_constant=refuse)
        if "stats" in body:  # every statistic a number, none lost to overflow
            assert all(v is not None for st in body["stats"].values() for v in st["mean"])


def test_fit_that_diverges_is_a_422(client: httpx.Client) -> None:
    target = -HUGE[:1]
    r = client.post(
        "/api/v1/experiments/fit",
        files={"input": ("x.npy", files.npy(HUGE)), "target": ("t.npy", files.npy(target))},
        data={"spec": json.dumps({"layout": "chw", "target": "upload", "steps": 5})},
    )
    assert r.status_code == 422, r.text[:300]
    assert (r.json()["field"], r.json()["code"]) == ("lr", "diverged")


def test_an_integer_past_pythons_digit_limit_is_a_400(client: httpx.Client) -> None:
    body = b'{"input": {"height": ' + b"1" * 5000 + b"}}"
    r = client.post("/api/v1/compare", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "bad_json"


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"preset": "identity"}, "weights.preset"),
        ({"matrix": [[1.0] * 6] * 4}, "weights.matrix"),
    ],
)
def test_a_weights_file_and_a_preset_or_matrix_conflict(
    client: httpx.Client, weights: dict[str, Any], field: str
) -> None:
    # Two sources of weights: refused as in JSON, never one of them silently dropped.
    parts = {
        "input": ("x.npy", files.npy(X)),
        "weights": ("w.npy", files.npy(W)),
        "spec": (None, json.dumps({"weights": weights})),
    }
    r = client.post("/api/v1/compare", files=parts)
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["code"]) == (field, "conflict")


def test_a_multipart_epilogue_after_the_closing_boundary_is_ignored(client: httpx.Client) -> None:
    # RFC 2046: text after the closing boundary is an epilogue, to be ignored.
    body = (
        b'--x\r\nContent-Disposition: form-data; name="input"; filename="x.npy"\r\n\r\n'
        + files.npy(X)
        + b"\r\n--x--\r\nThis is the epilogue.\r\n"
    )
    r = client.post(
        "/api/v1/compare",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
        params={"heatmaps": "false"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["shapes"]["input"] == list(X.shape)
