"""The catalogue's models: every name, parameter, default and limit a client needs."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from app.schemas.responses import Documented


class Param(BaseModel):
    """One parameter a generator or preset takes, with its default and limits."""

    type: Literal["int", "float", "floats", "ints", "choice"] = Field(
        description="floats: one number, or a list of one per filter (K values); ints: a list "
        "of integers, e.g. a pixel [y, x]; choice: one of `choices`"
    )
    default: float | str | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""
    choices: list[str] | None = Field(default=None, description="choice: the values it takes.")


class GeneratorEntry(BaseModel):
    description: str
    min_channels: int
    fixed_channels: int | None = Field(
        default=None, description="Set where the generator decides C itself."
    )
    params: dict[str, Param] = Field(
        description="height, width, channels, seed and its own; the network generator takes "
        "only network, photo and layer (the network decides the maps' size)."
    )


class PresetEntry(BaseModel):
    description: str
    params: dict[str, Param] = Field(
        description="The parameters that change what it makes. Every preset also takes "
        "out_channels and seed: one that fixes K accepts that K only, one that draws nothing "
        "at random ignores the seed."
    )
    k: str = Field(description="How many filters it makes, K, in words.")


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


class NetworkLayer(BaseModel):
    """One 1×1 layer of a trained network."""

    name: str = Field(description="Its module name: input.layer and weights.layer take it.")
    out_channels: int = Field(description="K")
    in_channels: int = Field(description="C")
    batchnorm: str | None = Field(description="The batch norm right after it (folded by auto).")
    activation: Literal["relu6", "none"] = Field(
        description="What the network applies after that batch norm: relu6, or none (a linear "
        "bottleneck's projection, the classifier)."
    )
    size: list[int] = Field(description="(H, W) of its input for a 224×224 photo.")
    role: str = Field(description="expand, project, last or classifier.")
    block: int | None = Field(description="n of features.n; null for the classifier.")


class NetworkEntry(BaseModel):
    """A trained network the server ships."""

    name: str
    title: str
    file: str = Field(description="Its weights file and that file's sha256.")
    available: bool = Field(description="Whether the weights are installed and right.")
    detail: str | None = Field(
        default=None, description="When not available: why, and how to install them."
    )
    preprocessing: str = Field(description="What is done to a photo before the network.")
    default_layer: str = Field(description="input.layer when none is given.")
    layers: list[NetworkLayer] = Field(
        description="Its 1×1 layers in the order it runs them (none when not available)."
    )
    classes: list[str] = Field(
        description="ImageNet's classes by index, as weights.classes names them."
    )


class PhotoEntry(BaseModel):
    """A real photograph the server ships (from an installed package)."""

    name: str = Field(description="What input.photo takes.")
    shows: str = Field(description="What it shows.")
    source: str = Field(description="The package and file it comes from.")
    credit: str = Field(description="Who took it.")
    licence: str
    available: bool = Field(description="Whether its file is installed and right.")
    detail: str | None = Field(
        default=None, description="When not available: why, and how to install it."
    )


class Catalogue(Documented):
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
    networks: dict[str, NetworkEntry] = Field(
        description="The trained networks the server ships: generator network's maps and "
        "weights.network's layers come from them."
    )
    photos: dict[str, PhotoEntry] = Field(description="The real photos the server ships.")

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "generators": {
            "catdog": {
                "description": "Channel 0 is cat evidence, channel 1 dog evidence, …",
                "min_channels": 2,
                "fixed_channels": None,
                "params": {
                    "height": {"type": "int", "default": 28, "min": 1, "max": 1024},
                    "blobs": {
                        "type": "int",
                        "default": 2,
                        "min": 1,
                        "max": 32,
                        "description": "blobs of each animal; each dog overlaps a cat",
                    },
                },
            }
        },
        "weight_presets": {
            "pca": {
                "description": "Projection onto the input's top-K principal directions …",
                "params": {
                    "out_channels": {
                        "type": "int",
                        "default": None,
                        "min": 1,
                        "max": 1024,
                        "description": "K, the number of filters; default min(C, 64)",
                    }
                },
                "k": "out_channels, default min(C, 64)",
            }
        },
        "layouts": {"values": [{"id": "chw", "label": "C, H, W"}], "auto_rule": "…"},
        "devices": {"choices": ["auto", "cpu", "cuda", "mps"], "available": ["cpu"], "names": {}},
        "files": {"weights": {"extensions": [".npy", ".pt"], "description": "A 1×1 layer …"}},
        "formats": ["json", "png", "npz"],
        "scenarios": [
            {
                "id": "identity",
                "title": "Identity weights",
                "point": "With W = I and b = 0 …",
                "endpoint": "/api/v1/compare",
                "request": {"input": {"generator": "gaussian"}, "weights": {"preset": "identity"}},
            }
        ],
        "limits": {"max_values": 33554432, "max_upload_bytes": 134217728},
        "checkpoint": {
            "layers_endpoint": "/api/v1/checkpoints/layers",
            "batchnorm": [{"id": "auto", "label": "fold the batch norm that follows it"}],
            "eps": {"type": "float", "default": 1e-5, "min": None, "max": 1.0},
        },
        "networks": {
            "mobilenet_v2": {
                "name": "mobilenet_v2",
                "title": "MobileNetV2, trained on ImageNet-1k (torchvision's weights)",
                "file": "mobilenet_v2-b0353104.pth, sha256 b0353104…",
                "available": True,
                "detail": None,
                "preprocessing": "shorter side resized to 256 (bilinear, antialiased), …",
                "default_layer": "features.7.conv.0.0",
                "layers": [
                    {
                        "name": "features.7.conv.0.0",
                        "out_channels": 192,
                        "in_channels": 32,
                        "batchnorm": "features.7.conv.0.1",
                        "activation": "relu6",
                        "size": [28, 28],
                        "role": "expand",
                        "block": 7,
                    }
                ],
                "classes": ["tench", "goldfish", "…"],
            }
        },
        "photos": {
            "chelsea": {
                "name": "chelsea",
                "shows": "Chelsea the cat, a tabby, lying down",
                "source": "scikit-image: skimage/data/chelsea.png",
                "credit": "Stefan van der Walt, for scikit-image's sample data",
                "licence": "CC0 (no copyright restrictions)",
                "available": True,
                "detail": None,
            }
        },
    }
