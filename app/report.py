"""A Comparison -> the typed JSON report of /api/v1/compare (models in app.schemas).

The numbers are computed here, once, from the tensors on their device; only
small per-channel vectors and the (possibly subsampled) exact values leave it.
"""

from __future__ import annotations

import math

import torch

from app import mixing, render
from app.compare import Comparison
from app.schemas.responses import (
    BestChannel,
    ChannelStats,
    Colormap,
    Colormaps,
    CompareReport,
    Costs,
    Heatmaps,
    LayerCost,
    LayerInfo,
    Shapes,
    Stats,
    Summary,
    TruthScore,
    Values,
)

RawStats = dict[str, dict[str, torch.Tensor]]


def statistics(cmp: Comparison) -> RawStats:
    """Per-channel statistics of the four arrays (mixing.channel_stats), each (C,) or (K,)."""
    p = cmp.paths
    raw = {
        "input": mixing.channel_stats(cmp.x),
        "pre_activation": mixing.channel_stats(p.pre_activation),
    }
    raw["relu_only"] = mixing.relu_stats(raw["input"], p.relu_only)
    raw["conv_relu"] = mixing.relu_stats(raw["pre_activation"], p.conv_relu)
    return raw


def _stats(cmp: Comparison, raw: RawStats) -> Stats:
    """Counts as fractions of the H·W values per channel; a ReLU's changes as changed_fraction."""
    n = cmp.x.shape[1] * cmp.x.shape[2]

    def one(name: str, given: str | None = None) -> ChannelStats:
        st = raw[name]
        changed = None
        if given is not None:
            # What this path's ReLU changed: the values below zero in what it was given.
            changed = [v / n for v in raw[given]["negative_count"].cpu().tolist()]
        return ChannelStats(
            min=st["min"].cpu().tolist(),
            max=st["max"].cpu().tolist(),
            mean=st["mean"].cpu().tolist(),
            zero_fraction=[v / n for v in st["zero_count"].cpu().tolist()],
            changed_fraction=changed,
        )

    return Stats(
        input=one("input"),
        pre_activation=one("pre_activation"),
        relu_only=one("relu_only", "input"),
        conv_relu=one("conv_relu", "pre_activation"),
    )


def summary(cmp: Comparison, raw: RawStats) -> Summary:
    """The headline numbers: values each path changed, and whether the two paths agree."""
    x, p = cmp.x, cmp.paths
    identical, difference = False, None
    if p.relu_only.shape == p.conv_relu.shape:
        difference = mixing.max_abs_difference(p.relu_only, p.conv_relu)
        identical = difference == 0.0  # both outputs are finite
    return Summary(
        relu_only_changed=int(raw["input"]["negative_count"].sum()),
        relu_only_values=x.numel(),
        conv_relu_changed=int(raw["pre_activation"]["negative_count"].sum()),
        conv_relu_values=p.pre_activation.numel(),
        paths_identical=identical,
        paths_max_abs_difference=difference,
    )


def layer_info(cmp: Comparison, echo_weights: int) -> LayerInfo:
    """What the layer reports; for a reduction (K < C), the input variance its span keeps.

    Only the JSON format shows it, so only that format pays for the covariance.
    """
    info = dict(cmp.layer.info)
    weight, bias = cmp.layer.weight, cmp.layer.bias
    k, c = weight.shape
    if k < c:
        # What K filters can keep at best (PCA's top K), and what these keep.
        info["best_variance_kept"] = mixing.best_variance_kept(mixing.channel_spectrum(cmp.x), k)
        if "variance_kept" not in info:
            info["variance_kept"] = mixing.variance_kept(cmp.x, weight)
    if weight.numel() <= echo_weights:
        info["weight"] = weight.cpu().tolist()
        info["bias"] = bias.cpu().tolist()
    return LayerInfo.model_validate(info)


def truth_scores(cmp: Comparison) -> dict[str, TruthScore]:
    """For each ground-truth mask, how well the best channel of each path marks it (output > 0)."""
    scores = {}
    for name, mask in cmp.truth.items():
        m = torch.from_numpy(mask).to(cmp.x.device)  # (H, W)
        best = {}
        for path in ("relu_only", "conv_relu"):
            lit = getattr(cmp.paths, path) > 0  # (K, H, W)
            agreement = (lit == m).float().mean(dim=(1, 2))  # (K,)
            i = int(agreement.argmax())
            best[path] = BestChannel(best_channel=i, agreement=float(agreement[i]))
        scores[name] = TruthScore(fraction_true=float(m.float().mean()), **best)
    return scores


def heatmap_stride(c: int, k: int, h: int, w: int, budget: int) -> int:
    """Smallest spatial stride that keeps the larger of C·H'·W' and K·H'·W' within `budget`."""
    stride = max(1, math.ceil(math.sqrt(max(c, k) * h * w / budget)))
    # The square root ignores the rounding up of H / stride; step on until it fits.
    while stride < max(h, w) and max(c, k) * -(-h // stride) * -(-w // stride) > budget:
        stride += 1
    return stride


def _values(t: torch.Tensor) -> Values:
    return Values(shape=list(t.shape), data=render.float32_b64(t))


def heatmaps(cmp: Comparison, budget: int) -> Heatmaps:
    c, h, w = cmp.x.shape
    k = cmp.layer.weight.shape[0]
    stride = heatmap_stride(c, k, h, w, budget)
    masks = {
        name: render.b64(mask[::stride, ::stride].astype("u1")) for name, mask in cmp.truth.items()
    }
    return Heatmaps(
        stride=stride,
        height=math.ceil(h / stride),
        width=math.ceil(w / stride),
        input=_values(render.subsample(cmp.x, stride)),
        pre_activation=_values(render.subsample(cmp.paths.pre_activation, stride)),
        weight=_values(cmp.layer.weight),
        bias=_values(cmp.layer.bias),
        masks=masks,
    )


def build(
    cmp: Comparison, *, heatmap_budget: int, with_heatmaps: bool, echo_weights: int
) -> CompareReport:
    """The format=json body, without timings (the route adds them once it has encoded)."""
    x, layer = cmp.x, cmp.layer
    c, h, w = x.shape
    k = layer.weight.shape[0]
    raw = statistics(cmp)
    return CompareReport(
        device=cmp.device,
        input_source=cmp.input_source,
        weights_source=layer.source,
        shapes=Shapes(
            input=[c, h, w],
            weight=[k, c],
            bias=[k],
            pre_activation=[k, h, w],
            relu_only=[c, h, w],
            conv_relu=[k, h, w],
        ),
        channel_names=cmp.channel_names,
        summary=summary(cmp, raw),
        stats=_stats(cmp, raw),
        cost=Costs(
            conv1x1=LayerCost(**mixing.layer_cost(c, k, h, w, 1)),
            conv3x3=LayerCost(**mixing.layer_cost(c, k, h, w, 3)),
        ),
        layer=layer_info(cmp, echo_weights),
        truth=truth_scores(cmp),
        network=cmp.network,
        heatmaps=heatmaps(cmp, heatmap_budget) if with_heatmaps else None,
        timings_ms={},
    )


def colormaps() -> Colormaps:
    return Colormaps(
        sequential=Colormap(
            name=render.SEQUENTIAL, rgb=render.b64(render.colormap(render.SEQUENTIAL))
        ),
        diverging=Colormap(
            name=render.DIVERGING, rgb=render.b64(render.colormap(render.DIVERGING))
        ),
    )
