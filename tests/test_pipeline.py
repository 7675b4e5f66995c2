"""routes.pipeline: what a BodyReader makes of a received body (the spec, its decoded files and
photos, strictly), the request-body documentation it writes, and the one road through the
API in-process."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from app.config import Settings
from app.errors import OneByOneError
from app.routes.pipeline import BodyReader, Parsed
from app.routes.receiving import Body
from app.routes.spool import Spool
from app.schemas.requests import CompareRequest, LayersRequest
from tests import files
from tests.conftest import LIMITS

SETTINGS = Settings(**LIMITS)
COMPARE = BodyReader(
    CompareRequest,
    {"input": "maps", "weights": "a layer"},
    photos={"photo": "a photo"},
    required=("input", "photo"),
)
LAYERS = BodyReader(LayersRequest, {"weights": "a checkpoint"}, required=("weights",), json=False)
X = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)


def body(kind: str, raw: bytes = b"", boundary: bytes = b"x") -> Body:
    spool = Spool(64)
    spool.write(raw)
    return Body(kind, spool, boundary)


def form(parts: list[tuple[str, str | None, bytes]]) -> Body:
    """A multipart body: (name, filename or None for a text field, bytes) each."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--x\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body("multipart", out + b"--x--\r\n")


def parse(reader: BodyReader[Any], b: Body) -> Parsed[Any]:
    try:
        return reader.parse(b, SETTINGS)
    finally:
        b.spool.close()


def refusal(reader: BodyReader[Any], b: Body) -> OneByOneError:
    with pytest.raises(OneByOneError) as err:
        parse(reader, b)
    return err.value


def test_a_json_body_is_its_spec_with_no_files() -> None:
    p = parse(COMPARE, body("json", b'{"input": {"generator": "smooth", "height": 9}}'))
    assert p.spec == CompareRequest.model_validate({"input": {"generator": "smooth", "height": 9}})
    assert p.files == {"input": None, "weights": None} and p.photos == {"photo": None}
    assert p.decode_ms >= 0


def test_no_body_takes_every_default() -> None:
    assert parse(COMPARE, body("empty")).spec == CompareRequest()


def test_a_multipart_body_is_its_spec_part_and_its_decoded_files() -> None:
    spec = {"layout": "chw", "weights": {"preset": "mean"}}
    p = parse(
        COMPARE,
        form([("input", "x.npy", files.npy(X)), ("spec", None, json.dumps(spec).encode())]),
    )
    assert p.spec == CompareRequest.model_validate(spec)
    assert p.files["weights"] is None
    decoded = p.take("input")
    assert decoded is not None and decoded.format == "npy"
    np.testing.assert_array_equal(next(iter(decoded.arrays.values())), X)
    assert p.take("input") is None  # handed over: the request keeps no reference to it


def test_a_photo_part_is_decoded_to_rgb_with_the_hash_of_its_bytes() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    data = files.png(rgb)
    photo = parse(COMPARE, form([("photo", "cat.png", data)])).photo()
    assert photo is not None and photo.filename == "cat.png"
    np.testing.assert_array_equal(np.asarray(photo.image), rgb)
    assert photo.key == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("reader", "b", "code", "field", "words"),
    [
        (LAYERS, body("json", b"{}"), "missing", "weights", "curl -F weights=@FILE"),
        (LAYERS, body("empty"), "missing", "weights", "multipart/form-data"),
        (LAYERS, form([("spec", None, b"{}")]), "missing", "weights", "needs a file part"),
        (COMPARE, form([("input", None, files.npy(X))]), "not_a_file", "input", "not a text"),
        (COMPARE, form([("photo", None, b"x")]), "not_a_file", "photo", "not a text"),
        (COMPARE, form([("spec", None, b"{}")]), "missing", "input", "'input' or 'photo'"),
        (
            COMPARE,
            form([("input", "x", files.npy(X)), ("spec", None, b"[]")]),
            "not_an_object",
            None,
            "spec part",
        ),
        (COMPARE, form([("target", "t.npy", b"")]), "unknown_part", "target", "input, photo"),
        (COMPARE, body("json", b'{"nope": 1}'), "unknown_field", "nope", "JSON body"),
        (
            COMPARE,
            form([("input", "x", files.npy(X)), ("spec", None, b'{"device": "cpu\xff"}')]),
            "bad_json",
            None,
            "spec part is not valid JSON",
        ),
    ],
)
def test_refusals_name_their_part(
    reader: BodyReader[Any], b: Body, code: str, field: str | None, words: str
) -> None:
    err = refusal(reader, b)
    assert (err.code, err.field) == (code, field), err.detail
    assert words in err.detail, err.detail


def test_a_file_that_does_not_decode_is_refused_under_its_part() -> None:
    err = refusal(
        COMPARE, form([("input", "x", files.npy(X)), ("weights", "w.npy", b"\x93NUMPY junk")])
    )
    assert 400 <= err.status_code < 500 and "w.npy" in err.detail


NOISE = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (Image.new("RGB", (2, 2)).tobytes(), 415),  # raw pixels, no format
        (b"GIF87a\x01\x00\x01\x00\x81\x00\x00" + bytes(24) + b",\x00\x00\x00\x00\x01\x00;", 415),
        (files.png(NOISE)[:1500], 400),  # a PNG cut short in its pixels
        (files.png(NOISE)[:20], 400),  # and in its header
    ],
    ids=["raw", "gif", "cut-png", "cut-header"],
)
def test_a_photo_that_is_no_png_or_jpeg_is_refused_not_a_500(data: bytes, status: int) -> None:
    err = refusal(COMPARE, form([("photo", "p.gif", data)]))
    assert err.status_code == status and "p.gif" in err.detail, err.detail
    assert "BytesIO" not in err.detail  # PIL's message names an object, not the file


def test_the_request_body_it_documents_is_the_one_it_reads() -> None:
    doc = COMPARE.openapi()["requestBody"]
    assert doc["required"] is False  # an empty POST takes every default
    ref = doc["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/CompareRequest"
    assert doc["content"]["application/json"]["examples"] == CompareRequest.EXAMPLES
    form_doc = doc["content"]["multipart/form-data"]["schema"]
    assert set(form_doc["properties"]) == {"input", "weights", "photo", "spec"}
    assert form_doc["properties"]["photo"]["description"] == "a photo"
    assert "required" not in form_doc  # one of the two, as JSON Schema says it
    assert form_doc["anyOf"] == [{"required": ["input"]}, {"required": ["photo"]}]
    layers = LAYERS.openapi()["requestBody"]
    assert layers["required"] is True and set(layers["content"]) == {"multipart/form-data"}
    assert layers["content"]["multipart/form-data"]["schema"]["required"] == ["weights"]


def test_every_compute_route_documents_its_models(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/v1/compare", "/api/v1/experiments/fit", "/api/v1/checkpoints/layers"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert "multipart/form-data" in content, path
        if "application/json" in content:
            name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            assert spec["components"]["schemas"][name]["properties"], path


def test_a_multipart_and_a_json_request_for_the_same_thing_get_the_same_answer(
    client: httpx.Client,
) -> None:
    spec = {"input": {"generator": "edges", "channels": 3}, "pixel": [3, 4]}
    path = "/api/v1/experiments/receptive-field"
    a = client.post(path, json=spec)
    b = client.post(path, files={"spec": (None, json.dumps(spec))})
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    assert a.json() == b.json() and a.json()["pixel"] == [3, 4]
