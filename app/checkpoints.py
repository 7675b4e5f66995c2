"""A whole model's state dict: its 1×1 conv layers, and the batch norm folded into one.

Pure numpy, no web and no torch: a checkpoint arrives as named arrays (what
`uploads.decode` makes of a `.pt` or `.safetensors` file), and `onebyone capture`
hands in a live module's tensors as numpy for the same folding.

In most networks a 1×1 conv is followed by batch norm before its ReLU (ResNet
bottlenecks, GoogLeNet's BasicConv2d, MobileNet's pointwise convs), so the layer
the network computes is `bn(W·x + b)`; in eval mode that is itself a 1×1 conv,
with the batch norm folded into its weight and bias (`fold`).
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from app.errors import InvalidContent, excerpt

# Leading key segments that wrap a state dict rather than name a module: the usual
# training-checkpoint dicts ({"state_dict": …}, {"model": …}, PyTorch's tutorial's
# {"model_state_dict": …}), DataParallel's `module.` and Lightning's `model.`.
WRAPPERS = ("state_dict", "model_state_dict", "model", "module")
# nn.BatchNorm2d's default; state dicts do not store eps, so a request may set another.
DEFAULT_EPS = 1e-5
# weights.batchnorm's fixed values (a batch norm's prefix may stand instead), the default first.
BATCHNORM_CHOICES = {
    "auto": "fold the batch norm that follows it (found by name)",
    "none": "the raw conv, no batch norm",
}
# How many layers an error message lists before it points at the listing endpoint, and
# how many characters of each name it shows: refusals stay a few KB for any checkpoint.
_LISTED = 20
_SHOWN = 80
_LISTING = "POST /api/v1/checkpoints/layers lists them"
# Suggestions compare the first characters of names only (difflib's cost grows with the
# square of a name's length), among the names that share the longest start with the one
# asked for: a typo is found among thousands of long names at once.
_COMPARED = 100
_CANDIDATES = 256


@dataclass(frozen=True)
class Conv:
    """A conv layer: `name` is its module path ("" for a file's top-level weight)."""

    name: str
    weight: np.ndarray  # (K, C, kh, kw), or (K, C) for a flat single layer
    bias: np.ndarray | None  # (K,)

    @property
    def kernel(self) -> tuple[int, int]:
        if self.weight.ndim == 2:
            return (1, 1)
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))

    @property
    def is_1x1(self) -> bool:
        return self.kernel == (1, 1)

    @property
    def k(self) -> int:
        return int(self.weight.shape[0])

    @property
    def c(self) -> int:
        return int(self.weight.shape[1])

    def matrix(self) -> np.ndarray:
        """The 1×1 layer's weight as (K, C)."""
        return self.weight.reshape(self.k, self.c)  # (K, C, 1, 1) -> (K, C)


@dataclass(frozen=True)
class BatchNorm:
    """A batch norm's running statistics and, when affine, its scale γ and shift β."""

    name: str
    mean: np.ndarray  # (N,)
    var: np.ndarray  # (N,)
    gamma: np.ndarray | None  # (N,); None for affine=False
    beta: np.ndarray | None  # (N,)

    @property
    def channels(self) -> int:
        return int(self.mean.shape[0])

    @property
    def affine(self) -> bool:
        return self.gamma is not None


def following_names(conv: str) -> list[str]:
    """Where the batch norm after conv `conv` usually sits, most specific first.

    `layer1.0.conv1` → `layer1.0.bn1` (ResNet), `….conv` → `….bn` (GoogLeNet's
    BasicConv2d, Inception), `features.3.0` → `features.3.1` and `….downsample.0` →
    `….downsample.1` (Sequential: MobileNet, EfficientNet, ShuffleNet, ResNet's
    shortcut), `….conv1` → `….conv1.norm` (detectron2), `….convolution` →
    `….normalization` (Hugging Face). `convN` → `normN` is left out on purpose: in
    DenseNet `norm1` comes *before* `conv1`.
    """
    if not conv:
        return []
    parent, _, last = conv.rpartition(".")

    def sibling(name: str) -> str:
        return f"{parent}.{name}" if parent else name

    out = [f"{conv}.bn", f"{conv}.norm"]
    if last.isdigit():
        out.append(sibling(str(int(last) + 1)))
    if "conv" in last:
        out.append(sibling(last.replace("conv", "bn")))
    if last == "conv":
        out.append(sibling("norm"))
    if last == "convolution":
        out.append(sibling("normalization"))
    return out


def fold(
    weight: np.ndarray, bias: np.ndarray | None, bn: BatchNorm, eps: float = DEFAULT_EPS
) -> tuple[np.ndarray, np.ndarray]:
    """The conv and its batch norm as one 1×1 layer, float32 (K, C) and (K,).

    Eval-mode batch norm is y = γ(z − μ)/√(σ² + ε) + β on z = W·x + b, so
    W' = γ/√(σ² + ε)·W and b' = γ(b − μ)/√(σ² + ε) + β. Computed in float64.
    """
    k = weight.shape[0]
    w = weight.astype(np.float64)  # (K, C)
    b = np.zeros(k) if bias is None else bias.astype(np.float64)  # (K,)
    scale = 1.0 / np.sqrt(bn.var.astype(np.float64) + eps)  # (K,)
    if bn.gamma is not None:
        scale = scale * bn.gamma.astype(np.float64)
    shift = np.zeros(k) if bn.beta is None else bn.beta.astype(np.float64)
    w_folded = (scale[:, None] * w).astype(np.float32)  # (K, C)
    b_folded = (scale * (b - bn.mean.astype(np.float64)) + shift).astype(np.float32)  # (K,)
    return w_folded, b_folded


