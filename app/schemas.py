"""Request and response models of the REST API, with hard limits in Field(...).

The Field bounds are absolute sanity caps that refuse absurd numbers at parse
time; the configurable limits in `Settings` are checked before any tensor exists.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

HARD_SIDE = 16384
HARD_CHANNELS = 65536

# How every POST body is read; shown at the top of /docs (app.main) and kept true by
# tests/test_api.py and tests/test_contract.py.
REQUEST_RULES = """
**How requests are read.** Strict where leniency could only hide a mistake:

- A body needs `Content-Type: application/json` or `multipart/form-data` (415 otherwise);
  an empty POST with no Content-Type takes every default.
- Numbers are JSON numbers: `true` or `"28"` where an integer belongs is a 422, and so is
  `28.0`; a float field takes integers.
- Unknown fields are a 422 whose `detail` lists the fields that exist there (`code`
  `unknown_field`); a JSON key repeated in one object is a 400 (`duplicate_key`); a multipart
  part sent twice (`repeated_part`) and a query parameter given twice (`repeated_parameter`) or
  unknown to the endpoint (`unknown_parameter`) are 422s.
- Multipart: file parts `input` (and `weights` or `target`) and an optional `spec` part with
  the same fields as the JSON body; `layout` may stand at the top level of `spec` or inside its
  `input` (if both, they must agree). A body cut short before its closing boundary is a 400.
- Files are recognised by their content: .npy, .npz, .pt/.pth (zip, `torch.load(weights_only=
  True)`), .safetensors, PNG, JPEG. A known extension on content that does not parse is a 400;
  an unknown type a 415; nothing is ever unpickled. Images of every bit depth are scaled to
  [0, 1] by their largest code.
- Every refusal is `{"detail", "field", "code"}`: `detail` for people, `field` the dotted path
  of what was wrong (`input.height`, `weights.matrix`, `device`, …), `code` a stable reason.
"""

Device = Literal["auto", "cpu", "cuda", "mps"]
Layout = Literal["auto", "chw", "hwc", "nchw", "nhwc"]
# A list of numbers in a request: its first bad item is the error (fail_fast), so a million
# wrong items cost one error, not a million (pydantic builds each, ~1 KB and 14 µs apiece).
Floats = Annotated[list[float], Field(fail_fast=True)]
# What /api/v1/compare can return (its format query parameter).
Format = Literal["json", "png", "npz"]


class InputSpec(BaseModel):
    """Where the feature maps come from: a generator and its parameters, or how to read a file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    generator: str = Field(default="catdog", description="One of GET /api/v1/presets' generators.")
    height: int = Field(default=28, ge=1, le=HARD_SIDE)
    width: int = Field(default=28, ge=1, le=HARD_SIDE)
    channels: int = Field(default=4, ge=1, le=HARD_CHANNELS)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    rank: int | None = Field(default=None, description="smooth, nonnegative")
    scale: float | None = Field(default=None, description="smooth, nonnegative")
    noise: float | None = Field(default=None, description="smooth, nonnegative")
    blobs: int | None = Field(default=None, description="catdog")
    rectangles: int | None = Field(default=None, description="edges")
    layout: Layout = Field(
        default="auto", description="For uploaded arrays: how their axes are ordered."
    )
    features: Literal["raw", "filterbank"] = Field(
        default="raw",
        description="For uploaded RGB images: the colour channels as they are (raw), or 9 "
        "early-vision feature maps from the fixed filter bank (filterbank).",
    )

    def generator_params(self) -> dict[str, Any]:
        """The parameters given for the generator itself (not size, seed or file options)."""
        return {k: getattr(self, k) for k in GENERATOR_PARAMS if getattr(self, k) is not None}


# InputSpec's fields that parameterise one generator or another (see app.generators).
GENERATOR_PARAMS = ("rank", "scale", "noise", "blobs", "rectangles")


