"""The 1×1 layer's weights: presets, explicit matrices and uploaded layers.

Every source ends as a float32 weight (K, C) and bias (K,) on the compute device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from app import checkpoints, inputs, mixing
from app.errors import InvalidContent, excerpt
from app.schemas.requests import WeightsSpec
from app.schemas.responses import BatchNormInfo, CheckpointLayer, CheckpointLayers
from app.uploads import Decoded, check_finite, listed


@dataclass
class Layer:
    weight: torch.Tensor  # (K, C)
    bias: torch.Tensor  # (K,)
    source: str
    info: dict[str, Any] = field(default_factory=dict)


Made = tuple[np.ndarray | torch.Tensor, dict[str, Any]]


@dataclass(frozen=True)
class PresetInfo:
    # make(spec, x, k): the (K, C) weight for K filters, and what to report about it.
    make: Callable[[WeightsSpec, torch.Tensor, int], Made]
    description: str
    # The parameters that change what it makes (the catalogue lists these).
    params: tuple[str, ...]
    # K when out_channels is not given, from the input's C, and that rule in words.
    default_k: Callable[[int], int]
    default_k_rule: str
    # identity, difference and mean fix K themselves: out_channels may name that K, no other.
    fixes_k: bool = False

    @property
    def k_rule(self) -> str:
        fixed = "fixed by the preset; out_channels may only repeat it"
        return (
            f"{self.default_k_rule}, {fixed}"
            if self.fixes_k
            else (f"out_channels, default {self.default_k_rule}")
        )


# Every preset takes these (the contract's form {"preset", "out_channels", "seed"}); a preset
# that draws nothing at random ignores the seed.
COMMON = ("out_channels", "seed")


def _identity(spec: WeightsSpec, x: torch.Tensor, k: int) -> Made:
    return np.eye(x.shape[0], dtype=np.float32), {}


def _random(spec: WeightsSpec, x: torch.Tensor, k: int) -> Made:
    c = x.shape[0]
    rng = np.random.default_rng(spec.seed)
    # He-normal: keeps the output's scale near the input's after a ReLU.
    w = rng.standard_normal((k, c)) * np.sqrt(2.0 / c)
    return w.astype(np.float32), {}


def _difference(spec: WeightsSpec, x: torch.Tensor, k: int) -> Made:
    c = x.shape[0]
    for name, ch in (("positive", spec.positive), ("negative", spec.negative)):
        if ch >= c:
            raise InvalidContent(
                f"difference: {name} = {ch} is not a channel of the input (0 … {c - 1}).",
                field=f"weights.{name}",
                code="out_of_range",
            )
    if spec.positive == spec.negative:
        raise InvalidContent(
            "difference: positive and negative must be different channels.",
            field="weights.negative",
            code="conflict",
        )
    w = np.zeros((1, c), dtype=np.float32)
    w[0, spec.positive], w[0, spec.negative] = 1.0, -1.0
    return w, {}


def _mean(spec: WeightsSpec, x: torch.Tensor, k: int) -> Made:
    c = x.shape[0]
    return np.full((1, c), 1.0 / c, dtype=np.float32), {}


def _pca(spec: WeightsSpec, x: torch.Tensor, k: int) -> Made:
    c = x.shape[0]
    if k > c:
        raise InvalidContent(
            f"pca: out_channels = {k} is more than the input's {c} channels; a projection "
            f"onto principal directions has at most C = {c} filters.",
            field="weights.out_channels",
            code="out_of_range",
        )
    rows, shares = mixing.principal_directions(mixing.channel_covariance(x), k)
    return rows.float(), {
        "variance_kept": float(shares.sum()),
        "component_variance": [round(float(s), 6) for s in shares],
    }


PRESETS: dict[str, PresetInfo] = {
    "identity": PresetInfo(
        _identity,
        "W = I, K = C. With bias 0, 1×1 conv + ReLU equals ReLU-only.",
        ("bias",),
        lambda c: c,
        "C",
        fixes_k=True,
    ),
    "random": PresetInfo(
        _random,
        "Seeded He-normal weights, N(0, 2/C): mixes every channel into every output.",
        ("out_channels", "seed", "bias"),
        lambda c: c,
        "C, as many filters as input channels",
    ),
    "difference": PresetInfo(
        _difference,
        "One filter: channel `positive` minus channel `negative` (cat − dog).",
        ("positive", "negative", "bias"),
        lambda c: 1,
        "1",
        fixes_k=True,
    ),
    "mean": PresetInfo(
        _mean, "One filter: the mean of all channels.", ("bias",), lambda c: 1, "1", fixes_k=True
    ),
    "pca": PresetInfo(
        _pca,
        "Projection onto the input's top-K principal directions: the best linear reduction "
        "to K channels. Its bias centres the outputs (plus weights.bias if given); reports "
        "the variance kept.",
        ("out_channels", "bias"),
        lambda c: min(c, 64),
        "min(C, 64)",
    ),
}


def _preset(spec: WeightsSpec) -> tuple[str, PresetInfo]:
    name = spec.preset or "random"
    info = PRESETS.get(name)
    if info is None:
        raise InvalidContent(
            f"Unknown weight preset {excerpt(name)}; use one of: {', '.join(PRESETS)}.",
            field="weights.preset",
            code="unknown_name",
        )
    return name, info


def _file_weight(decoded: Decoded) -> np.ndarray:
    """The weight array of an uploaded layer: named weight, or the file's only array."""
    weight = _named(decoded, "weight")
    if weight is not None:
        return weight
    if len(decoded.arrays) != 1:
        raise InvalidContent(
            f"The weights file holds {listed(sorted(decoded.arrays))}; "
            "it needs one array, or a state dict with 'weight' (and optional 'bias'), as "
            "torch.save(conv.state_dict()) writes for nn.Conv2d(C, K, 1).",
            field="weights",
            code="ambiguous_array",
        )
    return next(iter(decoded.arrays.values()))


