"""A whole checkpoint's 1×1 layer with its batch norm folded: app/checkpoints.py in-process,
then the API in-process and `onebyone capture` run as a user runs it.

The reference everywhere is the network itself: its own activation after the ReLU that
follows the layer, read with a forward hook.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save as st_save

from app import checkpoints, uploads
from app.cli import Preprocessing
from app.errors import InvalidContent, TooLarge, UnreadableFile
from bench.server import ROOT
from tests import files, nets

LIMITS = {"max_values": 10**6, "max_pixels": 10**6}
ONES = list(nets.BN_AFTER)  # every 1×1 conv of the test network, in its order


@pytest.fixture(scope="module")
def net() -> nets.ResNetLike:
    return nets.trained()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """One preprocessed-image-like input (1, 3, 224, 224), not centred, not unit."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 3, 224, 224, generator=g) * 1.5 + 0.3


def state(net: nets.ResNetLike) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def arrays(sd: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.float().numpy() for k, v in sd.items()}


def wrapped(sd: dict[str, torch.Tensor], how: str) -> bytes:
    """The state dict saved as people save checkpoints."""
    if how == "plain":
        return files.pt(sd)
    if how == "state_dict":
        return files.pt({"state_dict": sd, "epoch": 7})
    if how == "model":
        # torchvision's reference scripts: the model beside an optimizer's state.
        params = [torch.nn.Parameter(v.clone()) for v in sd.values() if v.is_floating_point()]
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        sum(p.sum() for p in params).backward()
        opt.step()
        return files.pt({"model": sd, "optimizer": opt.state_dict(), "epoch": 3})
    if how == "module.":
        return files.pt({f"module.{k}": v for k, v in sd.items()})
    if how == "model.":
        return files.pt({"state_dict": {f"model.{k}": v for k, v in sd.items()}})
    assert how == "safetensors"
    return st_save({k: v.contiguous() for k, v in sd.items()})


WRAPPERS = ["plain", "state_dict", "model", "module.", "model.", "safetensors"]


# ---------------------------------------------------------------- checkpoints.py


@pytest.mark.parametrize(
    ("conv", "bn"),
    [
        ("layer1.0.conv1", "layer1.0.bn1"),  # ResNet
        ("inception3a.branch2.0.conv", "inception3a.branch2.0.bn"),  # GoogLeNet BasicConv2d
        ("features.3.0", "features.3.1"),  # Sequential (MobileNet, EfficientNet)
        ("features.2.conv.2", "features.2.conv.3"),  # MobileNetV2's projection
        ("layer2.0.downsample.0", "layer2.0.downsample.1"),  # ResNet's shortcut
        ("res2.0.conv1", "res2.0.conv1.norm"),  # detectron2
        ("stages.0.layers.0.shortcut.convolution", "stages.0.layers.0.shortcut.normalization"),
        ("block.conv_pw", "block.bn_pw"),
    ],
)
def test_following_names_find_the_usual_batch_norm(conv: str, bn: str) -> None:
    assert bn in checkpoints.following_names(conv)


def test_densenet_norm1_is_not_taken_for_the_batch_norm_after_conv1() -> None:
    # In DenseNet norm1 comes before conv1; folding it would be wrong.
    assert "features.denseblock1.denselayer1.norm1" not in checkpoints.following_names(
        "features.denseblock1.denselayer1.conv1"
    )


