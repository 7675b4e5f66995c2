"""torchvision's ImageNet MobileNetV2 in plain torch.nn.functional, and what its 1×1 layers see.

torchvision does not import beside the torch this service runs, so the network is
written out here from torchvision's architecture (an inverted residual per block:
1×1 expand + batch norm + ReLU6, 3×3 depthwise + batch norm + ReLU6, 1×1 project +
batch norm with no activation, the linear bottleneck), with every shape read from
the state dict and checked against that architecture. Batch norms run in eval mode
(running statistics, ε = 1e-5 as nn.BatchNorm2d's default, which torchvision uses).

One forward pass per photo keeps the input (C, H, W) of each 1×1 layer: the 34 1×1
convs and `classifier.1`, the classifier as a 1×1 layer applied at every pixel of the
last 7×7×1280 map (the mean of its pre-activation over the pixels is the logits).
`tests/test_network_reference.py` checks all of it against torchvision's own model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from app import imagenet, pretrained
from app.checkpoints import close_names
from app.errors import InvalidContent, excerpt
from app.lru import LRU
from app.photos import as_rgb

NAME = "mobilenet_v2"
TITLE = "MobileNetV2, trained on ImageNet-1k (torchvision's weights)"

# torchvision's preprocessing for these weights (MobileNet_V2_Weights.IMAGENET1K_V1).
RESIZE = 256
CROP = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PREPROCESSING = (
    f"shorter side resized to {RESIZE} (bilinear, antialiased), centre crop {CROP}×{CROP}, "
    f"RGB scaled to [0, 1], then normalised with ImageNet's mean {MEAN} and std {STD}"
)
# A photo's longer side over its shorter: the resize makes the shorter side 256, so this
# bounds the resized image (256 × 4096) whatever shape a photo has.
MAX_ASPECT = 16

BN_EPS = 1e-5
# torchvision's inverted residual setting: expansion t, output channels c, blocks n, and
# the first block's stride s. Strides are not in a state dict; everything else is
# read from it and checked against this.
SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_STRIDE = 2
CLASSIFIER = "classifier.1"

Activation = Literal["relu6", "none"]
Role = Literal["expand", "project", "last", "classifier"]


@dataclass(frozen=True)
class Layer:
    """One of the network's 1×1 layers, as the catalogue lists it."""

    name: str  # its module name in torchvision's model and in the state dict
    out_channels: int
    in_channels: int
    batchnorm: str | None  # the batch norm right after it
    activation: Activation  # what the network applies after that batch norm
    size: tuple[int, int]  # (H, W) of its input and output for a 224×224 image
    block: int | None  # n of features.n, None for the classifier
    role: Role


@dataclass(frozen=True)
class _Conv:
    """A conv of the network and the batch norm after it (None: the classifier)."""

    name: str
    bn: str | None
    stride: int
    groups: int
    relu6: bool


@dataclass(frozen=True)
class _Block:
    expand: _Conv | None
    depthwise: _Conv
    project: _Conv
    residual: bool


@dataclass(frozen=True)
class Prediction:
    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class Activations:
    """What one photo did to the network: each 1×1 layer's input, the logits, the top 5.

    The arrays are read-only, so the cache can hand the same ones to every request.
    """

    inputs: Mapping[str, np.ndarray]  # layer name -> (C, H, W) float32
    logits: np.ndarray  # (1000,) float32
    top5: tuple[Prediction, ...]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.inputs.values()) + self.logits.nbytes


def resized_size(width: int, height: int) -> tuple[int, int]:
    """(W, H) after the shorter side is resized to 256, as torchvision computes it."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = RESIZE, int(RESIZE * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def check_shape(width: int, height: int, field: str = "input.photo") -> None:
    """Refuse a photo too narrow for the crop: the resize would make it up to 16× longer."""
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidContent(
            f"The photo is {width}×{height} pixels; its longer side is over {MAX_ASPECT} times "
            "its shorter one, too narrow for a 224×224 centre crop to show much of it. Crop "
            "it closer to square.",
            field=field,
            code="out_of_range",
        )


def crop(image: Image.Image | np.ndarray) -> Image.Image:
    """The 224×224 RGB crop the network sees: torchvision's resize (PIL's antialiased
    bilinear, which torchvision uses for a PIL image) and centre crop, step for step."""
    img = as_rgb(image)
    w, h = img.size
    check_shape(w, h)
    new_w, new_h = resized_size(w, h)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    top = round((new_h - CROP) / 2)  # round half to even, as torchvision does
    left = round((new_w - CROP) / 2)
    return img.crop((left, top, left + CROP, top + CROP))


def normalise(cropped: Image.Image) -> torch.Tensor:
    """A 224×224 RGB crop as the network's input (3, 224, 224), float32, as torchvision's
    pil_to_tensor, convert_image_dtype and normalize compute it."""
    x = torch.from_numpy(np.array(cropped, dtype=np.uint8))  # (H, W, 3)
    x = x.permute(2, 0, 1).to(torch.float32) / 255  # (3, H, W) in [0, 1]
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None]  # (3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


def preprocess(image: Image.Image | np.ndarray) -> torch.Tensor:
    """A photo (PIL image or RGB uint8 array) as the network's input (3, 224, 224)."""
    return normalise(crop(image))


