"""MobileNetV2 in app.network: the layer table, torchvision's preprocessing, the forward pass,
the state a checkpoint reader sees, and the activation cache. Real weights, real photos;
tests/test_network_reference.py holds all of it against torchvision's own model."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from app import checkpoints, imagenet, network, photos
from app.errors import InvalidContent

MAX_PIXELS = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def net() -> network.MobileNetV2:
    return network.load(None)


@pytest.fixture(scope="module")
def runs(net: network.MobileNetV2) -> dict[str, network.Activations]:
    return {name: net.run(photos.load(name, MAX_PIXELS)) for name in ("chelsea", "coffee")}


# ---------------------------------------------------------------- the layer table

# MobileNetV2's paper (Sandler et al. 2018, table 2) for a 224×224 image: the map size
# and the output channels of each inverted residual block, and its expansion factor.
PAPER = [(112, 16, 1)] + [(56, 24, 6)] * 2 + [(28, 32, 6)] * 3 + [(14, 64, 6)] * 4
PAPER += [(14, 96, 6)] * 3 + [(7, 160, 6)] * 3 + [(7, 320, 6)]


def test_35_layers_expand_and_project_per_block_then_the_last_and_the_classifier(
    net: network.MobileNetV2,
) -> None:
    layers = net.layers
    assert len(layers) == 35
    assert Counter(layer.role for layer in layers) == {
        "expand": 16,
        "project": 17,
        "last": 1,
        "classifier": 1,
    }
    cin = 32  # the stem's output
    for block, (size, cout, t) in enumerate(PAPER, start=1):
        mine = [layer for layer in layers if layer.block == block]
        project = mine[-1]
        assert project.name == f"features.{block}.conv.{2 if t > 1 else 1}"
        assert (project.in_channels, project.out_channels) == (cin * t, cout)
        assert project.size == (size, size)
        assert project.batchnorm == f"features.{block}.conv.{3 if t > 1 else 2}"
        assert project.activation == "none"  # the linear bottleneck
        if t > 1:
            expand = mine[0]
            assert expand.name == f"features.{block}.conv.0.0"
            assert (expand.in_channels, expand.out_channels) == (cin, cin * t)
            assert expand.batchnorm == f"features.{block}.conv.0.1"
            assert expand.activation == "relu6"
            assert expand.size[0] in (size, 2 * size)  # before the block's stride
        cin = cout
    assert layers[-2] == network.Layer(
        "features.18.0", 1280, 320, "features.18.1", "relu6", (7, 7), 18, "last"
    )
    assert layers[-1] == network.Layer(
        "classifier.1", 1000, 1280, None, "none", (7, 7), None, "classifier"
    )


def test_block_7_expand_and_reduce_as_the_issue_names_them(net: network.MobileNetV2) -> None:
    expand = net.layer("features.7.conv.0.0")
    reduce = net.layer("features.7.conv.2")
    assert (expand.in_channels, expand.out_channels, expand.size) == (32, 192, (28, 28))
    assert (reduce.in_channels, reduce.out_channels, reduce.size) == (192, 64, (14, 14))


def test_an_unknown_layer_gets_close_names(net: network.MobileNetV2) -> None:
    with pytest.raises(InvalidContent) as e:
        net.layer("features.7.conv.0")
    assert e.value.code == "unknown_name" and e.value.field == "input.layer"
    assert "Did you mean features.7.conv.0.0" in e.value.detail
    with pytest.raises(InvalidContent) as e:
        net.layer("x" * 5000)
    assert len(e.value.detail) < 2000 and "Did you mean" not in e.value.detail
    assert net.layer("classifier.1.weight").name == "classifier.1"


def test_the_checkpoint_reader_folds_the_right_batch_norm_for_every_layer(
    net: network.MobileNetV2,
) -> None:
    arrays = net.state_arrays()
    assert arrays["classifier.1.weight"].shape == (1000, 1280, 1, 1)
    ck = checkpoints.Checkpoint(arrays)
    assert [c.name for c in ck.layers()] == [layer.name for layer in net.layers]
    for layer in net.layers:
        conv = ck.layer(layer.name)
        assert (conv.k, conv.c) == (layer.out_channels, layer.in_channels)
        bn = ck.batchnorm(conv, "auto")
        assert (bn.name if bn else None) == layer.batchnorm, layer.name
    assert arrays["features.0.1.num_batches_tracked"].dtype == np.int64
    arrays["features.0.0.weight"][:] = 0  # a copy: the network is unchanged
    assert net.state_arrays()["features.0.0.weight"].any()


# ---------------------------------------------------------------- preprocessing


@pytest.mark.parametrize(
    ("size", "resized"),
    [
        ((451, 300), (384, 256)),  # chelsea: 256 · 451 / 300 = 384.85, truncated
        ((300, 451), (256, 384)),
        ((512, 512), (256, 256)),
        ((600, 400), (384, 256)),
        ((100, 60), (426, 256)),  # enlarged
        ((16, 256), (256, 4096)),  # 16:1, the narrowest taken
    ],
)
def test_the_shorter_side_becomes_256_and_the_crop_224(
    size: tuple[int, int], resized: tuple[int, int]
) -> None:
    assert network.resized_size(*size) == resized
    img = Image.new("RGB", size, (10, 20, 30))
    assert network.crop(img).size == (224, 224)
    assert network.preprocess(img).shape == (3, 224, 224)


def test_the_crop_is_the_centre_and_values_are_normalised_by_imagenets_mean_and_std() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(256, 300, 3), dtype=np.uint8)  # (H, W, 3), no resize
    crop = np.asarray(network.crop(rgb))
    np.testing.assert_array_equal(crop, rgb[16:240, 38:262])  # (256 − 224)/2, (300 − 224)/2
    x = network.preprocess(rgb).numpy()  # (3, 224, 224)
    mean = np.array(network.MEAN, dtype=np.float32)[:, None, None]
    std = np.array(network.STD, dtype=np.float32)[:, None, None]
    expected = (crop.transpose(2, 0, 1) / np.float32(255) - mean) / std
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-6)
    assert x.dtype == np.float32


def test_a_pil_image_and_its_array_give_the_same_input() -> None:
    img = photos.load("chelsea", MAX_PIXELS)
    assert torch.equal(network.preprocess(img), network.preprocess(np.asarray(img)))


def test_other_modes_are_made_rgb_and_bad_arrays_refused() -> None:
    gray = Image.new("L", (300, 260), 128)
    x = network.preprocess(gray)
    assert x.shape == (3, 224, 224)
    assert torch.equal(x, network.preprocess(Image.new("RGB", (300, 260), (128, 128, 128))))
    rgba = Image.new("RGBA", (300, 260), (255, 0, 0, 0))
    assert torch.equal(network.preprocess(rgba), network.preprocess(rgba.convert("RGB")))
    for bad in (np.zeros((10, 10, 3), np.float32), np.zeros((10, 10), np.uint8)):
        with pytest.raises(InvalidContent) as e:
            network.preprocess(bad)
        assert e.value.code == "bad_shape"


def test_a_photo_narrower_than_16_to_1_is_refused_before_it_is_resized() -> None:
    with pytest.raises(InvalidContent) as e:
        network.preprocess(Image.new("RGB", (10, 2000)))
    assert e.value.code == "out_of_range" and e.value.field == "input.photo"
    assert "10×2000" in e.value.detail


def test_the_description_names_every_step() -> None:
    for part in ("256", "224×224", "bilinear", "antialiased", "0.485", "0.229", "[0, 1]"):
        assert part in network.PREPROCESSING


# ---------------------------------------------------------------- the forward pass


def test_every_layer_input_has_the_tables_shape_and_cannot_be_changed(
    net: network.MobileNetV2, runs: dict[str, network.Activations]
) -> None:
    acts = runs["chelsea"]
    assert list(acts.inputs) == [layer.name for layer in net.layers]
    for layer in net.layers:
        a = acts.inputs[layer.name]
        assert a.shape == (layer.in_channels, *layer.size) and a.dtype == np.float32
        assert not a.flags.writeable
    assert acts.logits.shape == (1000,) and not acts.logits.flags.writeable
    assert (
        acts.nbytes
        == 4 * sum(layer.in_channels * layer.size[0] * layer.size[1] for layer in net.layers) + 4000
    )


def test_what_follows_a_relu6_is_in_0_to_6_and_a_linear_bottleneck_is_signed(
    net: network.MobileNetV2, runs: dict[str, network.Activations]
) -> None:
    acts = runs["chelsea"]
    for layer in net.layers:
        x = acts.inputs[layer.name]
        if layer.role in ("project", "classifier"):  # after a depthwise conv's or the last's ReLU6
            assert x.min() == 0 and x.max() <= 6, layer.name
        else:  # a block's output: the linear bottleneck, plus the shortcut where there is one
            assert x.min() < 0 < x.max(), layer.name
    assert (acts.inputs["features.1.conv.1"] == 6).any()  # the clip at 6 does act
    assert (acts.inputs["classifier.1"] == 6).any()


def test_the_folded_layer_is_what_the_network_computes(
    net: network.MobileNetV2, runs: dict[str, network.Activations]
) -> None:
    """features.7 changes the stride, so it has no shortcut: its project layer, batch norm
    folded, gives block 8's input; features.18.0's with ReLU6 gives the classifier's."""
    ck = checkpoints.Checkpoint(net.state_arrays())
    acts = runs["coffee"]
    for layer, then, clip in (
        ("features.7.conv.2", "features.8.conv.0.0", False),
        ("features.18.0", "classifier.1", True),
    ):
        conv = ck.layer(layer)
        bn = ck.batchnorm(conv, "auto")
        assert bn is not None
        w, b = checkpoints.fold(conv.matrix(), conv.bias, bn, network.BN_EPS)
        x = acts.inputs[layer].astype(np.float64)  # (C, H, W)
        y = np.einsum("kc,chw->khw", w, x) + b[:, None, None]  # (K, H, W)
        if clip:
            y = np.clip(y, 0, 6)
        np.testing.assert_allclose(y, acts.inputs[then], rtol=0, atol=1e-4)


