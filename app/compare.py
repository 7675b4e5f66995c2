"""One comparison, start to end: inputs and weights in, both paths and their numbers out.

No HTTP here: the route hands in a parsed request and decoded files and gets a
`Comparison` back, which `report` turns into the JSON report, `montage` into a PNG and
`render.write_npz` into an npz.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from app import devices, inputs, mixing, uploads, weights
from app.config import Settings
from app.errors import InvalidContent
from app.schemas.requests import CompareRequest
from app.schemas.responses import NetworkInput

if TYPE_CHECKING:
    from app.trained import PhotoFile


@dataclass
class Comparison:
    device: str
    x: torch.Tensor  # (C, H, W)
    layer: weights.Layer
    paths: mixing.Paths
    channel_names: list[str]
    input_source: str
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    network: NetworkInput | None = None  # what the network saw, for its maps
    timings_ms: dict[str, float] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The contract's npz arrays, as numpy on the CPU."""
        p = self.paths
        return {
            "input": self.x.cpu().numpy(),
            "weight": self.layer.weight.cpu().numpy(),
            "bias": self.layer.bias.cpu().numpy(),
            "pre_activation": p.pre_activation.cpu().numpy(),
            "relu_only": p.relu_only.cpu().numpy(),
            "conv_relu": p.conv_relu.cpu().numpy(),
        }


def _check_layer_size(k: int, c: int, h: int, w: int, s: Settings, *, network: bool) -> None:
    """K within ONEBYONE_MAX_OUT_CHANNELS (a network's layer has its own, up to 1280), and
    the output's values and the multiply-adds within their limits."""
    if k > s.max_out_channels and not network:
        raise InvalidContent(
            f"K = {k} filters; the limit is {s.max_out_channels} (ONEBYONE_MAX_OUT_CHANNELS).",
            field="weights",
            code="over_limit",
        )
    if k * h * w > s.max_values:
        raise InvalidContent(
            f"The output has K·H·W = {k * h * w} values; the limit is {s.max_values} "
            "(ONEBYONE_MAX_VALUES).",
            field="weights",
            code="over_limit",
        )
    if k * c * h * w > s.max_macs:
        raise InvalidContent(
            f"K·C·H·W = {k * c * h * w} multiply-adds; the limit is {s.max_macs} "
            "(ONEBYONE_MAX_MACS).",
            field="weights",
            code="over_limit",
        )


def run(
    req: CompareRequest,
    s: Settings,
    input_file: uploads.Decoded | None = None,
    weights_file: uploads.Decoded | None = None,
    sources: inputs.Sources | None = None,
    photo: PhotoFile | None = None,
) -> Comparison:
    sources = sources or inputs.Sources()
    device = devices.resolve(req.device)
    t0 = time.perf_counter()
    maps = inputs.load(req.input, input_file, s, sources, photo=photo)
    c, h, w = maps.arr.shape
    spec = req.weights
    network_layer = maps.network.layer if maps.network is not None else None
    if spec.network is not None:
        if weights_file is not None:
            raise InvalidContent(
                "The weights came as a file and as weights.network; send one of them.",
                field="weights.network",
                code="conflict",
            )
        trained = sources.require_trained()
        k = trained.planned_k(spec, network_layer)
    else:
        for key in ("classes", "minus"):
            if getattr(spec, key) is not None:
                raise InvalidContent(
                    f"weights.{key} picks ImageNet classes of a network's classifier: send it "
                    'with "network": "mobilenet_v2" and "layer": "classifier.1".',
                    field=f"weights.{key}",
                    code="needs_network",
                )
        # A file from `onebyone capture` holds the layer's input and its weight and bias:
        # with no weights file and no preset or matrix named, it is the weights too.
        layer_from_input = (
            weights_file is None
            and inputs.is_capture(input_file)
            and spec.preset is None
            and spec.matrix is None
        )
        if layer_from_input:
            weights_file = input_file
        k = weights.planned_k(spec, c, weights_file)
    _check_layer_size(k, c, h, w, s, network=spec.network is not None)
    with torch.inference_mode():
        x = torch.from_numpy(maps.arr).to(device)  # (C, H, W)
        if spec.network is not None:
            layer = trained.layer(spec, x, network_layer)
        else:
            layer = weights.build(spec, x, weights_file)
            if layer_from_input:
                layer.source = layer.source.replace("file:", "input-file:", 1)
        # The files' other arrays (a checkpoint's other layers: up to 2·MAX_VALUES values)
        # are not needed any more: let them go before the maps are computed.
        input_file = weights_file = None
        devices.synchronize(device)
        t1 = time.perf_counter()
        paths = mixing.run_paths(x, layer.weight, layer.bias)
        devices.synchronize(device)
        t2 = time.perf_counter()
        if not mixing.all_finite(paths.pre_activation):
            raise InvalidContent(
                "W·x + b overflows float32 (a value beyond ±3.4e38): the input or the weights "
                "are too large. Scale them down.",
                field="weights",
                code="overflow",
            )
    return Comparison(
        device=device.type,
        x=x,
        layer=layer,
        paths=paths,
        channel_names=maps.names,
        input_source=maps.source,
        truth=maps.truth,
        network=maps.network,
        timings_ms={"prepare": (t1 - t0) * 1e3, "compute": (t2 - t1) * 1e3},
    )
