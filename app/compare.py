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

from app import devices, generators, mixing, uploads, weights
from app.config import Settings
from app.errors import InvalidContent
from app.schemas import CompareRequest


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


def _check_input_size(c: int, h: int, w: int, s: Settings) -> None:
    for name, value, limit, env in (
        ("height", h, s.max_height, "MAX_HEIGHT"),
        ("width", w, s.max_width, "MAX_WIDTH"),
        ("channels", c, s.max_channels, "MAX_CHANNELS"),
    ):
        if value > limit:
            raise InvalidContent(
                f"The input's {name} is {value}; the limit is {limit} (ONEBYONE_{env}).",
                field=f"input.{name}",
                code="over_limit",
            )
    if c * h * w > s.max_values:
        raise InvalidContent(
            f"The input has C·H·W = {c}·{h}·{w} = {c * h * w} values; the limit is "
            f"{s.max_values} (ONEBYONE_MAX_VALUES). Make it smaller.",
            field="input",
            code="over_limit",
        )


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


def load_input(
    req: CompareRequest,
    input_file: uploads.Decoded | None,
    s: Settings,
    cache: generators.Cache | None = None,
) -> tuple[np.ndarray, list[str], dict[str, np.ndarray], str]:
    spec = req.input
    if input_file is not None:
        layout = input_file.layout or spec.layout
        arr = uploads.to_chw(uploads.pick(input_file, "input", "The input file"), layout)
        c, h, w = arr.shape
        _check_input_size(c, h, w, s)
        names = [f"channel {i}" for i in range(c)]
        if spec.features == "filterbank":
            if input_file.format != "image" or c != 3:
                raise InvalidContent(
                    'features "filterbank" turns an RGB image into feature maps; '
                    f"this input is {input_file.format} with {c} channels.",
                    field="input.features",
                    code="needs_rgb_image",
                )
            arr = generators.filter_bank(torch.from_numpy(arr)).numpy()
            names = list(generators.FILTER_BANK)
            _check_input_size(arr.shape[0], h, w, s)
        return arr, names, {}, f"file:{input_file.format}"
    info = generators.find(spec.generator)
    if spec.channels < info.min_channels:
        raise InvalidContent(
            f"The {spec.generator} generator needs channels >= {info.min_channels}.",
            field="input.channels",
            code="out_of_range",
        )
    channels = info.fixed_channels or spec.channels
    _check_input_size(channels, spec.height, spec.width, s)
    g = generators.generate(
        spec.generator,
        channels,
        spec.height,
        spec.width,
        spec.seed,
        spec.generator_params(),
        cache,
    )
    return g.maps, g.channel_names, g.truth, f"generator:{spec.generator}"


def run(
    req: CompareRequest,
    s: Settings,
    input_file: uploads.Decoded | None = None,
    weights_file: uploads.Decoded | None = None,
    cache: generators.Cache | None = None,
) -> Comparison:
    device = devices.resolve(req.device)
    t0 = time.perf_counter()
    arr, names, truth, source = load_input(req, input_file, s, cache)
    c, h, w = arr.shape
    # A file from `onebyone capture` holds the layer's input and its weight and bias: with
    # no weights file and no preset or matrix named, it is the weights too.
    layer_from_input = (
        weights_file is None
        and input_file is not None
        and {"input", "weight"} <= input_file.arrays.keys()
        and req.weights.preset is None
        and req.weights.matrix is None
    )
    if layer_from_input:
        weights_file = input_file
    _check_layer_size(weights.planned_k(req.weights, c, weights_file), c, h, w, s)
    with torch.inference_mode():
        x = torch.from_numpy(arr).to(device)  # (C, H, W)
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
        channel_names=names,
        input_source=source,
        truth=truth,
        timings_ms={"prepare": (t1 - t0) * 1e3, "compute": (t2 - t1) * 1e3},
    )
