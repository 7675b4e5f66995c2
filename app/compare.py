"""One comparison, start to end: inputs and weights in, both paths and their numbers out.

No HTTP here: the route hands in a parsed request and decoded files and gets a
`Comparison` back, which `render` turns into JSON, PNG or npz.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

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
    req: CompareRequest, input_file: uploads.Decoded | None, s: Settings
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
        spec.generator, channels, spec.height, spec.width, spec.seed, spec.generator_params()
    )
    return g.maps, g.channel_names, g.truth, f"generator:{spec.generator}"


def run(
    req: CompareRequest,
    s: Settings,
    input_file: uploads.Decoded | None = None,
    weights_file: uploads.Decoded | None = None,
) -> Comparison:
    device = devices.resolve(req.device)
    t0 = time.perf_counter()
    arr, names, truth, source = load_input(req, input_file, s)
    c, h, w = arr.shape
    _check_layer_size(weights.planned_k(req.weights, c, weights_file), c, h, w, s)
    with torch.inference_mode():
        x = torch.from_numpy(arr).to(device)  # (C, H, W)
        layer = weights.build(req.weights, x, weights_file)
        devices.synchronize(device)
        t1 = time.perf_counter()
        paths = mixing.run_paths(x, layer.weight, layer.bias)
        devices.synchronize(device)
        t2 = time.perf_counter()
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


Stats = dict[str, dict[str, torch.Tensor]]


def statistics(cmp: Comparison) -> Stats:
    """Per-channel statistics of the four arrays (mixing.channel_stats), each (C,) or (K,)."""
    p = cmp.paths
    raw = {
        "input": mixing.channel_stats(cmp.x),
        "pre_activation": mixing.channel_stats(p.pre_activation),
    }
    raw["relu_only"] = mixing.relu_stats(raw["input"], p.relu_only)
    raw["conv_relu"] = mixing.relu_stats(raw["pre_activation"], p.conv_relu)
    return raw


def stats_json(cmp: Comparison, raw: Stats) -> dict[str, dict[str, list[float]]]:
    """The statistics as lists for JSON, counts as fractions of the H·W values per channel."""
    n = cmp.x.shape[1] * cmp.x.shape[2]
    out: dict[str, dict[str, list[float]]] = {}
    for name, st in raw.items():
        out[name] = {k: [round(v, 6) for v in st[k].cpu().tolist()] for k in ("min", "max", "mean")}
        out[name]["zero_fraction"] = [v / n for v in st["zero_count"].cpu().tolist()]
    # What each path's ReLU changed: the values below zero in what it was given.
    for path, given in (("relu_only", "input"), ("conv_relu", "pre_activation")):
        out[path]["changed_fraction"] = [v / n for v in raw[given]["negative_count"].cpu().tolist()]
    return out


def summary(cmp: Comparison, raw: Stats) -> dict[str, Any]:
    """The headline numbers: values each path changed, and whether the two paths agree."""
    x, p = cmp.x, cmp.paths
    out: dict[str, Any] = {
        "relu_only_changed": int(raw["input"]["negative_count"].sum()),
        "relu_only_values": x.numel(),
        "conv_relu_changed": int(raw["pre_activation"]["negative_count"].sum()),
        "conv_relu_values": p.pre_activation.numel(),
    }
    if p.relu_only.shape == p.conv_relu.shape:
        identical = torch.equal(p.relu_only, p.conv_relu)
        out["paths_identical"] = identical
        out["paths_max_abs_difference"] = (
            0.0 if identical else float((p.relu_only - p.conv_relu).abs_().max())
        )
    else:
        out["paths_max_abs_difference"] = None
        out["paths_identical"] = False
    return out


def layer_report(cmp: Comparison) -> dict[str, Any]:
    """What the layer reports; for a reduction (K < C), the input variance its span keeps.

    Only the JSON format shows it, so only that format pays for the covariance.
    """
    info = dict(cmp.layer.info)
    if cmp.layer.weight.shape[0] < cmp.x.shape[0] and "variance_kept" not in info:
        cov = mixing.channel_covariance(cmp.x)
        info["variance_kept"] = mixing.variance_kept(cov, cmp.layer.weight)
    return info


def truth_scores(cmp: Comparison) -> dict[str, Any]:
    """For each ground-truth mask, how well the best channel of each path marks it (output > 0)."""
    scores: dict[str, Any] = {}
    for name, mask in cmp.truth.items():
        m = torch.from_numpy(mask).to(cmp.x.device)  # (H, W)
        entry: dict[str, Any] = {"fraction_true": float(m.float().mean())}
        for path in ("relu_only", "conv_relu"):
            lit = getattr(cmp.paths, path) > 0  # (K, H, W)
            agreement = (lit == m).float().mean(dim=(1, 2))  # (K,)
            best = int(agreement.argmax())
            entry[path] = {"best_channel": best, "agreement": float(agreement[best])}
        scores[name] = entry
    return scores