def _checkpoint_layer(
    decoded: Decoded, spec: WeightsSpec
) -> tuple[checkpoints.Checkpoint, checkpoints.Conv | None]:
    """The file's convs and batch norms, and the 1×1 conv `spec.layer` picks from them.

    The conv is None when the file holds no conv weight (a lone array, or a linear
    layer's): it is read as one layer, as it always was.
    """
    ckpt = checkpoints.Checkpoint(decoded.arrays)
    if ckpt.convs:
        return ckpt, ckpt.layer(spec.layer)
    if spec.layer is not None:
        held = listed(list(decoded.arrays))
        raise InvalidContent(
            f"weights.layer names {excerpt(spec.layer)}, but the weights file holds no conv "
            f"layer to pick from (it holds {held}). Drop weights.layer to read it as one layer.",
            field="weights.layer",
            code="not_a_checkpoint",
        )
    return ckpt, None


def planned_k(spec: WeightsSpec, c: int, decoded: Decoded | None) -> int:
    """K, the number of filters a request will build, known before any tensor exists."""
    if decoded is not None:
        _, conv = _checkpoint_layer(decoded, spec)
        if conv is not None:
            return conv.k
        weight = _file_weight(decoded)
        return int(weight.shape[0]) if weight.ndim else 1
    if spec.matrix is not None:
        return len(spec.matrix)
    name, info = _preset(spec)
    k = info.default_k(c)
    if spec.out_channels is None or spec.out_channels == k:
        return k
    if info.fixes_k:
        raise InvalidContent(
            f"The {name} preset makes K = {k} filter{'s' * (k != 1)} for C = {c} input "
            f"channels (K = {info.default_k_rule}); out_channels = {spec.out_channels} asks "
            f"for another. Send out_channels = {k}, or leave it out.",
            field="weights.out_channels",
            code="fixed_by_preset",
        )
    return spec.out_channels


def _bias(spec_bias: float | list[float] | None, k: int, where: str) -> np.ndarray:
    if spec_bias is None:
        return np.zeros(k, dtype=np.float32)
    if isinstance(spec_bias, float | int):
        return np.full(k, float(spec_bias), dtype=np.float32)
    if len(spec_bias) != k:
        raise InvalidContent(
            f"{where}: bias has {len(spec_bias)} values but there are K = {k} filters.",
            field="weights.bias",
            code="shape_mismatch",
        )
    return np.asarray(spec_bias, dtype=np.float32)