class WeightsSpec(BaseModel):
    """The 1×1 layer: a preset, an explicit matrix and bias, or an uploaded file's layer."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    preset: str | None = Field(
        default=None, description="One of GET /api/v1/presets' weight presets; default random."
    )
    out_channels: int | None = Field(
        default=None, ge=1, le=HARD_CHANNELS, description="K, the number of 1×1 filters."
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    positive: int = Field(default=0, ge=0, description="difference: the channel added")
    negative: int = Field(default=1, ge=0, description="difference: the channel subtracted")
    matrix: Annotated[list[Floats], Field(fail_fast=True)] | None = Field(
        default=None, description="Explicit weights: K rows of C values."
    )
    bias: float | Floats | None = Field(
        default=None, description="One value for every filter, or K values; default 0."
    )
    layer: str | None = Field(
        default=None,
        max_length=1000,
        description="With a whole checkpoint as the weights file: the 1×1 conv to use, by "
        "module name (POST /api/v1/checkpoints/layers lists them). Needed when it has several.",
        examples=["layer1.0.conv1"],
    )
    batchnorm: str = Field(
        default="auto",
        min_length=1,
        max_length=1000,
        description='The batch norm folded into the layer: "auto" (the one that follows it by '
        'name, e.g. conv1 → bn1, features.3.0 → features.3.1), "none" (the raw conv), or the '
        "prefix of a batch norm in the weights file.",
        examples=["auto", "none", "layer1.0.bn1"],
    )
    eps: float = Field(
        default=1e-5,
        gt=0,
        le=1,
        description="The folded batch norm's epsilon; state dicts do not store it (PyTorch's "
        "default 1e-5; GoogLeNet's and Inception v3's batch norms use 1e-3).",
    )


_TOP_LAYOUT = Field(
    default=None,
    description="For an uploaded array: how its axes are ordered, the same as input.layout "
    "(it describes the file, so it may stand here in a multipart spec part). If both are "
    "given they must agree.",
)


class _UploadLayout(BaseModel):
    """Requests that may carry `layout` at the top level as well as inside `input`."""

    input: InputSpec
    layout: Layout | None

    @model_validator(mode="after")
    def _merge_layout(self) -> _UploadLayout:
        if self.layout is None:
            return self
        inner = self.input.layout if "layout" in self.input.model_fields_set else None
        if inner is not None and inner != self.layout:
            raise PydanticCustomError(
                "conflict",
                "layout is {outer} at the top level but {inner} in input; give one, or the same",
                {"outer": self.layout, "inner": inner, "field": "layout"},
            )
        self.input.layout = self.layout
        return self


class CompareRequest(_UploadLayout):
    model_config = ConfigDict(extra="forbid")

    input: InputSpec = Field(default_factory=InputSpec)
    weights: WeightsSpec = Field(default_factory=WeightsSpec)
    device: Device = "auto"
    layout: Layout | None = _TOP_LAYOUT


class ErrorResponse(BaseModel):
    """Every refusal: a sentence for people, and a field and code for programs."""

    detail: str = Field(description="What was wrong and how to fix it.")
    field: str | None = Field(
        description="The part of the request at fault, as a dotted path: input, input.layout, "
        "weights, weights.matrix, device, target, a query parameter such as format, or null "
        "when it is the request as a whole.",
        examples=["weights.matrix"],
    )
    code: str = Field(
        description="A stable, machine-readable reason, e.g. shape_mismatch, not_finite, "
        "unknown_name, unknown_field, over_limit, too_large, unreadable, busy.",
        examples=["shape_mismatch"],
    )


# ---------------------------------------------------------------- responses


class Admission(BaseModel):
    """What this worker's compute gate holds now; with --workers N each worker has its own."""

    worker: int = Field(description="The process id of the worker that answered.")
    slots: int = Field(description="Threads that compute at once (ONEBYONE_COMPUTE_SLOTS).")
    capacity: int = Field(description="Requests admitted at most: slots + ONEBYONE_QUEUE_LIMIT.")
    admitted: int = Field(
        description="Requests admitted now: receiving their body, waiting for a thread, "
        "computing, or sending their answer. 0 when idle."
    )
    computing: int = Field(description="Threads computing now (never more than slots).")
    waiting_for_slot: int = Field(description="Jobs queued for a thread.")
    abandoned: int = Field(
        description="Requests already answered or gone whose thread is still finishing a step."
    )
    ready: bool = Field(description="Whether one more request would be admitted.")
    draining: bool = Field(
        default=False,
        description="Shutting down: nothing more is admitted; what is admitted has "
        "ONEBYONE_DRAIN_TIMEOUT_S to finish.",
    )


