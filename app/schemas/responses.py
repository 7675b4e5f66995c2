"""Response models: every JSON body the API answers with, each with its OpenAPI example.

The examples are checked against their models by tests/test_openapi.py.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field


class Documented(BaseModel):
    """A response model with an example of itself for the OpenAPI schema (`EXAMPLE`)."""

    EXAMPLE: ClassVar[dict[str, Any]] = {}


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


class Admission(Documented):
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

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "worker": 4242,
        "slots": 2,
        "capacity": 66,
        "admitted": 0,
        "computing": 0,
        "waiting_for_slot": 0,
        "abandoned": 0,
        "ready": True,
    }


class Health(Documented):
    """Liveness, the devices present, and the versions that run."""

    status: Literal["ok"] = Field(description="Always ok while the process answers.")
    devices: list[str] = Field(description="Compute devices present, best first.")
    device_names: dict[str, str] = Field(description="A human name for each device present.")
    torch: str = Field(description="The PyTorch version.")
    version: str = Field(description="The onebyone version.")
    admission: Admission = Field(description="This worker's compute gate, now.")

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "status": "ok",
        "devices": ["cuda", "cpu"],
        "device_names": {"cpu": "CPU", "cuda": "NVIDIA H100 80GB HBM3"},
        "torch": "2.13.0",
        "version": "0.1.0",
        "admission": Admission.EXAMPLE,
    }


class Readiness(Documented):
    """GET /readyz: 200 when this worker can admit work, 503 when it cannot."""

    status: Literal["ready", "busy", "draining"]
    admission: Admission

    EXAMPLE: ClassVar[dict[str, Any]] = {"status": "ready", "admission": Admission.EXAMPLE}


class Colormap(BaseModel):
    name: str = Field(description="matplotlib's name for it.")
    rgb: str = Field(description="256 × 3 bytes (RGB per entry), base64.")


class Colormaps(Documented):
    """The colour maps the PNG montage and the page both use."""

    sequential: Colormap = Field(description="For non-negative values, from 0 (viridis).")
    diverging: Colormap = Field(description="For signed values, 0 at the centre (RdBu_r).")

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "sequential": {"name": "viridis", "rgb": "RAFUR…(768 bytes, base64)"},
        "diverging": {"name": "RdBu_r", "rgb": "BTBh…(768 bytes, base64)"},
    }


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
    best_variance_kept: float | None = Field(
        default=None,
        description="K < C: the variance the best linear reduction to K channels keeps (PCA's "
        "top-K share), the most any K filters can: variance_kept measured against it.",
    )
    network: str | None = Field(
        default=None, description="A trained network's layer: the network (mobilenet_v2)."
    )
    activation: Literal["relu6", "none"] | None = Field(
        default=None,
        description="A trained network's layer: what the network applies after it (relu6, or "
        "none for a linear bottleneck and the classifier), where this page applies ReLU.",
    )
    classes: list[str] | None = Field(
        default=None, description="The classifier's filters kept (weights.classes), by name."
    )
    minus: str | None = Field(
        default=None, description="The class whose filter was subtracted (weights.minus)."
    )


class Prediction(BaseModel):
    index: int = Field(description="The ImageNet class index, 0 … 999.")
    name: str = Field(description="Its name.")
    probability: float = Field(description="Softmax of the network's logits.")


class NetworkInput(BaseModel):
    """Where a network's maps come from: which photo, through which preprocessing, at which
    layer, and what the network makes of the photo."""

    network: str = Field(description="mobilenet_v2")
    photo: str = Field(description="A built-in photo's name, or upload:FILENAME.")
    layer: str = Field(description="The 1×1 layer whose input these maps are.")
    activation: Literal["relu6", "none"] = Field(
        description="What the network applies after that layer (relu6, or none)."
    )
    preprocessing: str = Field(description="What was done to the photo before the network.")
    top5: list[Prediction] = Field(description="The network's five most likely classes.")


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


class CompareReport(Documented):
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
    network: NetworkInput | None = Field(
        default=None, description="For a trained network's maps (generator network)."
    )
    heatmaps: Heatmaps | None = Field(default=None, description="Absent with heatmaps=false.")
    timings_ms: dict[str, float] = Field(
        description="Server time per phase: decode, prepare, compute, encode."
    )

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "device": "cpu",
        "input_source": "generator:catdog",
        "weights_source": "matrix",
        "shapes": {
            "input": [2, 2, 2],
            "weight": [1, 2],
            "bias": [1],
            "pre_activation": [1, 2, 2],
            "relu_only": [2, 2, 2],
            "conv_relu": [1, 2, 2],
        },
        "channel_names": ["cat evidence", "dog evidence"],
        "summary": {
            "relu_only_changed": 0,
            "relu_only_values": 8,
            "conv_relu_changed": 2,
            "conv_relu_values": 4,
            "paths_identical": False,
            "paths_max_abs_difference": None,
        },
        "stats": {
            name: {"min": [0.0], "max": [0.9], "mean": [0.4], "zero_fraction": [0.25]}
            | ({"changed_fraction": [0.0]} if name.endswith("relu") or name == "relu_only" else {})
            for name in ("input", "pre_activation", "relu_only", "conv_relu")
        },
        "cost": {
            "conv1x1": {"parameters": 3, "macs": 8},
            "conv3x3": {"parameters": 19, "macs": 72},
        },
        "layer": {"weight": [[1.0, -1.0]], "bias": [0.0]},
        "truth": {
            "cat_over_dog": {
                "fraction_true": 0.25,
                "relu_only": {"best_channel": 0, "agreement": 0.5},
                "conv_relu": {"best_channel": 0, "agreement": 1.0},
            }
        },
        "heatmaps": {
            "stride": 1,
            "height": 2,
            "width": 2,
            "input": {"shape": [2, 2, 2], "data": "ZmZmP83MzD0AAAAAmpkZP83MTD4AAAA/AAAAADMzMz8="},
            "pre_activation": {"shape": [1, 2, 2], "data": "MzMzP83MzL4AAAAAyMzMvQ=="},
            "weight": {"shape": [1, 2], "data": "AACAPwAAgL8="},
            "bias": {"shape": [1], "data": "AAAAAA=="},
            "masks": {"cat_over_dog": "AQAAAA=="},
        },
        "timings_ms": {"decode": 0.1, "prepare": 0.4, "compute": 0.05, "encode": 0.3},
    }


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


class CheckpointLayers(Documented):
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

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "format": "pt",
        "wrappers": [],
        "layers": [
            {
                "name": "layer1.0.conv1",
                "out_channels": 64,
                "in_channels": 64,
                "bias": False,
                "batchnorm": {"name": "layer1.0.bn1", "channels": 64, "affine": True},
            },
            {
                "name": "layer1.0.conv3",
                "out_channels": 256,
                "in_channels": 64,
                "bias": False,
                "batchnorm": {"name": "layer1.0.bn3", "channels": 256, "affine": True},
            },
            {
                "name": "layer1.0.downsample.0",
                "out_channels": 256,
                "in_channels": 64,
                "bias": False,
                "batchnorm": {"name": "layer1.0.downsample.1", "channels": 256, "affine": True},
            },
        ],
        "other_convs": 17,
        "batchnorms": 53,
    }


class FitFinal(BaseModel):
    conv_relu: float = Field(description="Final mean squared error of the 1×1 conv + ReLU.")
    relu_only: float = Field(description="Final mean squared error of the best no-mixing model.")


class FitResult(Documented):
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

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "device": "cpu",
        "conv_loss": [0.031, 0.012, 0.0004],
        "relu_only_loss": [0.05, 0.03, 0.021],
        "final": {"conv_relu": 0.0004, "relu_only": 0.021},
        "conv_weight": [[0.98, -0.97, 0.01, 0.0]],
        "conv_bias": [0.002],
        "relu_only_channel": 0,
        "relu_only_scale": 0.8,
        "relu_only_shift": -0.1,
        "relu_only_floor": 0.0203,
        "relu_only_floor_channel": 0,
        "conclusion": "ReLU-only cannot do better than 0.0203 (mean squared error); the 1×1 "
        "conv + ReLU reaches 0.0004.",
    }


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


class TrainedReduction(BaseModel):
    """The trained layer that reads these maps, placed on the curve."""

    layer: str = Field(description="Its name.")
    k: int = Field(description="Its out_channels, K.")
    variance_kept: float = Field(
        description="The input variance inside the span of its K filters (what a best linear "
        "read-out from its outputs recovers), against the curve's best at that K."
    )


class BottleneckResult(Documented):
    input_source: str
    device: str
    channels: int
    kernel: int
    out_channels: int
    direct: LayerCost = Field(description="The kernel×kernel conv C→out alone.")
    rows: list[BottleneckRow] = Field(description="One row for every k from 1 to C.")
    network: NetworkInput | None = Field(
        default=None, description="For a trained network's maps (generator network)."
    )
    trained: TrainedReduction | None = Field(
        default=None,
        description="For a trained network's maps: the layer that reads them, at its own K.",
    )

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "input_source": "generator:smooth",
        "device": "cpu",
        "channels": 2,
        "kernel": 5,
        "out_channels": 32,
        "direct": {"parameters": 1632, "macs": 1254400},
        "rows": [
            {"k": 1, "variance_kept": 0.93, "parameters": 834, "macs": 628320},
            {"k": 2, "variance_kept": 1.0, "parameters": 1670, "macs": 1256640},
        ],
    }


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


class ReceptiveFieldResult(Documented):
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

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "input_source": "generator:edges",
        "channel_names": ["shapes 0"],
        "device": "cpu",
        "pixel": [0, 0],
        "changed": {"conv1x1": [[0, 0]], "conv3x3": [[0, 0], [0, 1], [1, 0], [1, 1]]},
        "expected": {"conv1x1": [[0, 0]], "conv3x3": [[0, 0], [0, 1], [1, 0], [1, 1]]},
        "cost": {
            "conv1x1": {"parameters": 8, "macs": 16},
            "conv3x3": {"parameters": 40, "macs": 144},
        },
        "edges": {
            "fraction": 0.5,
            "conv3x3_agreement": 1.0,
            "best_1x1_agreement": 0.75,
            "conv3x3_filters": 8,
        },
        "heatmaps": {
            "height": 1,
            "width": 2,
            "names": ["input channel 0", "3×3 edge layer", "true edges"],
            "maps": {"shape": [3, 1, 2], "data": "AAAAPwAAgL8AAIA/AAAAAAAAgD8AAAAA"},
        },
    }
