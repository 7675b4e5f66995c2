"""The catalogue's models: every name, parameter, default and limit a client needs."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from app.schemas.responses import Documented


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
    }
