"""The trained network as the service holds it: loaded once, each photo's pass cached, and what
requests ask of it: a layer's input maps (generator "network") and a layer's weights
(weights.network). No HTTP here.

The weights of a layer come through the same reader as an uploaded checkpoint's
(`weights.from_file` on the network's state dict, built once), so `"batchnorm": "auto"`
folds exactly what it would fold for torchvision's own .pth file dropped on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app import imagenet, mixing, network, photos, uploads, weights
from app.errors import InvalidContent, NotInstalled, excerpt
from app.inputs import Maps
from app.schemas.requests import GENERATOR_PARAMS, InputSpec, WeightsSpec
from app.schemas.responses import NetworkInput, Prediction, TrainedReduction

DEFAULT_PHOTO = "chelsea"
# Block 7's expand: 32 → 192 channels at 28×28, its input a linear bottleneck's output.
DEFAULT_LAYER = "features.7.conv.0.0"
# WeightsSpec's fields a network's layer takes.
_FOR_NETWORK = {"network", "layer", "batchnorm", "eps", "classes", "minus"}


@dataclass(frozen=True)
class PhotoFile:
    """A photo a user sent as the multipart part `photo`: decoded to RGB, with its cache key."""

    image: Image.Image
    key: str  # the sha256 of its bytes
    filename: str


def photo_file(data: bytes | bytearray, filename: str | None, max_pixels: int) -> PhotoFile:
    """A photo sent as the part `photo`: PNG or JPEG, its size checked before it is decoded
    and its shape before the network would crop it."""
    what = f"The photo file ({excerpt(filename or 'unnamed')})"
    image = uploads.read_photo(data, what, max_pixels=max_pixels, field="photo")
    network.check_shape(*image.size, field="photo")
    return PhotoFile(image, network.upload_key(bytes(data)), filename or "unnamed")


class Trained:
    """The network (when its weights are installed), its state as a checkpoint, the cache of
    each photo's pass, and whether each built-in photo is there."""

    def __init__(self, weights_path: Path | None, cache_bytes: int, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self.net: network.MobileNetV2 | None = None
        self.checkpoint: uploads.Decoded | None = None
        # Why the network cannot be used, and how to install what it lacks; None when it can.
        self.problem: str | None = None
        try:
            self.net = network.load(weights_path)
        except NotInstalled as exc:
            self.problem = exc.detail
        else:
            # Read like an uploaded .pth: classifier.1 as a (1000, 1280, 1, 1) conv.
            self.checkpoint = uploads.Decoded(self.net.state_arrays(), "pth")
        self.cache = network.ActivationCache(cache_bytes)
        self.photo_problems = {name: photos.problem(p) for name, p in photos.PHOTOS.items()}

    def require(self, name: str | None, field: str) -> network.MobileNetV2:
        """The network `name` names (None: the default), or a 422 / a 503 that says why not."""
        if name is not None and name != network.NAME:
            raise InvalidContent(
                f"Unknown network {excerpt(name)}; this server ships {network.NAME}.",
                field=field,
                code="unknown_name",
            )
        if self.net is None:
            raise NotInstalled(self.problem or "", field=field, code="weights_missing")
        return self.net

    # ---------------------------------------------------------------- maps

    def layer_of(self, spec: InputSpec) -> network.Layer:
        """The layer whose input `spec` asks for, known before the network runs.

        Like a preset that fixes K, the network fixes the maps' size: height, width and
        channels may only repeat the layer's (C, H, W) for a 224×224 photo, and the seed,
        which nothing here draws, is ignored; a generator's own parameters are refused.
        """
        given = sorted(spec.model_fields_set & set(GENERATOR_PARAMS))
        if given:
            raise InvalidContent(
                f"input.{given[0]} is not a parameter of the network generator; it takes "
                "network, photo and layer (and height, width and channels only as the "
                "layer's own).",
                field=f"input.{given[0]}",
                code="not_for_generator",
            )
        net = self.require(spec.network, "input.network")
        layer = net.layer(spec.layer or DEFAULT_LAYER, field="input.layer")
        own = {"channels": layer.in_channels, "height": layer.size[0], "width": layer.size[1]}
        for key, value in own.items():
            if key in spec.model_fields_set and getattr(spec, key) != value:
                raise InvalidContent(
                    f"The input of {layer.name} is (C, H, W) = ({layer.in_channels}, "
                    f"{layer.size[0]}, {layer.size[1]}) for a 224×224 photo; input.{key} = "
                    f"{getattr(spec, key)} asks for another. Send {key} = {value}, or leave "
                    "it out.",
                    field=f"input.{key}",
                    code="fixed_by_network",
                )
        return layer

    def seen(self, spec: InputSpec, layer: network.Layer, upload: PhotoFile | None) -> Maps:
        """The input of `layer` (`layer_of(spec)`) when the network sees the photo (built-in
        or sent)."""
        net = self.require(spec.network, "input.network")
        if upload is not None:
            if spec.photo is not None:
                raise InvalidContent(
                    "A photo came as the file part 'photo' and as input.photo; send one.",
                    field="input.photo",
                    code="conflict",
                )
            acts = self.cache.get_or_compute(upload.key, lambda: net.run(upload.image))
            label = f"upload:{upload.filename}"
        else:
            photo = photos.find(spec.photo or DEFAULT_PHOTO)
            acts = self.cache.get_or_compute(
                network.photo_key(photo.name),
                lambda: net.run(photos.decode(photos.read(photo), self.max_pixels, photo.name)),
            )
            label = photo.name
        # (C, H, W): a copy, as the cache's own arrays are shared and read-only.
        arr = np.array(acts.inputs[layer.name])
        info = NetworkInput(
            network=network.NAME,
            photo=label,
            layer=layer.name,
            activation=layer.activation,
            preprocessing=network.PREPROCESSING,
            top5=[
                Prediction(index=p.index, name=p.name, probability=p.probability) for p in acts.top5
            ],
        )
        names = [f"{layer.name} in {i}" for i in range(arr.shape[0])]
        return Maps(arr, names, f"network:{network.NAME}:{label}", network=info)

    # ---------------------------------------------------------------- weights

    def layer_name(self, spec: WeightsSpec, input_layer: str | None) -> str:
        """The layer weights.network takes: weights.layer, else the input's own layer."""
        name = spec.layer if spec.layer is not None else input_layer
        if name is None:
            raise InvalidContent(
                "weights.network needs weights.layer (the catalogue lists the network's 1×1 "
                'layers), or an input from the network ("generator": "network") whose layer '
                "it then takes.",
                field="weights.layer",
                code="layer_required",
            )
        return name

    def planned_k(self, spec: WeightsSpec, input_layer: str | None) -> int:
        """K, known before any tensor exists."""
        net = self.require(spec.network, "weights.network")
        layer = net.layer(self.layer_name(spec, input_layer), field="weights.layer")
        if spec.classes is not None:
            return len(spec.classes)
        return layer.out_channels

    def layer(self, spec: WeightsSpec, x: torch.Tensor, input_layer: str | None) -> weights.Layer:
        """The network's layer as the weights, with the batch norm after it folded in (as
        for an uploaded checkpoint), and for the classifier only the classes asked for."""
        net = self.require(spec.network, "weights.network")
        found = net.layer(self.layer_name(spec, input_layer), field="weights.layer")
        if (spec.classes is not None or spec.minus is not None) and found.role != "classifier":
            raise InvalidContent(
                f"weights.classes and weights.minus pick ImageNet classes, the filters of "
                f"{network.CLASSIFIER}; {found.name} has no classes.",
                field="weights.classes" if spec.classes is not None else "weights.minus",
                code="not_for_layer",
            )
        if spec.minus is not None and spec.classes is None:
            raise InvalidContent(
                "weights.minus subtracts a class's filter from those of weights.classes; "
                'name them too, e.g. "classes": ["Egyptian cat"], "minus": "golden retriever".',
                field="weights.minus",
                code="missing",
            )
        extra = sorted(spec.model_fields_set - _FOR_NETWORK)
        if extra:
            raise InvalidContent(
                f"weights.{extra[0]} is not a parameter of a network's layer; it takes "
                f"{', '.join(sorted(_FOR_NETWORK))}.",
                field=f"weights.{extra[0]}",
                code="not_for_preset",
            )
        assert self.checkpoint is not None  # there with the network
        as_file = spec.model_copy(
            update={"network": None, "layer": found.name, "classes": None, "minus": None}
        )
        built = weights.from_file(self.checkpoint, as_file, x)
        info = {**built.info, "network": network.NAME, "activation": found.activation}
        source = f"network:{network.NAME}:{found.name}"
        w, b = built.weight, built.bias  # (K, C), (K,)
        if spec.classes is not None:
            classes = imagenet.classes()
            rows = [classes.lookup(c, field="weights.classes") for c in spec.classes]
            index = torch.tensor(rows, device=w.device)
            w, b = w[index], b[index]  # (K', C), (K',)
            info["classes"] = [net.class_names[i] for i in rows]
            if spec.minus is not None:
                other = classes.lookup(spec.minus, field="weights.minus")
                w, b = w - built.weight[other], b - built.bias[other]
                info["minus"] = net.class_names[other]
        return weights.Layer(w.contiguous(), b.contiguous(), source, info)

    def reduction(self, maps: Maps) -> TrainedReduction | None:
        """For the network's maps read by a layer that reduces them (K < C): that layer, with
        the share of their variance its K filters keep (the batch norm after it scales each
        filter, which leaves their span as it is). None for other maps."""
        if maps.network is None:
            return None
        net = self.require(maps.network.network, "input.network")
        layer = net.layer(maps.network.layer)
        if layer.out_channels >= layer.in_channels:
            return None  # it expands: there is nothing it reduces to place on the curve
        assert self.checkpoint is not None  # there with the network
        w = self.checkpoint.arrays[f"{layer.name}.weight"].reshape(layer.out_channels, -1)
        kept = mixing.variance_kept(torch.from_numpy(maps.arr), torch.from_numpy(w))
        return TrainedReduction(layer=layer.name, k=layer.out_channels, variance_kept=kept)