def _weight(state: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    key = f"{name}.weight"
    if key not in state:
        raise ValueError(f"the state dict has no {key}; it is not torchvision's MobileNetV2")
    return state[key]


def _architecture(
    state: Mapping[str, torch.Tensor],
) -> tuple[_Conv, tuple[_Block, ...], _Conv]:
    """The stem, the inverted residual blocks and the last 1×1 conv, from the state dict."""
    count = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("features."))
    strides = [s if i == 0 else 1 for _, _, n, s in SETTING for i in range(n)]
    if count != len(strides) + 2:
        raise ValueError(f"features has {count} modules, not {len(strides) + 2}")
    stem = _Conv("features.0.0", "features.0.1", STEM_STRIDE, 1, True)
    blocks = []
    channels = int(_weight(state, stem.name).shape[0])
    outs = [(t, c) for t, c, n, _ in SETTING for _ in range(n)]
    for i, (stride, (t, c)) in enumerate(zip(strides, outs, strict=True), start=1):
        p = f"features.{i}.conv"
        expands = tuple(_weight(state, f"{p}.0.0").shape[2:]) == (1, 1)
        j = 1 if expands else 0  # where the depthwise conv sits in the block's Sequential
        hidden = int(_weight(state, f"{p}.{j}.0").shape[0])
        expand = _Conv(f"{p}.0.0", f"{p}.0.1", 1, 1, True) if expands else None
        depthwise = _Conv(f"{p}.{j}.0", f"{p}.{j}.1", stride, hidden, True)
        project = _Conv(f"{p}.{j + 1}", f"{p}.{j + 2}", 1, 1, False)
        out = int(_weight(state, project.name).shape[0])
        if hidden != channels * t or out != c:
            raise ValueError(
                f"features.{i} maps {channels} → {hidden} → {out} channels; torchvision's "
                f"MobileNetV2 maps {channels} → {channels * t} → {c}"
            )
        blocks.append(_Block(expand, depthwise, project, stride == 1 and channels == out))
        channels = out
    last = _Conv(f"features.{count - 1}.0", f"features.{count - 1}.1", 1, 1, True)
    return stem, tuple(blocks), last