def test_the_mean_of_the_classifiers_pre_activation_over_the_pixels_is_the_logits(
    net: network.MobileNetV2, runs: dict[str, network.Activations]
) -> None:
    arrays = net.state_arrays()
    w = arrays["classifier.1.weight"].reshape(1000, 1280).astype(np.float64)  # (K, C)
    b = arrays["classifier.1.bias"].astype(np.float64)
    x = runs["chelsea"].inputs["classifier.1"].astype(np.float64)  # (1280, 7, 7)
    pre = np.einsum("kc,chw->khw", w, x) + b[:, None, None]  # (1000, 7, 7)
    np.testing.assert_allclose(pre.mean(axis=(1, 2)), runs["chelsea"].logits, rtol=0, atol=1e-4)


def test_the_top5_is_sorted_softmax_and_sees_the_cat_and_the_espresso(
    runs: dict[str, network.Activations],
) -> None:
    names = imagenet.classes().names
    for acts in runs.values():
        top = acts.top5
        logits = acts.logits.astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        assert [t.index for t in top] == list(np.argsort(-p)[:5])
        np.testing.assert_allclose(
            [t.probability for t in top], p[[t.index for t in top]], rtol=1e-5
        )
        assert [t.name for t in top] == [names[t.index] for t in top]
    assert runs["chelsea"].top5[0].name == "Egyptian cat"
    assert {t.index for t in runs["chelsea"].top5[:3]} == {281, 282, 285}  # tabby, tiger, Egyptian
    assert runs["coffee"].top5[0].name == "espresso"


