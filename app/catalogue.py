"""The catalogue: every name and limit a client needs, read from the registries that define them.

The page builds its controls from this (generators with their parameters, presets,
layouts, devices, file types, scenarios), so adding a generator or a preset on the
server shows it on the page with no JavaScript change.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from app import (
    checkpoints,
    devices,
    generators,
    inputs,
    network,
    photos,
    pretrained,
    trained,
    uploads,
    weights,
)
from app.config import Settings
from app.scenarios import SCENARIOS
from app.schemas.catalogue import (
    Catalogue,
    CheckpointControls,
    Choice,
    Devices,
    FileKind,
    GeneratorEntry,
    Layouts,
    NetworkEntry,
    NetworkLayer,
    Param,
    PhotoEntry,
    PresetEntry,
)
from app.schemas.requests import (
    BottleneckRequest,
    CompareRequest,
    Device,
    FitRequest,
    Format,
    InputSpec,
    ReceptiveFieldRequest,
    WeightsSpec,
)

FORMATS = list(get_args(Format))


def _type(annotation: Any) -> Literal["int", "float", "floats"]:
    """int, float or floats (one number or a list) from a field's annotation."""
    args = (
        set(get_args(annotation))
        if get_origin(annotation) in (Union, types.UnionType)
        else {annotation}
    )
    args.discard(type(None))
    # Annotated[list[float], …] (schemas.Floats) is a list too.
    args = {get_args(a)[0] if get_origin(a) is Annotated else a for a in args}
    if any(get_origin(a) is list for a in args):
        return "floats"
    return "int" if args == {int} else "float"


def _field_param(model: type[Any], name: str, **override: Any) -> Param:
    """A Param from a pydantic field: its type, default, bounds and description."""
    info = model.model_fields[name]
    lo = hi = None
    for m in info.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
    values: dict[str, Any] = {
        "type": _type(info.annotation),
        "default": info.default if isinstance(info.default, int | float) else None,
        "min": lo,
        "max": hi,
        "description": info.description or "",
    }
    return Param(**(values | override))


def _network_generator(held: trained.Trained | None) -> GeneratorEntry:
    """The network's maps: the input of one of its 1×1 layers, from a photo."""
    net = None if held is None else held.net
    layers = [] if net is None else [layer.name for layer in net.layers]
    return GeneratorEntry(
        description="The input of a trained network's 1×1 layer when the network sees a real "
        "photo: activations a trained network really computes (MobileNetV2, ImageNet). The "
        "layer decides C, H and W; a multipart file part 'photo' stands in for a built-in one.",
        min_channels=1,
        params={
            "network": Param(
                type="choice",
                default=network.NAME,
                choices=[network.NAME],
                description="the trained network (GET /api/v1/catalogue: networks)",
            ),
            "photo": Param(
                type="choice",
                default=trained.DEFAULT_PHOTO,
                choices=list(photos.PHOTOS),
                description="a built-in photo (GET /api/v1/catalogue: photos)",
            ),
            "layer": Param(
                type="choice",
                default=trained.DEFAULT_LAYER,
                choices=layers,
                description="the 1×1 layer whose input the maps are",
            ),
        },
    )


def _generators(s: Settings, held: trained.Trained | None) -> dict[str, GeneratorEntry]:
    common = {
        "height": _field_param(InputSpec, "height", max=s.max_height),
        "width": _field_param(InputSpec, "width", max=s.max_width),
        "channels": _field_param(InputSpec, "channels", max=s.max_channels),
        "seed": _field_param(InputSpec, "seed"),
    }
    out = {}
    for name, g in generators.GENERATORS.items():
        own = {
            key: Param(
                type=_type(InputSpec.model_fields[key].annotation),
                default=default,
                min=lo,
                max=hi,
                description=text,
            )
            for key, (default, lo, hi, text) in g.params.items()
        }
        out[name] = GeneratorEntry(
            description=g.description,
            min_channels=g.min_channels,
            fixed_channels=g.fixed_channels,
            params=common | own,
        )
    out[inputs.NETWORK] = _network_generator(held)
    return out


def _presets(s: Settings) -> dict[str, PresetEntry]:
    out = {}
    for name, p in weights.PRESETS.items():
        params = {}
        for key in p.params:
            extra: dict[str, Any] = {}
            if key == "out_channels":
                extra = {
                    "max": s.max_out_channels,
                    "description": f"K, the number of filters; default {p.default_k_rule}",
                }
            params[key] = _field_param(WeightsSpec, key, **extra)
        out[name] = PresetEntry(description=p.description, params=params, k=p.k_rule)
    return out