def _out_size(size: tuple[int, int], kernel: int, stride: int) -> tuple[int, int]:
    pad = (kernel - 1) // 2  # torchvision's Conv2dNormActivation pads to keep "same" maps
    return ((size[0] + 2 * pad - kernel) // stride + 1, (size[1] + 2 * pad - kernel) // stride + 1)


class MobileNetV2:
    """The network from its state dict (torchvision's names), and the class names."""

    def __init__(self, state: Mapping[str, torch.Tensor], class_names: Sequence[str]) -> None:
        # Float tensors as float32 (the file's own dtype); num_batches_tracked stays int64.
        self._t = {
            k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
            for k, v in state.items()
        }
        self._stem, self._blocks, self._last = _architecture(self._t)
        classifier = _weight(self._t, CLASSIFIER)  # (1000, 1280)
        if len(class_names) != classifier.shape[0]:
            raise ValueError(f"{len(class_names)} class names for {classifier.shape[0]} classes")
        self.class_names = tuple(class_names)
        self.layers = self._table()
        self._by_name = {layer.name: layer for layer in self.layers}

    def _table(self) -> tuple[Layer, ...]:
        """Every 1×1 layer in the order the network runs them, with its 224×224 map size."""
        out: list[Layer] = []

        def add(conv: _Conv, block: int | None, role: Role, size: tuple[int, int]) -> None:
            w = _weight(self._t, conv.name)  # (K, C, 1, 1), or (K, C) for the classifier
            out.append(
                Layer(
                    conv.name,
                    int(w.shape[0]),
                    int(w.shape[1]),
                    conv.bn,
                    "relu6" if conv.relu6 else "none",
                    size,
                    block,
                    role,
                )
            )

        size = _out_size((CROP, CROP), 3, self._stem.stride)
        for i, b in enumerate(self._blocks, start=1):
            if b.expand is not None:
                add(b.expand, i, "expand", size)
            size = _out_size(size, 3, b.depthwise.stride)
            add(b.project, i, "project", size)
        add(self._last, len(self._blocks) + 1, "last", size)
        add(_Conv(CLASSIFIER, None, 1, 1, False), None, "classifier", size)
        return tuple(out)

    def layer(self, name: str, *, field: str | None = "input.layer") -> Layer:
        """The 1×1 layer called `name`, or a 422 with close names and where the list is."""
        layer = self._by_name.get(name.strip().removesuffix(".weight"))
        if layer is None:
            close = close_names(name, list(self._by_name)) if len(name) <= 100 else []
            hint = f"Did you mean {', '.join(close)}? " if close else ""
            raise InvalidContent(
                f"{excerpt(name)} is not a 1×1 layer of {NAME}. {hint}It has "
                f"{len(self.layers)}: {', '.join(self._by_name)}.",
                field=field,
                code="unknown_name",
            )
        return layer

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The state dict as numpy, with the classifier's weight as a 1×1 conv's
        (1000, 1280, 1, 1), so `app.checkpoints.Checkpoint` reads it as it reads an
        uploaded checkpoint. Copies (14 MB), so nothing the network runs with can be
        changed: build them, and the Checkpoint, once."""
        out = {k: v.numpy().copy() for k, v in self._t.items()}
        w = out[f"{CLASSIFIER}.weight"]
        out[f"{CLASSIFIER}.weight"] = w.reshape(*w.shape, 1, 1)  # (1000, 1280, 1, 1)
        return out

    def _conv(self, x: torch.Tensor, conv: _Conv) -> torch.Tensor:
        w = self._t[f"{conv.name}.weight"]  # (K, C/groups, k, k)
        y = F.conv2d(x, w, None, conv.stride, (w.shape[2] - 1) // 2, 1, conv.groups)
        if conv.bn is not None:
            y = F.batch_norm(
                y,
                self._t[f"{conv.bn}.running_mean"],
                self._t[f"{conv.bn}.running_var"],
                self._t[f"{conv.bn}.weight"],
                self._t[f"{conv.bn}.bias"],
                training=False,
                eps=BN_EPS,
            )
        return F.relu6(y) if conv.relu6 else y

    def forward(self, x: torch.Tensor) -> Activations:
        """One pass over a preprocessed image (3, 224, 224), keeping each 1×1 layer's input."""
        seen: dict[str, torch.Tensor] = {}
        with torch.inference_mode():
            h = self._conv(x.to(torch.float32).unsqueeze(0), self._stem)  # (1, 32, 112, 112)
            for b in self._blocks:
                shortcut = h
                if b.expand is not None:
                    seen[b.expand.name] = h
                    h = self._conv(h, b.expand)  # (1, t·C, H, W)
                h = self._conv(h, b.depthwise)  # (1, t·C, H/s, W/s)
                seen[b.project.name] = h
                h = self._conv(h, b.project)  # (1, C', H/s, W/s), linear: no activation
                if b.residual:
                    h = h + shortcut
            seen[self._last.name] = h  # (1, 320, 7, 7)
            h = self._conv(h, self._last)  # (1, 1280, 7, 7)
            seen[CLASSIFIER] = h
            pooled = F.adaptive_avg_pool2d(h, 1).flatten(1)  # (1, 1280)
            logits = F.linear(
                pooled, self._t[f"{CLASSIFIER}.weight"], self._t[f"{CLASSIFIER}.bias"]
            )
            probs = torch.softmax(logits[0], 0)  # (1000,)
            top = torch.topk(probs, 5)
        inputs = {}
        for layer in self.layers:
            a = seen[layer.name][0].numpy()  # (C, H, W), no copy: nothing writes to it again
            a.flags.writeable = False
            inputs[layer.name] = a
        out_logits = logits[0].numpy()
        out_logits.flags.writeable = False
        top5 = tuple(
            Prediction(int(i), self.class_names[int(i)], float(p))
            for p, i in zip(top.values, top.indices, strict=True)
        )
        return Activations(inputs, out_logits, top5)

    def run(self, image: Image.Image | np.ndarray) -> Activations:
        """A photo through torchvision's preprocessing and the network."""
        return self.forward(preprocess(image))


def load(setting: Path | None) -> MobileNetV2:
    """The network from the weights file (checked by sha256) and ImageNet's class names;
    a 503 that says how to install what is missing."""
    state = pretrained.load(pretrained.locate(setting))
    return MobileNetV2(state, imagenet.classes().names)


def photo_key(name: str) -> str:
    """The cache key of a built-in photo."""
    return f"photo:{name}"


def upload_key(data: bytes) -> str:
    """The cache key of a photo a user sent: the sha256 of its file's bytes."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class ActivationCache(LRU[str, Activations]):
    """Each photo's Activations, least recently used first out, within `limit` bytes.

    Switching layer or class on the same photo must not run the network again. Hits are
    the cached object itself: its arrays are read-only, so nothing can change them, and
    no request pays for a copy of every 1×1 input. Two requests for the same new photo at
    once may both compute it (a forward pass is tens of milliseconds; each holds a compute
    slot, so memory stays bounded).
    """