class Health(BaseModel):
    """Liveness, the devices present, and the versions that run."""

    status: Literal["ok"] = Field(description="Always ok while the process answers.")
    devices: list[str] = Field(description="Compute devices present, best first.")
    device_names: dict[str, str] = Field(description="A human name for each device present.")
    torch: str = Field(description="The PyTorch version.")
    version: str = Field(description="The onebyone version.")
    admission: Admission = Field(description="This worker's compute gate, now.")


class Readiness(BaseModel):
    """GET /readyz: 200 when this worker can admit work, 503 when it cannot."""

    status: Literal["ready", "busy", "draining"]
    admission: Admission


class Colormap(BaseModel):
    name: str = Field(description="matplotlib's name for it.")
    rgb: str = Field(description="256 × 3 bytes (RGB per entry), base64.")


class Colormaps(BaseModel):
    """The colour maps the PNG montage and the page both use."""

    sequential: Colormap = Field(description="For non-negative values, from 0 (viridis).")
    diverging: Colormap = Field(description="For signed values, 0 at the centre (RdBu_r).")


class Shapes(BaseModel):
    input: list[int] = Field(description="(C, H, W)")
    weight: list[int] = Field(description="(K, C)")
    bias: list[int] = Field(description="(K,)")
    pre_activation: list[int] = Field(description="(K, H, W): W·x + b before the ReLU")
    relu_only: list[int] = Field(description="(C, H, W): relu(x)")
    conv_relu: list[int] = Field(description="(K, H, W): relu(W·x + b)")


class Summary(BaseModel):
    """The headline numbers: values each path changed, and whether the two paths agree."""

    relu_only_changed: int = Field(description="Values of x below zero: what ReLU-only changed.")
    relu_only_values: int = Field(description="C·H·W")
    conv_relu_changed: int = Field(
        description="Values of W·x + b below zero: what the ReLU after the 1×1 conv changed."
    )
    conv_relu_values: int = Field(description="K·H·W")
    paths_identical: bool = Field(description="Both outputs have the same shape and values.")
    paths_max_abs_difference: float | None = Field(
        default=None,
        description="max |conv_relu − relu_only| where the shapes match (K = C), else null.",
    )


class ChannelStats(BaseModel):
    """Per-channel statistics of one array, one entry per channel."""

    min: list[float]
    max: list[float]
    mean: list[float]
    zero_fraction: list[float] = Field(description="Share of the H·W values exactly 0.")
    changed_fraction: list[float] | None = Field(
        default=None,
        description="ReLU outputs only: share of the values its ReLU changed (those below 0 "
        "in what it was given).",
    )


class Stats(BaseModel):
    input: ChannelStats
    pre_activation: ChannelStats
    relu_only: ChannelStats
    conv_relu: ChannelStats


class LayerCost(BaseModel):
    parameters: int = Field(description="Weights and biases.")
    macs: int = Field(description="Multiply-adds over the whole map (stride 1, same size).")


class Costs(BaseModel):
    conv1x1: LayerCost = Field(description="This 1×1 layer, C → K.")
    conv3x3: LayerCost = Field(description="A 3×3 layer with the same channels, for comparison.")


class FoldedBatchNorm(BaseModel):
    name: str = Field(description="Its prefix in the checkpoint, e.g. layer1.0.bn1.")
    eps: float = Field(description="The ε used (the request's weights.eps).")
    affine: bool = Field(description="Whether it had a scale γ and shift β.")