def test_checkpoint_offers_only_1x1_convs_with_the_batch_norm_after_each(
    net: nets.ResNetLike,
) -> None:
    ckpt = checkpoints.Checkpoint(arrays(state(net)))
    assert [c.name for c in ckpt.layers()] == ONES
    assert {c.name: ckpt.follows(c.name) for c in ckpt.layers()} == nets.BN_AFTER
    assert "layer1.0.conv2" in ckpt.convs and "fc" not in ckpt.convs  # 3×3 held, linear not
    assert (ckpt.convs["layer1.0.conv1"].k, ckpt.convs["layer1.0.conv1"].c) == (8, 16)
    assert not ckpt.batchnorms["inception3a.branch3.1"].affine


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("conv_bias", [True, False])
@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_fold_equals_conv_then_eval_batch_norm(affine: bool, conv_bias: bool, eps: float) -> None:
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(5, 7, 1, bias=conv_bias)
    bn = torch.nn.BatchNorm2d(7, eps=eps, affine=affine, momentum=0.7)
    if affine:
        with torch.no_grad():
            bn.weight.uniform_(-2, 2)
            bn.bias.uniform_(-1, 1)
    seq = torch.nn.Sequential(conv, bn).train()
    with torch.no_grad():
        for _ in range(3):
            seq(torch.randn(8, 5, 6, 6) * 3 + 1)
    seq.eval()
    x = torch.randn(1, 5, 9, 11)
    with torch.no_grad():
        expected = seq(x)[0].double().numpy()
    params = checkpoints.BatchNorm(
        "bn",
        bn.running_mean.numpy(),
        bn.running_var.numpy(),
        bn.weight.detach().numpy() if affine else None,
        bn.bias.detach().numpy() if affine else None,
    )
    b = conv.bias.detach().numpy() if conv_bias else None
    w, b2 = checkpoints.fold(conv.weight.detach().numpy()[:, :, 0, 0], b, params, eps)
    got = np.einsum("kc,chw->khw", w.astype(np.float64), x[0].double().numpy())
    got += b2[:, None, None]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("how", WRAPPERS)
def test_every_wrapper_decodes_to_the_same_layers(net: nets.ResNetLike, how: str) -> None:
    sd = state(net)
    data = wrapped(sd, how)
    decoded = uploads.decode(data, "weights", "model.bin", **LIMITS)
    ckpt = checkpoints.Checkpoint(decoded.arrays)
    names = [c.name for c in ckpt.layers()]
    # Listed in the file's order; safetensors stores its own.
    assert names == ONES if how != "safetensors" else sorted(names) == sorted(ONES)
    conv = ckpt.layer("layer1.0.conv1")
    np.testing.assert_array_equal(conv.weight, sd["layer1.0.conv1.weight"].numpy())
    expected = {"state_dict": ["state_dict"], "model": ["model"], "module.": ["module"]}
    expected["model."] = ["state_dict.model"]
    assert list(ckpt.stripped) == expected.get(how, [])


def test_a_pt_checkpoint_with_hundreds_of_tensors_decodes() -> None:
    sd = {f"block{i}.conv.weight": torch.ones(2, 2, 1, 1) for i in range(300)}
    decoded = uploads.decode(files.pt(sd), "weights", "big.pt", **LIMITS)
    assert len(checkpoints.Checkpoint(decoded.arrays).layers()) == 300


def test_many_views_of_one_storage_are_refused_before_conversion() -> None:
    base = torch.zeros(100_000, dtype=torch.float16)
    data = files.pt({f"v{i}": base[:] for i in range(50)})  # 5 M values, 200 kB stored
    with pytest.raises(TooLarge, match="values in all"):
        uploads.decode(data, "weights", "views.pt", max_values=10**6, max_pixels=10**6)


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pwned",))


def test_a_pickled_object_inside_a_checkpoint_is_refused_not_run(
    net: nets.ResNetLike, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in (Evil(), argparse.Namespace(lr=0.1)):
        data = files.pt({"model": state(net), "args": extra})
        with pytest.raises(UnreadableFile, match="weights_only"):
            uploads.decode(data, "weights", "ckpt.pt", **LIMITS)
    assert "pwned" not in capsys.readouterr().out


def _ckpt(net: nets.ResNetLike, **changes: torch.Tensor) -> checkpoints.Checkpoint:
    sd = state(net)
    sd.update(changes)
    return checkpoints.Checkpoint(arrays(sd))


def test_no_name_with_several_1x1_layers_lists_every_one(net: nets.ResNetLike) -> None:
    with pytest.raises(InvalidContent) as err:
        _ckpt(net).layer(None)
    assert err.value.code == "layer_required" and err.value.field == "weights.layer"
    for name in ONES:
        assert name in err.value.detail
    assert "(K, C) = (8, 16), then batch norm layer1.0.bn1" in err.value.detail
    assert "conv2" not in err.value.detail and "fc" not in err.value.detail


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("layer1.0.cnv1", "unknown_name", "Did you mean layer1.0.conv1,"),
        ("layer1.0.bn1", "unknown_name", "is a batch norm"),
        ("layer1.0.conv2", "not_1x1", "is a 3×3 conv"),
        ("conv1", "not_1x1", "is a 3×3 conv"),
    ],
)
def test_bad_layer_names_are_refused_with_the_choices(
    net: nets.ResNetLike, name: str, code: str, says: str
) -> None:
    with pytest.raises(InvalidContent) as err:
        _ckpt(net).layer(name)
    assert err.value.code == code and err.value.field == "weights.layer"
    assert says in err.value.detail and "inception3a.branch3.0 (K, C) = (4, 24)" in err.value.detail


