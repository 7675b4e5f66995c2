"""The catalogue is read from the registries, and every scenario is a request that works."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import BaseModel

from app import catalogue, generators, uploads, weights
from app.config import Settings
from app.scenarios import SCENARIOS
from app.schemas.requests import (
    GENERATOR_PARAMS,
    BottleneckRequest,
    CompareRequest,
    FitRequest,
    InputSpec,
    ReceptiveFieldRequest,
    WeightsSpec,
)
from tests import files

REQUESTS: dict[str, type[BaseModel]] = {
    "/api/v1/compare": CompareRequest,
    "/api/v1/experiments/fit": FitRequest,
    "/api/v1/experiments/bottleneck": BottleneckRequest,
    "/api/v1/experiments/receptive-field": ReceptiveFieldRequest,
}


def test_every_generator_parameter_is_a_request_field() -> None:
    for name, g in generators.GENERATORS.items():
        for key in g.params:
            assert key in GENERATOR_PARAMS and key in InputSpec.model_fields, (name, key)


def test_every_preset_parameter_is_a_request_field() -> None:
    for name, p in weights.PRESETS.items():
        for key in p.params:
            assert key in WeightsSpec.model_fields, (name, key)


def test_catalogue_reflects_settings_and_registries() -> None:
    cat = catalogue.build(Settings(max_height=77, max_out_channels=99))
    # The registry's generators, and the trained network's maps.
    assert set(cat.generators) == {*generators.GENERATORS, "network"}
    assert set(cat.weight_presets) == set(weights.PRESETS)
    assert cat.generators["catdog"].params["height"].max == 77
    assert cat.generators["catdog"].params["blobs"].type == "int"
    assert cat.generators["smooth"].params["scale"].type == "float"
    assert cat.weight_presets["pca"].params["out_channels"].max == 99
    assert "min(C, 64)" in cat.weight_presets["pca"].params["out_channels"].description
    assert cat.weight_presets["random"].params["bias"].type == "floats"
    assert [c.id for c in cat.layouts.values] == list(uploads.LAYOUTS)
    assert cat.devices.choices == ["auto", "cpu", "cuda", "mps"]
    assert ".safetensors" in cat.files["weights"].extensions
    assert ".png" in cat.files["input"].extensions and ".png" not in cat.files["weights"].extensions


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_every_scenario_is_a_valid_request_that_runs(client: httpx.Client, scenario: Any) -> None:
    REQUESTS[scenario.endpoint].model_validate(scenario.request, strict=True)
    request = dict(scenario.request)
    if scenario.id == "fit":
        request["steps"] = 20  # the same request, shorter
    r = client.post(scenario.endpoint, json=request)
    assert r.status_code == 200, r.text


def test_scenario_ids_are_unique_and_the_page_has_a_button_for_each(client: httpx.Client) -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(set(ids)) == len(ids)
    page = client.get("/").text
    for s in SCENARIOS:
        assert f'data-scenario="{s.id}"' in page and s.title in page


def test_catalogue_offers_the_checkpoint_controls_the_api_takes(client: httpx.Client) -> None:
    cp = client.get("/api/v1/catalogue").json()["checkpoint"]
    assert cp["eps"]["default"] == WeightsSpec.model_fields["eps"].default == 1e-5
    assert "1e-3" in cp["eps"]["description"]
    assert cp["batchnorm"][0]["id"] == WeightsSpec.model_fields["batchnorm"].default
    # Each listed value is one the API takes, and the endpoint is the one that lists layers.
    w = np.ones((3, 5), np.float32)
    for choice in cp["batchnorm"]:
        spec = {"weights": {"batchnorm": choice["id"]}, "input": {"layout": "chw"}}
        r = client.post(
            "/api/v1/compare",
            params={"heatmaps": "false"},
            files={
                "input": ("x.npy", files.npy(np.ones((5, 2, 2), np.float32))),
                "weights": ("w.npy", files.npy(w)),
            },
            data={"spec": json.dumps(spec)},
        )
        assert r.status_code == 200, r.text
    r = client.post(cp["layers_endpoint"], files={"weights": ("w.npy", files.npy(w))})
    assert r.status_code == 200 and r.json()["layers"][0]["out_channels"] == 3


def test_catalogue_endpoint_and_its_old_name(client: httpx.Client) -> None:
    new = client.get("/api/v1/catalogue").json()
    assert client.get("/api/v1/presets").json() == new
    assert [s["id"] for s in new["scenarios"]] == [s.id for s in SCENARIOS]


def test_a_parameter_of_another_generator_is_refused(client: httpx.Client) -> None:
    r = client.post("/api/v1/compare", json={"input": {"generator": "smooth", "blobs": 3}})
    assert r.status_code == 422
    assert (r.json()["field"], r.json()["code"]) == ("input.blobs", "not_for_generator")
    assert "rank, scale, noise" in r.json()["detail"]