# ---------------------------------------------------------------- the activation cache


def test_the_cache_keeps_the_most_recent_within_its_bytes(
    net: network.MobileNetV2, runs: dict[str, network.Activations]
) -> None:
    one = runs["chelsea"].nbytes
    cache = network.ActivationCache(2 * one + one // 2)  # room for two photos
    a, b = runs["chelsea"], runs["coffee"]
    c = net.run(photos.load("rocket", MAX_PIXELS))
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is a  # a is now the most recent
    cache.put("c", c)
    assert cache.lru_order() == ["a", "c"] and cache.get("b") is None
    assert cache.size == a.nbytes + c.nbytes <= cache.limit and len(cache) == 2
    cache.put("c", c)  # again: counted once
    assert cache.size == a.nbytes + c.nbytes


def test_a_photo_larger_than_the_cache_is_not_kept(runs: dict[str, network.Activations]) -> None:
    for limit in (0, runs["chelsea"].nbytes - 1):
        cache = network.ActivationCache(limit)
        cache.put("a", runs["chelsea"])
        assert len(cache) == 0 and cache.size == 0


def test_get_or_compute_runs_the_network_once_per_photo(
    net: network.MobileNetV2,
) -> None:
    cache = network.ActivationCache(64 * 1024 * 1024)
    ran: list[str] = []

    def compute() -> network.Activations:
        ran.append("grace_hopper")
        return net.run(photos.load("grace_hopper", MAX_PIXELS))

    key = network.photo_key("grace_hopper")
    first = cache.get_or_compute(key, compute)
    assert cache.get_or_compute(key, compute) is first and ran == ["grace_hopper"]
    data = photos.read(photos.PHOTOS["grace_hopper"])
    assert network.upload_key(data) == f"sha256:{photos.PHOTOS['grace_hopper'].sha256}" != key


def test_the_cache_is_consistent_under_threads(runs: dict[str, network.Activations]) -> None:
    acts = list(runs.values())
    cache = network.ActivationCache(3 * acts[0].nbytes)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(200):
                key = f"{(t * 7 + i) % 5}"
                if cache.get(key) is None:
                    cache.put(key, acts[i % 2])
        except BaseException as e:  # a thread's failure must reach the test
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    held = [cache.get(k) for k in cache.lru_order()]
    assert cache.size == sum(h.nbytes for h in held if h is not None) <= cache.limit
    assert len(cache) == 3
