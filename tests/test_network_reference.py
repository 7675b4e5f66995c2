"""app.network against torchvision's own MobileNetV2: same weights file, same photos.

torchvision does not import beside the service's torch, so tests/torchvision_mobilenet.py
runs in a separate Python: ONEBYONE_REFERENCE_PYTHON when set, else .venv-reference,
made here on first use (`python -m venv` + torch 2.14.1, torchvision 0.29.1 and the
service's own Pillow, so both sides resize with the same code). Without one the tests
skip, or fail under ONEBYONE_REQUIRE_REFERENCE=1.

Tolerances: torchvision's preprocessing within 1e-6; every 1×1 layer's input within
1e-5 of its largest magnitude (at least 1); logits within 1e-4; the top-5 indices equal.
On this machine (torch 2.13 against 2.14.1) all of them are bit-for-bit equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import pytest

from app import compare, imagenet, inputs, network, photos, pretrained, trained
from app.config import Settings
from app.schemas.requests import CompareRequest

pytestmark = pytest.mark.reference

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "torchvision_mobilenet.py"
VENV = ROOT / ".venv-reference"
PINS = ["torch==2.14.1", "torchvision==0.29.1", f"pillow=={PIL.__version__}"]
PHOTOS = list(photos.PHOTOS)
MAX_PIXELS = 16 * 1024 * 1024


def _unavailable(why: str) -> None:
    if os.environ.get("ONEBYONE_REQUIRE_REFERENCE") == "1":
        pytest.fail(f"the torchvision reference is required (ONEBYONE_REQUIRE_REFERENCE=1): {why}")
    pytest.skip(f"no torchvision reference: {why}")


def reference_python() -> Path:
    """ONEBYONE_REFERENCE_PYTHON, else .venv-reference's python, created when missing."""
    named = os.environ.get("ONEBYONE_REFERENCE_PYTHON")
    if named:
        if not Path(named).is_file():
            _unavailable(f"ONEBYONE_REFERENCE_PYTHON={named} is not a file")
        return Path(named)
    python = VENV / "bin" / "python"
    if python.is_file():
        return python
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *PINS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            _unavailable(f"{' '.join(step)} failed: {done.stderr[-2000:]}")
    return python