def _canonical(key: str) -> str:
    segs = key.split(".")
    while len(segs) > 1 and segs[0] in WRAPPERS:
        segs = segs[1:]
    return ".".join(segs)


def _split(key: str) -> tuple[str, str]:
    """`layer1.0.conv1.weight` → (`layer1.0.conv1`, `weight`); `weight` → (``, `weight`)."""
    prefix, _, leaf = key.rpartition(".")
    return prefix, leaf


def _join(prefix: str, leaf: str) -> str:
    return f"{prefix}.{leaf}" if prefix else leaf


def close_names(name: str, choices: list[str]) -> list[str]:
    """The choices that look like a mistyped `name`, best first (at most 5).

    Names are compared by their first _COMPARED characters; where several share those,
    the first of them stands for all.
    """
    if len(choices) > _CANDIDATES:
        choices = heapq.nlargest(_CANDIDATES, choices, key=lambda c: _shared_start(name, c))
    heads: dict[str, str] = {}
    for choice in choices:
        heads.setdefault(choice[:_COMPARED], choice)
    close = difflib.get_close_matches(name[:_COMPARED], list(heads), n=5, cutoff=0.5)
    return [heads[c] for c in close]


def _shared_start(a: str, b: str) -> int:
    """How many characters a and b have in common at their start (by bisection: slices
    compare in C)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def show(name: str) -> str:
    """A module name from an uploaded file, for a message: as it is when it looks like one,
    else a short escaped excerpt."""
    if name.isascii() and name.isprintable() and len(name) <= _SHOWN:
        return name or "(top-level weight)"
    return excerpt(name, _SHOWN)


def describe(conv: Conv, bn: str | None) -> str:
    """One layer for a message: `layer1.0.conv1 (K, C) = (64, 64), then layer1.0.bn1`."""
    then = f"then batch norm {show(bn)}" if bn else "no batch norm after it"
    return f"{show(conv.name)} (K, C) = ({conv.k}, {conv.c}), {then}"


class Checkpoint:
    """The convs and batch norms of a state dict, by their module names, wrappers removed."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        named: dict[str, np.ndarray] = {}
        stripped: set[str] = set()
        for key, value in arrays.items():
            name = _canonical(key)
            if name in named:
                name = key  # two keys collide once unwrapped: keep this one as it was
            elif name != key:
                stripped.add(key[: len(key) - len(name) - 1])
            named[name] = value
        self.stripped = tuple(sorted(stripped))
        self.convs: dict[str, Conv] = {}
        self.batchnorms: dict[str, BatchNorm] = {}
        for key, value in named.items():
            prefix, leaf = _split(key)
            if leaf == "weight" and (value.ndim == 4 or (value.ndim == 2 and not prefix)):
                # 4-D: a conv. 2-D only at the top: a flat (K, C) layer, as `capture`
                # writes; a prefixed 2-D weight is a linear layer, not offered.
                bias = named.get(_join(prefix, "bias"))
                self.convs[prefix] = Conv(prefix, value, bias)
            elif leaf == "running_mean" and _join(prefix, "running_var") in named:
                gamma = named.get(_join(prefix, "weight"))
                beta = named.get(_join(prefix, "bias"))
                # Every part flat, whatever its shape: a (K, 1) γ is K values (folded), a
                # (K, 2) one 2K (refused by check_batchnorm), never silently left out.
                self.batchnorms[prefix] = BatchNorm(
                    prefix,
                    value.reshape(-1),
                    named[_join(prefix, "running_var")].reshape(-1),
                    None if gamma is None else gamma.reshape(-1),
                    None if beta is None else beta.reshape(-1),
                )

    def layers(self) -> list[Conv]:
        """The 1×1 convs, in the file's order; k×k convs are never offered."""
        return [c for c in self.convs.values() if c.is_1x1]

    def follows(self, conv: str) -> str | None:
        """The batch norm that follows conv `conv` by the usual naming, or None."""
        for name in following_names(conv):
            if name in self.batchnorms:
                return name
        return None

    def _listing(self, layers: list[Conv]) -> str:
        shown = "; ".join(describe(c, self.follows(c.name)) for c in layers[:_LISTED])
        more = f"; … and {len(layers) - _LISTED} more ({_LISTING})" if len(layers) > _LISTED else ""
        return shown + more

    def layer(self, name: str | None) -> Conv:
        """The 1×1 conv named `name`, or the only one when `name` is None."""
        ones = self.layers()
        if not ones:
            others = [
                f"{show(c.name or 'weight')} ({c.kernel[0]}×{c.kernel[1]})"
                for c in self.convs.values()
            ]
            more = f" and {len(others) - _LISTED} more" if len(others) > _LISTED else ""
            found = f" Its convs: {', '.join(others[:_LISTED])}{more}." if others else ""
            raise InvalidContent(
                "The weights file holds no 1×1 conv layer (a 4-D weight with a 1×1 kernel, or "
                f"a top-level (K, C) weight), so there is nothing to compare.{found}",
                field="weights",
                code="no_1x1_layer",
            )
        if name is None:
            if len(ones) == 1:
                return ones[0]
            raise InvalidContent(
                f"The checkpoint holds {len(ones)} 1×1 conv layers; name one in "
                f'"weights": {{"layer": NAME}}. They are: {self._listing(ones)}.',
                field="weights.layer",
                code="layer_required",
            )
        wanted = _canonical(name.strip().removesuffix(".weight"))
        conv = self.convs.get(wanted)
        if conv is None:
            close = close_names(wanted, [c.name for c in ones])
            hint = f"Did you mean {', '.join(map(show, close))}? " if close else ""
            what = (
                "is a batch norm, not a conv layer"
                if wanted in self.batchnorms
                else "is not a conv layer of this checkpoint"
            )
            raise InvalidContent(
                f"weights.layer {excerpt(name)} {what}. {hint}Its 1×1 conv layers are: "
                f"{self._listing(ones)}.",
                field="weights.layer",
                code="unknown_name",
            )
        if not conv.is_1x1:
            kh, kw = conv.kernel
            raise InvalidContent(
                f"weights.layer {show(conv.name)} is a {kh}×{kw} conv (weight shape "
                f"{list(conv.weight.shape)}); only 1×1 layers can be compared. Its 1×1 conv "
                f"layers are: {self._listing(ones)}.",
                field="weights.layer",
                code="not_1x1",
            )
        return conv

    def batchnorm(self, conv: Conv, choice: str) -> BatchNorm | None:
        """The batch norm to fold into `conv`: `auto` (by naming), `none`, or a prefix.

        Checked: it has K channels, and finite, non-negative running statistics.
        """
        if choice == "none":
            return None
        if choice == "auto":
            found = self.follows(conv.name)
            if found is None:
                return None
            bn = self.batchnorms[found]
        else:
            wanted = _canonical(choice.strip().removesuffix(".running_mean"))
            if wanted not in self.batchnorms:
                names = list(self.batchnorms)
                close = close_names(wanted, names)
                hint = f"Did you mean {', '.join(map(show, close))}? " if close else ""
                held = (
                    f"It holds {len(names)} batch norms (keys ….running_mean and ….running_var)."
                    if names
                    else "It holds none (no ….running_mean and ….running_var keys)."
                )
                raise InvalidContent(
                    f"weights.batchnorm {excerpt(choice)} is not a batch norm of the weights "
                    f'file. {hint}{held} Use "auto", "none" or the prefix of one.',
                    field="weights.batchnorm",
                    code="unknown_name",
                )
            bn = self.batchnorms[wanted]
        how = "found by naming (auto)" if choice == "auto" else "named in weights.batchnorm"
        check_batchnorm(conv, bn, how)
        return bn


