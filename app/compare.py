"""One comparison, start to end: inputs and weights in, both paths and their numbers out.

No HTTP here: the route hands in a parsed request and decoded files and gets a
`Comparison` back, which `report` turns into the JSON report, `montage` into a PNG and
`render.write_npz` into an npz.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from app import devices, generators, inputs, mixing, uploads, weights
from app.config import Settings
from app.errors import InvalidContent
from app.schemas.requests import CompareRequest


@dataclass
class Comparison:
    device: str
    x: torch.Tensor  # (C, H, W)
    layer: weights.Layer
    paths: mixing.Paths
    channel_names: list[str]
    input_source: str
    truth: dict[str, np.ndarray] = field(default_factory=dict)
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


def _check_layer_size(k: int, c: int, h: int, w: int, s: Settings) -> None:
    if k > s.max_out_channels:
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
    cache: generators.Cache | None = None,
) -> Comparison:
    device = devices.resolve(req.device)
    t0 = time.perf_counter()
    maps = inputs.load(req.input, input_file, s, cache)
    c, h, w = maps.arr.shape
    # A file from `onebyone capture` holds the layer's input and its weight and bias: with
    # no weights file and no preset or matrix named, it is the weights too.
    layer_from_input = (
        weights_file is None
        and inputs.is_capture(input_file)
        and req.weights.preset is None
        and req.weights.matrix is None
    )
    if layer_from_input:
        weights_file = input_file
    _check_layer_size(weights.planned_k(req.weights, c, weights_file), c, h, w, s)
    with torch.inference_mode():
        x = torch.from_numpy(maps.arr).to(device)  # (C, H, W)
        layer = weights.build(req.weights, x, weights_file)
        # The files' other arrays (a checkpoint's other layers: up to 2·MAX_VALUES values)
        # are not needed any more: let them go before the maps are computed.
        input_file = weights_file = None
        if layer_from_input:
            layer.source = layer.source.replace("file:", "input-file:", 1)
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
        timings_ms={"prepare": (t1 - t0) * 1e3, "compute": (t2 - t1) * 1e3},
    )