def _on(device: torch.device, a: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(a, dtype=torch.float32)
    return t.to(device)


def _check_c(weight_shape: tuple[int, ...], c: int, where: str, field: str) -> None:
    if weight_shape[1] != c:
        raise InvalidContent(
            f"{where}: the weights have shape {list(weight_shape)}, i.e. C = {weight_shape[1]} "
            f"input channels, but the input has C = {c} (input shape (C, H, W) with C = {c}). "
            "Their C must match.",
            field=field,
            code="shape_mismatch",
        )


def _only_fields(spec: WeightsSpec, allowed: set[str], of: str) -> None:
    """Refuse a field given for weights that do not take it (it would be silently ignored)."""
    for key in sorted(spec.model_fields_set - allowed - {"preset"}):
        takes = ", ".join(sorted(allowed)) or "no parameters"
        raise InvalidContent(
            f"weights.{key} is not a parameter of {of}; it takes {takes}.",
            field=f"weights.{key}",
            code="not_for_preset",
        )


def from_preset(spec: WeightsSpec, x: torch.Tensor) -> Layer:
    name, info = _preset(spec)
    _only_fields(spec, {*info.params, *COMMON}, f"the {name} preset")
    w, extra = info.make(spec, x, planned_k(spec, x.shape[0], None))
    weight = _on(x.device, w)
    k = weight.shape[0]
    if name == "pca":
        # Centre each output: b = −W·mean(x), so the ReLU cuts at the input's mean.
        mean = x.reshape(x.shape[0], -1).mean(dim=1)  # (C,)
        bias = -(weight @ mean) + _on(x.device, _bias(spec.bias, k, "pca"))
    else:
        bias = _on(x.device, _bias(spec.bias, k, name))
    return Layer(weight, bias, f"preset:{name}", extra)


def from_matrix(spec: WeightsSpec, x: torch.Tensor) -> Layer:
    assert spec.matrix is not None
    _only_fields(spec, {"matrix", "bias"}, "an explicit matrix")
    rows = spec.matrix
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise InvalidContent(
            "weights.matrix must be K rows of C numbers each, all rows the same length.",
            field="weights.matrix",
            code="bad_shape",
        )
    w = np.asarray(rows, dtype=np.float32)  # (K, C)
    check_finite(w, "weight matrix", field="weights.matrix")
    _check_c(w.shape, x.shape[0], "weights.matrix", "weights.matrix")
    b = _bias(spec.bias, w.shape[0], "weights.matrix")
    check_finite(b, "bias", field="weights.bias")
    return Layer(_on(x.device, w), _on(x.device, b), "matrix")


def _named(decoded: Decoded, suffix: str) -> np.ndarray | None:
    if suffix in decoded.arrays:
        return decoded.arrays[suffix]
    found = [v for k, v in decoded.arrays.items() if k.endswith("." + suffix)]
    return found[0] if len(found) == 1 else None


def _legacy_layer(decoded: Decoded) -> tuple[np.ndarray, np.ndarray | None]:
    """A file that is one layer: a (K, C) or (K, C, 1, 1) array, maybe with a bias."""
    weight = _file_weight(decoded)
    if weight.ndim == 4:
        if weight.shape[2:] != (1, 1):
            raise InvalidContent(
                f"The weights have shape {list(weight.shape)}: a {weight.shape[2]}×"
                f"{weight.shape[3]} kernel. Only 1×1 layers, (K, C, 1, 1) or (K, C), are "
                "supported.",
                field="weights",
                code="not_1x1",
            )
        weight = weight[:, :, 0, 0]
    if weight.ndim != 2:
        raise InvalidContent(
            f"The weights have shape {list(weight.shape)}; send (K, C) or (K, C, 1, 1).",
            field="weights",
            code="bad_shape",
        )
    return weight, _named(decoded, "bias")


def file_layers(decoded: Decoded) -> tuple[checkpoints.Checkpoint, list[checkpoints.Conv]]:
    """The 1×1 layers an uploaded weights file offers, read as `from_file` reads it: a
    checkpoint's 1×1 convs, or the one layer of a single-layer file (named "")."""
    ckpt = checkpoints.Checkpoint(decoded.arrays)
    if not ckpt.convs:
        weight, bias = _legacy_layer(decoded)
        return ckpt, [checkpoints.Conv("", weight, bias)]
    ones = ckpt.layers()
    if not ones:
        ckpt.layer(None)  # the one "no 1×1 layer" error, listing the convs it has
    return ckpt, ones


def listing(decoded: Decoded | None) -> CheckpointLayers:
    """What POST /api/v1/checkpoints/layers answers: the file's 1×1 layers, each with K, C,
    its bias and the batch norm after it, and what else the file holds."""
    if decoded is None:
        raise InvalidContent(
            "Send the checkpoint as multipart/form-data, in the file part 'weights' "
            "(curl -F weights=@model.pt).",
            field="weights",
            code="missing",
        )
    ckpt, ones = file_layers(decoded)
    out = []
    for conv in ones:
        found = ckpt.follows(conv.name)
        bn = ckpt.batchnorms[found] if found is not None else None
        out.append(
            CheckpointLayer(
                name=conv.name,
                out_channels=conv.k,
                in_channels=conv.c,
                bias=conv.bias is not None,
                batchnorm=None
                if bn is None
                else BatchNormInfo(name=bn.name, channels=bn.channels, affine=bn.affine),
            )
        )
    return CheckpointLayers(
        format=decoded.format,
        wrappers=list(ckpt.stripped),
        layers=out,
        other_convs=sum(not c.is_1x1 for c in ckpt.convs.values()),
        batchnorms=len(ckpt.batchnorms),
        # Read as compare.run reads it: a capture file is activations and a layer.
        input=list(decoded.arrays["input"].shape) if inputs.is_capture(decoded) else None,
    )


def from_file(decoded: Decoded, spec: WeightsSpec, x: torch.Tensor) -> Layer:
    """An uploaded layer: a (K, C) or (K, C, 1, 1) array, a state dict with weight [and
    bias], or a whole checkpoint's 1×1 conv (`spec.layer`) with its batch norm folded."""
    ckpt, conv = _checkpoint_layer(decoded, spec)
    if conv is not None:
        weight, bias, name = conv.matrix(), conv.bias, conv.name
    else:
        (weight, bias), name = _legacy_layer(decoded), ""
    w = np.ascontiguousarray(weight, dtype=np.float32)  # (K, C)
    check_finite(w, "weights", field="weights")
    if 0 in w.shape:
        raise InvalidContent(
            f"The weights have shape {list(w.shape)}: no filters or no channels.",
            field="weights",
            code="empty",
        )
    _check_c(w.shape, x.shape[0], f"weights layer {name}" if name else "weights file", "weights")
    k = w.shape[0]
    if bias is not None:
        b = np.asarray(bias, dtype=np.float32).reshape(-1)
        if b.shape[0] != k:
            raise InvalidContent(
                f"The weights file's bias has {b.shape[0]} values but its weight has K = {k} rows.",
                field="weights",
                code="shape_mismatch",
            )
        check_finite(b, "bias", field="weights")
    else:
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
            b = _bias(spec.bias, k, "weights file")
        # Checked before a batch norm is folded in: a bias too large for float32 is the
        # request's weights.bias at fault, not the batch norm.
        check_finite(b, "bias", field="weights.bias")
    follows = ckpt.follows(name)
    bn = ckpt.batchnorm(conv or checkpoints.Conv(name, w, b), spec.batchnorm)
    if bn is not None:
        w, b = checkpoints.fold(w, b, bn, spec.eps)
        check_finite(w, f"weights with batch norm {bn.name} folded", field="weights.batchnorm")
        check_finite(b, f"bias with batch norm {bn.name} folded", field="weights.batchnorm")
    source = f"file:{decoded.format}"
    info: dict[str, Any] = {}
    if name or bn is not None:
        # A checkpoint's layer: say which one, and which batch norm was folded into it.
        source = f"{source}:{name}" if name else source
        info = {
            "checkpoint_layer": name,
            "batchnorm": None
            if bn is None
            else {"name": bn.name, "eps": spec.eps, "affine": bn.affine},
            "batchnorm_follows": follows,
        }
    return Layer(_on(x.device, w), _on(x.device, b), source, info)


def build(spec: WeightsSpec, x: torch.Tensor, decoded: Decoded | None) -> Layer:
    # A number beyond float32 becomes ±inf in the casts to float32, as it should: it is
    # refused just below, so numpy's overflow warning would only repeat it in the log.
    with np.errstate(over="ignore"):
        layer = _build(spec, x, decoded)
    # Every source ends here: a bias of 1e300 is a finite JSON number but no float32.
    for name, t in (("weight", layer.weight), ("bias", layer.bias)):
        if not bool(torch.isfinite(t).all()):
            raise InvalidContent(
                f"The layer's {name} holds values that are not finite in float32 (NaN, "
                "infinite, or beyond ±3.4e38); use smaller numbers.",
                field="weights" if decoded is not None else f"weights.{name}",
                code="not_finite",
            )
    return layer


def _build(spec: WeightsSpec, x: torch.Tensor, decoded: Decoded | None) -> Layer:
    if decoded is not None:
        given = [f"weights.{k}" for k in ("preset", "matrix") if getattr(spec, k) is not None]
        if given:
            raise InvalidContent(
                f"The weights came as a file and as {' and '.join(given)} in the spec; "
                "send one of them.",
                field=given[0],
                code="conflict",
            )
        return from_file(decoded, spec, x)
    if spec.layer is not None:
        raise InvalidContent(
            f"weights.layer names {excerpt(spec.layer)}, a layer of a checkpoint, but no "
            "checkpoint was uploaded: send it as the multipart file part 'weights'.",
            field="weights.layer",
            code="needs_file",
        )
    if spec.matrix is not None:
        if spec.preset is not None:
            raise InvalidContent(
                "Give weights.preset or weights.matrix, not both.",
                field="weights.matrix",
                code="conflict",
            )
        return from_matrix(spec, x)
    return from_preset(spec, x)