def check_batchnorm(conv: Conv, bn: BatchNorm, how: str) -> None:
    """Refuse a batch norm that cannot be folded into `conv`: wrong size, NaN, var < 0."""
    sizes = {
        "running_mean": bn.mean.shape[0],
        "running_var": bn.var.shape[0],
        "weight": None if bn.gamma is None else bn.gamma.shape[0],
        "bias": None if bn.beta is None else bn.beta.shape[0],
    }
    wrong = {k: v for k, v in sizes.items() if v is not None and v != conv.k}
    if wrong:
        got = ", ".join(f"{k} {v}" for k, v in wrong.items())
        layer = show(conv.name) if conv.name else "the layer"
        raise InvalidContent(
            f"The batch norm {show(bn.name)} ({how}) has {got} channels, but {layer} has "
            f"K = {conv.k} filters, so it cannot follow this layer. Set "
            'weights.batchnorm to "none", or to the prefix of the batch norm that does.',
            field="weights.batchnorm",
            code="shape_mismatch",
        )
    for part, values in (
        ("running_mean", bn.mean),
        ("running_var", bn.var),
        ("weight", bn.gamma),
        ("bias", bn.beta),
    ):
        if values is not None and not np.isfinite(values).all():
            bad = int(values.size - np.isfinite(values).sum())
            raise InvalidContent(
                f"The batch norm {show(bn.name)} holds {bad} NaN or infinite values in its "
                f"{part}; it cannot be folded. Fix the checkpoint or set "
                'weights.batchnorm to "none".',
                field="weights.batchnorm",
                code="not_finite",
            )
    if (bn.var < 0).any():
        raise InvalidContent(
            f"The batch norm {show(bn.name)} has a negative running_var "
            f"({float(bn.var.min()):.3g}); a variance cannot be negative.",
            field="weights.batchnorm",
            code="out_of_range",
        )