def test_names_may_keep_their_wrapper_and_weight_suffix(net: nets.ResNetLike) -> None:
    ckpt = _ckpt(net)
    assert ckpt.layer("module.layer1.0.conv1.weight").name == "layer1.0.conv1"


@pytest.mark.parametrize(
    ("changes", "choice", "code", "says"),
    [
        ({}, "layer1.0.bn3", "shape_mismatch", "running_mean 24"),
        ({}, "layer1.0.bn9", "unknown_name", "Did you mean"),
        (
            {"layer1.0.bn1.running_var": torch.tensor([1.0, float("nan"), *[1.0] * 6])},
            "auto",
            "not_finite",
            "running_var",
        ),
        ({"layer1.0.bn1.running_mean": torch.full((8,), float("inf"))}, "auto", "not_finite", ""),
        ({"layer1.0.bn1.running_var": -torch.ones(8)}, "auto", "out_of_range", "negative"),
        ({"layer1.0.bn1.weight": torch.ones(5)}, "auto", "shape_mismatch", "weight 5"),
    ],
)
def test_batch_norms_that_cannot_be_folded_are_refused(
    net: nets.ResNetLike, changes: dict[str, torch.Tensor], choice: str, code: str, says: str
) -> None:
    ckpt = _ckpt(net, **changes)
    with pytest.raises(InvalidContent) as err:
        ckpt.batchnorm(ckpt.layer("layer1.0.conv1"), choice)
    assert err.value.code == code and err.value.field == "weights.batchnorm"
    assert says in err.value.detail


def test_a_checkpoint_without_1x1_convs_says_so() -> None:
    sd = {"conv.weight": np.ones((4, 3, 3, 3), np.float32), "bn.running_mean": np.zeros(4)}
    with pytest.raises(InvalidContent, match=r"no 1×1 conv layer.*conv \(3×3\)") as err:
        checkpoints.Checkpoint(sd).layer(None)
    assert err.value.code == "no_1x1_layer"


# ---------------------------------------------------------------- the API


def compare(
    client: httpx.Client,
    x: np.ndarray | bytes,
    weights: bytes | None,
    spec_weights: dict[str, Any] | None = None,
    fmt: str = "npz",
) -> httpx.Response:
    parts: dict[str, Any] = {"input": ("x.npy", files.npy(x) if isinstance(x, np.ndarray) else x)}
    if weights is not None:
        parts["weights"] = ("model.pt", weights)
    spec = {"input": {"layout": "chw"}, "device": "cpu", "weights": spec_weights or {}}
    return client.post(
        "/api/v1/compare", params={"format": fmt}, files=parts, data={"spec": json.dumps(spec)}
    )


def npz(r: httpx.Response) -> dict[str, np.ndarray]:
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def seen(net: nets.ResNetLike, image: torch.Tensor) -> dict[str, dict[str, np.ndarray]]:
    """What the network computes: each 1×1 conv's input and output, each BN's output, and
    each ReLU's output after a checked layer."""
    relus = list(nets.RELU_AFTER.values())
    bns = list(nets.BN_AFTER.values())
    return {
        "input": {k: v.numpy() for k, v in nets.activations(net, image, ONES, True).items()},
        "conv": {k: v.numpy() for k, v in nets.activations(net, image, ONES).items()},
        "bn": {k: v.numpy() for k, v in nets.activations(net, image, bns).items()},
        "relu": {k: v.numpy() for k, v in nets.activations(net, image, relus).items()},
    }