class LayerInfo(BaseModel):
    """What the 1×1 layer reports about itself."""

    variance_kept: float | None = Field(
        default=None,
        description="K < C: share of the input's channel variance inside the span of W's rows "
        "(what the best linear reconstruction from the K outputs keeps).",
    )
    component_variance: list[float] | None = Field(
        default=None, description="pca preset: the variance share of each direction kept."
    )
    weight: list[list[float]] | None = Field(
        default=None, description="W (K, C), when K·C ≤ ONEBYONE_MAX_ECHO_WEIGHTS."
    )
    bias: list[float] | None = Field(default=None, description="b (K,), with the weight.")
    checkpoint_layer: str | None = Field(
        default=None,
        description="An uploaded checkpoint's layer: its module name (\"\" for a file's "
        "top-level weight).",
    )
    batchnorm: FoldedBatchNorm | None = Field(
        default=None, description="The batch norm folded into W and b; null when none was."
    )
    batchnorm_follows: str | None = Field(
        default=None,
        description='The batch norm that follows the layer by name (what "auto" folds), '
        "folded or not; null when none is found.",
    )


class BestChannel(BaseModel):
    best_channel: int = Field(description="The output channel that marks the truth best.")
    agreement: float = Field(description="Share of pixels where (output > 0) equals the truth.")


class TruthScore(BaseModel):
    fraction_true: float = Field(
        description="Share of pixels where the truth holds: an all-zero map scores 1 − this."
    )
    relu_only: BestChannel
    conv_relu: BestChannel


class Values(BaseModel):
    """One array's exact values as little-endian float32 bytes, base64 (C-order)."""

    shape: list[int] = Field(description="Its shape after subsampling, e.g. (C, H', W').")
    data: str = Field(description="base64 of the float32 values, C-order, little-endian.")


class Heatmaps(BaseModel):
    """Exact values the page draws and reads under the cursor.

    Only the input and the pre-activation are sent: relu_only = max(0, input) and
    conv_relu = max(0, pre_activation) element by element, so both are exact too.
    """

    stride: int = Field(description="Spatial subsampling: every stride-th row and column.")
    height: int = Field(description="H' = ceil(H / stride)")
    width: int = Field(description="W' = ceil(W / stride)")
    input: Values = Field(description="x, (C, H', W')")
    pre_activation: Values = Field(description="W·x + b, (K, H', W')")
    weight: Values = Field(description="W, (K, C), never subsampled")
    bias: Values = Field(description="b, (K,)")
    masks: dict[str, str] = Field(
        default_factory=dict,
        description="Ground-truth masks the generator knows (e.g. cat_over_dog, edge): "
        "base64 of (H', W') bytes, 1 where true.",
    )


class CompareReport(BaseModel):
    """The format=json body of /api/v1/compare."""

    device: str = Field(description="The device that ran: cpu, cuda or mps.")
    input_source: str = Field(description="generator:NAME or file:FORMAT")
    weights_source: str = Field(
        description="preset:NAME, matrix, file:FORMAT, file:FORMAT:LAYER (a checkpoint's "
        "layer), or input-file:FORMAT (the input file's own weight and bias, from capture)"
    )
    shapes: Shapes
    channel_names: list[str] = Field(description="A name per input channel.")
    summary: Summary
    stats: Stats
    cost: Costs
    layer: LayerInfo
    truth: dict[str, TruthScore] = Field(
        default_factory=dict,
        description="For each ground-truth mask the generator knows, how well the best "
        "channel of each path marks it with output > 0.",
    )
    heatmaps: Heatmaps | None = Field(default=None, description="Absent with heatmaps=false.")
    timings_ms: dict[str, float] = Field(
        description="Server time per phase: decode, prepare, compute, encode."
    )


