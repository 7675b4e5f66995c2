"""The OpenAPI schema documents every response, its examples are true to the models, and
requests drawn from it (schemathesis, in-process) never get a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel

from app.schemas import catalogue, requests, responses
from tests.conftest import app_with


@pytest.fixture(scope="module")
def spec(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/openapi.json").json()
    return body


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, ops in spec["paths"].items() for m, op in ops.items()]


def model_of(ref: str) -> type[BaseModel]:
    name = ref.rsplit("/", 1)[-1]
    model = next(getattr(m, name) for m in (requests, responses, catalogue) if hasattr(m, name))
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def test_every_200_has_a_response_schema_and_an_example_that_validates(
    spec: dict[str, Any],
) -> None:
    for path, method, op in operations(spec):
        content = op["responses"]["200"]["content"]
        if path == "/api/v1/photos/{name}":
            assert set(content) == {"image/png", "image/jpeg"}  # the one answer that is a file
            continue
        ok = content["application/json"]
        assert "$ref" in ok.get("schema", {}), (method, path)
        assert "example" in ok, (method, path)
        model_of(ok["schema"]["$ref"]).model_validate(ok["example"])


def test_every_error_status_documents_the_error_shape(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert set(error["properties"]) == {"detail", "field", "code"}
    for path, method, op in operations(spec):
        if method == "post":
            for status in ("400", "413", "415", "422", "503"):
                content = op["responses"][status]["content"]["application/json"]
                assert content["schema"]["$ref"].endswith("/ErrorResponse"), (path, status)


def test_request_examples_are_valid_requests(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        if method != "post" or "application/json" not in op["requestBody"]["content"]:
            continue  # GETs, and POSTs that take only uploads
        body = op["requestBody"]["content"]["application/json"]
        model = model_of(body["schema"]["$ref"])
        assert body["examples"], path
        for example in body["examples"].values():
            model.model_validate(example["value"], strict=True)


def test_every_field_of_every_response_model_is_described(spec: dict[str, Any]) -> None:
    """The schema names every field; models meant for people describe themselves."""
    for path, method, op in operations(spec):
        if path == "/api/v1/photos/{name}":
            continue  # a file
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[-1]
        assert spec["components"]["schemas"][name]["properties"], (method, path)


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    refs: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            refs.update(v for k, v in node.items() if k == "$ref")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    names = set(spec["components"]["schemas"])
    assert refs and {r.rsplit("/", 1)[-1] for r in refs} <= names


@pytest.mark.slow
def test_fuzzed_requests_never_get_a_5xx() -> None:
    """schemathesis draws requests from our own OpenAPI schema, for every operation, and sends
    them to the app in-process (as "testserver", a host name it must then serve)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app_with(allowed_hosts=["testserver"]))
    seen: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label

        @settings(
            max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(timeout=60)
            seen[label] = seen.get(label, 0) + 1  # noqa: B023 (runs before the loop moves on)
            assert response.status_code < 500, (case.path, case.body, response.text)

        check()
    assert len(seen) >= 4 and seen["POST /api/v1/compare"] >= 50, seen
