"""Request models: what each endpoint accepts, with hard limits in Field(...) and examples.

The Field bounds are absolute sanity caps that refuse absurd numbers at parse time; the
configurable limits in `Settings` are checked before any tensor exists. Each request model
carries its named OpenAPI examples (`EXAMPLES`), which the page's scenarios reuse.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

# An OpenAPI example: {"summary": ..., "value": {...}}.
Example = dict[str, Any]

HARD_SIDE = 16384
HARD_CHANNELS = 65536

Device = Literal["auto", "cpu", "cuda", "mps"]
# How an uploaded array's axes are ordered.
Layout = Literal["auto", "chw", "hwc", "nchw", "nhwc"]
# An ImageNet class by name (any synonym) or index.
ClassName = Annotated[str, Field(max_length=200)] | int
# A list of numbers in a request: its first bad item is the error (fail_fast), so a million
# wrong items cost one error, not a million (pydantic builds each, ~1 KB and 14 µs apiece).
Floats = Annotated[list[float], Field(fail_fast=True)]

# What /api/v1/compare can return (its format query parameter).
Format = Literal["json", "png", "npz"]


class InputSpec(BaseModel):
    """Where the feature maps come from: a generator and its parameters, or how to read a file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    generator: str = Field(
        default="catdog",
        description='One of GET /api/v1/catalogue\'s generators, or "network": the input of a '
        "trained network's 1×1 layer when it sees a photo.",
    )
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
    network: str | None = Field(
        default=None,
        max_length=100,
        description='generator "network": the trained network (default mobilenet_v2; '
        "GET /api/v1/catalogue lists networks, their layers and photos).",
    )
    photo: str | None = Field(
        default=None,
        max_length=100,
        description='generator "network": a built-in photo (default chelsea); a multipart '
        'file part "photo" (PNG or JPEG) stands in for it.',
    )
    layer: str | None = Field(
        default=None,
        max_length=100,
        description='generator "network": the 1×1 layer whose input the maps are (default '
        "features.7.conv.0.0, block 7's expand).",
        examples=["features.7.conv.0.0", "classifier.1"],
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
    network: str | None = Field(
        default=None,
        max_length=100,
        description="A trained network's layer as the weights (mobilenet_v2): `layer` names it "
        "(default: the input's layer, when the input is the network's) and `batchnorm` folds "
        "the batch norm after it, exactly as for an uploaded checkpoint.",
    )
    classes: Annotated[list[ClassName], Field(min_length=1, max_length=16)] | None = Field(
        default=None,
        description="With the network's classifier.1: only these ImageNet classes' filters "
        "(names, any synonym, or indices), in this order: their class activation maps.",
        examples=[["Egyptian cat", "tabby"]],
    )
    minus: ClassName | None = Field(
        default=None,
        description="With `classes`: subtract this class's filter and bias from each of them. "
        "W[Egyptian cat] − W[golden retriever] is positive where the network sees more cat "
        "than dog.",
        examples=["golden retriever"],
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
    """One comparison: feature maps (generated, or from the files), a 1×1 layer, a device."""

    model_config = ConfigDict(extra="forbid")

    input: InputSpec = Field(default_factory=InputSpec)
    weights: WeightsSpec = Field(default_factory=WeightsSpec)
    device: Device = "auto"
    layout: Layout | None = _TOP_LAYOUT

    EXAMPLES: ClassVar[dict[str, Example]] = {
        "catdog": {
            "summary": "Cat minus dog: what no per-channel ReLU can do",
            "value": {
                "input": {
                    "generator": "catdog",
                    "height": 64,
                    "width": 64,
                    "channels": 4,
                    "seed": 0,
                },
                "weights": {"preset": "difference", "positive": 0, "negative": 1},
            },
        },
        "keep192": {
            "summary": "The question's case: 28×28×192 with 192 filters",
            "value": {
                "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192},
                "weights": {"preset": "random", "out_channels": 192, "seed": 0},
            },
        },
        "reduce64": {
            "summary": "Bottleneck 192 → 64 with the best linear reduction",
            "value": {
                "input": {"generator": "smooth", "height": 28, "width": 28, "channels": 192},
                "weights": {"preset": "pca", "out_channels": 64},
            },
        },
        "trained": {
            "summary": "A trained 1×1 layer: MobileNetV2's block 7 expand on a photo of a cat",
            "value": {
                "input": {
                    "generator": "network",
                    "network": "mobilenet_v2",
                    "photo": "chelsea",
                    "layer": "features.7.conv.0.0",
                },
                "weights": {"network": "mobilenet_v2", "batchnorm": "auto"},
            },
        },
        "trained_reduce": {
            "summary": "192 → 64 as trained: MobileNetV2's block 7 projection",
            "value": {
                "input": {"generator": "network", "photo": "chelsea", "layer": "features.7.conv.2"},
                "weights": {"network": "mobilenet_v2"},
            },
        },
        "cat_minus_dog": {
            "summary": "Cat minus dog, for real: the classifier's W[Egyptian cat] − W[golden "
            "retriever] at every pixel",
            "value": {
                "input": {"generator": "network", "photo": "chelsea", "layer": "classifier.1"},
                "weights": {
                    "network": "mobilenet_v2",
                    "classes": ["Egyptian cat"],
                    "minus": "golden retriever",
                },
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

    EXAMPLES: ClassVar[dict[str, Example]] = {}


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

    EXAMPLES: ClassVar[dict[str, Example]] = {
        "fit": {
            "summary": "Learn cat − dog: the 1×1 conv reaches ~0, ReLU-only cannot",
            "value": {
                "input": {"generator": "catdog", "height": 32, "width": 32, "channels": 4},
                "steps": 300,
            },
        }
    }


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

    EXAMPLES: ClassVar[dict[str, Example]] = {
        "bottleneck": {
            "summary": "GoogLeNet's 192 → K → 5×5 → 32, on generated maps",
            "value": {
                "input": {"generator": "smooth", "channels": 192},
                "kernel": 5,
                "out_channels": 32,
            },
        },
        "trained": {
            "summary": "The curve of a trained network's activations (MobileNetV2 block 7's "
            "192 channels), its own 64-filter projection marked",
            "value": {
                "input": {"generator": "network", "photo": "chelsea", "layer": "features.7.conv.2"},
                "kernel": 3,
                "out_channels": 64,
            },
        },
    }


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

    EXAMPLES: ClassVar[dict[str, Example]] = {
        "receptive_field": {
            "summary": "One pixel changed: 1×1 moves one output pixel, 3×3 a 3×3 patch",
            "value": {
                "input": {"generator": "edges", "height": 16, "width": 16, "channels": 4},
                "pixel": [8, 8],
            },
        }
    }