COMPARE_EXAMPLES: dict[str, dict[str, Any]] = {
    "catdog": {
        "summary": "Cat minus dog: what no per-channel ReLU can do",
        "value": {
            "input": {"generator": "catdog", "height": 64, "width": 64, "channels": 4, "seed": 0},
            "weights": {"preset": "difference", "positive": 0, "negative": 1},
        },
    },
    "keep192": {
        "summary": "The question's case: 28×28×192 with 192 filters",
        "value": {
            "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192},
            "weights": {"preset": "random", "out_channels": 192, "seed": 1},
        },
    },
    "reduce64": {
        "summary": "Bottleneck 192 → 64 with the best linear reduction",
        "value": {
            "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192},
            "weights": {"preset": "pca", "out_channels": 64},
        },
    },
    "explicit": {
        "summary": "Explicit weights and bias",
        "value": {
            "input": {"generator": "gaussian", "height": 8, "width": 8, "channels": 2},
            "weights": {"matrix": [[1, -1], [0.5, 0.5]], "bias": [0, -0.1]},
            "device": "cpu",
        },
    },
}


def _input(**defaults: Any) -> Any:
    return Field(default_factory=lambda: InputSpec(**defaults))


class LayersRequest(BaseModel):
    """POST /api/v1/checkpoints/layers' spec part: nothing to set yet."""

    model_config = ConfigDict(extra="forbid")


class BatchNormInfo(BaseModel):
    name: str = Field(description="Its prefix in the checkpoint, e.g. layer1.0.bn1.")
    channels: int = Field(description="Its size; it can be folded only when it equals K.")
    affine: bool = Field(description="Whether it has a scale γ and shift β (weight, bias).")


class CheckpointLayer(BaseModel):
    name: str = Field(
        description='What to send as "weights": {"layer": NAME}. "" is a file\'s top-level '
        "weight (a single-layer file, or one from `onebyone capture`): no name is needed."
    )
    out_channels: int = Field(description="K, the number of filters.")
    in_channels: int = Field(description="C, the input channels it mixes.")
    bias: bool = Field(description="Whether the conv has its own bias.")
    batchnorm: BatchNormInfo | None = Field(
        description='The batch norm that follows it by name, which "batchnorm": "auto" folds; '
        "null when none is found."
    )


class CheckpointLayers(BaseModel):
    """An uploaded checkpoint's 1×1 conv layers; its k×k convs are counted, never offered."""

    format: str = Field(description="How the file was read: pt, safetensors or npz.")
    wrappers: list[str] = Field(
        description="Key prefixes removed to reach module names: state_dict, model, module, …"
    )
    layers: list[CheckpointLayer] = Field(description="Every 1×1 conv, in the file's order.")
    other_convs: int = Field(description="Convs with larger kernels (3×3, 7×7, …), not offered.")
    batchnorms: int = Field(description="Batch norms in the checkpoint (any of them can be named).")
    input: list[int] | None = Field(
        default=None,
        description="The shape of the activations the file holds too (its `input`, as "
        "`onebyone capture` writes it): upload it as the input alone and its layer comes with "
        "it. null for a checkpoint.",
    )


class FitRequest(_UploadLayout):
    """Learn a 1×1 conv + ReLU and the best no-mixing model towards a target."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input: InputSpec = _input(generator="catdog", height=32, width=32, channels=4)
    target: Literal["cat_over_dog", "upload"] = Field(
        default="cat_over_dog",
        description="cat_over_dog: relu(cat − dog), how much more cat than dog (catdog "
        "generator). upload: the multipart file part `target`, (K, H, W) or (H, W).",
    )
    steps: int = Field(default=300, ge=1, le=5000)
    lr: float = Field(default=0.05, gt=0, le=10)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    every: int = Field(default=10, ge=1, le=5000, description="steps between progress events")
    device: Device = "auto"
    layout: Layout | None = _TOP_LAYOUT


class BottleneckRequest(_UploadLayout):
    """The variance kept by the best reduction to K channels, for every K, and its cost."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input: InputSpec = _input(generator="smooth", height=28, width=28, channels=192)
    kernel: int = Field(default=5, ge=1, le=11, description="the k×k conv after the 1×1")
    out_channels: int = Field(
        default=32, ge=1, le=HARD_CHANNELS, description="its outputs (GoogLeNet's 5×5: 32)"
    )
    device: Device = "auto"
    layout: Layout | None = _TOP_LAYOUT