@pytest.fixture(scope="module")
def net() -> network.MobileNetV2:
    return network.load(None)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """torchvision's run over every photo: {photo: its arrays, "meta": layers.json}."""
    python = reference_python()
    status = pretrained.locate(None)
    assert status.path is not None, status.detail()
    folder = tmp_path_factory.mktemp("reference")
    files = []
    for name in PHOTOS:
        path = folder / f"{name}.npy"
        np.save(path, np.asarray(photos.load(name, MAX_PIXELS)))  # (H, W, 3) uint8
        files.append(str(path))
    out = folder / "out"
    done = subprocess.run(
        [str(python), str(SCRIPT), str(status.path), str(out), *files],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        _unavailable(f"{SCRIPT.name} failed: {done.stderr[-2000:]}")
    arrays: dict[str, Any] = {"meta": json.loads((out / "layers.json").read_text())}
    for name in PHOTOS:
        with np.load(out / f"{name}.npz", allow_pickle=False) as z:
            arrays[name] = {k: z[k] for k in z.files}
    return arrays


def test_reference_is_torchvision_with_our_pillow(reference: dict[str, Any]) -> None:
    meta = reference["meta"]
    assert meta["torchvision"].startswith("0.")
    assert meta["pillow"] == PIL.__version__, "both sides must resize with the same Pillow"


def test_layer_table_is_torchvisions(net: network.MobileNetV2, reference: dict[str, Any]) -> None:
    theirs = reference["meta"]["layers"]
    ours = [
        {
            "name": layer.name,
            "out_channels": layer.out_channels,
            "in_channels": layer.in_channels,
            "batchnorm": layer.batchnorm,
            "activation": layer.activation,
            "size": list(layer.size),
        }
        for layer in net.layers
    ]
    assert ours == [{k: t[k] for k in ours[0]} for t in theirs]
    assert {t["eps"] for t in theirs} == {network.BN_EPS, None}


def test_class_names_are_torchvisions_where_a_first_synonym_is_not_shared(
    reference: dict[str, Any],
) -> None:
    ours = imagenet.classes().names
    theirs = reference["meta"]["categories"]
    # Two "crane"s and two "maillot"s: torchvision names them by hand, app.imagenet adds
    # the curated name in brackets.
    assert [i for i in range(1000) if ours[i] != theirs[i]] == [134, 517, 638, 639]
    assert [ours[i].split(" (")[0] for i in (134, 517, 638, 639)] == ["crane"] * 2 + ["maillot"] * 2


@pytest.mark.parametrize("name", PHOTOS)
def test_preprocessing_equals_torchvisions(name: str, reference: dict[str, Any]) -> None:
    ours = network.preprocess(photos.load(name, MAX_PIXELS)).numpy()
    theirs = reference[name]["preprocessed"]
    assert ours.shape == theirs.shape == (3, 224, 224)
    assert np.abs(ours - theirs).max() <= 1e-6


@pytest.mark.parametrize("name", PHOTOS)
def test_every_1x1_input_logits_and_top5_equal_torchvisions(
    name: str, net: network.MobileNetV2, reference: dict[str, Any]
) -> None:
    theirs = reference[name]
    acts = net.run(photos.load(name, MAX_PIXELS))
    assert list(acts.inputs) == [layer.name for layer in net.layers]
    for layer, ours in acts.inputs.items():
        ref = theirs[layer]
        assert ours.shape == ref.shape, layer
        scale = max(1.0, float(np.abs(ref).max()))
        assert np.abs(ours - ref).max() <= 1e-5 * scale, layer
    # What torchvision's Linear receives is the mean of classifier.1's map over its pixels.
    pooled = acts.inputs["classifier.1"].astype(np.float64).mean(axis=(1, 2))  # (1280,)
    np.testing.assert_allclose(pooled, theirs["classifier.1.pooled"], rtol=0, atol=1e-5)
    assert np.abs(acts.logits - theirs["logits"]).max() <= 1e-4
    assert [p.index for p in acts.top5] == list(np.argsort(-theirs["logits"], kind="stable")[:5])


@pytest.fixture(scope="module")
def held() -> trained.Trained:
    return trained.Trained(None, 64 * 1024 * 1024, MAX_PIXELS)


@pytest.mark.parametrize("layer", [layer.name for layer in network.load(None).layers])
def test_weights_network_compute_what_torchvision_computes_at_every_layer(
    layer: str, held: trained.Trained, reference: dict[str, Any]
) -> None:
    """The layer as trained, batch norm folded (weights.network, batchnorm auto), on its
    input from the photo (generator network): W·x + b is the network's own batch norm
    output there, and for the classifier the mean over the pixels is the logits."""
    req = CompareRequest.model_validate(
        {
            "input": {"generator": "network", "photo": "chelsea", "layer": layer},
            "weights": {"network": "mobilenet_v2"},
            "device": "cpu",
        }
    )
    cmp = compare.run(req, Settings(), sources=inputs.Sources(trained=held))
    pre = cmp.paths.pre_activation.numpy()  # (K, H, W)
    theirs = reference["chelsea"]
    ref_in = theirs[layer]
    assert np.abs(cmp.x.numpy() - ref_in).max() <= 1e-5 * max(1.0, float(np.abs(ref_in).max()))
    if layer == network.CLASSIFIER:
        logits = pre.astype(np.float64).mean(axis=(1, 2))  # (1000,)
        assert np.abs(logits - theirs["logits"]).max() <= 1e-4
        assert cmp.layer.info["batchnorm"] is None
    else:
        ref = theirs[f"{layer}.bn_out"]
        scale = max(1.0, float(np.abs(ref).max()))
        assert pre.shape == ref.shape
        assert np.abs(pre - ref).max() <= 1e-4 * scale, layer
