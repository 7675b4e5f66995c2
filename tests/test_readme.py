"""The README's promises, as a new user would try them: its serve command, curl lines and Python."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from bench.server import ROOT, free_port, start, stop, wait_healthy
from tests import nets

README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def readme_server() -> Iterator[str]:
    """The service started exactly as the README says, on a free port."""
    port = free_port()
    proc = start(["bash", "scripts/serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=300)
        yield url
    finally:
        stop(proc)


def test_readme_names_the_two_commands() -> None:
    setup = blocks("bash")[0]
    assert "scripts/serve" in setup and "scripts/test" in setup
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_readme_curl_lines_run_as_written(readme_server: str, tmp_path: Path) -> None:
    script = "\n".join(blocks("sh")).replace("http://127.0.0.1:8000", readme_server)
    assert script.count("curl ") >= 6
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert '"status":"ok"' in done.stdout
    with Image.open(tmp_path / "reduce64.png") as img:
        assert img.format == "PNG"
    with np.load(tmp_path / "catdog.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["conv_relu"][0] > 0, z["input"][0] > z["input"][1])
    assert '"shapes"' in done.stdout and '"weight": [16, 64]' not in done.stdout
    # The trained network's lines.
    catalogue = json.loads((tmp_path / "catalogue.json").read_text())
    assert len(catalogue["networks"]["mobilenet_v2"]["layers"]) == 35
    trained = json.loads((tmp_path / "trained.json").read_text())
    assert trained["network"]["layer"] == "features.7.conv.0.0"
    assert trained["network"]["top5"][0]["name"] == "Egyptian cat"
    assert trained["shapes"]["weight"] == [192, 32] and trained["layer"]["activation"] == "relu6"
    with Image.open(tmp_path / "cat-minus-dog.png") as img:
        assert img.format == "PNG"
    hopper = json.loads((tmp_path / "hopper.json").read_text())["network"]
    assert hopper["photo"] == "upload:hopper.jpg" and hopper["layer"] == "classifier.1"
    curve = json.loads((tmp_path / "trained-bottleneck.json").read_text())
    assert curve["trained"] == {**curve["trained"], "layer": "features.7.conv.2", "k": 64}


@pytest.mark.slow
def test_readme_python_example_runs(readme_server: str, tmp_path: Path) -> None:
    (code,) = blocks("python")
    done = subprocess.run(
        [sys.executable, "-c", code.replace("http://127.0.0.1:8000", readme_server)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "agreement 1.0" in done.stdout


@pytest.mark.slow
def test_readme_own_network_path_runs_with_the_test_network(
    readme_server: str, tmp_path: Path
) -> None:
    """The README's "Your own network" lines, with tests.nets' network for ResNet-50."""
    net = nets.trained()
    torch.save(net.state_dict(), tmp_path / "trained.pt")
    ramp = np.linspace(0, 255, 320 * 280 * 3).reshape(280, 320, 3) % 256
    Image.fromarray(ramp.astype(np.uint8)).save(tmp_path / "cat.jpg", quality=95)
    model = "tests.nets.resnet_like('trained.pt')"
    transformed = 'ResNet50_Weights.DEFAULT.transforms()(torchvision.io.read_image("cat.jpg"))'
    stand_ins = [
        ("torchvision.models.resnet50(weights='DEFAULT')", model),
        ('torchvision.models.resnet50(weights="DEFAULT")', model),
        (
            "torchvision.models:resnet50 --weights DEFAULT",
            "tests.nets:resnet_like --weights trained.pt",
        ),
        ("torchvision.models." + transformed, 'tests.nets.preprocess("cat.jpg")'),
        ("import torch, torchvision", "import torch, tests.nets"),
        (".venv/bin/", f"{Path(sys.executable).parent}/"),
        ("http://127.0.0.1:8000", readme_server),
    ]

    def substituted(code: str) -> str:
        for old, new in stand_ins:
            code = code.replace(old, new)
        assert "torchvision" not in code, code
        return code

    shell, after_hook = (substituted(b) for b in blocks("shell"))
    (hook,) = (substituted(b) for b in blocks("py"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bash = ["bash", "-euo", "pipefail", "-c"]
    for cmd in ([*bash, shell], [sys.executable, "-c", hook], [*bash, after_hook]):
        done = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr + done.stdout

    listed = json.loads((tmp_path / "layers.json").read_text())["layers"]
    assert {"name": "layer1.0.conv1", "bn": "layer1.0.bn1"} in [
        {"name": e["name"], "bn": (e["batchnorm"] or {}).get("name")} for e in listed
    ]
    for png in ("layer1.0.conv1.png", "acts.png"):
        with Image.open(tmp_path / png) as img:
            assert img.format == "PNG"
    # What the network computes after the ReLU that follows layer1.0.conv1.
    x = nets.preprocess(tmp_path / "cat.jpg")[None]
    relu = nets.activations(net, x, ["layer1.0.relu1"])["layer1.0.relu1"].numpy()
    report = json.loads((tmp_path / "layer1.0.conv1.json").read_text())
    assert report["weights_source"] == "file:pt:layer1.0.conv1"
    assert report["layer"]["batchnorm"]["name"] == "layer1.0.bn1"
    np.testing.assert_allclose(
        report["stats"]["conv_relu"]["mean"], relu.mean(axis=(1, 2)), rtol=1e-5, atol=2e-6
    )
    with safe_open(str(tmp_path / "layer1.0.conv1.safetensors"), "pt") as f:
        captured = f.get_tensor("input")
    hooked = torch.load(tmp_path / "acts.pt", weights_only=True)
    torch.testing.assert_close(hooked, captured, rtol=0, atol=0)