class ReceptiveFieldRequest(_UploadLayout):
    """Change one input pixel; which outputs change under a 1×1 and under a 3×3 conv?"""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    input: InputSpec = _input(generator="edges", height=32, width=32, channels=3, rectangles=2)
    out_channels: int = Field(default=4, ge=1, le=1024)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    pixel: list[int] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        fail_fast=True,
        description="[y, x]; default the centre",
    )
    delta: float = Field(
        default=1.0,
        ge=-1e6,
        le=1e6,
        description="added to every channel at that pixel (|delta| ≤ 1e6: past float32's "
        "precision at larger sizes the change would round away or overflow)",
    )
    device: Device = "auto"
    layout: Layout | None = _TOP_LAYOUT


EXPERIMENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "fit": {
        "summary": "Learn cat − dog: the 1×1 conv reaches ~0, ReLU-only cannot",
        "value": {
            "input": {"generator": "catdog", "height": 32, "width": 32, "channels": 4},
            "steps": 300,
        },
    },
    "bottleneck": {
        "summary": "GoogLeNet's 192 → K → 5×5 → 32",
        "value": {
            "input": {"generator": "smooth", "channels": 192},
            "kernel": 5,
            "out_channels": 32,
        },
    },
    "receptive_field": {
        "summary": "One pixel changed: 1×1 moves one output pixel, 3×3 a 3×3 patch",
        "value": {
            "input": {"generator": "edges", "height": 16, "width": 16, "channels": 4},
            "pixel": [8, 8],
        },
    },
}


class FitFinal(BaseModel):
    conv_relu: float = Field(description="Final mean squared error of the 1×1 conv + ReLU.")
    relu_only: float = Field(description="Final mean squared error of the best no-mixing model.")


class FitResult(BaseModel):
    """Both models trained towards the target; the `result` event of the stream too."""

    device: str
    conv_loss: list[float] = Field(description="1×1 conv + ReLU loss at every step.")
    relu_only_loss: list[float] = Field(description="Best no-mixing loss at every step.")
    final: FitFinal
    conv_weight: list[list[float]] = Field(description="The learned W (K, C).")
    conv_bias: list[float] = Field(description="The learned b (K,).")
    relu_only_channel: int = Field(description="The input channel the no-mixing model uses.")
    relu_only_scale: float
    relu_only_shift: float
    relu_only_floor: float | None = Field(
        default=None,
        description="A loss no per-channel model relu(a·x_c + b) can beat (isotonic regression "
        "on the best channel); null for targets with several channels.",
    )
    relu_only_floor_channel: int | None = None
    conclusion: str


class FitProgress(BaseModel):
    """A `progress` event of the stream (stream=true)."""

    step: int
    steps: int
    conv_loss: float
    relu_only_loss: float


class BottleneckRow(BaseModel):
    k: int = Field(description="Channels after the 1×1 reduction.")
    variance_kept: float = Field(description="By the best linear reduction to k (PCA).")
    parameters: int = Field(description="1×1 reduce C→k plus the k×k conv k→out.")
    macs: int


class BottleneckResult(BaseModel):
    input_source: str
    device: str
    channels: int
    kernel: int
    out_channels: int
    direct: LayerCost = Field(description="The kernel×kernel conv C→out alone.")
    rows: list[BottleneckRow] = Field(description="One row for every k from 1 to C.")


class ReceptiveMaps(BaseModel):
    height: int
    width: int
    names: list[str] = Field(description="What each of the maps is.")
    maps: Values = Field(description="(3, H, W): input channel 0, the 3×3 edge layer, the truth.")