# Each experiment's own request fields; input, device and layout are the shared controls, and
# fit's target (a file part) is left to scripts.
_EXPERIMENTS: dict[str, tuple[type[Any], tuple[str, ...]]] = {
    "/api/v1/experiments/fit": (FitRequest, ("steps", "every", "lr", "seed")),
    "/api/v1/experiments/bottleneck": (BottleneckRequest, ("kernel", "out_channels")),
    "/api/v1/experiments/receptive-field": (
        ReceptiveFieldRequest,
        ("pixel", "delta", "out_channels", "seed"),
    ),
}


def _experiments() -> dict[str, dict[str, Param]]:
    return {
        path: {
            name: _field_param(model, name, **({"type": "ints"} if name == "pixel" else {}))
            for name in names
        }
        for path, (model, names) in _EXPERIMENTS.items()
    }


def _networks(held: trained.Trained | None) -> dict[str, NetworkEntry]:
    net = None if held is None else held.net
    problem = "This server was started without the network." if held is None else held.problem
    layers = [] if net is None else net.layers
    return {
        network.NAME: NetworkEntry(
            name=network.NAME,
            title=network.TITLE,
            file=f"{pretrained.FILE_NAME}, sha256 {pretrained.SHA256}",
            available=net is not None,
            detail=problem,
            preprocessing=network.PREPROCESSING,
            default_layer=trained.DEFAULT_LAYER,
            layers=[
                NetworkLayer(
                    name=layer.name,
                    out_channels=layer.out_channels,
                    in_channels=layer.in_channels,
                    batchnorm=layer.batchnorm,
                    activation=layer.activation,
                    size=list(layer.size),
                    role=layer.role,
                    block=layer.block,
                )
                for layer in layers
            ],
            classes=[] if net is None else list(net.class_names),
        )
    }


def _photos(held: trained.Trained | None) -> dict[str, PhotoEntry]:
    out = {}
    for name, p in photos.PHOTOS.items():
        problem = photos.problem(p) if held is None else held.photo_problems[name]
        out[name] = PhotoEntry(
            name=name,
            shows=p.shows,
            source=p.source,
            credit=p.credit,
            licence=p.licence,
            available=problem is None,
            detail=problem,
        )
    return out


def build(s: Settings, held: trained.Trained | None = None) -> Catalogue:
    """The catalogue of a server with these settings and this trained network (None: one
    started without it)."""
    arrays = list(uploads.ARRAY_EXTENSIONS)
    return Catalogue(
        generators=_generators(s, held),
        weight_presets=_presets(s),
        layouts=Layouts(
            values=[Choice(id=v, label=uploads.LAYOUT_LABELS[v]) for v in uploads.LAYOUTS],
            auto_rule=uploads.AUTO_RULE,
        ),
        devices=Devices(
            choices=list(get_args(Device)),
            available=devices.available(),
            names=devices.describe(),
            default=CompareRequest.model_fields["device"].default,
        ),
        files={
            "input": FileKind(
                extensions=arrays + list(uploads.IMAGE_EXTENSIONS),
                description="Feature maps: an array (.npy, .npz, .pt, .safetensors; "
                "(C, H, W), (H, W, C), (1, C, H, W), (1, H, W, C) or (H, W)) or an image.",
            ),
            "weights": FileKind(
                extensions=arrays,
                description="A 1×1 layer: (K, C) or (K, C, 1, 1), a state dict with weight "
                "and optional bias, or a whole checkpoint (pick its layer with weights.layer; "
                "POST /api/v1/checkpoints/layers lists them).",
            ),
            "target": FileKind(
                extensions=arrays, description="fit: the map to learn, (K, H, W) or (H, W)."
            ),
        },
        formats=FORMATS,
        scenarios=SCENARIOS,
        experiments=_experiments(),
        limits={
            "max_height": s.max_height,
            "max_width": s.max_width,
            "max_channels": s.max_channels,
            "max_out_channels": s.max_out_channels,
            "max_values": s.max_values,
            "max_macs": s.max_macs,
            "max_upload_bytes": s.max_upload_bytes,
            "max_image_pixels": s.max_image_pixels,
            "max_png_channels": s.max_png_channels,
            "max_experiment_values": s.max_experiment_values,
        },
        checkpoint=CheckpointControls(
            layers_endpoint="/api/v1/checkpoints/layers",
            batchnorm=[Choice(id=k, label=v) for k, v in checkpoints.BATCHNORM_CHOICES.items()],
            eps=_field_param(WeightsSpec, "eps"),
        ),
        networks=_networks(held),
        photos=_photos(held),
    )