@pytest.mark.parametrize("how", WRAPPERS)
def test_service_equals_the_network_after_its_relu(
    client: httpx.Client, net: nets.ResNetLike, seen: dict[str, Any], how: str
) -> None:
    data = wrapped(state(net), how)
    for layer, relu in nets.RELU_AFTER.items():
        spec = {"layer": layer, "batchnorm": "auto", "eps": nets.EPS.get(layer, 1e-5)}
        z = npz(compare(client, seen["input"][layer], data, spec))
        assert z["conv_relu"].shape == seen["relu"][relu].shape
        np.testing.assert_allclose(z["conv_relu"], seen["relu"][relu], rtol=1e-5, atol=1e-5)


def test_batchnorm_none_is_the_raw_conv(
    client: httpx.Client, net: nets.ResNetLike, seen: dict[str, Any]
) -> None:
    data = files.pt(state(net))
    for layer in nets.RELU_AFTER:
        z = npz(compare(client, seen["input"][layer], data, {"layer": layer, "batchnorm": "none"}))
        raw = seen["conv"][layer]
        np.testing.assert_allclose(z["pre_activation"], raw, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(z["conv_relu"], np.maximum(raw, 0), rtol=1e-5, atol=1e-5)
        assert not np.allclose(z["conv_relu"], seen["relu"][nets.RELU_AFTER[layer]], atol=1e-3)


def test_a_named_batch_norm_and_eps_are_used(
    client: httpx.Client, net: nets.ResNetLike, seen: dict[str, Any]
) -> None:
    # BasicConv2d's batch norm has eps 1e-3, which a state dict does not store.
    layer = "inception3a.branch1.conv"
    x, data = seen["input"][layer], files.pt(state(net))
    default = npz(compare(client, x, data, {"layer": layer}))
    told = npz(compare(client, x, data, {"layer": layer, "batchnorm": "inception3a.branch1.bn"}))
    exact = npz(compare(client, x, data, {"layer": layer, "eps": 1e-3}))
    expected = seen["bn"]["inception3a.branch1.bn"]
    np.testing.assert_allclose(exact["pre_activation"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(default["pre_activation"], told["pre_activation"])
    assert np.abs(default["pre_activation"] - expected).max() > 1e-4  # eps 1e-5 is off


def test_json_says_which_layer_and_batch_norm(
    client: httpx.Client, net: nets.ResNetLike, seen: dict[str, Any]
) -> None:
    data = files.pt({"state_dict": state(net)})
    layer = "layer1.0.conv1"
    j = compare(client, seen["input"][layer], data, {"layer": layer}, fmt="json").json()
    assert j["weights_source"] == "file:pt:layer1.0.conv1"
    assert j["layer"]["checkpoint_layer"] == layer
    assert j["layer"]["batchnorm"] == {"name": "layer1.0.bn1", "eps": 1e-5, "affine": True}
    assert j["layer"]["batchnorm_follows"] == "layer1.0.bn1"
    j = compare(
        client, seen["input"][layer], data, {"layer": layer, "batchnorm": "none"}, fmt="json"
    ).json()
    assert j["layer"]["batchnorm"] is None and j["layer"]["batchnorm_follows"] == "layer1.0.bn1"


def test_a_conv_and_its_batch_norm_alone_need_no_name(
    client: httpx.Client, net: nets.ResNetLike, seen: dict[str, Any]
) -> None:
    layer = "layer1.0.conv1"
    sd = {k: v for k, v in state(net).items() if k.startswith(("layer1.0.conv1", "layer1.0.bn1"))}
    z = npz(compare(client, seen["input"][layer], files.pt(sd)))
    np.testing.assert_allclose(z["conv_relu"], seen["relu"]["layer1.0.relu1"], rtol=1e-5, atol=1e-5)


def test_layers_endpoint_lists_1x1_convs_with_k_c_bias_and_batch_norm(
    client: httpx.Client, net: nets.ResNetLike
) -> None:
    r = client.post(
        "/api/v1/checkpoints/layers", files={"weights": ("m.pt", wrapped(state(net), "module."))}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["format"] == "pt" and body["wrappers"] == ["module"]
    assert [entry["name"] for entry in body["layers"]] == ONES
    assert body["layers"][0] == {
        "name": "layer1.0.conv1",
        "out_channels": 8,
        "in_channels": 16,
        "bias": False,
        "batchnorm": {"name": "layer1.0.bn1", "channels": 8, "affine": True},
    }
    last = body["layers"][-1]
    assert last["bias"] is True and last["batchnorm"]["affine"] is False
    assert body["other_convs"] == 4 and body["batchnorms"] == 12
    assert body["input"] is None


def test_layers_endpoint_takes_a_single_layer_file(client: httpx.Client) -> None:
    w = np.ones((3, 5), np.float32)
    captured = files.safetensors(input=np.ones((5, 4, 6), np.float32), weight=w)
    for data, held in ((files.npy(w), None), (captured, [5, 4, 6])):
        r = client.post("/api/v1/checkpoints/layers", files={"weights": ("w", data)})
        assert r.status_code == 200, r.text
        (layer,) = r.json()["layers"]
        assert layer["name"] == "" and (layer["out_channels"], layer["in_channels"]) == (3, 5)
        # A file from `onebyone capture` says it holds the activations too.
        assert r.json()["input"] == held


def test_layers_endpoint_is_documented(client: httpx.Client) -> None:
    op = client.get("/openapi.json").json()["paths"]["/api/v1/checkpoints/layers"]["post"]
    assert "weights" in op["requestBody"]["content"]["multipart/form-data"]["schema"]["required"]
    ok = op["responses"]["200"]["content"]["application/json"]
    assert ok["example"]["layers"][0]["name"] == "layer1.0.conv1"
    assert ok["schema"]["$ref"].endswith("CheckpointLayers")
    assert {"413", "415", "422"} <= set(op["responses"])


def _bad_stats(net: nets.ResNetLike) -> bytes:
    sd = state(net)
    sd["layer1.0.bn1.running_var"][2] = float("nan")
    return files.pt(sd)


def _only_3x3() -> bytes:
    conv = torch.nn.Sequential(torch.nn.Conv2d(16, 8, 3), torch.nn.BatchNorm2d(8))
    return files.pt(conv.state_dict())


BAD: list[tuple[str, Any, dict[str, Any], int, str, str, str]] = [
    # (what, weights bytes (or a function of the net), weights spec, status, field, code, says)
    ("no 1×1 layer", _only_3x3, {}, 422, "weights", "no_1x1_layer", "0 (3×3)"),
    ("several, unnamed", "net", {}, 422, "weights.layer", "layer_required", "layer1.1.conv3"),
    ("unknown name", "net", {"layer": "layer1.0.con1"}, 422, "weights.layer", "unknown_name", ""),
    ("3×3 named", "net", {"layer": "layer1.0.conv2"}, 422, "weights.layer", "not_1x1", "3×3"),
    (
        "batch norm of the wrong size",
        "net",
        {"layer": "layer1.0.conv1", "batchnorm": "layer1.0.downsample.1"},
        422,
        "weights.batchnorm",
        "shape_mismatch",
        "K = 8",
    ),
    (
        "non-finite running statistics",
        _bad_stats,
        {"layer": "layer1.0.conv1"},
        422,
        "weights.batchnorm",
        "not_finite",
        "running_var",
    ),
    (
        "a pickled object",
        lambda net: files.pt({"model": state(net), "evil": Evil()}),
        {"layer": "layer1.0.conv1"},
        400,
        "weights",
        "unreadable",
        "weights_only",
    ),
    ("eps out of range", "net", {"layer": "layer1.0.conv1", "eps": 0}, 422, "", "", "eps"),
    (
        "a layer named for a single array",
        lambda net: files.npy(np.ones((4, 16), np.float32)),
        {"layer": "layer1.0.conv1"},
        422,
        "weights.layer",
        "not_a_checkpoint",
        "Drop weights.layer",
    ),
]


@pytest.mark.parametrize(("what", "make", "spec", "status", "field", "code", "says"), BAD)
def test_bad_checkpoints_get_a_clear_4xx(
    client: httpx.Client,
    net: nets.ResNetLike,
    seen: dict[str, Any],
    what: str,
    make: Any,
    spec: dict[str, Any],
    status: int,
    field: str,
    code: str,
    says: str,
) -> None:
    data = files.pt(state(net)) if make == "net" else make() if make is _only_3x3 else make(net)
    r = compare(client, seen["input"]["layer1.0.conv1"], data, spec)
    assert r.status_code == status, r.text
    body = r.json()
    assert says in body["detail"], body
    if field:
        assert (body["field"], body["code"]) == (field, code), body
    if code in ("no_1x1_layer", "unreadable"):
        listed = client.post("/api/v1/checkpoints/layers", files={"weights": ("m.pt", data)})
        assert listed.status_code == status and listed.json()["code"] == code


def test_a_layer_without_a_checkpoint_is_refused(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/compare", json={"input": {"channels": 4}, "weights": {"layer": "layer1.0.conv1"}}
    )
    assert r.status_code == 422 and r.json()["code"] == "needs_file"
    r = client.post("/api/v1/checkpoints/layers", json={})
    assert r.status_code == 422 and r.json()["field"] == "weights"


def test_a_checkpoint_over_the_upload_limit_is_413(client: httpx.Client) -> None:
    # 5.8 MB: over the test server's 4 MiB limit and the 1 MiB it allows for the rest.
    big = ("big.pt", files.pt({"conv.weight": torch.zeros(1200, 1200, 1, 1)}))
    x = ("x.npy", files.npy(np.ones((2, 2), np.float32)))
    for url, parts in (
        ("/api/v1/checkpoints/layers", {"weights": big}),
        ("/api/v1/compare", {"input": x, "weights": big}),
    ):
        r = client.post(url, files=parts)
        assert r.status_code == 413 and "ONEBYONE_MAX_UPLOAD_BYTES" in r.json()["detail"]


# ---------------------------------------------------------------- onebyone capture


def test_default_preprocessing_is_resize_crop_and_imagenet_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "flat.png"
    Image.new("RGB", (400, 300), (200, 100, 50)).save(path)
    x = nets.preprocess(path)
    assert x.shape == (3, 224, 224)
    # ImageNet's mean and std, as torchvision documents them.
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (np.array([200, 100, 50]) / 255 - mean) / std
    np.testing.assert_allclose(x.mean(dim=(1, 2)).numpy(), expected, rtol=1e-5)
    assert Preprocessing(resize=0, crop=0)(Image.new("RGB", (40, 30))).shape == (3, 30, 40)


def run_capture(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    onebyone = Path(sys.executable).parent / "onebyone"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [str(onebyone), "capture", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("capture") / "photo.png"
    rgb = np.random.default_rng(5).integers(0, 256, (260, 300, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture(scope="module")
def saved(net: nets.ResNetLike, photo: Path) -> Path:
    path = photo.parent / "trained.pt"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layer", "after"),
    [("layer1.0.conv1", "layer1.0.relu1"), ("inception3a.branch3.0", "inception3a.branch3.2")],
)
def test_capture_end_to_end_equals_the_network(
    client: httpx.Client,
    net: nets.ResNetLike,
    photo: Path,
    saved: Path,
    tmp_path: Path,
    layer: str,
    after: str,
) -> None:
    out = tmp_path / "layer.safetensors"
    done = run_capture(
        tmp_path,
        "tests.nets:resnet_like",
        "--weights",
        str(saved),
        "--layer",
        layer,
        "--image",
        str(photo),
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert f"batch norm folded: {nets.BN_AFTER[layer]}" in done.stdout
    check = done.stdout.split(f"network's own {nets.BN_AFTER[layer]} output to ")[1].split()[0]
    assert float(check) < 1e-5, done.stdout
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["layer"] == layer and meta["batchnorm_folded"].startswith(nets.BN_AFTER[layer])
    assert meta["model"] == "tests.nets:resnet_like" and "centre crop 224" in meta["preprocessing"]

    x = nets.preprocess(photo)[None]
    expected = nets.activations(net, x, [after])[after].numpy()
    r = client.post(
        "/api/v1/compare",
        params={"format": "npz"},
        files={"input": ("l.safetensors", out.read_bytes())},
    )
    z = npz(r)
    np.testing.assert_allclose(z["conv_relu"], expected, rtol=1e-5, atol=1e-5)
    j = client.post(
        "/api/v1/compare",
        params={"format": "json", "heatmaps": "false"},
        files={"input": ("l.safetensors", out.read_bytes())},
    ).json()
    assert j["weights_source"] == "input-file:safetensors"


@pytest.mark.slow
def test_capture_takes_a_strided_1x1_conv_as_it_samples(
    client: httpx.Client, net: nets.ResNetLike, photo: Path, saved: Path, tmp_path: Path
) -> None:
    out = tmp_path / "shortcut.safetensors"
    done = run_capture(
        tmp_path,
        "tests.nets:resnet_like",
        "--weights",
        str(saved),
        "--layer",
        "layer1.0.downsample.0",
        "--image",
        str(photo),
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    x = nets.preprocess(photo)[None]
    expected = nets.activations(net, x, ["layer1.0.downsample.1"])["layer1.0.downsample.1"]
    files_ = {"input": ("s.safetensors", out.read_bytes())}
    z = npz(client.post("/api/v1/compare", params={"format": "npz"}, files=files_))
    assert z["input"].shape == (16, 28, 28)  # the 56×56 input at stride 2
    np.testing.assert_allclose(z["pre_activation"], expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layer", "says"),
    [
        ("layer1.0.conv2", "is a 3×3 conv; pick a plain 1×1 one: layer1.0.conv1"),
        ("layer1.0.con1", "Did you mean layer1.0.conv1"),
    ],
)
def test_capture_refuses_a_layer_that_is_not_1x1(
    photo: Path, saved: Path, tmp_path: Path, layer: str, says: str
) -> None:
    done = run_capture(
        tmp_path,
        "tests.nets:resnet_like",
        "--layer",
        layer,
        "--image",
        str(photo),
        "-o",
        str(tmp_path / "x.safetensors"),
    )
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert not (tmp_path / "x.safetensors").exists()


def _capture_args(photo: Path, out: Path, *more: str) -> list[str]:
    return ["--layer", "layer1.0.conv1", "--image", str(photo), "-o", str(out), *more]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("factory", "output", "says"),
    [
        # -o in a folder that does not exist
        ("tests.nets:resnet_like", "missing/dir/x.safetensors", "Cannot write"),
        # the factory itself fails (its weights file is missing)
        ("tests.nets:resnet_like", "x.safetensors", "tests.nets:resnet_like failed"),
    ],
)
def test_capture_failures_are_one_clean_error_line(
    photo: Path, tmp_path: Path, factory: str, output: str, says: str
) -> None:
    more = ["--weights", str(tmp_path / "no-such.pt")] if "failed" in says else []
    done = run_capture(tmp_path, factory, *_capture_args(photo, tmp_path / output, *more))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and says in done.stderr, done.stderr
    assert done.stderr.startswith("onebyone capture: error:")


@pytest.mark.slow
def test_capture_imports_installed_packages_before_files_in_the_working_directory(
    photo: Path, tmp_path: Path
) -> None:
    # A stray file where the command runs must not replace a module the user's own
    # imports (torchvision.py for torchvision; here wave.py for the standard library's wave,
    # which nothing has imported yet), and the user's own module there is still found.
    (tmp_path / "wave.py").write_text("raise SystemExit('the stray wave.py was imported')\n")
    (tmp_path / "mynet.py").write_text(
        "import wave\n\nfrom tests.nets import resnet_like\n\n\n"
        "def build():\n    assert wave.Wave_read\n    return resnet_like()\n"
    )
    out = tmp_path / "x.safetensors"
    done = run_capture(tmp_path, "mynet:build", *_capture_args(photo, out))
    assert done.returncode == 0, done.stderr
    assert out.exists()