class EdgeScores(BaseModel):
    fraction: float = Field(description="Share of pixels on an edge.")
    conv3x3_agreement: float = Field(description="The 3×3 edge layer against the true edges.")
    best_1x1_agreement: float = Field(
        description="The best ANY stack of 1×1 layers can reach: pixels with the same channel "
        "vector get the same answer."
    )
    conv3x3_filters: int


class ReceptiveFieldResult(BaseModel):
    input_source: str
    channel_names: list[str]
    device: str
    pixel: list[int] = Field(description="[y, x] of the changed input pixel.")
    changed: dict[str, list[list[int]]] = Field(
        description="conv1x1 / conv3x3: the output pixels [y, x] that moved."
    )
    expected: dict[str, list[list[int]]] = Field(
        description="What each layer's receptive field predicts."
    )
    cost: Costs
    edges: EdgeScores
    heatmaps: ReceptiveMaps


class Param(BaseModel):
    """One parameter a generator or preset takes, with its default and limits."""

    type: Literal["int", "float", "floats", "ints"] = Field(
        description="floats: one number, or a list of one per filter (K values); ints: a list "
        "of integers, e.g. a pixel [y, x]"
    )
    default: float | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""


class GeneratorEntry(BaseModel):
    description: str
    min_channels: int
    fixed_channels: int | None = Field(
        default=None, description="Set where the generator decides C itself."
    )
    params: dict[str, Param] = Field(description="height, width, channels, seed and its own.")


class PresetEntry(BaseModel):
    description: str
    params: dict[str, Param]


class Choice(BaseModel):
    id: str
    label: str


class Layouts(BaseModel):
    values: list[Choice]
    auto_rule: str


class Devices(BaseModel):
    choices: list[str] = Field(description="Every value `device` accepts.")
    available: list[str] = Field(description="Those present on this server, best first.")
    names: dict[str, str]
    default: str = Field(
        default="auto", description="The value a request without `device` gets: the best present."
    )


class FileKind(BaseModel):
    extensions: list[str]
    description: str


class Scenario(BaseModel):
    """A one-click view on the page: what it sends and the point it makes."""

    id: str
    title: str
    point: str = Field(description="The premise, as the page states it.")
    endpoint: str = Field(description="The path the request goes to.")
    request: dict[str, Any] = Field(description="The JSON body it sends.")
    headline: list[str] = Field(
        default_factory=list,
        description="Presentation only: which measured facts the page states first, in order "
        "(truth, changed, shape, variance, cost, picture).",
    )


class CheckpointControls(BaseModel):
    """What a client needs to use a layer of an uploaded checkpoint."""

    layers_endpoint: str = Field(description="Where to POST a checkpoint to list its 1×1 layers.")
    batchnorm: list[Choice] = Field(
        description="weights.batchnorm's fixed values, the default first; a batch norm's prefix "
        "in the checkpoint may be given instead."
    )
    eps: Param = Field(description="weights.eps, the folded batch norm's epsilon.")


class Catalogue(BaseModel):
    """Everything a client needs to build requests: the one source the page reads."""

    generators: dict[str, GeneratorEntry]
    weight_presets: dict[str, PresetEntry]
    layouts: Layouts
    devices: Devices
    files: dict[str, FileKind] = Field(description="Accepted uploads per multipart part.")
    formats: list[str] = Field(description="Values of /api/v1/compare's format parameter.")
    scenarios: list[Scenario]
    experiments: dict[str, dict[str, Param]] = Field(
        default_factory=dict,
        description="Per experiment endpoint: its own parameters, besides input, device and "
        "layout.",
    )
    limits: dict[str, int] = Field(description="The server's configured limits.")
    checkpoint: CheckpointControls = Field(
        description="A whole checkpoint as the weights file: listing its layers, batch norm, eps."
    )


# The request bodies routes read themselves; app.main lists them in the OpenAPI components.
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CompareRequest,
    FitRequest,
    BottleneckRequest,
    ReceptiveFieldRequest,
)
