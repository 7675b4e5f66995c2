"""routes.validation: JSON text to a request model, strictly, and pydantic's errors to one
refusal; directly, and in-process through the API (issue 9's long echoes and a million wrong
values)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from app.errors import InvalidContent, OneByOneError, TooLarge, UnreadableFile
from app.routes.validation import parse_spec, validation_error
from app.schemas.requests import CompareRequest
from tests.conftest import assert_short_refusal


def refusal(raw: bytes | str, max_values: int | None = None) -> OneByOneError:
    with pytest.raises(OneByOneError) as err:
        parse_spec(CompareRequest, raw, "JSON body", max_values)
    return err.value


@pytest.mark.parametrize("raw", [b"", "", b"  \n\t ", "   "])
def test_an_empty_or_blank_text_takes_every_default(raw: bytes | str) -> None:
    assert parse_spec(CompareRequest, raw, "JSON body") == CompareRequest()


def test_a_valid_text_is_the_model_it_describes() -> None:
    raw = b'{"input": {"generator": "smooth", "height": 9}, "weights": {"bias": 0.5}}'
    spec = parse_spec(CompareRequest, bytearray(raw), "JSON body")
    assert spec == CompareRequest.model_validate(json.loads(raw))
    assert (spec.input.generator, spec.input.height, spec.weights.bias) == ("smooth", 9, 0.5)


@pytest.mark.parametrize(
    ("raw", "error", "code", "field", "words"),
    [
        (b"{not json", UnreadableFile, "bad_json", None, "not valid JSON"),
        (b"[1, 2]", InvalidContent, "not_an_object", None, "must be a JSON object, not list"),
        (b'"text"', InvalidContent, "not_an_object", None, "not str"),
        (
            b'{"input": {"height": 8, "height": 9}}',
            UnreadableFile,
            "duplicate_key",
            "height",
            "twice",
        ),
        (b'{"a b": 1, "a b": 2}', UnreadableFile, "duplicate_key", None, "'a b' appears twice"),
        (b'{"input": {"height": ' + b"1" * 5000 + b"}}", UnreadableFile, "bad_json", None, "JSON"),
        (b"[" * 100_000 + b"]" * 100_000, UnreadableFile, "bad_json", None, "not valid JSON"),
        (b"\xff\xfe{}", UnreadableFile, "bad_json", None, "not valid JSON"),
        # Strict types: booleans and strings are not numbers, and 28.0 is no integer.
        (b'{"input": {"height": true}}', InvalidContent, "invalid", "input.height", "integer"),
        (b'{"input": {"height": "28"}}', InvalidContent, "invalid", "input.height", "integer"),
        (b'{"input": {"height": 28.0}}', InvalidContent, "invalid", "input.height", "integer"),
        (b'{"weights": {"bias": true}}', InvalidContent, "invalid", "weights.bias", "number"),
        (b'{"input": {"colour": 1}}', InvalidContent, "unknown_field", "input.colour", "generator"),
        (b'{"device": "tpu"}', InvalidContent, "invalid", "device", "Input should be"),
    ],
)
def test_refusals_name_their_code_field_and_reason(
    raw: bytes, error: type[Exception], code: str, field: str | None, words: str
) -> None:
    err = refusal(raw)
    assert type(err) is error, err
    assert (err.code, err.field) == (code, field), err.detail
    assert words in err.detail


def test_an_unknown_field_lists_the_fields_that_exist_there() -> None:
    err = refusal(b'{"input": {"colour": 1}}')
    assert err.detail == (
        "JSON body: input.colour: unknown field; the fields here are: "
        + ", ".join(CompareRequest.model_fields["input"].annotation.model_fields)  # type: ignore[union-attr]
    )


def test_values_are_counted_before_the_text_is_parsed() -> None:
    # 100 numbers (99 commas), 2 lists and 2 objects: at most 99 + 4 + 1 = 104 values.
    raw = b'{"weights": {"matrix": [[' + b"0," * 99 + b"0]]}}"
    assert parse_spec(CompareRequest, raw, "JSON body", max_values=104).weights.matrix
    err = refusal(raw, max_values=103)
    assert isinstance(err, TooLarge) and err.code == "too_many_values"
    assert "up to 104 JSON values; the limit is 103" in err.detail
    assert "ONEBYONE_MAX_JSON_VALUES" in err.detail


def test_an_object_with_too_many_keys_is_refused_before_each_is_an_error() -> None:
    ok = b"{" + b",".join(b'"k%d":1' % i for i in range(256)) + b"}"
    assert refusal(ok).code == "unknown_field"  # 256 keys: parsed, then refused by the model
    over = b"{" + b",".join(b'"k%d":1' % i for i in range(257)) + b"}"
    assert refusal(over).code == "too_many_keys"


class _Two(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: int
    b: float | list[float] = 0.0


def _errors(obj: Any) -> list[Any]:
    with pytest.raises(ValidationError) as err:
        _Two.model_validate(obj, strict=True)
    return err.value.errors(include_url=False, include_input=False)


def test_the_first_error_gives_the_field_and_code_and_all_are_listed() -> None:
    err = validation_error(_errors({"b": "x", "c": 1}), _Two, "spec part: ")
    assert (err.field, err.code) == ("a", "missing")
    assert err.detail.startswith("spec part: a: Field required; ")
    assert "spec part: c: unknown field; the fields here are: a, b" in err.detail


def test_union_members_are_not_part_of_the_field() -> None:
    # pydantic names the member it tried ("float", "list[float]") in the location.
    errors = _errors({"a": 1, "b": "x"})
    assert {e["loc"][1] for e in errors} == {"float", "list[float]"}
    err = validation_error(errors, _Two)
    assert err.field == "b" and "b.float" not in err.detail


def test_a_constrained_union_member_is_not_part_of_the_field_and_said_once() -> None:
    """classes takes names (strings of at most 200 characters) or indices: `true` is
    neither, at one field, in one sentence."""
    err = refusal(b'{"weights": {"network": "mobilenet_v2", "classes": [true]}}')
    assert err.field == "weights.classes.0"
    assert err.detail.count("weights.classes.0") == 1, err.detail
    assert "valid string" in err.detail and "valid integer" in err.detail


def test_at_most_eight_errors_are_listed_and_the_rest_counted() -> None:
    errors = [{"loc": ("f", i), "msg": "bad", "type": "int_type"} for i in range(20)]
    err = validation_error(errors, None)
    assert err.detail.count(": bad") == 8 and err.detail.endswith("and 12 more errors")
    assert (err.field, err.code) == ("f.0", "invalid")


def test_our_own_validators_name_their_field_and_code() -> None:
    err = refusal(b'{"input": {"layout": "chw"}, "layout": "hwc"}')
    assert (err.field, err.code) == ("layout", "conflict")


# Through the API: a huge body of wrong values is one short refusal, and user input is quoted
# in short escaped excerpts (issue 9, finding 8; the other excerpts are in test_receiving,
# test_multipart and test_uploads).


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # 3 MB: a million wrong items of one matrix row, or of the bias list.
        (b'{"weights":{"matrix":[[' + b",".join([b'""'] * 1_000_000) + b"]]}}", "invalid"),
        (b'{"weights":{"bias":[' + b",".join([b'""'] * 1_000_000) + b"]}}", "invalid"),
        # 300,000 rows, each wrong.
        (b'{"weights":{"matrix":[' + b",".join([b'["x"]'] * 300_000) + b"]}}", "invalid"),
        # 200,000 unknown keys in one object.
        (b"{" + b",".join(b'"k%d":1' % i for i in range(200_000)) + b"}", "too_many_keys"),
    ],
    ids=["matrix-row", "bias", "matrix-rows", "keys"],
)
def test_a_million_wrong_values_make_one_short_error(
    client: httpx.Client, body: bytes, code: str
) -> None:
    """Each wrong value used to be its own error: 1.4 GB, 8 s and a 68–88 MB 422 for a 3 MB
    body. Now the first wrong item of a list is the error, and objects have a key limit."""
    t0 = time.monotonic()
    r = client.post("/api/v1/compare", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text[:300]
    assert r.json()["code"] == code
    assert len(r.content) < 2048
    assert time.monotonic() - t0 < 5


JUNK = "\x00\x1b[2J" + "A" * (1 << 20)


@pytest.mark.parametrize(
    "send",
    [
        {
            "content": json.dumps({JUNK: 1}).encode(),
            "headers": {"content-type": "application/json"},
        },
        {
            "content": json.dumps({"input": {JUNK: 1}}).encode(),
            "headers": {"content-type": "application/json"},
        },
        {
            "content": b'{"' + b"a" * (1 << 20) + b'": 1, "' + b"a" * (1 << 20) + b'": 2}',
            "headers": {"content-type": "application/json"},
        },
        {"json": {"input": {"generator": JUNK}}},
        {"json": {"weights": {"preset": JUNK}}},
        {"json": {"input": {"layout": JUNK}}},
        {"json": {"device": JUNK}},
        {"content": JUNK.encode(), "headers": {"content-type": "application/json"}},
    ],
)
def test_errors_quote_at_most_a_short_excerpt(client: httpx.Client, send: dict[str, Any]) -> None:
    assert_short_refusal(client.post("/api/v1/compare", **send))
